"""Exact block coordinate descent on layered networks (Scellier 2024, "fast DRN").

Given its neighbouring layers, a layer's nodes do not interact, so the energy restricted to one layer
is a sum of one-node problems solved in closed form (ideal and piecewise-linear diodes) or by a
per-node Newton step (Shockley). Sweeping the layers in turn is block coordinate descent on a convex
energy: each step can only lower it, and the fixed point is the equilibrium. Every operation acts on
the whole batch at once.
"""
from __future__ import annotations

import numpy as np

from .energy import node_conductance
from .network import LayeredNetwork
from .node_solve import solve_nodes


def bcd(net: LayeredNetwork, sources, y, beta, init, tol, max_sweeps):
    """Returns (layers, sweeps, last_change). ``init`` is a list of per-layer arrays or None."""
    L = net.n_connections
    B = sources.shape[0]
    totals = node_conductance(net)
    vb = net.bias_voltage
    const = [vb * (net.biases[c][0] - net.biases[c][1]) for c in range(L)]
    # Layer 1 is driven by the sources, fixed during the solve: project once (the costliest product).
    const[0] = const[0] + sources @ net.weights[0]
    W = net.weights
    WT = [np.ascontiguousarray(w.T) for w in W]
    a = net.gains
    if init is None:
        layers = [np.zeros((B, n)) for n in net.free_sizes]
    else:
        layers = [np.array(v, dtype=float, copy=True) for v in init]
    nudged = beta != 0.0 and y is not None
    change = np.inf
    sweep = 0
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        for c in range(L):
            t = const[c] if c == 0 else const[c] + a[c] * (layers[c - 1] @ W[c])
            if c + 1 < L:
                back = layers[c + 1] @ WT[c + 1]
                t = t + (back if a[c + 1] == 1.0 else back / a[c + 1])
            old = layers[c]
            if c == L - 1 and nudged:
                new = _solve_output_nudged(net, totals[c], t, old, y, beta)
            else:
                new = solve_nodes(net.neurons[c], totals[c], t, old)
            change = max(change, float(np.abs(new - old).max(initial=0.0)))
            layers[c] = new
        if change <= tol:
            break
    return layers, sweep, change


def _solve_output_nudged(net, S, T, old, y, beta):
    clamp = net.neurons[-1]
    if net.readout == "nodes":
        return solve_nodes(clamp, S + beta, T + beta * y, old)
    h = S.shape[0] // 2
    s1, s2, t1, t2 = S[:h] + beta, S[h:] + beta, T[:, :h], T[:, h:]
    if clamp is None:
        # The pair cost couples V+ and V- of one pair only: solve each 2x2 system exactly.
        r1, r2 = t1 + beta * y, t2 - beta * y
        det = s1 * s2 - beta**2
        return np.hstack([(s2 * r1 + beta * r2) / det, (beta * r1 + s1 * r2) / det])
    # With clamped outputs, the + half and the - half are each separable given the other.
    vn = old[:, h:]
    vp = solve_nodes(clamp, s1, t1 + beta * (vn + y), old[:, :h])
    vn = solve_nodes(clamp, s2, t2 + beta * (vp - y), vn)
    return np.hstack([vp, vn])
