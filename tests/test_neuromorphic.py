"""The Lava backend against the native solver, and its deadline. Needs lava-nc (installed by make setup)."""
import os
import time

import numpy as np
import pytest

from eqprop.circuits import InputError, layered, solve
from eqprop.circuits.energy import node_conductance
from eqprop.learning import cosine, eqprop_gradient, resistive_exact_gradient, run_phases
from eqprop.backends.lava import LavaBackend
from eqprop.neuromorphic import LavaError, LavaSession


def case(seed=2):
    net = layered([16, 10, 6], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=seed)
    rng = np.random.default_rng(seed)
    return net, rng.uniform(0, 1, (12, 8)), rng.uniform(-0.05, 0.05, (12, 3))


@pytest.fixture(scope="module")
def lava():
    net, x, y = case()
    backend = LavaBackend(net, timeout=180)
    yield backend
    backend.close()


def test_lava_equilibria_match_native_free_and_nudged(lava):
    net, x, y = case()
    for beta in (0.0, 1e-7, -1e-7):  # the float path is the native map, delayed: as tight as its tolerance
        eq = lava.settle(x, y if beta else None, beta)
        ref = solve(net, x, y if beta else None, beta, tol=1e-13)
        assert np.abs(eq.voltages - ref.voltages).max() <= 1e-9
        assert eq.info["messages_per_sample"] > 0
    clamped = np.isclose(np.abs(eq.layers[0]), 0.05).mean()
    assert 0 < clamped < 1  # the diodes act


def test_eqprop_gradient_from_lava_matches_the_exact_gradient(lava):
    net, x, y = case()
    grad = eqprop_gradient(lava, run_phases(lava, x, y, 1e-8, "centered"))
    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    assert cosine(grad, exact) >= 0.999


def test_a_run_past_its_deadline_is_stopped_and_leaves_no_process():
    session = LavaSession(timeout=2)
    pid = session.pid
    with pytest.raises(LavaError, match="did not finish within 2 s"):
        session._call("sleep", 30)
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_parameters_are_checked_before_lava_runs():
    with pytest.raises(InputError, match="alpha"):
        LavaSession(alpha=1.5)
    with pytest.raises(InputError, match="timeout"):
        LavaSession(timeout=0)


@pytest.mark.slow  # make test: the float engine against host EqProp in test_onchip_training.py (centered, two
# batches); this one adds positive nudging and the `eqprop onchip` path
def test_on_chip_learning_engine_update_matches_host_side_eqprop():
    """LearningDense's three-factor rule, summed over the nudged phase, against the host's EqProp update."""
    from eqprop.experiments.onchip import onchip_rows

    net = layered([16, 10, 8, 6], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=3)  # two hidden layers:
    rng = np.random.default_rng(3)  # backward synapses between free layers learn their half too
    x, y = rng.uniform(0, 1, (4, 8)), rng.uniform(-0.05, 0.05, (4, 3))
    beta = 0.01 * float(node_conductance(net)[-1].mean())
    rows = onchip_rows(net, x, y, beta, steps=(1e-7,), timeout=240, log=lambda *_: None)
    assert {r.nudging for r in rows} == {"positive", "centered"}
    for r in rows:
        assert r.cosine_lava_host >= 0.9999, r
        assert r.relative_error_lava_host <= 1e-2, r
        assert r.cosine_exact >= 0.99, r


def test_on_chip_learning_refuses_bad_parameters_before_lava_runs():
    net, x, y = case()
    with LavaSession(timeout=60) as s:
        with pytest.raises(InputError, match="beta and eta"):
            s.plastic_update(net, net.encode_inputs(x), y, 0.0, 1.0)
        with pytest.raises(InputError, match="targets"):
            s.plastic_update(net, net.encode_inputs(x), y[:, :2], 1e-7, 1.0)
        with pytest.raises(InputError, match="nudging"):
            s.plastic_update(net, net.encode_inputs(x), y, 1e-7, 1.0, nudging="random")


def test_lava_settles_differential_hidden_layers_like_native():
    """hidden_pairs: the forward and backward Dense processes carry G+ - G- (scaled by a and 1/a), the neurons
    both halves' conductance; three hidden layers, free and nudged, against native."""
    net = layered([16, 12, 10, 8, 6], diode="ideal", rails=(-0.05, 0.05), gain=[8.0, 8.0, 4.0], seed=3,
                  hidden_pairs=True)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, (8, 8)), rng.uniform(-0.05, 0.05, (8, 3))
    backend = LavaBackend(net, timeout=180)
    try:
        for beta in (0.0, 1e-7):
            eq = backend.settle(x, y if beta else None, beta)
            ref = solve(net, x, y if beta else None, beta, tol=1e-13)
            assert np.abs(eq.voltages - ref.voltages).max() <= 1e-9
        grad = eqprop_gradient(backend, run_phases(backend, x, y, 1e-8, "centered"))
    finally:
        backend.close()
    exact, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-13), y)
    assert cosine(grad, exact) >= 0.999
