"""EqProp's local estimate against the exact gradient (implicit differentiation), itself checked
against finite differences of the loss."""
import numpy as np
import pytest

from eqprop.circuits import layered, solve
from eqprop.learning import (Backend, NativeBackend, cosine, eqprop_gradient, relative_error,
                             resistive_exact_gradient, run_phases)


def case(diode, seed=2):
    net = layered([16, 10, 6], seed=seed, gain=3.0, diode=diode, rails=(-0.05, 0.05))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (20, 8))
    y = rng.uniform(-0.05, 0.05, (20, 3))
    return net, x, y


def mean_loss(net, x, y):
    return 0.5 * ((solve(net, x, tol=1e-14).prediction - y) ** 2).sum(1).mean()


@pytest.mark.parametrize("diode", ["ideal", "shockley", None])
def test_exact_gradient_matches_finite_differences(diode):
    net, x, y = case(diode)
    exact, loss = resistive_exact_gradient(net, solve(net, x, tol=1e-14), y)
    assert abs(loss - mean_loss(net, x, y)) < 1e-15
    rng = np.random.default_rng(0)
    for p, g in zip(net.weights + net.biases, exact):
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in p.shape)
            h = 1e-3 * p[idx]
            p[idx] += h
            up = mean_loss(net, x, y)
            p[idx] -= 2 * h
            down = mean_loss(net, x, y)
            p[idx] += h
            fd = (up - down) / (2 * h)
            assert abs(fd - g[idx]) <= 1e-5 * max(1.0, abs(g).max()), (idx, fd, g[idx])


@pytest.mark.parametrize("diode", ["ideal", "shockley"])
def test_centered_eqprop_matches_exact_gradient(diode):
    net, x, y = case(diode)
    backend = NativeBackend(net, tol=1e-13)
    assert isinstance(backend, Backend)
    exact, _ = resistive_exact_gradient(net, backend.settle(x), y)
    centered = eqprop_gradient(backend, run_phases(backend, x, y, 1e-8, "centered"))
    one_sided = eqprop_gradient(backend, run_phases(backend, x, y, 1e-8, "positive"))
    assert cosine(centered, exact) >= 0.9999
    assert relative_error(centered, exact) < 1e-3
    # Centered nudging cancels the O(beta) bias of the one-sided estimate.
    assert relative_error(centered, exact) < 0.1 * relative_error(one_sided, exact)


def test_estimate_degrades_with_large_beta():
    net, x, y = case("ideal")
    backend = NativeBackend(net, tol=1e-13)
    exact, _ = resistive_exact_gradient(net, backend.settle(x), y)
    errs = [relative_error(eqprop_gradient(backend, run_phases(backend, x, y, b, "positive")), exact)
            for b in (1e-9, 1e-8, 1e-7)]
    assert errs[0] < errs[1] < errs[2]


@pytest.mark.parametrize("diode", ["ideal", "shockley"])
def test_eqprop_matches_the_exact_gradient_with_three_hidden_layers(diode):
    """Amplifiers between every pair of layers, three hidden layers (issue 18): the local estimate is still
    the gradient (cosine >= 0.9999 at small beta, centered)."""
    net = layered([16, 12, 10, 8, 6], seed=3, gain=2.0, diode=diode, rails=(-0.05, 0.05))
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, (24, 8)), rng.uniform(-0.05, 0.05, (24, 3))
    free = solve(net, x, tol=1e-14)
    clamped = np.mean([np.mean(np.abs(l) >= 0.05 - 1e-12) for l in free.layers[:-1]])
    assert 0.05 < clamped < 0.95 if diode == "ideal" else True  # some nodes on the rails, some free
    exact, _ = resistive_exact_gradient(net, free, y)
    backend = NativeBackend(net, tol=1e-14)
    beta = 1e-4 * float(np.mean([w.mean() for w in net.weights]))
    est = eqprop_gradient(backend, run_phases(backend, x, y, beta, "centered"))
    assert cosine(est, exact) >= 0.9999


@pytest.mark.parametrize("input_pairs,hidden_pairs", [(True, False), (True, True), (False, False), (False, True)])
def test_statistics_difference_is_the_difference_of_the_statistics(input_pairs, hidden_pairs):
    """EqProp's numerator computed as a difference (sources cancel exactly, every array written by one GEMM)
    equals the two statistics' difference, on a 3-hidden-layer network with amplifiers, single-ended and
    differential, with and without +x/-x pairs, at a beta where the subtraction loses nothing."""
    from eqprop.circuits.energy import conductance_statistics, node_conductance, statistics_difference

    net = layered([16 if input_pairs else 8, 12, 10, 8, 6], seed=3, gain=2.0, rails=(-0.05, 0.05),
                  input_pairs=input_pairs, hidden_pairs=hidden_pairs)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (5, 8)), rng.normal(0, 0.05, (5, 3))
    beta = 0.3 * float(node_conductance(net)[-1].mean())
    hi, lo = solve(net, x, y, beta), solve(net, x)
    src = net.encode_inputs(x)
    # the reference in extended precision: its own subtraction of two large sums loses no digits we compare
    ld = np.longdouble
    stats = [conductance_statistics(net, src.astype(ld), [v.astype(ld) for v in eq.layers]) for eq in (hi, lo)]
    want = [(a - b).astype(float) for a, b in zip(*stats)]
    got = statistics_difference(net, src, hi.layers, lo.layers)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12 * np.abs(w).max())
    # the backend passes the features alone where the inputs are pairs: the same arrays, bit for bit
    via_backend = NativeBackend(net).statistics_difference(hi, lo)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(via_backend, got))
