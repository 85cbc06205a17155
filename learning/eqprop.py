"""Phases and the EqProp gradient estimate from local statistics.

With F = E + kappa_L beta C, the EqProp theorem gives  dL/dtheta = (1 / kappa_L) d/dbeta [dE/dtheta (s^beta)]
at beta = 0. Estimates (statistics summed over the batch, divided by the batch for the mean loss):
  one-sided:  (S(+beta) - S(0))      / (beta  kappa_L B)
  centered:   (S(+beta) - S(-beta))  / (2 beta kappa_L B)   (bias O(beta^2) instead of O(beta))
For a conductance S = kappa_c/2 * sum (dV)^2, so the centered update -eta * estimate is
dG = -(eta / (4 beta)) [(dV^beta)^2 - (dV^-beta)^2] up to the layer's energy weight: the local rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqprop.circuits.energy import PairedRows

NUDGINGS = ("centered", "positive", "negative", "random")


@dataclass
class Phases:
    free: object
    plus: object | None = None
    minus: object | None = None
    beta: float = 0.0


def run_phases(backend, x, y, beta: float, nudging: str = "centered", rng=None) -> Phases:
    """Free phase, then the nudged phase(s), each warm-started from the free equilibrium. The parameters
    do not change between the phases, so the backend may validate them and derive what its solves need
    once for all of them (``Backend.unchanged``)."""
    if nudging not in NUDGINGS:
        raise ValueError(f"unknown nudging {nudging!r}; use one of {NUDGINGS}")
    if not beta > 0:
        raise ValueError(f"beta must be positive (the sign is chosen by the nudging), got {beta}")
    with backend.unchanged():
        free = backend.settle(x)
        if nudging == "random":
            nudging = "positive" if (rng or np.random.default_rng()).random() < 0.5 else "negative"
        plus = backend.settle(x, y, beta, init=free) if nudging in ("centered", "positive") else None
        minus = backend.settle(x, y, -beta, init=free) if nudging in ("centered", "negative") else None
    return Phases(free, plus, minus, beta)


def eqprop_statistics(backend, phases: Phases, paired: bool = False) -> tuple:
    """(statistics differences, scale): the gradient estimate of every parameter is difference * scale.
    The differences are this call's own arrays (a caller may scale or overwrite them in place). ``paired``: where
    the backend's ``statistics_difference`` takes it (its ``pairs`` attribute), an input connection of +x/-x pairs
    comes as ``circuits.energy.PairedRows``, for an update that forms the - rows as it reads them."""
    beta = phases.beta
    if phases.plus is not None and phases.minus is not None:
        hi, lo, span = phases.plus, phases.minus, 2 * beta
    elif phases.plus is not None:
        hi, lo, span = phases.plus, phases.free, beta
    else:
        hi, lo, span = phases.free, phases.minus, beta
    scale = 1.0 / (span * backend.cost_weight * phases.free.batch)
    difference = backend.statistics_difference
    if paired and getattr(difference, "pairs", False):
        stats = difference(hi, lo, paired=True)
        return [d if isinstance(d, PairedRows) else np.asarray(d, dtype=float) for d in stats], scale
    return [np.asarray(d, dtype=float) for d in difference(hi, lo)], scale


def eqprop_gradient(backend, phases: Phases) -> list:
    """Estimate of d(mean loss)/d(parameter) for every parameter, from local statistics only."""
    stats, scale = eqprop_statistics(backend, phases)
    for d in stats:
        d *= scale  # in place: the statistics are this call's own arrays
    return stats


def cosine(a: list, b: list) -> float:
    fa = np.concatenate([np.ravel(t) for t in a])
    fb = np.concatenate([np.ravel(t) for t in b])
    return float(fa @ fb / (np.linalg.norm(fa) * np.linalg.norm(fb) + 1e-300))


def relative_error(estimate: list, exact: list) -> float:
    fa = np.concatenate([np.ravel(t) for t in estimate])
    fb = np.concatenate([np.ravel(t) for t in exact])
    return float(np.linalg.norm(fa - fb) / (np.linalg.norm(fb) + 1e-300))
