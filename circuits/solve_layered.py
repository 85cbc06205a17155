"""Exact block coordinate descent on layered networks (Scellier 2024, "fast DRN").

Given its neighbouring layers, a layer's nodes do not interact, so the energy restricted to one layer
is a sum of one-node problems solved in closed form (ideal and piecewise-linear diodes) or by a
per-node Newton step (Shockley). Sweeping the layers in turn is block coordinate descent on a convex
energy: each step can only lower it, and the fixed point is the equilibrium. Every operation acts on
the whole batch at once.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .energy import clamp_residual, node_conductance, nudge_current
from .network import LayeredNetwork
from .node_solve import NEWTON_TOL, solve_nodes

MIN_CHUNK = 128  # batch rows per thread below which a thread costs more than it saves
_POOL = None


def source_drive(net: LayeredNetwork, x) -> np.ndarray:
    """Drive of layer 1 from the sources: the costliest product, done once per solve.

    With +x/-x pairs the two conductances of a feature act as one signed weight G+ - G-, so the
    product runs over the features, not over twice as many sources.
    """
    w = net.weights[0]
    if net.input_pairs:
        n = net.n_features
        w = w[:n] - w[n:]
    return x @ w


def bcd(net: LayeredNetwork, x, y, beta, init, tol, max_sweeps):
    """Returns (layers, sweeps, last_change, residual per layer). ``x`` holds the input features.

    The source projection runs once on the whole batch (BLAS uses every core); the sweeps then run
    on batch chunks in threads: they are many small array operations that numpy runs without the
    GIL, and one thread cannot keep both cores busy with them.
    """
    L = net.n_connections
    B = x.shape[0]
    totals = node_conductance(net)
    vb = net.bias_voltage
    const = [vb * (net.biases[c][0] - net.biases[c][1]) for c in range(L)]
    const[0] = const[0] + source_drive(net, x)
    if init is None:
        layers = [np.zeros((B, n)) for n in net.free_sizes]
    else:
        layers = [np.array(v, dtype=float, copy=True) for v in init]
    nudged = beta != 0.0 and y is not None
    # Amplifier gains folded into the matrices: forward a*W, backward W^T / a.
    # Differential amplifiers (hidden_pairs) drive +aV and -aV: their matrices are G+ - G-.
    fwd = [None] + [net.gains[c] * net.signed_weights(c) for c in range(1, L)]
    back = [None] + [np.ascontiguousarray(net.signed_weights(c).T) / net.gains[c] for c in range(1, L)]
    ops = (net, totals, fwd, back, nudged, beta, tol, max_sweeps)

    def run(bounds):
        lo, hi = bounds
        part = [v[lo:hi] for v in layers]
        return _sweeps(ops, [const[0][lo:hi]] + const[1:], part, None if y is None else y[lo:hi])

    chunks = _chunks(B)
    results = [run(chunks[0])] if len(chunks) == 1 else list(_pool().map(run, chunks))
    if len(results) == 1:
        layers = results[0][0]
    else:
        layers = [np.concatenate([r[0][c] for r in results]) for c in range(L)]
    sweeps = max(r[1] for r in results)
    change = max(r[2] for r in results)
    return layers, sweeps, change, _residual(net, totals, const, fwd, back, layers, y, beta)


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="eqprop-bcd")
    return _POOL


def _chunks(B):
    n = max(1, min(os.cpu_count() or 1, B // MIN_CHUNK))
    edges = np.linspace(0, B, n + 1).astype(int)
    return list(zip(edges[:-1], edges[1:]))


def _drive(const, fwd, back, layers, c):
    """T of layer c+1: sources/previous layer forward, next layer backward (gains folded in)."""
    t = const[c] if c == 0 else layers[c - 1] @ fwd[c] + const[c]
    if c + 1 < len(layers):
        t = layers[c + 1] @ back[c + 1] + t
    return t


def _sweeps(ops, const, layers, y):
    net, totals, fwd, back, nudged, beta, tol, max_sweeps = ops
    L = len(layers)
    change, sweep = np.inf, 0
    for sweep in range(1, max_sweeps + 1):
        # Inexact early sweeps: a per-node Newton solve need not be finer than the sweep's progress.
        inner_tol = max(NEWTON_TOL, min(1e-6, 1e-3 * change))
        change = 0.0
        for c in range(L):
            t = _drive(const, fwd, back, layers, c)
            old = layers[c]
            if c == L - 1 and nudged:
                new = _solve_output_nudged(net, totals[c], t, old, y, beta, inner_tol)
            else:
                new = solve_nodes(net.neurons[c], totals[c], t, old, inner_tol)
            np.subtract(new, old, out=old)  # old is ours (a copy or a fresh result): reuse its memory
            change = max(change, float(np.abs(old).max(initial=0.0)))
            layers[c] = new
        if change <= tol:
            break
    return layers, sweep, change


def _residual(net, totals, const, fwd, back, layers, y, beta):
    """KCL residual (amperes) per layer, reusing the source drive computed for the sweeps."""
    L = len(layers)
    res = []
    for c in range(L):
        r = totals[c] * layers[c] - _drive(const, fwd, back, layers, c)
        if c == L - 1 and beta != 0.0 and y is not None:
            r = r - nudge_current(net, layers[c], y, beta)
        res.append(clamp_residual(net.neurons[c], layers[c], r))
    return res


def _solve_output_nudged(net, S, T, old, y, beta, tol):
    clamp = net.neurons[-1]
    if net.readout == "nodes":
        return solve_nodes(clamp, S + beta, T + beta * y, old, tol)
    h = S.shape[0] // 2
    s1, s2, t1, t2 = S[:h] + beta, S[h:] + beta, T[:, :h], T[:, h:]
    if clamp is None:
        # The pair cost couples V+ and V- of one pair only: solve each 2x2 system exactly.
        r1, r2 = t1 + beta * y, t2 - beta * y
        det = s1 * s2 - beta**2
        return np.hstack([(s2 * r1 + beta * r2) / det, (beta * r1 + s1 * r2) / det])
    # With clamped outputs, the + half and the - half are each separable given the other.
    vn = old[:, h:]
    vp = solve_nodes(clamp, s1, t1 + beta * (vn + y), old[:, :h], tol)
    vn = solve_nodes(clamp, s2, t2 + beta * (vp - y), vn, tol)
    return np.hstack([vp, vn])
