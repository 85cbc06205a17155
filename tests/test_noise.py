"""Thermal noise of the equilibrium: the native model (Lyapunov equation of the linearised circuit) against
physics (equipartition), ngspice's own noise analysis, and ngspice transients with a noise source on every
conductance."""
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


@pytest.mark.slow  # four ngspice transients of 3000 time constants: about two minutes
def test_the_model_is_the_spread_of_ngspice_transients_to_6_percent_run_after_run():
    """Each node's rms over 3000 slowest time constants is within about 2% of the model (one sigma), so 6% for the
    worst node. The same ngspice runs 6-4-2 three times: with ``trnoise`` sources (ngspice 39's Wallace generator)
    the spread drifted down run after run, to 10-20% below the model by the third; the held Gaussian samples
    (``trrandom``) the netlists use keep it."""
    pytest.importorskip("PySpice")
    from eqprop.experiments.noise import noise_rows

    rows = noise_rows(["6-4-2"], spans=3000, seed=3, log=lambda *_: None)
    rows += noise_rows(["6-4-4-2"], gain=4.0, spans=3000, seed=3, log=lambda *_: None)
    rows += noise_rows(["6-4-2"], spans=3000, seed=3, log=lambda *_: None)
    rows += noise_rows(["6-4-2"], spans=3000, seed=3, log=lambda *_: None)
    for i, r in enumerate(rows):
        assert r["transient_max_rel_diff"] < 0.06, (i, r["network"], r["transient_max_rel_diff"])


def test_the_noise_command_refuses_bad_settings_in_one_line():
    from reliability_cases import run_cli

    for argv, says in ((["--transient", "10"], "at least 50"), (["--capacitance", "1"], "1e-18 to 1e-09 F"),
                       (["--steps-per-tau", "2"], "10 to 1000")):
        r = run_cli("noise", *argv)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)


def test_the_symmetrised_solution_is_the_general_lyapunov_solution():
    """Amplifiers make J non-symmetric; the model solves it in the energy's coordinates K^(1/2) v with one symmetric
    eigen-decomposition. Against scipy's general Lyapunov solver and the general window formula, on a network with
    amplifiers and pinned nodes and on one with differential hidden layers, nudged."""
    from eqprop.circuits.noise import _lyapunov, _windowed
    from eqprop.circuits.small_signal import conductance_noise, jacobian

    for kw in (dict(sizes=[12, 8, 8, 4], gain=4.0, diode="ideal", rails=(-0.05, 0.05)),
               dict(sizes=[12, 8, 8, 6], gain=[3.0, 2.0], hidden_pairs=True, diode=None)):
        net = layered(**kw, seed=1)
        v = solve(net, np.random.default_rng(1).uniform(0, 1, (1, 6)), tol=1e-12).voltages[0]
        for window in (0.0, 5e-7):
            m = ThermalNoise(1e-12, window=window)
            P = m.covariance(net, v, 1e-7)
            J, pinned = jacobian(net, v, 1e-7)
            keep = np.ix_(~pinned, ~pinned)
            A, Q = J[keep] / 1e-12, 2 * m.kt * conductance_noise(net)[keep] / 1e-24
            want = _lyapunov(A, Q)
            want = _windowed(A, want, window) if window else want
            np.testing.assert_allclose(P[keep], want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_training_with_thermal_noise_is_seeded_resumable_and_refuses_bad_settings(tmp_path):
    from eqprop.learning.rundir import load_checkpoint
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import ConfigError, TrainConfig

    quiet = dict(progress=False, log=lambda *_: None)
    cfg = dict(hidden=[16], epochs=2, n_train=96, n_test=32, batch_size=16, noise_capacitance=1e-14)
    train(TrainConfig(**cfg), tmp_path / "a", **quiet)
    assert train(TrainConfig(**cfg), tmp_path / "b", stop_after_steps=9, **quiet) == {"stopped": True}
    train(TrainConfig(**cfg), tmp_path / "b", resume=True, **quiet)
    train(TrainConfig(**{**cfg, "noise_capacitance": None}), tmp_path / "c", **quiet)
    a, b, c = (load_checkpoint(tmp_path / r)[0] for r in "abc")
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(p, q)  # the noise draws come from the run's checkpointed generator
    assert max(float(np.abs(p - q).max()) for p, q in zip(a.weights, c.weights)) > 0  # and they change the run
    for kw, says in (({"noise_capacitance": 1.0}, "1e-18 to 1e-09 farads"), ({"noise_window": 1e-6}, "--noise-capacitance"),
                     ({"noise_capacitance": 1e-13, "noise_window": -1.0}, "noise_window"),
                     ({"backend": "hopfield", "noise_capacitance": 1e-13}, "--noise-capacitance")):
        with pytest.raises((ConfigError, ValueError), match=says):
            cfg_ = TrainConfig(**kw).validate()
            from eqprop.backends import registry

            registry.get(cfg_.backend).load().check_config(cfg_)
