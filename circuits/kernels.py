"""Compiled per-layer updates of the layered solver: one pass over a layer instead of about ten numpy passes.

A sweep of block coordinate descent does two GEMMs per layer (the drive from the layers below and above,
written into buffers the solver keeps) and then elementwise work: add the terms, solve each node, over-relax,
project on the rails, measure the step. In numpy each of those is a pass over the layer with its own
temporary; here it is one loop (numba, compiled on first use and cached on disk). Each node gets the numpy
path's minimiser to its tolerance (the Shockley layer takes vectorised Newton steps first, with an exponential
of its own: ``shockley_update``), so both paths give the same equilibrium to the solver's tolerance (tested).

``available()`` says whether numba is installed; without it the solver uses its numpy path, which stays
the reference (``EQPROP_KERNELS=numpy`` forces it).
"""
from __future__ import annotations

import math

import numpy as np

from .settings import setting

try:  # numba is a dependency; the numpy path remains for a broken or missing install
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None


EMPTY = np.empty((0, 0))  # the compiled calls' placeholder for an array they are not to make or read (0 rows)


def available() -> bool:
    return njit is not None and setting("EQPROP_KERNELS").lower() != "numpy"


def _compile(fn):
    # error_model="numpy": a division by zero gives inf or nan, as in numpy (the solver checks the result for
    # finiteness), instead of Python's check and exception before every division, which stops LLVM from
    # vectorising a loop.
    return fn if njit is None else njit(nogil=True, cache=True, fastmath=False, error_model="numpy")(fn)


# The sweeps' stopping test reads the largest step of a layer: a max reduction, which LLVM does not vectorise over
# floats without fast-math (NaN ordering), and fast-math would let a NaN pass as any number. A non-negative
# double's bit pattern orders as an integer exactly as the number does, and a NaN's (exponent all ones, mantissa
# not zero) above +inf: so the kernels take the max of |step|'s bits as integers, which vectorises (the box
# update of a 64 x 100 layer: 6.6 us -> 2.7 us) and returns NaN whenever a step was NaN (a float max would skip it).
if njit is not None:
    @intrinsic
    def _bits(typingctx, x):
        """The int64 bit pattern of a float64 (no conversion)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(64))
        return types.int64(types.float64), codegen

    @intrinsic
    def _float(typingctx, x):
        """The float64 of an int64 bit pattern."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.DoubleType())
        return types.float64(types.int64), codegen
else:  # pragma: no cover - the kernels run only with numba
    def _bits(x):
        return float(x)

    def _float(x):
        return float(x)


@_compile
def box_update(ta, tb, k, v, terms, inv_s, lo, hi, omega):
    """Projected SOR step of a box layer, in place on v; returns omega max |exact step|.

    The layer's exact minimiser is T/S clipped to [lo, hi]: T = k + ta + tb (``terms``: how many of ta, tb
    are present, 0 to 2; k may be a row broadcast, stride 0), 1/S per node in inv_s."""
    B, n = v.shape
    step = 0  # bits of the largest |step| (see _bits)
    relax = omega != 1.0
    ca = 1.0 if terms > 0 else 0.0  # weights, not branches: a conditional load stops the loop's vectorisation
    cb = 1.0 if terms > 1 else 0.0
    for i in range(B):
        for j in range(n):
            x = k[i, j] + ca * ta[i, j] + cb * tb[i, j]
            x = min(max(x * inv_s[j], lo), hi)  # branch-free: a trained layer has most nodes on a rail
            old = v[i, j]
            d = x - old
            step = max(step, _bits(abs(d)))
            if relax:
                x = min(max(old + omega * d, lo), hi)
            v[i, j] = x
    return _float(step) * omega


@_compile
def grounded_box_update(ta, tb, k, v, terms, inv_s, lo, hi, omega, m):
    """``box_update`` on a layer some of whose nodes are grounded: node j of sample i is held at 0 V where
    m[i, j] is 0 (a reset switch to ground; 1 leaves it free). A grounded node's exact step is to 0, so it stays
    there and does not hold up the stopping test."""
    B, n = v.shape
    step = 0
    relax = omega != 1.0
    ca = 1.0 if terms > 0 else 0.0
    cb = 1.0 if terms > 1 else 0.0
    for i in range(B):
        for j in range(n):
            x = k[i, j] + ca * ta[i, j] + cb * tb[i, j]
            x = min(max(x * inv_s[j], lo), hi) * m[i, j]
            old = v[i, j]
            d = x - old
            step = max(step, _bits(abs(d)))
            if relax:
                x = min(max(old + omega * d, lo), hi) * m[i, j]
            v[i, j] = x
    return _float(step) * omega


@_compile
def pairs_update(ta, k, v, S, beta, y, omega):
    """Nudged linear output pairs, in place on v (B, 2h): each pair (V+, V-) solves its 2x2 system exactly
    (the pair cost beta (y - V+ + V-)^2 / 2 couples them: ``solve_layered._solve_output_nudged``), then moves
    omega times that step; returns omega max |exact step|. T = ta + k (k may be a row broadcast)."""
    B, n = v.shape
    h = n // 2
    step = 0
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
                step = max(step, _bits(abs(d)))
                v[i, jj] = old + omega * d if omega != 1.0 else x
    return _float(step) * omega


def box_layer(lo: float, hi: float):
    """The layer update (``DiodeModel.layer_update``'s signature) of nodes living on the box [lo, hi]."""
    lo, hi = float(lo), float(hi)

    def update(ta, tb, k, v, terms, S, inv_s, omega, tol):
        return box_update(ta, tb, k, v, terms, inv_s, lo, hi, omega)

    update.box = (lo, hi)  # the solver calls box_update itself (a Python call less per layer and sweep)
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


FAST_ITERATIONS = 4  # Newton steps the fast pass takes before leaving a node to the whole algorithm
LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts (fdlibm): k ln 2 is exact in the high part
LN2_LO = 1.90821492927058770002e-10
# 1 / m!: exp's Taylor polynomial to degree 13 on |r| <= ln 2 / 2, within 2e-16 relative
_F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10, _F11, _F12, _F13 = (1.0 / math.factorial(m) for m in range(2, 14))


@_compile
def _exp_rows(work, bits):
    """work[2] = exp(work[2]) for |work[2]| <= 700 without libm: exp(z) = p(r) 2^k, z = k ln 2 + r, with 2^k
    built in its float64 bits. Plain arithmetic, so the loops vectorise (a libm call does not)."""
    n = work.shape[1]
    for j in range(n):
        z = work[2, j]
        k = math.floor(z * LOG2E + 0.5)
        r = (z - k * LN2_HI) - k * LN2_LO
        work[2, j] = (((((((((((((_F13 * r + _F12) * r + _F11) * r + _F10) * r + _F9) * r + _F8) * r + _F7) * r
                              + _F6) * r + _F5) * r + _F4) * r + _F3) * r + _F2) * r + 1.0) * r + 1.0)
        bits[j] = (np.int64(k) + 1023) << 52
    pow2 = bits.view(np.float64)
    for j in range(n):
        work[2, j] *= pow2[j]


@_compile
def _shockley_constants(vl, vh, nvt, tol, exp_cap):
    """The per-layer constants of the Shockley Newton: (rails' midpoint, tolerance scale, quadratic-acceptance
    step, exponential cap, exp((v_low - v_high) / N vt), reverse-tail knee, tail constant, curvature floor)."""
    scale = tol * max(1.0, abs(vh), abs(vl))
    knee = 3.0 * nvt
    return (0.5 * (vl + vh), scale, max(scale, math.sqrt(scale * nvt / 0.75)), math.exp(exp_cap),
            math.exp((vl - vh) / nvt), knee, knee / math.e, math.exp(-3.0))


@_compile
def _pnjlim(od, nd, vcrit, nvt):
    """SPICE's junction limiting (``ShockleyDiode.limit``) of one junction stepping from od to nd volts."""
    if nd > vcrit and nd - od > 2.0 * nvt:
        return od + nvt * math.log1p((nd - od) / nvt) if od > 0 else nvt * math.log(nd / nvt)
    return nd


@_compile
def _shockley_node(t, s, old, vl, vh, i_s, nvt, gmin, exp_cap, vcrit, consts, w1, max_iter):
    """One node: ``ShockleyDiode.solve_clamp``'s safeguarded Newton from ``old`` (bracket between the rails'
    midpoint and T/S and within the junction's forward bound, SPICE's junction limiting, bisection where
    Newton leaves the bracket, a step below the quadratic bound accepted), then ``ShockleyDiode.relax``'s
    curvature test with the junctions' exponentials bounded from the last Newton evaluation. ``consts``:
    ``_shockley_constants``, computed once per layer."""
    mid, scale, quadratic, cap, e_gap, knee, tail, floor = consts
    s2 = s + 2.0 * gmin
    free = t / s
    lo = min(free, mid)
    hi = max(free, mid)
    if t > s * vh:  # driven past a rail: the junction's forward bound (``ShockleyDiode.solve_clamp``)
        hi = min(hi, vh + nvt * math.log1p((t - s * vh) / i_s))
    elif t < s * vl:
        lo = max(lo, vl - nvt * math.log1p((s * vl - t) / i_s))
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
        # SPICE's junction limiting on both junctions
        nxt = vh + _pnjlim(x - vh, nxt - vh, vcrit, nvt)
        nxt = vl - _pnjlim(vl - x, vl - nxt, vcrit, nvt)
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
    return x


@_compile
def _newton_step(work, out, vl, vh, i_s, gmin, mid, quadratic, cap, e_gap, knee, tail, floor, inv_nvt, g_unit, w1,
                 vcrit, nvt):
    """``shockley_update``'s fast pass over one row: a Newton step of every node and the relaxation test, with
    the tails and tests as selects (no branches, no calls, two arrays: the loop vectorises). out[0]: the
    relaxed result where out[1] = 1 (accepted); out[2]: where to evaluate next, the Newton point where the
    step stayed in the bracket and needed no junction limiting, else the node's start (left to the whole
    algorithm)."""
    for j in range(work.shape[1]):
        t, x, ea, s, old = work[0, j], work[1, j], work[2, j], work[3, j], work[4, j]
        s2 = s + 2.0 * gmin
        e_up = min(ea, cap)
        e_dn = min(e_gap / ea, cap)
        i_net = i_s * (e_up - e_dn)
        g = (e_up + e_dn) * g_unit
        vd = min(x - vh, -knee)  # the upper junction's cubic reverse tail, where it applies
        r = 1.0 / vd
        q = tail * r
        arg = q * q * q
        on = 1.0 if x - vh < -knee else 0.0
        i_net += on * (-i_s * (1.0 + arg) - i_s * (e_up - 1.0))
        g += on * (3.0 * i_s * arg * r - g_unit * e_up)
        vd = min(vl - x, -knee)  # the lower one's
        r = 1.0 / vd
        q = tail * r
        arg = q * q * q
        on = 1.0 if vl - x < -knee else 0.0
        i_net -= on * (-i_s * (1.0 + arg) - i_s * (e_dn - 1.0))
        g += on * (3.0 * i_s * arg * r - g_unit * e_dn)
        f = s2 * x - (t + gmin * (vh + vl)) + i_net
        free = t / s
        lo = min(free, mid)
        hi = max(free, mid)
        hi = x if f > 0 else hi
        lo = lo if f > 0 else x
        nxt = x - f / (g + s2)
        ok = (nxt >= lo) & (nxt <= hi) & (abs(nxt - x) <= quadratic)
        new = nxt + w1 * (nxt - old)
        du = max((max(new, nxt) - x) * inv_nvt, 0.0)
        dd = max((x - min(new, nxt)) * inv_nvt, 0.0)
        g_up = max(e_up * (1.0 + 2.0 * du), floor)
        g_dn = max(e_dn * (1.0 + 2.0 * dd), floor)
        safe = (du <= 1.0) & (dd <= 1.0) & (w1 * w1 * (s2 + g_unit * (g_up + g_dn)) <= s2)
        out[0, j] = new if safe else nxt
        out[1, j] = 1.0 if ok else 0.0
        plain = (nxt >= lo) & (nxt <= hi) & ~((nxt - vh > vcrit) & (nxt - x > 2.0 * nvt)) \
            & ~((vl - nxt > vcrit) & (x - nxt > 2.0 * nvt))
        out[2, j] = nxt if plain else x


@_compile
def shockley_update(ta, tb, k, v, terms, S, vl, vh, i_s, nvt, gmin, exp_cap, vcrit, tol, omega, max_iter):
    """Exact (Newton) minimiser of every node of a Shockley layer, over-relaxed where safe, in place on v;
    returns max |new - old|. Unscaled drive T = ta + tb + k; S[j] is node j's resistive conductance.

    Row by row, a fast pass first takes up to FAST_ITERATIONS Newton steps of the whole row at once
    (vectorised: the exponential from ``_exp_rows``, the reverse tails and the tests as selects, few arrays)
    and keeps each node once its step stays in the bracket and moves less than the quadratic-convergence
    bound: the node is then within tolerance of its root, as ``solve_clamp`` would accept it. A node whose
    step leaves the bracket or would need junction limiting, or that has not converged by then, takes the
    whole algorithm (``_shockley_node``) from its start. While the fast pass keeps fewer than half of a
    row's nodes it is skipped, and retried every 8 rows."""
    B, n = v.shape
    consts = _shockley_constants(vl, vh, nvt, tol, exp_cap)
    mid, scale, quadratic, cap, e_gap, knee, tail, floor = consts
    inv_nvt = 1.0 / nvt
    g_unit = i_s / nvt
    w1 = omega - 1.0
    # Per row: work[0..4] = T, start, exp((start - v_high) / N vt), S, v_old; out[0..1] = result, accepted.
    # Few arrays, so LLVM can check them for overlap and vectorise the Newton step's loop.
    work = np.empty((5, n))
    out = np.empty((3, n))
    bits = np.empty(n, np.int64)
    work[3, :] = S
    step = 0  # bits of the largest |step| (see _bits)
    ca = 1.0 if terms > 0 else 0.0  # weights, not branches: cheaper than a test per node
    cb = 1.0 if terms > 1 else 0.0
    fast = True  # the fast pass pays where most nodes are near their root (late sweeps, warm starts)
    for i in range(B):
        for j in range(n):
            work[0, j] = k[i, j] + ca * ta[i, j] + cb * tb[i, j]
            work[4, j] = v[i, j]
            out[1, j] = 0.0
        if fast or i % 8 == 0:  # off while it fails on most nodes; retried every 8 rows
            for j in range(n):  # the start
                free = work[0, j] / work[3, j]
                work[1, j] = min(max(work[4, j], min(free, mid)), max(free, mid))
            for _ in range(FAST_ITERATIONS):  # Newton steps of the whole row, vectorised
                for j in range(n):
                    work[2, j] = min(max((work[1, j] - vh) * inv_nvt, -700.0), 700.0)
                _exp_rows(work, bits)
                _newton_step(work, out, vl, vh, i_s, gmin, mid, quadratic, cap, e_gap, knee, tail, floor, inv_nvt,
                             g_unit, w1, vcrit, nvt)
                accepted = out[1].sum()
                if accepted == n:
                    break
                for j in range(n):
                    work[1, j] = out[2, j]
            fast = accepted >= 0.5 * n
        for j in range(n):  # the rest take the whole algorithm
            old = work[4, j]
            if out[1, j] != 0.0:
                x = out[0, j]
            else:
                x = _shockley_node(work[0, j], work[3, j], old, vl, vh, i_s, nvt, gmin, exp_cap, vcrit, consts, w1,
                                   max_iter)
            step = max(step, _bits(abs(x - old)))
            v[i, j] = x
    return _float(step)


@_compile
def _piecewise(grid, cur, slope, x):
    """(current, slope) of a piecewise-linear table at x: the segment k with grid[k] <= x < grid[k + 1], the end
    segments extended past the grid (``TabulatedDiode.current``)."""
    n = grid.shape[0]
    if x < grid[1]:
        k = 0
    elif x >= grid[n - 2]:
        k = n - 2
    else:
        lo, hi = 1, n - 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if grid[mid] <= x:
                lo = mid
            else:
                hi = mid
        k = lo
    return cur[k] + slope[k] * (x - grid[k]), slope[k]


@_compile
def _table_f(x, t, s, vl, vh, grid, cur, slope):
    iu, gu = _piecewise(grid, cur, slope, x - vh)
    idn, gd = _piecewise(grid, cur, slope, vl - x)
    return s * x - t + iu - idn, s + gu + gd


@_compile
def _table_node(t, s, old, vl, vh, grid, cur, slope, tol, max_iter):
    """``TabulatedDiode.solve_clamp`` for one node: safeguarded Newton from ``old`` in a bracket of the root."""
    free = t / s
    lo = min(free, vl) - 1.0
    hi = max(free, vh) + 1.0
    for _ in range(60):  # widen until the bracket holds the root (currents extrapolated past the table)
        f_lo = _table_f(lo, t, s, vl, vh, grid, cur, slope)[0]
        f_hi = _table_f(hi, t, s, vl, vh, grid, cur, slope)[0]
        if f_lo <= 0.0 and f_hi >= 0.0:
            break
        width = hi - lo
        if f_lo > 0.0:
            lo -= 2.0 * width
        if f_hi < 0.0:
            hi += 2.0 * width
    x = min(max(old, lo), hi)
    for _ in range(max_iter):
        f, d = _table_f(x, t, s, vl, vh, grid, cur, slope)
        if f < 0.0:
            lo = x
        elif f > 0.0:
            hi = x
        else:
            return x
        new = x - f / d
        if new <= lo or new >= hi:
            new = 0.5 * (lo + hi)
        if abs(new - x) <= tol or hi - lo <= tol:
            return new
        x = new
    return x


@_compile
def table_update(ta, tb, k, v, terms, S, grid, cur, slope, vl, vh, tol, max_iter):
    """Exact minimiser of every node of a layer of characterised clamps (``TabulatedDiode``), in place on v;
    returns max |new - old|."""
    B, n = v.shape
    step = 0  # bits of the largest |step| (see _bits)
    ca = 1.0 if terms > 0 else 0.0
    cb = 1.0 if terms > 1 else 0.0
    for i in range(B):
        for j in range(n):
            t = k[i, j] + ca * ta[i, j] + cb * tb[i, j]
            old = v[i, j]
            x = _table_node(t, S[j], old, vl, vh, grid, cur, slope, tol, max_iter)
            step = max(step, _bits(abs(x - old)))
            v[i, j] = x
    return _float(step)


def _sums_loop(w, cols, rows):  # pragma: no cover - compiled
    n, m = w.shape
    bad = 0
    for i in range(n):
        r = 0.0
        for j in range(m):
            x = w[i, j]
            bad += not (x >= 0.0)  # NaN fails this; no branch, so the loop vectorises
            cols[j] += x
            r += x
        rows[i] = r
    return bad == 0


# Reassociation lets LLVM vectorise the row sums (their rounding differs from numpy's pairwise sums by
# ulps); no other fast-math flag: NaN must stay NaN for the check.
_sums_kernel = _sums_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy",
                                                    fastmath={"reassoc"})(_sums_loop)


def _finite_loop(a):  # pragma: no cover - compiled
    n, m = a.shape
    bad = 0
    for i in range(n):
        for j in range(m):
            x = a[i, j]
            bad += not (x - x == 0.0)  # NaN and +-inf give NaN; no branch, so the loop vectorises
    return bad == 0


_finite_kernel = _finite_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy")(_finite_loop)


def _serves(a: np.ndarray) -> bool:
    """Whether the compiled passes over a whole matrix take ``a``: numba present and a C-contiguous 2-d float64
    array (else the numpy path serves)."""
    return available() and _layout(a)


def _layout(a: np.ndarray) -> bool:
    return a.dtype == np.float64 and a.flags.c_contiguous and a.ndim == 2


def all_finite(a: np.ndarray) -> bool:
    """No NaN or inf in a: one compiled pass that raises no floating-point warning (numpy's sum would warn on
    inf - inf and needs ``np.errstate``, about 6 us a call), or numpy's test where the kernel does not serve."""
    if not _serves(a):
        return bool(np.isfinite(a).all())
    return bool(_finite_kernel(a))


def _same_loop(a, b):  # pragma: no cover - compiled
    n = a.size
    blocks = n // 256
    for block in range(blocks):  # branch-free within a block of fixed length (it vectorises), a test after each
        start = block * 256
        diff = 0
        for i in range(256):
            diff |= a[start + i] ^ b[start + i]
        if diff != 0:
            return False
    diff = 0
    for i in range(blocks * 256, n):
        diff |= a[i] ^ b[i]
    return diff == 0


_same_kernel = _same_loop if njit is None else njit(nogil=True, cache=True)(_same_loop)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """a and b hold the same numbers bit for bit (same shape and dtype): compared as 64-bit integers, stopping
    at the first difference, so a new batch costs next to nothing and a repeated one a single pass without the
    temporary that ``np.array_equal`` builds (at 512 x 784 that compare took a quarter of the input product's
    time). Bits, not values: -0.0 and 0.0 differ, a NaN equals itself (callers only reuse work on a match)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)  # copies only if strided
    if not available() or a.dtype != np.float64:
        return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
    return bool(_same_kernel(a.view(np.int64), b.view(np.int64)))


def conductance_sums(w: np.ndarray, served: bool = False):
    """(all entries >= 0 and not NaN, column sums, row sums) of a conductance matrix in one pass (numpy's
    min, sum(0) and sum(1) are three), or None where the numpy path serves (no numba, not C-contiguous
    float64). The column sums add the rows in order, as numpy's sum(0) does. ``served``: the caller has checked
    that the kernels take w (``serves``)."""
    if not (served or _serves(w)):
        return None
    cols, rows = np.zeros(w.shape[1]), np.empty(w.shape[0])
    return _sums_kernel(w, cols, rows), cols, rows


def _totals_loop(cols, biases, rows, split, out):  # pragma: no cover - compiled
    # The node totals of a layered network in one pass, and the check of its biases: writes into ``out`` the free
    # layers' totals one after another, each node's column sum ``cols[c]`` + its two bias conductances (added first,
    # as numpy's ``biases[c].sum(0)``) + the row sums ``rows[c + 1]`` of the connection it drives (a differential
    # pair's two rows, ``split[c + 1]`` apart, summed first; 0: single rows); returns whether every bias conductance
    # is >= 0 (not NaN) and every total positive and finite. The same sums, in the same order, as
    # ``LayeredNetwork.node_totals``.
    bad = 0
    a = 0
    L = len(cols)
    for c in range(L):
        col, b = cols[c], biases[c]
        n = col.shape[0]
        r = rows[c + 1] if c + 1 < L else col  # (the last layer adds no rows)
        half = split[c + 1] if c + 1 < L else 0
        for j in range(n):
            b0, b1 = b[0, j], b[1, j]
            bad += not (b0 >= 0.0) or not (b1 >= 0.0)  # NaN fails this
            t = col[j] + (b0 + b1)  # numpy's biases.sum(0): the two rows added in order
            if c + 1 < L:
                t += (r[j] + r[half + j]) if half else r[j]  # a differential pair's two rows, summed first
            bad += not (t > 0.0) or not (t < np.inf)  # a floating node, or a sum past the float range
            out[a + j] = t
        a += n
    return bad == 0


_totals_kernel = _totals_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy")(_totals_loop)


def _blocks_loop(whole, parts, into_parts):  # pragma: no cover - compiled
    # whole (B, sum of widths) and its column blocks parts[c] (B, width c): copies one way or the other
    bad = 0
    a = 0
    for c in range(len(parts)):
        v = parts[c]
        B, n = v.shape
        for i in range(B):
            for j in range(n):
                x = whole[i, a + j] if into_parts else v[i, j]
                bad += not (x - x == 0.0)  # NaN and +-inf give NaN; no branch, so the loop vectorises
                if into_parts:
                    v[i, j] = x
                else:
                    whole[i, a + j] = x
        a += n
    return bad == 0


_blocks_kernel = _blocks_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy")(_blocks_loop)


def _add_row_loop(out, d, row):  # pragma: no cover - compiled
    B, n = d.shape
    bad = 0
    for i in range(B):
        for j in range(n):
            x = d[i, j] + row[j]
            bad += not (x - x == 0.0)
            out[i, j] = x
    return bad == 0


_add_row_kernel = _add_row_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy")(_add_row_loop)


def add_row(out: np.ndarray, d: np.ndarray, row: np.ndarray) -> bool:
    """out = d + row (the row added to each of d's rows, numpy's ``d + row`` bit for bit; ``out`` may be d itself)
    and whether every sum is finite: one compiled pass where numpy's add and ``all_finite`` are two."""
    if serves(out, d) and row.ndim == 1 and row.dtype == np.float64 and row.flags.c_contiguous:
        return bool(_add_row_kernel(out, d, row))
    np.add(d, row, out=out)
    return all_finite(out)


def _zero_loop(parts):  # pragma: no cover - compiled
    # every entry of the arrays ``parts`` set to 0.0: a chunk's rows of a cold start (``chunk_sweeps``)
    for c in range(len(parts)):
        v = parts[c]
        B, n = v.shape
        for i in range(B):
            for j in range(n):
                v[i, j] = 0.0


_zero_kernel = _zero_loop if njit is None else njit(nogil=True, cache=True)(_zero_loop)


def split_finite(a: np.ndarray, sizes) -> tuple:
    """(a's column blocks of the given widths as C-contiguous copies, whether every entry is finite): the layers of
    a warm start, copied and checked in one compiled pass; (None, None) where the kernels do not take ``a`` (the
    caller then checks and copies)."""
    if not (len(sizes) and serves(a) and a.shape[1] == sum(sizes)):
        return None, None
    parts = [np.empty((a.shape[0], n)) for n in sizes]
    return parts, bool(_blocks_kernel(a, tuple(parts), True))


def join_finite(layers) -> tuple:
    """(the layers side by side as one (batch, nodes) array, whether every voltage is finite): numpy's
    ``concatenate(layers, axis=1)`` and ``all_finite`` of it in one compiled pass where the kernels take every
    layer, else those two."""
    if len(layers) > 1 and serves(*layers) and all(v.shape[0] == layers[0].shape[0] for v in layers):
        out = np.empty((layers[0].shape[0], sum(v.shape[1] for v in layers)))
        return out, bool(_blocks_kernel(out, tuple(layers), False))
    out = np.concatenate(layers, axis=1)
    return out, all_finite(out)


def serves(*arrays) -> bool:
    """Whether the compiled passes take every array (``_serves``; the environment read once)."""
    return available() and all(_layout(a) for a in arrays)


def _pair_loop(w, n, diff):  # pragma: no cover - compiled
    # rows as 1-d slices and an accumulator of its own: LLVM then vectorises the inner loops (indexing the 2-d
    # arrays in place and adding into the caller's array left them scalar, 3x slower)
    bad = 0
    m = w.shape[1]
    acc = np.zeros(m)
    for i in range(n):  # the + rows: the column sums add the rows in order, as numpy's sum(0) does
        r = w[i]
        for j in range(m):
            x = r[j]
            bad += not (x >= 0.0)  # NaN fails this; no branch, so the loop vectorises
            acc[j] += x
    for i in range(n):  # the - rows, in order after them, and each feature's signed weight
        a, b, d = w[i], w[n + i], diff[i]
        for j in range(m):
            x = b[j]
            bad += not (x >= 0.0)
            acc[j] += x
            d[j] = a[j] - x
    return bad, acc


_pair_kernel = _pair_loop if njit is None else njit(nogil=True, cache=True, error_model="numpy")(_pair_loop)


def pair_sums(w: np.ndarray, diff: np.ndarray, served: bool = False):
    """For an input connection of +x/-x pairs (rows 0..n-1 the + sources, n..2n-1 the - ones): (all entries >= 0 and
    not NaN, column sums), with ``diff`` (n, columns) set to the signed weights G+ - G-; or None where the numpy
    path serves. The column sums are ``conductance_sums``' bit for bit (the rows added in order); the signed
    weights are numpy's ``w[:n] - w[n:]``. Reads the + rows twice and the - rows once, against twice each for the
    sums and then the difference (``benchmarks/check_pass.py``). ``served``: as ``conductance_sums``'."""
    if not (served or (_serves(w) and _serves(diff))) or w.shape[0] % 2 or diff.shape != (w.shape[0] // 2, w.shape[1]):
        return None
    bad, cols = _pair_kernel(w, w.shape[0] // 2, diff)
    return bad == 0, cols


def _layered_loop(ws, bs, diff, signed, split, out):  # pragma: no cover - compiled
    cols, rows = [], []
    for c in range(len(ws)):
        w = ws[c]
        if c == 0 and signed:
            bad, acc = _pair_kernel(w, w.shape[0] // 2, diff)
            if bad:
                return False
            cols.append(acc)
            rows.append(acc)  # (the sources' rows feed no node's total: unread)
        else:
            col, row = np.zeros(w.shape[1]), np.empty(w.shape[0])
            if not _sums_kernel(w, col, row):
                return False
            cols.append(col)
            rows.append(row)
    return _totals_kernel(cols, bs, rows, split, out)


_layered_kernel = _layered_loop if njit is None else njit(nogil=True, cache=True)(_layered_loop)


def _plan_check_loop(ws, bs, diff, signed, split, out, rows, cols, kept):  # pragma: no cover - compiled
    """``layered_sums`` for a kept plan of a bare solve (``solver._planned``), with the shapes it was made for checked
    first (``rows``, ``cols`` per connection; a mismatch returns 0 before any array is indexed), then the node totals,
    biases and weights between free layers compared bit for bit with ``kept``, the numbers the plan's set-up was made
    from, in that order (``solve_layered._keep_plan``): 2 where all are the same, 1 where the check passed but a
    number differs, 0 where the check failed (the general path then names the fault). The caller has checked that
    the kernels serve and that there are as many arrays as ``rows``."""
    L = len(ws)
    a = 0
    for c in range(L):  # the shapes the plan was made for: a mismatch would index past an array
        w, b = ws[c], bs[c]
        if w.shape[0] != rows[c] or w.shape[1] != cols[c] or b.shape[0] != 2 or b.shape[1] != cols[c]:
            return 0
        a += cols[c]
    if out.shape[0] != a or (signed and (diff.shape[0] != rows[0] // 2 or diff.shape[1] != cols[0])):
        return 0
    if not _layered_kernel(ws, bs, diff, signed, split, out):
        return 0
    need = 3 * a
    for c in range(1, L):
        need += rows[c] * cols[c]
    if kept.shape[0] != need:
        return 1
    diff_bits = 0  # the numbers the plan's set-up was made from, bit for bit: totals, biases, weights between layers
    k = 0
    for i in range(a):
        diff_bits |= _bits(out[i]) ^ _bits(kept[k + i])
    k += a
    for c in range(L):
        b = bs[c]
        for r in range(2):
            for j in range(cols[c]):
                diff_bits |= _bits(b[r, j]) ^ _bits(kept[k + j])
            k += cols[c]
    for c in range(1, L):
        w = ws[c]
        for r in range(rows[c]):
            for j in range(cols[c]):
                diff_bits |= _bits(w[r, j]) ^ _bits(kept[k + j])
            k += cols[c]
    return 2 if diff_bits == 0 else 1


plan_check = _plan_check_loop if njit is None else njit(nogil=True, cache=True)(_plan_check_loop)


def layered_sums(ws: tuple, bs: tuple, diff: np.ndarray, signed: bool, split: tuple, out: np.ndarray) -> bool:
    """A layered network's whole check of its conductances in one compiled call (``LayeredNetwork._checked``): each
    connection's pass (``pair_sums`` into ``diff`` for the input pairs where ``signed``, else ``conductance_sums``),
    then ``node_totals`` into ``out``; False as soon as one fails. The same passes and sums in the same order as those
    calls one by one. The caller has checked the shapes and that the kernels serve every array."""
    return bool(_layered_kernel(ws, bs, diff, signed, split, out))


@_compile
def _batch_sums(vh, vl, sq, s):
    # sq = sum over the batch of (vh - vl)(vh + vl), s = sum of (vh - vl): numpy's ``(dv * (vh + vl)).sum(0)`` and
    # ``dv.sum(0)`` bit for bit, the rows added in order to 0.0
    B, n = vh.shape
    for j in range(n):
        sq[j] = 0.0
        s[j] = 0.0
    for b in range(B):
        for j in range(n):
            d = vh[b, j] - vl[b, j]
            sq[j] += d * (vh[b, j] + vl[b, j])
            s[j] += d


@_compile
def _drop_sums(vh, vl, k, tv, sq, bias):
    # ``_batch_sums`` into sq, and the bias rows k (sq -+ tv sum (vh - vl))
    n = vh.shape[1]
    s = np.empty(n)
    _batch_sums(vh, vl, sq, s)
    for j in range(n):
        t = tv * s[j]
        bias[0, j] = k * (sq[j] - t)
        bias[1, j] = k * (sq[j] + t)


@_compile
def input_statistics(x, vh, vl, scale, k, tv, x1, d, row, bias):
    """The operands of ``energy.statistics_difference``'s input connection in one compiled pass, numpy's bit for
    bit: ``x1`` (B + 1, n) the sources' first n columns over a row of ones; ``d`` (B + 1, nodes) the drops'
    difference times ``scale`` (-2 a k) over k sq, sq the batch sum of vh^2 - vl^2 as (vh - vl)(vh + vl); ``row``
    2k sq (the - rows of +x/-x pairs: ``row`` minus the + rows); ``bias`` (2, nodes) the bias conductances'
    statistics, k (sq -+ tv sum (vh - vl)), tv = 2 x the bias voltage. Its product x1^T d is left to BLAS."""
    B, n = x1.shape[0] - 1, x1.shape[1]
    m = vh.shape[1]
    sq = d[B]
    _drop_sums(vh, vl, k, tv, sq, bias)
    two_k = 2.0 * k
    for j in range(m):
        row[j] = two_k * sq[j]
        sq[j] = k * sq[j]
    for b in range(B):
        for j in range(m):
            d[b, j] = (vh[b, j] - vl[b, j]) * scale
        for i in range(n):
            x1[b, i] = x[b, i]
    for i in range(n):
        x1[B, i] = 1.0


@_compile
def layer_statistics(uh, ul, vh, vl, scale, k, kaa, tv, left, right, bias):
    """The operands of ``energy.statistics_difference``'s connection c >= 1 (driving voltages ``uh``, ``ul``: layer
    c - 1 at the two phases, ideal amplifiers) in one compiled pass, numpy's bit for bit: ``left`` (2B + 2, nu)
    [uh; uh - ul; su; 1], su the batch sum of uh^2 - ul^2, and ``right`` (2B + 2, nv) [scale dv; scale vl; kaa;
    k sq], so that left^T right = uh^T (scale dv) + (uh - ul)^T (scale vl) + kaa su + k sq; ``bias`` as in
    ``input_statistics``."""
    B, nu = uh.shape
    nv = vh.shape[1]
    sq = right[2 * B + 1]
    _drop_sums(vh, vl, k, tv, sq, bias)
    _batch_sums(uh, ul, left[2 * B], np.empty(nu))  # (the plain sum unused)
    for j in range(nv):
        sq[j] = k * sq[j]
        right[2 * B, j] = kaa
    for b in range(B):
        for j in range(nu):
            left[b, j] = uh[b, j]
            left[B + b, j] = uh[b, j] - ul[b, j]
        for j in range(nv):
            right[b, j] = (vh[b, j] - vl[b, j]) * scale
            right[B + b, j] = vl[b, j] * scale
    for j in range(nu):
        left[2 * B + 1, j] = 1.0


@_compile
def _saved(change, tol, rate, new_rate):
    """Sweeps from ``change`` down to ``tol`` at the contraction ``rate`` minus those at ``new_rate``."""
    if change <= tol:
        return 0.0
    decades = math.log(tol / change)
    return decades / math.log(rate) - decades / math.log(max(new_rate, 1e-3))


@_compile
def sor_rule(change, last, rate, omega, estimate, tol, omega_max):
    """The over-relaxation rule of the layered sweeps, after a sweep whose largest step was ``change`` (the one
    before: ``last``): returns (omega, rate, estimate, switched). ``rate`` is the last measured contraction
    (-1: none yet). Once the contraction settles at r, Young's theory for a consistently ordered matrix gives
    Jacobi's mu^2 = (r + omega - 1)^2 / (r omega^2) (at omega 1: mu^2 = r, the plain sweeps' rate) and the best
    factor 2 / (1 + sqrt(1 - mu^2)). While r > omega - 1 omega is below the optimum, which the first, early
    estimate usually is: it is refined once more. Switching costs about a sweep (the fast modes the plain sweeps
    had removed come back at the rate omega - 1): it is made only where it saves two or more of the sweeps
    still to go. ``switched``: omega changed (the caller skips recording this sweep's rate)."""
    if not (estimate and 0.0 < change < last < np.inf):
        return omega, rate, estimate, False
    r = change / last
    if rate >= 0.0 and abs(r - rate) <= 0.05 * r:  # the contraction has settled at rate r
        mu2 = min((r + omega - 1.0) ** 2 / (r * omega**2), 0.99)
        better = min(2.0 / (1.0 + math.sqrt(1.0 - mu2)), omega_max)
        refined = omega > 1.0
        if better > omega and r > omega - 1.0 and _saved(change, tol, r, better - 1.0) >= 2.0:
            return better, -1.0, not refined, True
        estimate = False
    return omega, r, estimate, False


NEWTON_TOL = 1e-14  # volts, relative to the rail magnitude: the final per-node precision of the Newton solves


@_compile
def inner_tol(change):
    """The per-node Newton tolerance of a sweep after one whose largest step was ``change``: the early sweeps are
    inexact, as a node's solve need not be finer than the sweep's progress (the per-layer loop's and
    ``box_sweeps``')."""
    return max(NEWTON_TOL, min(1e-6, 1e-3 * change))


BOX, PAIRS, SHOCKLEY = 0, 1, 2  # the kinds of layer ``box_sweeps`` updates


@_compile
def box_sweeps(layers, ks, fwds, backs, inv_s, S, lo, hi, kinds, flat, diodes, y, beta, tol, max_sweeps, omega,
               estimate, omega_max, masks, masked):
    """The whole sweep loop of a network whose every layer is a box layer (``box_update``), nudged linear output
    pairs (``pairs_update``) or a layer of Shockley clamps (``shockley_update``), compiled: ``solve_layered._sweeps``
    without the Python around each layer's two GEMMs and kernel (``python benchmarks/sweep_loop.py`` times the two
    loops). The same GEMMs into kept buffers, the same kernels, the same per-node tolerance of each sweep
    (``inner_tol``) and the same stopping and over-relaxation rules, in the same order.

    Per layer c: ``layers[c]`` (B, n_c) updated in place; ``ks[c]`` its constant drive (B, n_c); ``fwds[c]`` a_c W_c,
    (n_{c-1}, n_c), and ``backs[c]`` the backward matrix: W_c^T / a_c, (n_c, n_{c-1}), where ``flat[c]`` is 1, else
    W_c / a_c, (n_{c-1}, n_c), read transposed (index 0 unused); ``inv_s``, ``S`` its nodes' 1/S and S; ``kinds[c]``
    ``BOX`` (its box ``lo[c]``, ``hi[c]``), ``PAIRS`` for nudged output pairs (then ``y`` and ``beta``) or
    ``SHOCKLEY`` (its rails ``lo[c]``, ``hi[c]`` and ``diodes[c]``: IS, N vt, GMIN, the exponent's cap, the critical
    voltage and the Newton steps allowed, ``ShockleyDiode.layer_update``); ``masked[c]`` 1 where ``masks[c]``
    (B, n_c) grounds some of a box layer's nodes (``grounded_box_update``). Returns (sweeps, last change, omega)."""
    L = len(layers)
    B = layers[0].shape[0]
    ba = [np.empty((B, layers[c].shape[1])) for c in range(L)]
    bb = [np.empty((B, layers[c].shape[1])) for c in range(L)]
    change = np.inf
    rate = -1.0  # none yet
    sweep = 0
    for sweep in range(1, max_sweeps + 1):
        inner = inner_tol(change)
        last = change
        change = 0.0
        for c in range(L):
            v = layers[c]
            terms = 0
            if c + 1 < L:  # the drive from the layer above, backward through its amplifiers
                if flat[c + 1]:  # BLAS reads a small matrix faster in this order (``_amplifier_matrices``)
                    np.dot(layers[c + 1], backs[c + 1], ba[c])
                else:
                    np.dot(layers[c + 1], backs[c + 1].T, ba[c])
                terms = 1
            if c > 0:  # and from the layer below, forward
                if terms == 1:
                    np.dot(layers[c - 1], fwds[c], bb[c])
                else:
                    np.dot(layers[c - 1], fwds[c], ba[c])
                terms += 1
            if kinds[c] == PAIRS:
                if terms == 0:
                    ba[c][:] = 0.0
                step = pairs_update(ba[c], ks[c], v, S[c], beta, y, omega)
            elif kinds[c] == SHOCKLEY:  # as ``ShockleyDiode.layer_update``'s call: (T above, T below, k)
                d = diodes[c]
                ta = ks[c] if terms == 0 else ba[c]
                tb = ks[c] if terms == 0 else ba[c] if terms == 1 else bb[c]
                step = shockley_update(ta, tb, ks[c], v, terms, S[c], lo[c], hi[c], d[0], d[1], d[2], d[3], d[4],
                                       inner, omega, int(d[5]))
            elif masked[c]:
                if terms == 0:
                    step = grounded_box_update(ks[c], ks[c], ks[c], v, 0, inv_s[c], lo[c], hi[c], omega, masks[c])
                else:
                    step = grounded_box_update(ba[c], ba[c] if terms == 1 else bb[c], ks[c], v, terms, inv_s[c], lo[c],
                                               hi[c], omega, masks[c])
            elif terms == 2:
                step = box_update(ba[c], bb[c], ks[c], v, 2, inv_s[c], lo[c], hi[c], omega)
            elif terms == 1:
                step = box_update(ba[c], ba[c], ks[c], v, 1, inv_s[c], lo[c], hi[c], omega)
            else:
                step = box_update(ks[c], ks[c], ks[c], v, 0, inv_s[c], lo[c], hi[c], omega)
            if not step <= change:  # a NaN step is kept
                change = step
        if change <= tol or change != change:
            break
        omega, rate, estimate, _ = sor_rule(change, last, rate, omega, estimate, tol, omega_max)
    return sweep, change, omega


@_compile
def chunk_sweeps(start_mode, start, out, pred, layers, ks, fwds, backs, inv_s, S, lo, hi, kinds, flat, diodes, y,
                 beta, tol, max_sweeps, omega, estimate, omega_max, masks, masked):
    """A chunk's round of a compiled solve in one call, so that its thread enters compiled code once: the layers'
    start (``start_mode`` 0: as they are; 1: zeroed; 2: ``start``'s rows copied in and checked for NaN/inf, the pass
    of ``split_finite``), ``box_sweeps`` (the arguments after ``pred``), then the layers side by side into ``out`` and
    checked (the pass of ``join_finite``), and, where ``pred`` has rows, the pair readout V+ - V- of the last layer
    (``energy.readout``). ``start``, ``out`` and ``pred`` are the chunk's rows, or a 0-row placeholder where unused.
    Returns (sweeps, last change, omega, start finite, voltages finite); a start with NaN/inf is not swept."""
    if start_mode == 1:
        _zero_kernel(layers)
    elif start_mode == 2 and not _blocks_kernel(start, layers, True):
        return 0, np.inf, omega, False, True
    sweeps, change, omega = box_sweeps(layers, ks, fwds, backs, inv_s, S, lo, hi, kinds, flat, diodes, y, beta, tol,
                                       max_sweeps, omega, estimate, omega_max, masks, masked)
    finite = True
    if out.shape[0] > 0:
        finite = _blocks_kernel(out, layers, False)
    if pred.shape[0] > 0:
        v = layers[len(layers) - 1]
        h = pred.shape[1]
        for i in range(pred.shape[0]):
            for j in range(h):
                pred[i, j] = v[i, j] - v[i, h + j]
    return sweeps, change, omega, True, finite


@_compile
def biased_round(targets, row, start_mode, start, out, pred, layers, ks, fwds, backs, inv_s, S, lo, hi, kinds, flat,
                 diodes, y, beta, tol, max_sweeps, omega, estimate, omega_max, masks, masked):
    """A kept plan's whole round in one call (``solver._planned``): the targets checked for NaN/inf (``targets``: a
    0-row placeholder where there are none; with one, nothing else is done), the bias drive ``row`` added to the
    input product ``ks[0]`` in place and checked (``add_row``), then ``chunk_sweeps``. Returns chunk_sweeps' five
    values, whether the drive is finite and whether the targets are."""
    if targets.shape[0] > 0 and not _finite_kernel(targets):
        return 0, np.inf, omega, True, True, True, False
    drive_ok = _add_row_kernel(ks[0], ks[0], row)
    sweeps, change, omega, started, finite = chunk_sweeps(start_mode, start, out, pred, layers, ks, fwds, backs,
                                                          inv_s, S, lo, hi, kinds, flat, diodes, y, beta, tol,
                                                          max_sweeps, omega, estimate, omega_max, masks, masked)
    return sweeps, change, omega, started, finite, drive_ok, True
