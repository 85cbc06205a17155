"""The Lava backend: every phase a run of Lava processes (Loihi2SimCfg, floating point), behind the protocol.

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
                 alpha: float = 1.0, threshold: float = 0.0, timeout: float = 300.0, fixed: bool = False):
        self.network = network
        self.tol, self.max_steps, self.chunk = tol, max_steps, chunk
        self.fixed = fixed
        self.session = LavaSession(alpha=alpha, threshold=threshold, timeout=timeout, fixed=fixed)
        self.messages = 0.0
        self.samples = 0

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        net = self.network
        x = net.check_inputs(x)
        if y is not None:
            y = net.check_targets(y, x.shape[0])
        before = self.messages
        # fixed point: a state can toggle by its last bit forever; 2 LSBs is as settled as it gets
        tol = max(self.tol, 2.0**-19) if self.fixed else self.tol
        r = self.session.settle(net, net.encode_inputs(x), y, beta, tol, self.max_steps, self.chunk)
        if r["change"] > tol:
            raise LavaError(f"the Lava network did not settle in {r['steps']} steps (last change {r['change']:.2e} V "
                            f"> tol {tol:.1e} V); raise max_steps")
        sent = r["messages"] - before if r["messages"] >= before else r["messages"]  # rebuilt: counter restarted
        self.messages = r["messages"]
        layers = r["layers"]
        judged = layers
        if self.fixed:  # a rail is resolved to one LSB: judge KCL at the rail the state stands for
            from eqprop.neuromorphic.quantize import snap_to_rails
            judged = snap_to_rails(net, layers)
        res = kcl_residual(net, net.encode_inputs(x), judged, y, beta)
        residual = float(max(np.abs(v).max(initial=0.0) for v in res))
        info = {"steps": r["steps"], "messages": sent, "messages_per_sample": sent / x.shape[0]}
        if self.fixed:
            from eqprop.neuromorphic.quantize import weight_errors
            info["weight_quantisation_error"] = weight_errors(net)
        return Equilibrium(np.hstack(layers), x, readout(net, layers[-1]), r["steps"], residual, beta, y,
                           net.free_sizes, "lava-fixed" if self.fixed else "lava-float", info)

    @classmethod
    def from_config(cls, network, cfg) -> "LavaBackend":
        return cls(network, tol=cfg.tol, fixed=cfg.fixed_point)

    def close(self) -> None:  # the new conductances travel with the next settle: sync needs nothing more
        self.session.close()

    def physical_figures(self, x, capacitance: float = 1e-12) -> dict:
        eq = self.settle(x)
        return {"messages_per_inference": float(eq.info["messages_per_sample"]), "time_steps": int(eq.iterations)}
