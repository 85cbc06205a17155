"""Differential hidden layers (hidden_pairs): the physics, the exact and EqProp gradients, the config rule, and
that deep networks of small layers train with the defaults (issue 18: "the defaults must train every size")."""
import json

import numpy as np
import pytest

from eqprop.circuits import layered, solve
from eqprop.circuits.energy import energy
from eqprop.circuits.errors import NetworkError
from eqprop.circuits.serialize import network_from_data, network_to_data
from eqprop.learning import NativeBackend, cosine, eqprop_gradient, resistive_exact_gradient, run_phases
from eqprop.learning.trainer import ConfigError, TrainConfig, default_gains


def paired(diode="ideal", sizes=(16, 12, 10, 8, 6), seed=3, gain=(3.0, 3.0, 4.0)):
    return layered(list(sizes), seed=seed, gain=list(gain), diode=diode, rails=(-0.05, 0.05), hidden_pairs=True)


def test_a_differential_connection_has_twice_the_rows_and_signed_drive():
    net = paired()
    assert [w.shape for w in net.weights] == [(16, 12), (24, 10), (20, 8), (16, 6)]
    np.testing.assert_array_equal(net.signed_weights(1), net.weights[1][:12] - net.weights[1][12:])
    np.testing.assert_array_equal(net.row_conductance(1), net.weights[1][:12].sum(1) + net.weights[1][12:].sum(1))
    with pytest.raises(NetworkError, match="must have shape"):
        type(net)(net.sizes, [net.weights[0], net.weights[1][:12], net.weights[2], net.weights[3]], net.biases,
                  net.neurons, net.gains, hidden_pairs=True)


@pytest.mark.parametrize("diode", ["ideal", "shockley"])
def test_the_solution_is_a_stationary_point_of_the_energy(diode):
    """The solver's drives use G+ - G-; the energy sums G (a u~ - v)^2 over both halves with u~ = [u, -u]: two
    independent codings of the circuit. Every free node's dE/dV (central differences) vanishes at the solution."""
    net = paired(diode)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 8))
    eq = solve(net, x, tol=1e-14)
    src = net.encode_inputs(x)
    h = 1e-7
    worst, scale = 0.0, 0.0
    for c, v in enumerate(eq.layers):
        for j in range(v.shape[1]):
            lo, hi = [list(map(np.copy, eq.layers)) for _ in range(2)]
            lo[c][:, j] -= h
            hi[c][:, j] += h
            free = np.abs(v[:, j]) < 0.05 - 1e-6 if net.neurons[c] is not None and diode == "ideal" else slice(None)
            d = ((energy(net, src, hi) - energy(net, src, lo)) / (2 * h))[free]
            worst = max(worst, float(np.abs(d).max(initial=0.0)))
            scale = max(scale, float(net.weights[c].sum(0).max() * 0.05))
    assert worst < 1e-6 * scale


def test_exact_gradient_matches_finite_differences():
    net = paired("shockley", sizes=(16, 6, 5, 4), gain=(3.0, 4.0))
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (5, 8)), rng.uniform(-0.05, 0.05, (5, 2))
    grads, _ = resistive_exact_gradient(net, solve(net, x, tol=1e-14), y)

    def loss(n):
        return 0.5 * ((solve(n, x, tol=1e-14).prediction - y) ** 2).sum(1).mean()

    eps = 1e-12
    for c, (i, j) in [(0, (2, 1)), (1, (0, 0)), (1, (7, 2)), (2, (3, 1)), (2, (6, 3))]:
        up, down = net.copy(), net.copy()
        up.weights[c][i, j] += eps
        down.weights[c][i, j] -= eps
        fd = (loss(up) - loss(down)) / (2 * eps)
        assert abs(grads[c][i, j] - fd) <= 1e-5 * abs(fd)


@pytest.mark.parametrize("diode", ["ideal", "shockley"])
def test_eqprop_matches_the_exact_gradient_with_three_differential_layers(diode):
    net = paired(diode)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, (24, 8)), rng.uniform(-0.05, 0.05, (24, 3))
    free = solve(net, x, tol=1e-14)
    exact, _ = resistive_exact_gradient(net, free, y)
    backend = NativeBackend(net, tol=1e-14)
    beta = 1e-4 * float(np.mean([w.mean() for w in net.weights]))
    est = eqprop_gradient(backend, run_phases(backend, x, y, beta, "centered"))
    assert cosine(est, exact) >= 0.9999


def test_saved_networks_keep_their_layers():
    net = paired()
    meta, arrays = network_to_data(net)
    back = network_from_data(meta, arrays)
    assert back.hidden_pairs
    meta.pop("hidden_pairs")  # saved before differential layers existed
    single = layered([16, 12, 10, 6], seed=0)
    m2, a2 = network_to_data(single)
    m2.pop("hidden_pairs")
    assert not network_from_data(m2, a2).hidden_pairs


def test_backends_without_differential_layers_refuse_them():
    from eqprop.neuromorphic.loihi.map import check_network

    with pytest.raises(NetworkError, match="single-ended"):
        check_network(paired())


def test_the_config_rule():
    assert TrainConfig(hidden=[100]).validate().hidden_pairs is False
    deep = TrainConfig(hidden=[32, 50, 32]).validate()
    assert deep.hidden_pairs is True and deep.gain == [22.6274, 28.2843, 4.0] == default_gains([32, 50, 32], True)
    assert TrainConfig(hidden=[32, 32], backend="loihi").validate().hidden_pairs is False  # auto: where it exists
    assert TrainConfig(hidden=[32, 32], backend="lava").validate().hidden_pairs is True
    assert TrainConfig(hidden=[32, 32], hidden_pairs=False).validate().gain == 4.0
    assert TrainConfig(hidden=[32, 32], gain=2.0).validate().gains() == [2.0, 2.0]
    with pytest.raises(ConfigError, match="single-ended hidden layers only"):
        TrainConfig(hidden=[32, 32], backend="loihi", hidden_pairs=True).validate()
    with pytest.raises(ConfigError, match="one per hidden layer"):
        TrainConfig(hidden=[32, 32], gain=[2.0, 3.0, 4.0]).validate()
    with pytest.raises(ConfigError, match="'gain'"):
        TrainConfig(hidden=[32, 32], gain=[2.0, -1.0]).validate()


def test_a_run_saved_before_differential_layers_resumes_single_ended(tmp_path):
    from eqprop.learning.rundir import load_config

    cfg = TrainConfig(hidden=[16, 16], hidden_pairs=False).validate().to_dict()
    cfg.pop("hidden_pairs")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_config(tmp_path).hidden_pairs is False


@pytest.mark.parametrize("hidden", [[16, 16], [32, 32, 32]])
def test_small_deep_networks_train_with_the_defaults(tmp_path, hidden):
    """Single-ended, these stay at chance (every node of the last hidden layers on a rail within 15 batches);
    with the default differential layers they train."""
    from eqprop.learning.runs import train

    quiet = dict(progress=False, log=lambda *_: None)
    got = train(TrainConfig(hidden=hidden, epochs=5), tmp_path / "pairs", **quiet)["test_accuracy"]
    single = train(TrainConfig(hidden=hidden, epochs=5, hidden_pairs=False), tmp_path / "single", **quiet)
    assert got >= 0.6
    assert single["test_accuracy"] <= 0.2
