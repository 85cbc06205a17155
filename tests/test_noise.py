"""Thermal noise of the equilibrium: the native model (Lyapunov equation of the linearised circuit) against
physics (equipartition), ngspice's own noise analysis, and ngspice transients with trnoise sources."""
import numpy as np
import pytest

from eqprop.circuits import NetworkError, layered, solve
from eqprop.circuits.noise import ThermalNoise


def test_plain_resistor_networks_have_kt_over_c_on_every_node_whatever_their_conductances():
    """Equipartition: without amplifiers P = kT/C I (64.4 uV rms at 1 pF and 300 K), not a function of G."""
    for seed, g_range in ((0, None), (3, (1e-9, 1e-4))):
        net = layered([10, 7, 5, 4], diode=None, g_range=g_range, seed=seed)
        m = ThermalNoise(1e-12)
        P = m.covariance(net)
        np.testing.assert_allclose(np.diag(P), m.kt / 1e-12, rtol=1e-9)
        assert np.abs(P - np.diag(np.diag(P))).max() <= 1e-9 * P.max()
    assert ThermalNoise(1e-12, temperature=300.0).equipartition_std == pytest.approx(64.36e-6, rel=1e-3)


def test_amplifiers_change_the_noise_and_pinned_nodes_have_none():
    net = layered([12, 8, 8, 4], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=1)
    x = np.random.default_rng(1).uniform(0, 1, (2, 6))
    eq = solve(net, x, tol=1e-12)
    m = ThermalNoise(1e-13)
    std = m.node_std(net, eq.layers)
    v = np.hstack(eq.layers)
    on_rail = np.isclose(np.abs(v), 0.05, atol=1e-9)
    assert on_rail.any() and (~on_rail).any()
    assert np.all(std[on_rail] == 0) and np.all(std[~on_rail] > 0)
    assert np.abs(std[~on_rail] / m.equipartition_std - 1).max() > 0.1  # not equipartition: the gain breaks it


def test_a_short_window_is_a_sample_and_a_long_one_averages_the_noise_away():
    net = layered([12, 8, 8, 4], diode=None, gain=2.0, seed=2)
    inst = ThermalNoise(1e-12).node_std(net)
    np.testing.assert_allclose(ThermalNoise(1e-12, window=1e-13).node_std(net), inst, rtol=1e-6)
    tau = ThermalNoise(1e-12).slowest_time_constant(net)
    long = ThermalNoise(1e-12, window=1e4 * tau).node_std(net)
    # every mode's variance falls as 2 tau_mode / T: the rms below sqrt(2 tau_slow / T) of the instantaneous
    assert np.all(long <= inst * np.sqrt(2e-4) * 1.01) and np.all(long > 0)


@pytest.mark.parametrize("kw, says", [({"capacitance": 1.0}, "1e-18 to 1e-09 F"), ({"capacitance": 0}, "F per node"),
                                      ({"capacitance": 1e-12, "window": -1}, "window"),
                                      ({"capacitance": 1e-12, "temperature": 0}, "kelvin")])
def test_bad_noise_settings_are_refused_by_name(kw, says):
    with pytest.raises(NetworkError, match=says):
        ThermalNoise(**kw)


@pytest.fixture(scope="module")
def rows():
    pytest.importorskip("PySpice")
    from eqprop.experiments.noise import noise_rows

    return noise_rows(window_tau=2.0, log=lambda *_: None)


def test_the_model_is_ngspices_noise_analysis_on_two_networks(rows):
    """ngspice's small-signal noise analysis (its own resistor noise models, node capacitances, the amplifiers'
    VCVS and CCCS, the behavioural diode stand-ins) integrated over frequency, per free node; and the same
    density through an average's |sinc|^2 against the model's closed-form window covariance."""
    assert [r["pinned"] > 0 for r in rows] == [False, True]  # the second network has nodes on a rail
    for r in rows:
        assert r["noise_analysis_max_rel_diff"] < 1e-3, r["network"]
        assert r["noise_analysis_window_max_rel_diff"] < 2e-3, r["network"]
        pinned = np.array(r["model_std"]) == 0
        assert np.all(np.array(r["noise_analysis_std"])[pinned] < 1e-3 * r["equipartition_std"])


@pytest.mark.slow  # two ngspice transients of 3000 time constants: about two minutes
def test_the_model_is_the_spread_of_ngspice_transients_with_trnoise_to_10_percent():
    pytest.importorskip("PySpice")
    from eqprop.experiments.noise import noise_rows

    rows = noise_rows(["6-4-2"], spans=3000, seed=3, log=lambda *_: None)
    rows += noise_rows(["6-4-4-2"], gain=4.0, spans=3000, seed=3, log=lambda *_: None)
    for r in rows:
        assert r["transient_max_rel_diff"] < 0.10, r["network"]


def test_the_noise_command_refuses_bad_settings_in_one_line():
    from reliability_cases import run_cli

    for argv, says in ((["--transient", "10"], "at least 50"), (["--capacitance", "1"], "1e-18 to 1e-09 F"),
                       (["--steps-per-tau", "2"], "10 to 1000")):
        r = run_cli("noise", *argv)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)
