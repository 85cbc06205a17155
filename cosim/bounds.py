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


def loop_limits(net, capacitance: float, beta: float, pos=None, neg=None) -> dict:
    """Ringing and stability limits (s) of the nudging loop at beta (S), from the output pairs' RC."""
    if pos is None:
        first = sum(net.free_sizes[:-1])
        R = net.readout_matrix
        pos = [first + int(np.nonzero(r > 0)[0][0]) for r in R]
        neg = [first + int(np.nonzero(r < 0)[0][0]) if (r < 0).any() else -1 for r in R]
    G = _pair_conductances(net, pos, neg)
    factor = np.array([2.0 if m >= 0 else 1.0 for m in neg])
    b = factor * beta / G
    tau = capacitance / G
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ring = tau * np.log((1 + b) / b)
        t_unstable = np.where(b > 1, tau * np.log((b + 1) / np.where(b > 1, b - 1, 1.0)), np.inf)
    k = int(np.argmin(t_unstable)) if np.isfinite(t_unstable).any() else int(np.argmax(b))
    return {"t_ring": float(t_ring.min()), "t_unstable": float(t_unstable.min()), "tau": float(tau[k]),
            "loop_gain": float(b.max())}


def multiplier(T: float, tau: float, b: float) -> float:
    """lambda: the per-period factor of the output pair's differential error (see the module docstring)."""
    e = np.exp(-T / tau)
    return float(e - b * (1 - e))


def quantization_bound(net, beta: float, adc_lsb: float, dac_lsb: float) -> float:
    """Largest settled voltage error (V) the converters can cause in a phase nudged with beta (signed; the
    -beta phase has less conductance at the outputs, so its bound is the larger; no ADC noise)."""
    R = net.readout_matrix
    Jb, Rf = nudge_jacobian(net, beta)
    beta = abs(beta)
    per_target = beta * adc_lsb * (np.abs(R).sum(1) + 1) / 2 + dac_lsb / 2
    inv = np.linalg.inv(-Jb)
    return float((np.abs(inv @ Rf.T) @ per_target).max())
