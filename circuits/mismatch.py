"""Device mismatch: one die of a trained network, drawn from a seed.

A network trained somewhere (natively, or on another die) is programmed onto dies that differ: every conductance
lands within a relative spread of its target, and every amplifier has its own input offset and loop gain. A die
is a copy of the network with those draws, seeded by the die's number, so the same die is the same circuit in the
native solver and in its SPICE netlist (the netlist is written from it). Diode parameters are per layer in this
toolkit, so their mismatch per node is not drawn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .devices import Amplifier, OpAmp
from .errors import NetworkError
from .network import LayeredNetwork


@dataclass(frozen=True)
class Mismatch:
    """Relative spread of every conductance (``conductance``: a normal draw of that deviation, times the target,
    clipped at 0), and each amplifier's input-offset spread (V) and relative loop-gain spread."""

    conductance: float = 0.0
    amplifier_offset: float = 0.0
    amplifier_gain: float = 0.0

    def __post_init__(self):
        for name, hi in (("conductance", 1.0), ("amplifier_offset", 1.0), ("amplifier_gain", 0.2)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not 0 <= v <= hi:
                raise NetworkError(f"mismatch {name} must be 0 to {hi:g}, got {v!r}")

    def die(self, net: LayeredNetwork, seed: int) -> LayeredNetwork:
        """The network as die ``seed`` realises it (the conductances, then the amplifiers, each from its own
        stream: changing one spread leaves the other draws as they were)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise NetworkError(f"a die's seed is a whole number from 0 to 2^32 - 1, got {seed!r}")
        die = net.copy()
        rng = np.random.default_rng([int(seed), 0])
        if self.conductance:
            for arr in die.weights + die.biases:
                arr *= np.maximum(1.0 + self.conductance * rng.standard_normal(arr.shape), 0.0)
        if (self.amplifier_offset or self.amplifier_gain) and net.amplified:
            base = net.amplifier
            params = base.params() if isinstance(base, OpAmp) else {"a0": 1e12}  # an ideal amplifier's loop
            die.amplifier = OpAmp(**{**params, "offset_sigma": float(self.amplifier_offset),
                                     "gain_sigma": float(self.amplifier_gain), "seed": int(seed)})
        elif not isinstance(net.amplifier, Amplifier):
            raise NetworkError(f"the network's amplifier is not an amplifier model: {net.amplifier!r}")
        die.validate()
        return die
