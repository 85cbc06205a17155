"""Transistor-level amplifiers: the characterisation against a hand-written ngspice deck, the native solver on the
table against ngspice on the transistors, its small-signal terms and exact gradient, saved forms, the command."""
import json

import numpy as np
import pytest

from eqprop.circuits import NetworkError, TabulatedAmplifier, TwoStageOpAmp, amplifier_model, kcl_residual, layered, solve
from eqprop.netlists.characterise import Deck, amplifier_figures, characterise_amplifier
from eqprop.netlists.options import SpiceOptions

# The default design written out by hand (Baker's 1 um level-3 cards, +-2.5 V): what TwoStageOpAmp.subckt must say.
HAND_DECK = """* two-stage op-amp, gain 4, by hand
.model n NMOS(LEVEL=3 TOX=200E-10 NSUB=1E17 GAMMA=0.5 PHI=0.7 VTO=0.8 DELTA=3.0 UO=650 ETA=3.0E-6 THETA=0.1
+ KP=120E-6 VMAX=1E5 KAPPA=0.3 RSH=0 NFS=1E12 TPG=1 XJ=500E-9 LD=100E-9 CGDO=200E-12 CGSO=200E-12 CGBO=1E-10
+ CJ=400E-6 PB=1 MJ=0.5 CJSW=300E-12 MJSW=0.5)
.model p PMOS(LEVEL=3 TOX=200E-10 NSUB=1E17 GAMMA=0.6 PHI=0.7 VTO=-0.9 DELTA=0.1 UO=250 ETA=0 THETA=0.1
+ KP=40E-6 VMAX=5E4 KAPPA=1 RSH=0 NFS=1E12 TPG=-1 XJ=500E-9 LD=100E-9 CGDO=200E-12 CGSO=200E-12 CGBO=1E-10
+ CJ=400E-6 PB=1 MJ=0.5 CJSW=300E-12 MJSW=0.5)
VDD vdd 0 2.5
VSS vss 0 -2.5
IB vdd nb 10u
M8 nb nb vss vss n W=10u L=2u
M5 tail nb vss vss n W=10u L=2u
M1 d1 fb tail vss n W=10u L=2u
M2 d2 inp tail vss n W=10u L=2u
M3 d1 d1 vdd vdd p W=30u L=2u
M4 d2 d1 vdd vdd p W=30u L=2u
M6 o d2 vdd vdd p W=120u L=2u
M7 o nb vss vss n W=20u L=2u
CC d2 o 2p
R1 fb 0 100k
R2 o fb 300k
VIN inp 0 DC 0
IL o 0 DC {il}
{options}
.end
"""


@pytest.fixture(scope="module")
def table():
    return characterise_amplifier(TwoStageOpAmp(), [4.0])


@pytest.fixture(scope="module")
def starved():
    """Ibias 0.1 uA: the output stage sinks 0.2 uA, so the loop clips at about -0.1 V: far from ideal."""
    return characterise_amplifier(TwoStageOpAmp(ibias=1e-7), [4.0])


def test_the_table_is_the_hand_written_circuits_dc_sweep(table):
    """The table against ngspice's DC sweep of the circuit written by hand (not by the design class), input swept in
    1 mV steps at four load currents: at the table's grid points to 1e-9 V, between them (bilinear interpolation)
    within 1e-6 V. (Sweeps, as the networks' netlists are solved: ngspice's .op of this level-3 circuit stops 8e-7 V
    away from the point its repeated sweep solves converge to.)"""
    deck = Deck()
    vin = np.round(np.arange(-0.1, 0.1 + 1e-9, 1e-3), 12)
    grid_v, grid_i = np.array(table.vin), np.array(table.iload)
    for il in (0.0, 1e-6, -3e-6, 2.5e-7):
        text = HAND_DECK.replace("{il}", repr(il)).replace("{options}", SpiceOptions().card())
        want = deck.run(text, "dc VIN -0.11 0.1 0.001", ["o"])["o"][10:]  # from the op, 10 points to settle
        got = table.output(4.0, vin, np.zeros(1), np.full(1, -il))
        on_v = np.isclose(grid_v[None, :], vin[:, None], atol=1e-12).any(1)
        assert on_v.sum() == 101
        err = np.abs(got - want)
        if np.isclose(grid_i, il, atol=1e-15).any():
            assert err[on_v].max() < 1e-9, il
        assert err.max() < 1e-6, il


def test_a_textbook_op_amp_is_nearly_ideal_and_a_starved_one_is_not(table, starved):
    f = amplifier_figures(table, 4.0)
    assert abs(f["small_signal_gain"] / 4.0 - 1) < 1e-3 and f["output_resistance"] < 100
    assert f["swing"][0] < -2.0 and f["swing"][1] > 2.0 and abs(f["offset"]) < 1e-4
    assert table.quiescent_power == pytest.approx(5.0 * 4 * 10e-6, rel=0.2)  # Iq by design: 4 x Ibias
    s = amplifier_figures(starved, 4.0)
    # 100x less bias: 100x less loop gain behind the same output stage, and the 0.2 uA sink cannot pull R1 + R2 far
    assert s["output_resistance"] > 10 * f["output_resistance"] and -0.2 < s["swing"][0] < 0


@pytest.mark.parametrize("which", ["table", "starved"])
def test_native_on_the_table_is_ngspice_on_the_transistors(which, table, starved, request):
    """The network's equilibrium, free and both nudged phases: the native solver on the table against ngspice with
    every amplifier a transistor circuit, to 1e-6 V; the native point satisfies the table's KCL."""
    from eqprop.netlists import NgspiceCircuit

    model = table if which == "table" else starved
    net = layered([16, 12, 10, 4], diode="shockley", rails=(-0.05, 0.05), gain=4.0, amplifier=model, seed=3)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (6, 8)), rng.uniform(-0.2, 0.2, (6, 2))
    circuit = NgspiceCircuit(net)
    beta = 0.3 * float(net.weights[-1].sum(0).mean())
    ideal = solve(layered([16, 12, 10, 4], diode="shockley", rails=(-0.05, 0.05), gain=4.0, seed=3), x)
    gap = np.abs(solve(net, x).voltages - ideal.voltages).max()
    assert (gap > 1e-2) if which == "starved" else (gap < 1e-3)  # the starved one clips the amplifiers' outputs
    for b in (0.0, beta, -beta):
        eq = solve(net, x, y, b, tol=1e-12)
        dev = np.abs(circuit.equilibrium(x, y, b).voltages - eq.voltages).max()
        # the textbook design: the table's interpolation is the whole error; the starved one clips along a curve in
        # (V_in, I_load) that bilinear cells round off (4e-4 V here at 8 load points a decade): still 1/50 of
        # what it departs from the ideal amplifier by
        assert dev < (1e-6 if which == "table" else gap / 50), dev
        res = kcl_residual(net, np.hstack([x, -x]), eq.layers, y, b)
        assert max(np.abs(r).max() for r in res) < 1e-15


def test_slopes_are_the_tables_derivatives_on_the_load_line(starved):
    rng = np.random.default_rng(0)
    v_in, load_g, load_i = rng.uniform(-0.08, 0.08, (4, 5)), rng.uniform(1e-7, 1e-5, 5), rng.uniform(-1e-6, 1e-6, (4, 5))
    alpha, rho = starved.slopes(4.0, v_in, load_g, load_i)
    h, k = 1e-7, 1e-13
    fd_a = (starved.output(4.0, v_in + h, load_g, load_i) - starved.output(4.0, v_in - h, load_g, load_i)) / (2 * h)
    fd_r = (starved.output(4.0, v_in, load_g, load_i + k) - starved.output(4.0, v_in, load_g, load_i - k)) / (2 * k)
    np.testing.assert_allclose(alpha, fd_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rho, fd_r, rtol=1e-4, atol=1.0)
    v = starved.output(4.0, v_in, load_g, load_i)  # on the load line: V = f(V_in, load_g V - load_i)
    f = starved._interp(starved._table(4.0), v_in, load_g * v - load_i)[0]
    assert np.abs(v - f).max() < 1e-13


def test_eqprop_and_the_exact_gradient_through_kirchhoff_with_transistor_amplifiers(starved):
    """The exact gradient through Kirchhoff's law on the table against finite differences of the loss, and the
    centered EqProp estimate's cosine with it (the starved amplifiers are far from reciprocal)."""
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits.gradient import resistive_exact_gradient
    from eqprop.learning.eqprop import cosine, eqprop_gradient, run_phases

    net = layered([16, 12, 10, 4], diode="shockley", rails=(-0.05, 0.05), gain=4.0, amplifier=starved, seed=3)
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (4, 8)), rng.uniform(-0.1, 0.1, (4, 2))
    grad, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-14), y)
    loss = lambda: 0.5 * ((solve(net, x, tol=1e-14).prediction - y) ** 2).sum(1).mean()  # noqa: E731
    for p, g in zip(net.weights + net.biases, grad):
        for idx in list(np.ndindex(p.shape))[::41]:
            p0 = p[idx]
            p[idx] = p0 * 1.00001
            up = loss()
            p[idx] = p0 * 0.99999
            down = loss()
            p[idx] = p0
            assert abs((up - down) / (2e-5 * p0) - g[idx]) < 1e-4 * np.abs(g).max()
    native = NativeBackend(net, tol=1e-13)
    est = eqprop_gradient(native, run_phases(native, x, y, 0.05 * native.beta_unit(), "centered"))
    assert 0.5 < cosine(est, grad) < 0.9999


def test_saved_forms_and_bad_models_in_one_line(tmp_path, table):
    from eqprop.circuits.serialize import network_from_data, network_to_data
    from eqprop.learning.trainer import ConfigError, TrainConfig
    from eqprop.netlists.writer import to_netlist

    path = tmp_path / "amp.json"
    table.save(path)
    model = amplifier_model(str(path))
    assert isinstance(model, TabulatedAmplifier) and model.gains == table.gains
    net = layered([8, 6, 4], gain=4.0, amplifier=model, seed=1)
    back = network_from_data(*network_to_data(net))
    x = np.random.default_rng(0).uniform(0, 1, (3, 4))
    np.testing.assert_array_equal(solve(back, x).voltages, solve(net, x).voltages)
    text = to_netlist(net, x[:1]).text
    assert "M6 o d2 vdd vdd pch W=0.00012 L=2e-06" in text and "bidir_amp params: gain=4" in text
    with pytest.raises(NetworkError, match="characterised at gains \\[4.0\\], not 5"):
        solve(layered([8, 6, 4], gain=5.0, amplifier=model, seed=1), x)
    for bad, match in ((tmp_path / "missing.json", "cannot read"), (tmp_path / "list.json", "does not hold"),
                       (tmp_path / "other.json", "unknown amplifier model")):
        if bad.name != "missing.json":
            bad.write_text(json.dumps([1, 2] if "list" in bad.name else {"amplifier": "lm741", "params": {}}))
        with pytest.raises(NetworkError, match=match):
            amplifier_model(str(bad))
    opamp = tmp_path / "opamp.json"  # any saved model loads (a macromodel too), and only a table is a table
    opamp.write_text(json.dumps({"amplifier": "opamp", "params": {"a0": 100.0}}))
    assert amplifier_model(str(opamp)).a0 == 100.0
    with pytest.raises(NetworkError, match="not a characterised"):
        TabulatedAmplifier.load(opamp)
    with pytest.raises(ConfigError, match="ideal amplifiers only|settles"):
        TrainConfig(backend="loihi", amplifier=str(path)).resolve().validate()
    with pytest.raises(ConfigError, match="no such file|cannot read"):
        TrainConfig(amplifier=str(tmp_path / "gone.json")).resolve().validate()


def test_eqprop_transistors_checks_a_run_trained_on_the_table(tmp_path, capsys, table):
    from eqprop.experiments.cli import main

    amp = tmp_path / "amp.json"
    table.save(amp)
    run = tmp_path / "run"
    assert main(["train", "--hidden", "16", "--epochs", "1", "--n-train", "200", "--n-test", "30", "--amplifier",
                 str(amp), "--out", str(run)]) == 0
    out = tmp_path / "tr"
    assert main(["transistors", "--run", str(run), "--samples", "12", "--out", str(out)]) == 0
    result = json.loads((out / "transistors.json").read_text())
    assert result["check"]["same_class"] == 12 and result["check"]["node_deviation_max"] < 1e-5
    assert result["check"]["static_power_median_w"] > 0.9 * result["check"]["quiescent_power_w"]
    assert "| 4 | 3.99" in (out / "transistors.md").read_text()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["transistors", "--run", str(run), "--out", str(tmp_path / "mine")]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert main(["transistors", "--design", "ibias=-1", "--out", str(tmp_path / "x")]) == 2
    assert "ibias must be a positive number" in capsys.readouterr().err


# --- the clamp -----------------------------------------------------------------------------------------------

HAND_CLAMP = """* one clamp diode by hand: a diode-connected p-MOSFET in its own well, biased 0.6 V below the rail at 0 V
.model p PMOS(LEVEL=3 TOX=200E-10 NSUB=1E17 GAMMA=0.6 PHI=0.7 VTO=-0.9 DELTA=0.1 UO=250 ETA=0 THETA=0.1
+ KP=40E-6 VMAX=5E4 KAPPA=1 RSH=0 NFS=1E12 TPG=-1 XJ=500E-9 LD=100E-9 CGDO=200E-12 CGSO=200E-12 CGBO=1E-10
+ CJ=400E-6 PB=1 MJ=0.5 CJSW=300E-12 MJSW=0.5)
VB bias 0 DC -0.6
M1 bias bias node node p W=100u L=2u
VD node 0 DC 0
{options}
.end
"""


@pytest.fixture(scope="module")
def clamp():
    from eqprop.circuits.transistors import PmosClamp
    from eqprop.netlists.characterise import characterise_clamp

    return characterise_clamp(PmosClamp())


def test_the_clamp_table_is_the_hand_written_transistors_current(clamp):
    """ngspice's DC sweep of the diode written by hand: its current at the table's points to 1e-12 relative (plus
    1e-18 A), between them (linear interpolation) within 1%; its co-content is the current's integral."""
    deck = Deck()
    text = HAND_CLAMP.replace("{options}", SpiceOptions().card())
    vd = np.round(np.arange(-0.21, 0.3 + 1e-9, 2.5e-4), 12)
    want = -deck.run(text, "dc VD -0.21 0.3 0.00025", ["vd#branch"])["vd#branch"]  # the current into the diode
    on = np.isclose(np.array(clamp.vd)[None, :], vd[:, None], atol=1e-12).any(1)
    got = clamp.current(vd)
    keep = vd >= -0.2  # the sweep's first points settle from the operating point
    assert np.all(np.abs(got - want)[on & keep] <= 1e-12 * np.abs(want[on & keep]) + 1e-18)
    assert np.all(np.abs(got - want)[keep] <= 1e-2 * np.abs(want[keep]) + 1e-15)
    a, b = -0.1, 0.25
    grid = np.linspace(a, b, 20001)
    integral = np.trapz(clamp.current(grid), grid)
    assert clamp.cocontent(b) - clamp.cocontent(a) == pytest.approx(integral, rel=1e-6)
    assert np.all(np.diff(clamp.current(np.linspace(-1, 1.5, 999))) > 0)  # increasing past the table too


def test_native_on_the_clamp_table_is_ngspice_on_the_transistors(clamp, table):
    """Clamps alone, and clamps with the transistor amplifiers: free and nudged phases to 1e-6 V; the compiled
    per-node solve and the numpy one agree; the node's minimiser is the energy's (KCL residual)."""
    from eqprop.circuits import DiodeClamp
    from eqprop.netlists import NgspiceCircuit

    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 1, (6, 8)), rng.uniform(-0.2, 0.2, (6, 2))
    for amp in (None, table):
        net = layered([16, 12, 10, 4], diode=clamp, rails=(-0.05, 0.05), gain=4.0, amplifier=amp, seed=5)
        circuit = NgspiceCircuit(net)
        beta = 0.3 * float(net.weights[-1].sum(0).mean())
        for b in (0.0, beta, -beta):
            eq = solve(net, x, y, b, tol=1e-12)
            assert np.abs(circuit.equilibrium(x, y, b).voltages - eq.voltages).max() < 1e-6
            res = kcl_residual(net, np.hstack([x, -x]), eq.layers, y, b)
            assert max(np.abs(r).max() for r in res) < 1e-15
    c = DiodeClamp(clamp, -0.05, 0.05)
    S, T = rng.uniform(1e-7, 1e-4, 500), rng.uniform(-1e-4, 1e-4, 500)
    v = clamp.solve_clamp(c, S, T)
    assert np.abs(S * v - T + c.current(v)).max() < 1e-13 * np.abs(T).max()  # rounding
    from eqprop.circuits import kernels

    if kernels.available():
        w = np.zeros((1, 500))
        kernels.table_update(np.zeros((1, 500)), np.zeros((1, 500)), T[None, :], w, 0, S,
                             *clamp._arrays[:3], -0.05, 0.05, 1e-15, 200)
        np.testing.assert_allclose(w[0], v, rtol=0, atol=1e-13)


def test_a_clamp_file_trains_and_bad_ones_fail_in_one_line(tmp_path, clamp, capsys):
    from eqprop.experiments.cli import main

    path = tmp_path / "clamp.json"
    clamp.save(path)
    run = tmp_path / "run"
    assert main(["train", "--diode", str(path), "--hidden", "16", "--epochs", "1", "--n-train", "150", "--n-test",
                 "30", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["diode"] == str(path) and (run / "part-diode.json").read_bytes() == path.read_bytes()
    path.unlink()  # the part's file gone and the run moved: the run keeps its own copy
    moved = tmp_path / "moved"
    run.rename(moved)
    assert main(["evaluate", str(moved)]) == 0
    assert main(["train", "--resume", str(moved), "--epochs", "2", "--no-progress"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):  # a table is built from its file, not by name
        main(["train", "--diode", "table", "--out", str(tmp_path / "bad")])
    assert "invalid choice: 'table'" in capsys.readouterr().err
    for bad, match in ((["--diode", str(tmp_path / "no.json")], "cannot read"),
                       (["--diode", str(path), "--backend", "loihi"], "diodes only")):
        clamp.save(path)
        assert main(["train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "bad")] + bad) == 2
        assert match in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
