"""What the co-simulation's loop and converters allow, derived (and checked against runs in the tests).

Linear dynamics. With every diode off, C dV/dt = J V + sources, where J is the free nodes' conductance
Jacobian: -(total conductance) on the diagonal, a G from an amplified upstream node (gain a) and G / a back
(the bidirectional amplifier's current). J is similar to a symmetric matrix (scale layer c by a^c), so its
eigenvalues are real and negative; the slowest mode has time constant C / min |eig J|. Conducting diodes
only add conductance, so they make every mode faster.

The nudging loop. The DAC holds beta (y - pred) sampled one period earlier. For an output pair whose nodes
have total conductance G (time constant tau = C / G), the differential voltage d obeys, period to period,
d[k+1] = lambda d[k] + const with lambda = e^-x - b (1 - e^-x), x = T / tau, b = 2 beta / G (beta / G for a
single output against ground). So the loop
  - rings (lambda < 0) once T > tau ln((1 + b) / b), and
  - is unstable (lambda < -1) once T > tau ln((b + 1) / (b - 1)), which exists only for b > 1.
For b <= 1 (beta up to half an output node's conductance) no period makes it unstable.

Latency. A converter pair that takes L periods from the sample to the DAC current it decides gives
d[k+1] = e d[k] - b (1 - e) d[k-L] + const (e = e^-x): the characteristic polynomial is
z^(L+1) - e z^L + b (1 - e), and the loop is unstable once a root leaves the unit circle. L = 0 is the case
above; L = 1 (z^2 - e z + b (1 - e), Jury's test) is unstable once b (1 - e) > 1, that is beyond
T = tau ln(b / (b - 1)) (again only for b > 1); for L >= 2 the limit is found numerically (``stability_limit``:
the roots' largest modulus over a log grid of T / tau, then bisection; the first crossing is a complex pair). For
every L, b <= 1 is stable at any period (small gain: on the unit circle |b (1 - e) z^-L / (z - e)| <= b).

Converter error. With an ADC of step q_v (no noise) and a DAC of step q_i, the nudge current of target k is
off by at most beta q_v (n_k + 1) / 2 + q_i / 2 (n_k nodes read, each rounded by half a step, the target's
code by another half, the DAC by half a code). At the settled state the voltage error is then at most
|| (-J_beta)^-1 P ||_inf times that, with J_beta = J - beta R^T R (the nudge's own conductance, beta signed:
the -beta phase is the slower and gets the larger bound) and P the DAC's injection pattern; -J_beta is an M-matrix, so diodes (more diagonal) only shrink its inverse and
the bound holds whatever they conduct.
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits.energy import node_conductance
from eqprop.circuits import small_signal


def jacobian(net) -> np.ndarray:
    """J (n_free x n_free): the free nodes' conductance Jacobian with every diode off (``circuits.small_signal``,
    differential hidden layers included)."""
    return small_signal.jacobian(net)[0]


def nudge_jacobian(net, beta: float = 0.0) -> np.ndarray:
    """J - beta R^T R: the Jacobian of a phase nudged with beta (S, signed), the nudge's conductance included."""
    return small_signal.resistive_jacobian(net, beta), small_signal.readout_rows(net)


def slowest_time_constant(net, capacitance: float, beta: float = 0.0) -> float:
    """C / min |eig|: the slowest mode of a phase nudged with beta (signed; a negative nudge slows it)."""
    eig = np.linalg.eigvals(nudge_jacobian(net, beta)[0]).real
    return float(capacitance / np.abs(eig).min())


def _pair_conductances(net, pos, neg):
    g = np.concatenate(node_conductance(net))
    return np.array([0.5 * (g[p] + g[m]) if m >= 0 else g[p] for p, m in zip(pos, neg)])


def _radius(x: float, b: float, latency: int) -> tuple:
    """(largest root modulus, whether that root is real and positive) of z^(L+1) - e z^L + b (1 - e)."""
    e = np.exp(-x)
    coeffs = np.zeros(latency + 2)
    coeffs[0], coeffs[1] = 1.0, -e
    coeffs[-1] += b * (1.0 - e)
    roots = np.roots(coeffs)
    k = int(np.argmax(np.abs(roots)))
    top = roots[k]
    return float(np.abs(top)), bool(abs(top.imag) <= 1e-12 * max(1.0, abs(top)) and top.real > 0)


def _dominant(xs, b: float, latency: int) -> tuple:
    """At each x of ``xs`` at once (eigenvalues of the stacked companion matrices): the largest root modulus, and
    whether that root is real and positive."""
    e = np.exp(-np.asarray(xs, dtype=float))
    n = latency + 1
    comp = np.zeros((len(e), n, n))
    comp[:, 0, 0] = e
    comp[:, 0, -1] -= b * (1.0 - e)
    comp[:, np.arange(1, n), np.arange(n - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    top = roots[np.arange(len(e)), np.argmax(np.abs(roots), axis=1)]
    r = np.abs(top)
    return r, (np.abs(top.imag) <= 1e-12 * np.maximum(1.0, r)) & (top.real > 0)


def _radii(xs, b: float, latency: int) -> np.ndarray:
    return _dominant(xs, b, latency)[0]


def _first_crossing(test, lo: float = 1e-4, hi: float = 60.0, grid_test=None) -> float:
    """Smallest x in (lo, hi) where ``test(x)`` turns true (a log grid, then bisection); inf where it never does.
    ``grid_test``: the same test over an array of x at once."""
    grid = np.geomspace(lo, hi, 600)
    flags = grid_test(grid) if grid_test is not None else np.array([test(x) for x in grid])
    hits = np.nonzero(flags)[0]
    if not len(hits):
        return np.inf
    i = int(hits[0])
    if i == 0:
        return float(grid[0])
    a, c = float(grid[i - 1]), float(grid[i])
    for _ in range(60):
        m = 0.5 * (a + c)
        a, c = (a, m) if test(m) else (m, c)
    return c


def stability_limit(b: float, latency: int = 0) -> float:
    """T / tau beyond which the nudging loop of loop gain b with L periods of latency is unstable (inf: none).
    Closed forms for L = 0 and 1 (the module docstring), numerical for larger L."""
    if b <= 0:
        return np.inf
    if latency == 0:
        return float(np.log((b + 1) / (b - 1))) if b > 1 else np.inf
    if latency == 1:
        return float(np.log(b / (b - 1))) if b > 1 else np.inf
    return _first_crossing(lambda x: _radius(x, b, latency)[0] >= 1.0,
                           grid_test=lambda xs: _radii(xs, b, latency) >= 1.0)


def ringing_limit(b: float, latency: int = 0) -> float:
    """T / tau beyond which the loop's slowest mode rings (its root is no longer real and positive)."""
    if b <= 0:
        return np.inf
    if latency == 0:
        return float(np.log((1 + b) / b))
    return _first_crossing(lambda x: not _radius(x, b, latency)[1],
                           grid_test=lambda xs: ~_dominant(xs, b, latency)[1])


def loop_limits(net, capacitance: float, beta: float, pos=None, neg=None, latency: int = 0) -> dict:
    """Ringing and stability limits (s) of the nudging loop at beta (S) with ``latency`` periods from sample to
    DAC, from the output pairs' RC."""
    if pos is None:
        first = sum(net.free_sizes[:-1])
        R = net.readout_matrix
        pos = [first + int(np.nonzero(r > 0)[0][0]) for r in R]
        neg = [first + int(np.nonzero(r < 0)[0][0]) if (r < 0).any() else -1 for r in R]
    G = _pair_conductances(net, pos, neg)
    factor = np.array([2.0 if m >= 0 else 1.0 for m in neg])
    b = factor * beta / G
    tau = capacitance / G
    t_ring = tau * np.array([ringing_limit(v, latency) for v in b])
    t_unstable = tau * np.array([stability_limit(v, latency) for v in b])
    k = int(np.argmin(t_unstable)) if np.isfinite(t_unstable).any() else int(np.argmax(b))
    return {"t_ring": float(t_ring.min()), "t_unstable": float(t_unstable.min()), "tau": float(tau[k]),
            "loop_gain": float(b.max()), "latency": int(latency)}


def multiplier(T: float, tau: float, b: float, latency: int = 0) -> float:
    """The per-period factor of the output pair's differential error: lambda = e - b (1 - e) without latency,
    else the characteristic polynomial's root of largest modulus, signed when it is real (see the module)."""
    e = np.exp(-T / tau)
    if latency == 0:
        return float(e - b * (1 - e))
    r, positive = _radius(T / tau, b, latency)
    return r if positive else -r


def quantization_bound(net, beta: float, adc_lsb: float, dac_lsb: float) -> float:
    """Largest settled voltage error (V) the converters can cause in a phase nudged with beta (signed; the
    -beta phase has less conductance at the outputs, so its bound is the larger; no ADC noise)."""
    R = net.readout_matrix
    Jb, Rf = nudge_jacobian(net, beta)
    beta = abs(beta)
    per_target = beta * adc_lsb * (np.abs(R).sum(1) + 1) / 2 + dac_lsb / 2
    inv = np.linalg.inv(-Jb)
    return float((np.abs(inv @ Rf.T) @ per_target).max())
