"""Exact minimisation of the energy over one node, all nodes of a block at once.

A node with total conductance S and drive T (sum of conductance x neighbour voltage) satisfies
S V - T + I_clamp(V) = 0. Every layer of a layered network is such a block once its neighbours are
fixed, which is what makes block coordinate descent exact per step (Scellier 2024). Each diode model
owns its own minimiser (``DiodeModel.solve_clamp``).
"""
from __future__ import annotations

import numpy as np

from .devices import DiodeClamp
from .kernels import NEWTON_TOL  # volts, relative to the rail magnitude: the final per-node precision


def solve_nodes(clamp: DiodeClamp | None, S, T, v_prev=None, tol: float = NEWTON_TOL) -> np.ndarray:
    """V solving S V - T + I_clamp(V) = 0 elementwise (S, T broadcastable)."""
    if clamp is None:
        return T / S
    return clamp.solve(S, T, v_prev, tol)
