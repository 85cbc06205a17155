"""The diode with series resistance and junction capacitance: its terminal law, the native equilibrium against
ngspice's RS diode, its noise against ngspice's noise analysis, its netlist text and saved form."""
import numpy as np
import pytest

from eqprop.circuits import NetworkError, layered, solve
from eqprop.circuits.devices import SeriesResistanceDiode, ShockleyDiode, diode_from_data, diode_to_data


def test_the_terminal_law_is_the_junction_behind_its_resistor():
    d = SeriesResistanceDiode(i_s=1e-9, n=1.2, rs=500.0)
    vd = np.linspace(-1.0, 1.5, 401)
    vj = d.junction_voltage(vd)
    i = d.current(vd)
    np.testing.assert_allclose(vj + d.rs * i, vd, rtol=0, atol=1e-12)  # KVL across the pair
    np.testing.assert_allclose(i, ShockleyDiode(i_s=1e-9, n=1.2).current(vj), rtol=1e-12, atol=1e-22)
    h = 1e-6
    np.testing.assert_allclose(d.conductance(vd), (d.current(vd + h) - d.current(vd - h)) / (2 * h), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(i, (d.cocontent(vd + h) - d.cocontent(vd - h)) / (2 * h), rtol=1e-5, atol=1e-12)
    assert d.conductance(np.array([5.0]))[0] < 1.0 / d.rs  # a conductance of at most 1 / rs
    assert abs(d.current(np.array([5.0]))[0] - (5.0 - d.junction_voltage(np.array([5.0]))[0]) / 500.0) < 1e-15


@pytest.mark.parametrize("rs", [10.0, 1e3, 1e5])
def test_native_equilibrium_is_ngspices_rs_diode(rs):
    from eqprop.netlists import NgspiceCircuit

    net = layered([16, 12, 10, 4], gain=4, diode=SeriesResistanceDiode(i_s=1e-7, rs=rs, cj=1e-13),
                  rails=(-0.05, 0.05), seed=2, g_range=(1e-5, 1e-4))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (3, 8)), rng.uniform(-0.1, 0.1, (3, 2))
    circuit = NgspiceCircuit(net)
    for beta in (0.0, 3e-4):
        assert np.abs(circuit.equilibrium(x, y, beta).voltages - solve(net, x, y, beta).voltages).max() < 1e-9


def test_its_noise_is_ngspices_and_its_netlist_and_saved_form_carry_rs_and_cj():
    from eqprop.circuits.noise import ThermalNoise
    from eqprop.netlists import NgspiceCircuit, to_netlist

    d = SeriesResistanceDiode(i_s=1e-7, rs=1e3)  # (a junction capacitance would add to the nodes': not modelled)
    net = layered([16, 12, 10, 4], gain=4, diode=d, rails=(-0.05, 0.05), seed=2, g_range=(1e-5, 1e-4))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8))
    eq = solve(net, x, tol=1e-13)
    model = ThermalNoise(1e-12)
    tau, fast = model.time_constants(net, eq.voltages[0])
    want = model.node_std(net, eq.layers)[0]
    got = NgspiceCircuit(net).noise_spectra(x, 1e-12, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast),
                                            100)["total_rms"]
    assert np.abs(got / want - 1).max() < 1e-3
    with_cj = SeriesResistanceDiode(i_s=1e-7, rs=1e3, cj=2e-13)
    assert "RS=1000.0 CJO=2e-13)" in to_netlist(layered([4, 3, 2], diode=with_cj), np.zeros((1, 2))).text
    assert diode_from_data(diode_to_data(with_cj)) == with_cj
    for bad in (dict(rs=0.0), dict(rs=-1.0), dict(cj=-1e-12), dict(rs=float("nan"))):
        with pytest.raises(NetworkError):
            SeriesResistanceDiode(**bad)


@pytest.mark.parametrize("kp,vto", [(1e-4, 0.0), (1e-3, 0.02)])
def test_a_diode_connected_transistor_clamp_is_ngspices_level_1_mosfet(kp, vto):
    """The transistor-level clamp: each diode a diode-connected n-MOSFET (ngspice's level-1 model). The native
    per-node solve is exact (a quadratic past the threshold): free and nudged equilibria to 1e-9 V, and the noise
    (the channel's 8kT gm / 3 in saturation) against ngspice's noise analysis to 1e-3."""
    from eqprop.circuits.devices import MosfetDiode
    from eqprop.circuits.noise import ThermalNoise
    from eqprop.netlists import NgspiceCircuit

    d = MosfetDiode(kp=kp, vto=vto)
    net = layered([16, 12, 10, 4], gain=4, diode=d, rails=(-0.05, 0.05), seed=2, g_range=(1e-5, 1e-4))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (4, 8)), rng.uniform(-0.1, 0.1, (4, 2))
    circuit = NgspiceCircuit(net)
    for beta in (0.0, 3e-4):
        eq = solve(net, x, y, beta)
        assert np.abs(circuit.equilibrium(x, y, beta).voltages - eq.voltages).max() < 1e-9
    on = (eq.layers[0] > 0.05 + vto) | (eq.layers[0] < -0.05 - vto)
    assert on.any() and not on.all()  # some transistors conduct, some do not
    h = 1e-7
    vd = np.linspace(-0.2, 0.3, 51)
    np.testing.assert_allclose(d.conductance(vd), (d.current(vd + h) - d.current(vd - h)) / (2 * h), atol=1e-9)
    np.testing.assert_allclose(d.current(vd), (d.cocontent(vd + h) - d.cocontent(vd - h)) / (2 * h), atol=1e-9)
    free = solve(net, x[:1], tol=1e-13)
    model = ThermalNoise(1e-12)
    tau, fast = model.time_constants(net, free.voltages[0])
    want = model.node_std(net, free.layers)[0]
    got = circuit.noise_spectra(x[:1], 1e-12, 1e-3 / (2 * np.pi * tau), 1e4 / (2 * np.pi * fast), 100)["total_rms"]
    assert np.abs(got / want - 1).max() < 1e-3
    with pytest.raises(NetworkError, match="vto"):
        MosfetDiode(vto=-0.1)
