"""On-chip training on Lava: every conductance update is made by Lava's learning engine (``LearningDense``,
the tag-and-apply rule of ``neuromorphic.onchip.network``) during the phases of each sample.

The training loop gives this backend a batch, beta and the per-array rates; the Lava network plays the
samples (free, +beta, -beta, one after another, as on a chip), the synapses accumulate their EqProp
statistic in a tag and apply it on the bap that ends the batch. The host reads the conductances back (it
computes no update) and checks that each conductance's two copies still agree. Settling for evaluation is
the float Lava backend's. Centered nudging, no momentum, ideal programming: what the rule implements.
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits.energy import readout

from .lava import LavaBackend


class LavaOnchipBackend(LavaBackend):
    name = "lava-onchip"
    onchip = True
    defaults = {"momentum": 0.0}

    def __init__(self, network, steps: int = 20, timeout: float = 1800.0, **kw):
        super().__init__(network, timeout=timeout, **kw)
        self.steps = int(steps)
        self.copy_mismatch = 0.0

    def onchip_step(self, x, y, beta: float, scales) -> np.ndarray:
        """One batch trained on chip; returns the free-phase predictions."""
        net = self.network
        x = net.check_inputs(x)
        y = net.check_targets(y, x.shape[0])
        r = self.session.onchip_train(net, net.encode_inputs(x), y, beta, scales, x.shape[0], self.steps)
        for p, new in zip(net.weights + net.biases, r["weights"] + r["biases"]):
            p[...] = new  # what the learning engine left (in place: the trainer holds these arrays)
        self.copy_mismatch = max(self.copy_mismatch, r["copy_mismatch"])
        return readout(net, r["free_out"])

    @classmethod
    def from_config(cls, network, cfg) -> "LavaOnchipBackend":
        return cls(network, tol=cfg.tol)
