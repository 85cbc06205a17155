"""The digital Hopfield reference: exact BCD equilibria, exact gradient, and EqProp against both."""
import numpy as np
import pytest

from eqprop.circuits import InputError
from eqprop.learning import cosine, eqprop_gradient, relative_error, run_phases
from eqprop.backends.hopfield import HopfieldBackend, HopfieldNetwork, hopfield_exact_gradient, rho, settle


def case(seed=0):
    net = HopfieldNetwork.create([12, 9, 7, 4], seed=seed)
    for w in net.weights:
        w *= 1.5  # strong enough that some units sit on the clamps and some in between
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (10, 12))
    y = np.eye(4)[rng.integers(0, 4, 10)]
    return net, x, y


def mean_loss(net, x, y):
    return 0.5 * ((settle(net, x, tol=1e-14).prediction - y) ** 2).sum(1).mean()


def test_equilibrium_is_a_fixed_point_and_an_energy_minimum():
    net, x, y = case()
    for beta in (0.0, 0.3, -0.3):
        eq = settle(net, x, y, beta, tol=1e-14)
        layers = eq.layers
        assert 0 < ((layers[0] > 0) & (layers[0] < 1)).mean() < 1  # both clamped and free units
        e0 = net.energy(x, layers, y, beta)
        rng = np.random.default_rng(1)
        for _ in range(20):  # small moves inside the box never lower the energy
            moved = [rho(s + 1e-4 * rng.standard_normal(s.shape)) for s in layers]
            assert (net.energy(x, moved, y, beta) >= e0 - 1e-12).all()


def test_exact_gradient_matches_finite_differences():
    net, x, y = case(1)
    exact, loss = hopfield_exact_gradient(net, settle(net, x, tol=1e-14), y)
    assert abs(loss - mean_loss(net, x, y)) < 1e-14
    rng = np.random.default_rng(0)
    for p, g in zip(net.weights + net.biases, exact):
        for _ in range(4):
            idx = tuple(rng.integers(0, s) for s in p.shape)
            h = 1e-6
            p[idx] += h
            up = mean_loss(net, x, y)
            p[idx] -= 2 * h
            down = mean_loss(net, x, y)
            p[idx] += h
            assert abs((up - down) / (2 * h) - g[idx]) <= 1e-6 * max(1.0, np.abs(g).max())


def test_centered_eqprop_matches_the_exact_gradient_and_beats_one_sided():
    net, x, y = case(1)
    backend = HopfieldBackend(net, tol=1e-14)
    exact, _ = hopfield_exact_gradient(net, settle(net, x, tol=1e-14), y)
    assert all(np.abs(g).max() > 0 for g in exact)
    centered = eqprop_gradient(backend, run_phases(backend, x, y, 0.01, "centered"))
    one_sided = eqprop_gradient(backend, run_phases(backend, x, y, 0.01, "positive"))
    assert cosine(centered, exact) >= 0.999
    assert relative_error(centered, exact) < relative_error(one_sided, exact)


def test_bad_inputs_are_named():
    net, x, y = case()
    with pytest.raises(InputError, match="shape"):
        settle(net, x[:, :5])
    with pytest.raises(InputError, match="targets"):
        settle(net, x, beta=0.5)
    with pytest.raises(InputError, match="beta"):
        settle(net, x, y, beta=-1.5)
