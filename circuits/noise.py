"""Thermal noise of a measured equilibrium, derived from the circuit.

Every conductance G makes a thermal noise current of one-sided density 4 k T G (two-sided 2 k T G); every
free node has a capacitance C to ground. Near its operating point the circuit is the linear system

    C dv/dt = J v + i_n(t),

with J the KCL Jacobian (``small_signal.jacobian``) and i_n white with two-sided density 2 k T N, N the
conductances' noise matrix (``small_signal.conductance_noise``; an amplified conductance passes 1/a of its
noise back into the driver through the CCCS). The stationary covariance P of the node voltages solves the
Lyapunov equation A P + P A^T + Q = 0 with A = C^-1 J and Q = 2 k T C^-1 N C^-1. For a network of plain
resistors this is equipartition, P = k T C^-1 (64 uV rms at 1 pF and 300 K), whatever the conductances;
amplifiers break the reciprocity and the Lyapunov solution gives what they do. Nodes an ideal diode holds on
a rail do not move (a voltage source): their variance is 0; a Shockley diode adds its small-signal
conductance to J and its shot noise (two-sided q |I| per junction) to the noise.

A measurement that averages each node over a window T (an integrating converter) sees the covariance of
the average: with R(tau) = exp(A tau) P for tau >= 0,

    P_T = 1/T^2 int_0^T int_0^T R(t - s) ds dt = 1/T^2 (M P + (M P)^T),  M = V f(Lambda) V^-1,
    f(lambda) = (exp(lambda T) - 1 - lambda T) / lambda^2,

on the eigen-decomposition A = V Lambda V^-1; T = 0 is an instantaneous sample (P itself), and a long
window falls as 2 tau / T per mode. ``netlists.transient.noise_spread`` measures the same in ngspice
transients with ``trnoise`` sources on every conductance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .devices import BOLTZMANN, ELEMENTARY_CHARGE, SPICE_TNOM_KELVIN
from .errors import InputError, NetworkError
from .network import LayeredNetwork
from .small_signal import conductance_noise, jacobian, offsets

CAPACITANCE_RANGE = (1e-18, 1e-9)  # F: an attofarad (a node of a few nanometre devices) to a nanofarad


@dataclass(frozen=True)
class ThermalNoise:
    """The noise of a measurement of the equilibrium: node capacitance (F), averaging window (s, 0: one
    instantaneous sample) and temperature (K; ngspice's default 27 C)."""

    capacitance: float
    window: float = 0.0
    temperature: float = SPICE_TNOM_KELVIN
    shot: bool = True  # Shockley diodes' shot noise

    def __post_init__(self):
        lo, hi = CAPACITANCE_RANGE
        c = self.capacitance
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating)) or not (lo <= c <= hi):
            raise NetworkError(f"noise capacitance must be {lo:g} to {hi:g} F per node, got {c!r} (100 fF is 1e-13)")
        if not (np.isfinite(self.window) and self.window >= 0):
            raise NetworkError(f"noise window must be >= 0 seconds (0: one instantaneous sample), got {self.window!r}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise NetworkError(f"temperature must be positive kelvin, got {self.temperature!r}")

    @property
    def kt(self) -> float:
        return BOLTZMANN * self.temperature

    @property
    def equipartition_std(self) -> float:
        """sqrt(k T / C): a node's rms noise voltage in a network of plain resistors (V)."""
        return float(np.sqrt(self.kt / self.capacitance))

    def covariance(self, net: LayeredNetwork, v=None, beta: float = 0.0) -> np.ndarray:
        """The measured node voltages' covariance (n_free x n_free, V^2) at one sample's operating point v
        (None: every diode off); a nudge's beta is a noiseless conductance (an active source)."""
        if not isinstance(net, LayeredNetwork):
            raise NetworkError("the noise model takes a LayeredNetwork")
        J, pinned = jacobian(net, v, beta)
        N = 2.0 * self.kt * conductance_noise(net)
        if self.shot and v is not None:
            N[np.diag_indices_from(N)] += self._shot(net, v)
        keep = np.nonzero(~pinned)[0]
        n = J.shape[0]
        out = np.zeros((n, n))
        if keep.size == 0:
            return out
        A = J[np.ix_(keep, keep)] / self.capacitance
        Q = N[np.ix_(keep, keep)] / self.capacitance**2
        P = _lyapunov(A, Q)
        if self.window > 0:
            P = _windowed(A, P, self.window)
        out[np.ix_(keep, keep)] = P
        return out

    def node_std(self, net: LayeredNetwork, layers=None, beta: float = 0.0) -> np.ndarray:
        """Each free node's rms noise (V): (batch, n_free) at the equilibria ``layers`` (a list of
        (batch, n) arrays), or (1, n_free) with every diode off when None."""
        if layers is None:
            return np.sqrt(np.diag(self.covariance(net, None, beta)))[None, :]
        stacked = np.hstack([np.atleast_2d(v) for v in layers])
        return np.stack([np.sqrt(np.maximum(np.diag(self.covariance(net, row, beta)), 0.0)) for row in stacked])

    def _shot(self, net, v) -> np.ndarray:
        """Two-sided shot noise q |I| of each free node's diodes (A^2/Hz); 0 for ideal and piecewise-linear ones."""
        v = np.concatenate([np.ravel(layer) for layer in v]) if isinstance(v, (list, tuple)) else np.ravel(v)
        off = offsets(net)
        s = np.zeros(off[-1])
        for c, clamp in enumerate(net.neurons):
            if clamp is None or not clamp.diode.smooth:
                continue
            x = v[off[c]:off[c + 1]]
            d = clamp.diode
            s[off[c]:off[c + 1]] = ELEMENTARY_CHARGE * (np.abs(d.current(x - clamp.v_high))
                                                        + np.abs(d.current(clamp.v_low - x)))
        return s

    def slowest_time_constant(self, net: LayeredNetwork, v=None, beta: float = 0.0) -> float:
        """C / min |Re eig J| over the nodes that move (s): how long the noise stays correlated."""
        J, pinned = jacobian(net, v, beta)
        keep = ~pinned
        if not keep.any():
            return 0.0
        eig = np.linalg.eigvals(J[np.ix_(keep, keep)])
        return float(self.capacitance / np.abs(eig.real).min())


def _lyapunov(A, Q) -> np.ndarray:
    """P with A P + P A^T + Q = 0 (A stable)."""
    from scipy.linalg import solve_continuous_lyapunov

    eig = np.linalg.eigvals(A)
    if eig.real.max() >= 0:
        raise InputError(f"the linearised circuit is not stable (an eigenvalue {eig.real.max():.3g} 1/s >= 0): it has "
                         "no stationary noise")
    P = solve_continuous_lyapunov(A, -Q)
    return 0.5 * (P + P.T)


def _windowed(A, P, T) -> np.ndarray:
    """The covariance of the node voltages averaged over a window T (module notes)."""
    lam, V = np.linalg.eig(A)
    z = lam * T
    small = np.abs(z) < 1e-4
    safe = np.where(small, 1.0, lam)
    f = np.where(small, T * T * (0.5 + z / 6.0 + z * z / 24.0), (np.expm1(z) - z) / safe**2)
    M = (V * f) @ np.linalg.inv(V)
    MP = (M @ P).real
    return (MP + MP.T) / T**2
