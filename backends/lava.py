"""The Lava backend: every phase a run of Lava processes (Loihi2SimCfg, floating point), behind the protocol.

What it is: a fast CPU simulation of the network's message passing, a batch at a time. Each step a layer
moves to its nodes' exact minimiser given the currents its neighbours' messages deliver (the native
solver's per-node kernel), so with alpha = 1 it is a one-step-delayed Jacobi iteration of the native
map and agrees with native by construction (tested to 1e-9 V). It is not a model of a chip: for that
(integer neurons, Lava's bit-accurate synapses, spikes, energy) use the ``loihi`` backend.

Phases are consecutive runs of the same Lava network: the nudged phase continues from the free state
with the nudging switched on through a Var. The local statistics are the squared drops across each
conductance, computed on the host from the voltages read back (host-side updates; weights are written
back to both directions of every connection before the next settle).
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork
from eqprop.circuits.energy import kcl_residual, readout
from eqprop.neuromorphic import LavaError, LavaSession

from .base import ResistiveBackend


class LavaBackend(ResistiveBackend):
    name = "lava"

    def __init__(self, network: LayeredNetwork, tol: float = 1e-10, max_steps: int = 5000, chunk: int = 50,
                 alpha: float = 1.0, threshold: float = 0.0, timeout: float = 300.0):
        self.network = network
        self.tol, self.max_steps, self.chunk = tol, max_steps, chunk
        self.session = LavaSession(alpha=alpha, threshold=threshold, timeout=timeout)
        self.messages = 0.0
        self.samples = 0

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        net = self.network
        x = net.check_inputs(x)
        if y is not None:
            y = net.check_targets(y, x.shape[0])
        before = self.messages
        tol = self.tol
        r = self.session.settle(net, net.encode_inputs(x), y, beta, tol, self.max_steps, self.chunk)
        if r["change"] > tol:
            raise LavaError(f"the Lava network did not settle in {r['steps']} steps (last change {r['change']:.2e} V "
                            f"> tol {tol:.1e} V); raise max_steps")
        sent = r["messages"] - before if r["messages"] >= before else r["messages"]  # rebuilt: counter restarted
        self.messages = r["messages"]
        layers = r["layers"]
        res = kcl_residual(net, net.encode_inputs(x), layers, y, beta)
        residual = float(max(np.abs(v).max(initial=0.0) for v in res))
        info = {"steps": r["steps"], "messages": sent, "messages_per_sample": sent / x.shape[0]}
        return Equilibrium(np.hstack(layers), x, readout(net, layers[-1]), r["steps"], residual, beta, y,
                           net.free_sizes, "lava-float", info)

    @classmethod
    def from_config(cls, network, cfg) -> "LavaBackend":
        return cls(network, tol=cfg.tol)

    def close(self) -> None:  # the new conductances travel with the next settle: sync needs nothing more
        self.session.close()

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        eq = self.settle(x)
        return {"messages_per_inference": float(eq.info["messages_per_sample"]), "time_steps": int(eq.iterations)}
