"""Compiled per-layer updates of the layered solver: one pass over a layer instead of about ten numpy passes.

A sweep of block coordinate descent does two GEMMs per layer (the drive from the layers below and above,
written into buffers the solver keeps) and then elementwise work: add the terms, solve each node, over-relax,
project on the rails, measure the step. In numpy each of those is a pass over the layer with its own
temporary; here it is one loop (numba, compiled on first use and cached on disk). The arithmetic is the
numpy path's, node by node, so both give the same equilibrium to the solver's tolerance (tested).

``available()`` says whether numba is installed; without it the solver uses its numpy path, which stays
the reference (``EQPROP_KERNELS=numpy`` forces it).
"""
from __future__ import annotations

import math
import os

try:  # numba is a dependency; the numpy path remains for a broken or missing install
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None


def available() -> bool:
    return njit is not None and os.environ.get("EQPROP_KERNELS", "").lower() != "numpy"


def _compile(fn):
    return fn if njit is None else njit(nogil=True, cache=True, fastmath=False)(fn)


@_compile
def box_update(ta, tb, k, v, terms, inv_s, lo, hi, omega):
    """Projected SOR step of a box layer, in place on v; returns omega max |exact step|.

    The layer's exact minimiser is T/S clipped to [lo, hi]: T = k + ta + tb (``terms``: how many of ta, tb
    are present, 0 to 2; k may be a row broadcast, stride 0), 1/S per node in inv_s."""
    B, n = v.shape
    step = 0.0
    relax = omega != 1.0
    for i in range(B):
        for j in range(n):
            x = k[i, j]
            if terms > 0:
                x += ta[i, j]
            if terms > 1:
                x += tb[i, j]
            x = min(max(x * inv_s[j], lo), hi)  # branch-free: a trained layer has most nodes on a rail
            old = v[i, j]
            d = x - old
            step = max(step, abs(d))
            if relax:
                x = min(max(old + omega * d, lo), hi)
            v[i, j] = x
    return step * omega


@_compile
def pairs_update(ta, k, v, S, beta, y, omega):
    """Nudged linear output pairs, in place on v (B, 2h): each pair (V+, V-) solves its 2x2 system exactly
    (the pair cost beta (y - V+ + V-)^2 / 2 couples them: ``solve_layered._solve_output_nudged``), then moves
    omega times that step; returns omega max |exact step|. T = ta + k (k may be a row broadcast)."""
    B, n = v.shape
    h = n // 2
    step = 0.0
    for i in range(B):
        for j in range(h):
            s1 = S[j] + beta
            s2 = S[j + h] + beta
            r1 = ta[i, j] + k[i, j] + beta * y[i, j]
            r2 = ta[i, j + h] + k[i, j + h] - beta * y[i, j]
            det = s1 * s2 - beta * beta
            for jj, x in ((j, (s2 * r1 + beta * r2) / det), (j + h, (beta * r1 + s1 * r2) / det)):
                old = v[i, jj]
                d = x - old
                step = max(step, abs(d))
                v[i, jj] = old + omega * d if omega != 1.0 else x
    return step * omega


def box_layer(lo: float, hi: float):
    """The layer update (``DiodeModel.layer_update``'s signature) of nodes living on the box [lo, hi]."""
    lo, hi = float(lo), float(hi)

    def update(ta, tb, k, v, terms, S, inv_s, omega, tol):
        return box_update(ta, tb, k, v, terms, inv_s, lo, hi, omega)

    return update


@_compile
def _pair(v, vh, vl, i_s, nvt, knee, e_gap, cap, tail):
    """(i_up - i_down, g_up + g_down, e_up, e_dn) of a node's two junctions (``ShockleyDiode.pair_terms``,
    one node), with the junctions' exponentials (capped) for ``shockley_update``'s relaxation test."""
    z = (v - vh) / nvt
    if z > 700.0:
        z = 700.0
    elif z < -700.0:
        z = -700.0
    ea = math.exp(z)
    e_dn = e_gap / ea
    if e_dn > cap:
        e_dn = cap
    e_up = ea if ea < cap else cap
    i_net = i_s * (e_up - e_dn)
    g = (e_up + e_dn) * (i_s / nvt)
    vd = v - vh  # junction to the upper rail: its cubic reverse tail
    if vd < -knee:
        r = 1.0 / vd
        q = tail * r
        arg = q * q * q
        i_net += -i_s * (1.0 + arg) - i_s * (e_up - 1.0)
        g += 3.0 * i_s * arg * r - (i_s / nvt) * e_up
    vd = vl - v  # junction from the lower rail
    if vd < -knee:
        r = 1.0 / vd
        q = tail * r
        arg = q * q * q
        i_net -= -i_s * (1.0 + arg) - i_s * (e_dn - 1.0)
        g += 3.0 * i_s * arg * r - (i_s / nvt) * e_dn
    return i_net, g, e_up, e_dn


@_compile
def shockley_update(ta, tb, k, v, terms, S, vl, vh, i_s, nvt, gmin, exp_cap, vcrit, tol, omega, max_iter):
    """Exact (Newton) minimiser of every node of a Shockley layer, over-relaxed where safe, in place on v;
    returns max |new - old|. Unscaled drive T = ta + tb + k; S[j] is node j's resistive conductance.

    Node by node the same safeguarded Newton as ``ShockleyDiode.solve_clamp`` (bracket between the rails'
    midpoint and T/S and within the forward bound, SPICE's junction limiting, bisection where Newton
    leaves the bracket, a step below the
    quadratic bound accepted) and ``ShockleyDiode.relax``'s curvature test, with the junctions' exponentials
    bounded from the last Newton evaluation instead of evaluated again."""
    B, n = v.shape
    mid = 0.5 * (vl + vh)
    scale = tol * max(1.0, abs(vh), abs(vl))
    quadratic = max(scale, math.sqrt(scale * nvt / 0.75))
    cap = math.exp(exp_cap)
    e_gap = math.exp((vl - vh) / nvt)
    knee = 3.0 * nvt
    tail = knee / math.e
    floor = math.exp(-3.0)
    w1 = omega - 1.0
    step = 0.0
    for i in range(B):
        for j in range(n):
            s = S[j]
            s2 = s + 2.0 * gmin
            t = k[i, j]
            if terms > 0:
                t += ta[i, j]
            if terms > 1:
                t += tb[i, j]
            free = t / s
            lo = min(free, mid)
            hi = max(free, mid)
            if t > s * vh:  # driven past a rail: the junction's forward bound (``ShockleyDiode.solve_clamp``)
                hi = min(hi, vh + nvt * math.log1p((t - s * vh) / i_s))
            elif t < s * vl:
                lo = max(lo, vl - nvt * math.log1p((s * vl - t) / i_s))
            old = v[i, j]
            x = min(max(old, lo), hi)
            t2 = t + gmin * (vh + vl)
            xe, e_up, e_dn = x, 1.0, 1.0
            for _ in range(max_iter):
                i_net, g, e_up, e_dn = _pair(x, vh, vl, i_s, nvt, knee, e_gap, cap, tail)
                xe = x
                f = s2 * x - t2 + i_net
                if f > 0:
                    hi = x
                else:
                    lo = x
                nxt = x - f / (g + s2)
                # SPICE's junction limiting (``ShockleyDiode.limit``) on both junctions
                od, nd = x - vh, nxt - vh
                if nd > vcrit and nd - od > 2.0 * nvt:
                    nd = od + nvt * math.log1p((nd - od) / nvt) if od > 0 else nvt * math.log(nd / nvt)
                    nxt = vh + nd
                od, nd = vl - x, vl - nxt
                if nd > vcrit and nd - od > 2.0 * nvt:
                    nd = od + nvt * math.log1p((nd - od) / nvt) if od > 0 else nvt * math.log(nd / nvt)
                    nxt = vl - nd
                outside = nxt < lo or nxt > hi
                if outside:
                    nxt = 0.5 * (lo + hi)
                moved = abs(nxt - x)
                x = nxt
                if moved <= quadratic and not (outside and moved > scale):
                    break
            if w1 != 0.0:  # over-relax where the curvature bound guarantees descent
                new = x + w1 * (x - old)
                right = max(new, x)
                left = min(new, x)
                # The exponentials at the segment's ends from those of the last Newton evaluation at xe:
                # exp(t) <= 1 + 2t on [0, 1.25], an upper bound, so the test stays safe (it may refuse a
                # step the exact test takes) and late sweeps need no exponential for it.
                du = max((right - xe) / nvt, 0.0)
                dd = max((xe - left) / nvt, 0.0)
                if du <= 1.0:
                    g_up = max(e_up * (1.0 + 2.0 * du), floor)
                else:
                    g_up = max(math.exp(min((right - vh) / nvt, exp_cap)), floor)
                if dd <= 1.0:
                    g_dn = max(e_dn * (1.0 + 2.0 * dd), floor)
                else:
                    g_dn = max(math.exp(min((vl - left) / nvt, exp_cap)), floor)
                if w1 * w1 * (s2 + (i_s / nvt) * (g_up + g_dn)) <= s2:
                    x = new
            a = abs(x - old)
            if a > step:
                step = a
            v[i, j] = x
    return step
