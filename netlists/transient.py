"""Physical figures of an inference in ngspice: settling time, energy during settling, static power.

Each free node gets ``capacitance`` farads to ground (wiring plus device capacitance; a parameter,
since it depends on the technology) and starts at 0 V with every source on: a reset followed by
the presentation of an input. The settling time is the time after which every output node stays
within ``tolerance`` (1%) of its final value; the band is ``tolerance * max_o |V_o(final)|`` so that
an output settling near 0 V does not demand an impossible relative accuracy. The energy is the
integral of the power delivered by all sources and amplifiers up to the settling time (it includes
charging the node capacitances); the static power is what the circuit draws at the operating point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import linalg

from eqprop.circuits.errors import InputError
from eqprop.circuits.network import GraphNetwork
from eqprop.circuits.solve_graph import compile_graph

from .ngspice import NgspiceCircuit, SpiceError
from .writer import Transient


@dataclass
class Settling:
    settling_time: float  # s
    energy: float  # J drawn from the sources from reset to settling
    static_power: float  # W at the operating point
    final_outputs: np.ndarray  # V, output nodes at the end of the transient
    op_outputs: np.ndarray  # V, output nodes at the operating point
    t_stop: float  # s, simulated span


def node_time_constant(network, capacitance: float) -> float:
    """The time constant (s) a transient is sized by. A layered network: the slowest node's, capacitance over its
    smallest total conductance. A graph: the slowest mode of its linear part with every free node's own
    capacitance (node attribute ``capacitance``, else ``capacitance``), 1 / the smallest lambda of
    (kappa K) v = lambda (kappa C) v (kappa K is symmetric): a chain of N wire nodes settles about N^2 times
    slower than one of its nodes' C / G, which the layered rule would miss."""
    if isinstance(network, GraphNetwork):
        return _slowest_mode(network, capacitance)
    from eqprop.circuits.energy import node_conductance

    smallest = min(float(s.min()) for s in node_conductance(network))
    return capacitance / smallest


def _slowest_mode(network: GraphNetwork, capacitance: float) -> float:
    cg = compile_graph(network)
    nodes = network.graph.nodes
    c = np.array([nodes[n].get("capacitance") or capacitance for n in cg.free], dtype=float)
    A = (sp.diags(cg.kappa) @ cg.K).tocsc()
    A = 0.5 * (A + A.T)  # symmetric up to rounding
    M = sp.diags(cg.kappa * c).tocsc()
    if A.shape[0] <= 50:
        low = float(linalg.eigh(A.toarray(), M.toarray(), eigvals_only=True)[0])
    else:
        low = float(spla.eigsh(A, k=1, M=M, sigma=0.0, which="LM", return_eigenvectors=False)[0])
    return 1.0 / low


def settling(circuit: NgspiceCircuit, x, capacitance: float = 1e-12, tolerance: float = 0.01,
             t_stop: float | None = None, points: int = 1000) -> Settling:
    """Transient of one sample from reset; raises SpiceError if the outputs have not settled by t_stop."""
    if not (np.isfinite(capacitance) and capacitance > 0):
        raise InputError(f"capacitance must be positive farads, got {capacitance!r}")
    if not 0 < tolerance < 1:
        raise InputError(f"tolerance must be in (0, 1), got {tolerance!r}")
    network = circuit.network
    if t_stop is None:
        t_stop = 60.0 * node_time_constant(network, capacitance)
    tran = circuit.transient(x, Transient(capacitance, t_stop, t_stop / points))
    op_volts, _, op_power = circuit.operating_points(x)
    outputs = _output_columns(circuit)
    final = op_volts[0, outputs]
    trace = tran["voltages"][:, outputs]
    band = tolerance * max(float(np.abs(final).max()), 1e-12)
    outside = np.abs(trace - final).max(axis=1) > band
    if outside[-1]:
        raise SpiceError(f"outputs had not settled within {tolerance:.0%} by t_stop = {t_stop:.3g} s; "
                         "pass a longer t_stop", sample=0, analysis="tran")
    t = tran["time"]
    last_out = int(np.nonzero(outside)[0].max()) + 1 if outside.any() else 0
    t_settle = float(t[last_out])
    stop = last_out + 1
    energy = float(np.trapz(tran["power"][:stop], t[:stop])) if stop > 1 else 0.0
    return Settling(t_settle, energy, float(op_power[0]), trace[-1], final, t_stop)


def _output_columns(circuit: NgspiceCircuit) -> np.ndarray:
    return np.nonzero(np.abs(circuit.readout).sum(0) > 0)[0]


@dataclass
class NoiseSpread:
    std: np.ndarray  # V, (n_free,): each free node's rms deviation from its mean, sampled every t_step
    window_std: np.ndarray | None  # V, (n_free,): rms deviation of the node's averages over consecutive windows
    mean: np.ndarray  # V, (n_free,): time average (the equilibrium)
    samples: int  # uniform samples used (after the settling span)
    windows: int  # windows averaged (0 without a window)


def noise_spread(circuit: NgspiceCircuit, x, capacitance: float, t_stop: float, t_step: float, settle: float,
                 temperature: float = 300.15, window: float = 0.0) -> NoiseSpread:
    """The node voltages' spread in an ngspice transient with every conductance's thermal noise
    (``Transient.noise_temperature``).

    One sample from reset; the first ``settle`` seconds (many slowest time constants) are dropped, the rest is
    read on a uniform grid of ``t_step`` (ngspice's own time points are not uniform). With a ``window`` the
    trace is also cut into consecutive windows and the spread of their averages is returned: what a converter
    that integrates over the window sees. Each call is a fresh realisation of the noise (ngspice does not repeat
    it from a seed): the spread is an estimate, within about sqrt(1 / (2 N)) for N independent slowest time
    constants."""
    if not 0 <= settle < t_stop:
        raise InputError(f"settle ({settle!r} s) must be >= 0 and shorter than t_stop ({t_stop!r} s)")
    tran = circuit.transient(x, Transient(capacitance, t_stop, t_step, noise_temperature=temperature))
    t, v = tran["time"], tran["voltages"]
    grid = np.arange(settle, t[-1], t_step)
    trace = np.stack([np.interp(grid, t, v[:, k]) for k in range(v.shape[1])], axis=1)
    window_std, windows = None, 0
    if window > 0:
        per = max(1, int(round(window / t_step)))
        windows = len(grid) // per
        if windows < 2:
            raise InputError(f"a window of {window:g} s leaves fewer than 2 windows in {t_stop - settle:g} s; "
                             "lengthen t_stop")
        means = trace[:windows * per].reshape(windows, per, -1).mean(1)
        window_std = means.std(0, ddof=1)
    return NoiseSpread(trace.std(0, ddof=1), window_std, trace.mean(0), len(grid), windows)
