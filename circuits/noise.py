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
transients with a noise source on every conductance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .devices import BOLTZMANN, ELEMENTARY_CHARGE, SPICE_TNOM_KELVIN
from .errors import InputError, NetworkError
from .network import LayeredNetwork
from .small_signal import (amplifier_noise, at_point, conductance_noise, jacobian, offsets, pinned,
                           resistive_jacobian)
from .threads import single_blas_thread

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

    def covariance(self, net: LayeredNetwork, v=None, beta: float = 0.0, base=None) -> np.ndarray:
        """The measured node voltages' covariance (n_free x n_free, V^2) at one sample's operating point v
        (None: every diode off); a nudge's beta is a noiseless conductance (an active source). ``base``: what
        does not depend on v, from ``self.base(net, beta)``, when many samples share it."""
        if not isinstance(net, LayeredNetwork):
            raise NetworkError("the noise model takes a LayeredNetwork")
        if net.op_amps:  # op-amps linearise at the point (their saturation): nothing is shared between samples
            # (their own input noise, where the model has one, adds to the resistors')
            base = (resistive_jacobian(net, beta, v), 2.0 * self.kt * conductance_noise(net, v) + amplifier_noise(net, v))
        J0, N = self.base(net, beta) if base is None else base
        J, pinned = at_point(net, J0, v)
        if self.shot and v is not None and any(c is not None and c.diode.smooth for c in net.neurons):
            N = N.copy()
            N[np.diag_indices_from(N)] += self._shot(net, v)
        keep = np.nonzero(~pinned)[0]
        n = J.shape[0]
        out = np.zeros((n, n))
        if keep.size == 0:
            return out
        A = J[np.ix_(keep, keep)] / self.capacitance
        Q = N[np.ix_(keep, keep)] / self.capacitance**2
        # Amplifiers make J non-symmetric but keep K J symmetric (K: the energy weights kappa of the nodes, the
        # circuit's energy function): in the coordinates K^(1/2) v the system is symmetric, and one symmetric
        # eigen-decomposition solves it (and its window), ten times faster than a general Lyapunov solver.
        k = np.sqrt(np.repeat(net.energy_weights, net.free_sizes)[keep])
        S = k[:, None] * A / k[None, :]
        if np.allclose(S, S.T, rtol=1e-12, atol=1e-12 * np.abs(S).max()):
            P = _symmetric_lyapunov(0.5 * (S + S.T), k[:, None] * Q * k[None, :], self.window) / np.outer(k, k)
        else:
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
        base = self.base(net, beta)
        return np.stack([np.sqrt(np.maximum(np.diag(self.covariance(net, row, beta, base)), 0.0)) for row in stacked])

    def base(self, net: LayeredNetwork, beta: float = 0.0) -> tuple:
        """(J with every diode off, the resistors' two-sided noise density matrix 2 k T N): shared by all samples."""
        return resistive_jacobian(net, beta), 2.0 * self.kt * conductance_noise(net)

    def factors(self, net: LayeredNetwork, voltages, beta: float = 0.0):
        """Per sample a matrix F with F F^T its covariance (batch, n_free, n_free), or, for a network of plain
        resistors measured instantaneously with no nudge and no Shockley diode (equipartition: k T / C on every
        node that moves, independent), the (batch, n_free) rms of each node: no Lyapunov equation is solved then.
        A draw of the noise is F z (or rms * z) for z standard normal."""
        voltages = np.atleast_2d(np.asarray(voltages, dtype=float))
        reciprocal = all(a == 1.0 for a in net.gains) and not net.hidden_pairs
        smooth = any(c is not None and c.diode.smooth for c in net.neurons)
        if reciprocal and self.window == 0 and beta == 0 and not (smooth and self.shot):
            return self.equipartition_std * ~pinned(net, voltages)
        base = self.base(net, beta)
        with single_blas_thread():  # many small decompositions: threads would only contend
            return np.stack([factor(self.covariance(net, v, beta, base)) for v in voltages])

    def sample(self, net: LayeredNetwork, voltages, rng, beta: float = 0.0) -> np.ndarray:
        """One draw of the measurement noise (batch, n_free) for the equilibria ``voltages`` (batch, n_free) of a
        phase nudged with beta, each sample at its own operating point (``factors``)."""
        voltages = np.atleast_2d(np.asarray(voltages, dtype=float))
        return draw(self.factors(net, voltages, beta), rng.standard_normal(voltages.shape))

    def _shot(self, net, v) -> np.ndarray:
        """Two-sided noise of each free node's diodes (A^2/Hz, ``DiodeModel.noise_density``: shot noise q |I|, and a
        series resistance's thermal noise); 0 for ideal and piecewise-linear ones."""
        v = np.concatenate([np.ravel(layer) for layer in v]) if isinstance(v, (list, tuple)) else np.ravel(v)
        off = offsets(net)
        s = np.zeros(off[-1])
        for c, clamp in enumerate(net.neurons):
            if clamp is None or not clamp.diode.smooth:
                continue
            x = v[off[c]:off[c + 1]]
            s[off[c]:off[c + 1]] = clamp.diode.clamp_noise_density(clamp, x, self.kt)
        return s

    def time_constants(self, net: LayeredNetwork, v=None, beta: float = 0.0) -> tuple:
        """(slowest, fastest): C / min and C / max |Re eig J| over the nodes that move (s): how long the noise stays
        correlated, and how fine a simulation must sample it; (0, 0) when every node is pinned."""
        J, held = jacobian(net, v, beta)
        keep = ~held
        if not keep.any():
            return 0.0, 0.0
        rates = np.abs(np.linalg.eigvals(J[np.ix_(keep, keep)]).real)
        return float(self.capacitance / rates.min()), float(self.capacitance / rates.max())

    def slowest_time_constant(self, net: LayeredNetwork, v=None, beta: float = 0.0) -> float:
        """C / min |Re eig J| over the nodes that move (s): how long the noise stays correlated."""
        return self.time_constants(net, v, beta)[0]


def factor(P) -> np.ndarray:
    """F with F F^T = P for a covariance P (positive semidefinite; pinned rows and columns are 0): the Cholesky
    factor of the rows that move, or the eigen-decomposition where that is singular."""
    keep = np.nonzero(np.diag(P) > 0)[0]
    F = np.zeros_like(P)
    try:
        F[np.ix_(keep, keep)] = np.linalg.cholesky(P[np.ix_(keep, keep)])
        return F
    except np.linalg.LinAlgError:
        w, U = np.linalg.eigh(P)
        return U * np.sqrt(np.maximum(w, 0.0))


def draw(factors, z) -> np.ndarray:
    """Noise from ``ThermalNoise.factors`` and standard normals z (batch, n_free)."""
    if factors.ndim == 2:
        return factors * z
    return np.einsum("bij,bj->bi", factors, z)


def _symmetric_lyapunov(A, Q, T: float) -> np.ndarray:
    """P (averaged over a window T when T > 0) for a symmetric A = V diag(lam) V^T: in its eigenbasis the
    Lyapunov equation is elementwise, P~_ij = -Q~_ij / (lam_i + lam_j), and a window multiplies it by
    (f_i + f_j) / T^2 (``_windowed``)."""
    lam, V = np.linalg.eigh(A)
    if lam.max() >= 0:
        raise InputError(f"the linearised circuit is not stable (an eigenvalue {lam.max():.3g} 1/s >= 0): it has "
                         "no stationary noise")
    Pt = -(V.T @ Q @ V) / (lam[:, None] + lam[None, :])
    if T > 0:
        f = _window_weights(lam, T)
        Pt *= (f[:, None] + f[None, :]) / T**2
    P = V @ Pt @ V.T
    return 0.5 * (P + P.T)


def _window_weights(lam, T):
    """f(lam) = (exp(lam T) - 1 - lam T) / lam^2, by its series where lam T is small."""
    z = lam * T
    small = np.abs(z) < 1e-4
    safe = np.where(small, 1.0, lam)
    return np.where(small, T * T * (0.5 + z / 6.0 + z * z / 24.0), (np.expm1(z) - z) / safe**2)


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
    M = (V * _window_weights(lam, T)) @ np.linalg.inv(V)
    MP = (M @ P).real
    return (MP + MP.T) / T**2
