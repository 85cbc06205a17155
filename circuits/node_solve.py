"""Exact minimisation of the energy over one node, all nodes of a block at once.

A node with total conductance S and drive T (sum of conductance x neighbour voltage) satisfies
S V - T + I_clamp(V) = 0. Every layer of a layered network is such a block once its neighbours are
fixed, which is what makes block coordinate descent exact per step (Scellier 2024).
"""
from __future__ import annotations

import numpy as np

from .devices import DiodeClamp

NEWTON_MAX_ITER = 100
NEWTON_TOL = 1e-14  # volts, relative to the rail magnitude: the final per-node precision


def solve_nodes(clamp: DiodeClamp | None, S, T, v_prev=None, tol: float = NEWTON_TOL) -> np.ndarray:
    """V solving S V - T + I_clamp(V) = 0 elementwise (S, T broadcastable)."""
    if clamp is None:
        return T / S
    kind = clamp.diode.kind
    if kind == "ideal":
        # The quadratic's minimiser projected on the box [v_low, v_high]: exact for a 1-D convex QP.
        v = np.divide(T, S)
        np.minimum(v, clamp.v_high, out=v)
        return np.maximum(v, clamp.v_low, out=v)
    if kind == "pwl":
        return _solve_pwl(clamp, S, T)
    return _solve_shockley(clamp, S, T, v_prev, tol)


def _solve_pwl(clamp: DiodeClamp, S, T) -> np.ndarray:
    d = clamp.diode
    vl, vh = clamp.v_low, clamp.v_high
    # Middle region: both diodes below their knee, only the off leakage flows.
    base_s = S + 2.0 * d.g_off
    base_t = T + d.g_off * (vh + vl)
    v = base_t / base_s
    upper = (base_t + d.g_on * (vh + d.v_on)) / (base_s + d.g_on)
    lower = (base_t + d.g_on * (vl - d.v_on)) / (base_s + d.g_on)
    v = np.where(v - vh > d.v_on, upper, v)
    return np.where(vl - v > d.v_on, lower, v)


def _solve_shockley(clamp: DiodeClamp, S, T, v_prev, tol) -> np.ndarray:
    """Safeguarded Newton: the root lies between the rails' midpoint and T/S (f is increasing).

    Each junction's current and conductance come from one evaluation per iteration (shared
    exponential); the diodes add i_up - i_down + GMIN (2V - v_high - v_low).
    """
    d = clamp.diode
    vl, vh, gmin = clamp.v_low, clamp.v_high, d.gmin
    S = np.broadcast_to(S, np.shape(T))
    free = T / S
    lo = np.minimum(free, clamp.v_mid)
    hi = np.maximum(free, clamp.v_mid)
    v = np.clip(free if v_prev is None else v_prev, lo, hi)
    scale = tol * max(1.0, abs(vh), abs(vl))
    for _ in range(NEWTON_MAX_ITER):
        i_up, g_up = d.junction(v - vh)
        i_down, g_down = d.junction(vl - v)
        f = S * v - T + (i_up - i_down) + gmin * (2.0 * v - vh - vl)
        df = S + (g_up + g_down) + 2.0 * gmin
        pos = f > 0
        hi = np.where(pos, v, hi)
        lo = np.where(pos, lo, v)
        step = v - f / df
        # Bisect where Newton leaves the bracket (far up the exponential it overshoots).
        step = np.where((step < lo) | (step > hi), 0.5 * (lo + hi), step)
        change = np.abs(step - v).max(initial=0.0)
        v = step
        if change <= scale:
            break
    return v
