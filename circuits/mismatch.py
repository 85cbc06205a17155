"""Device mismatch: one die of a trained network, drawn from a seed.

A network trained somewhere (natively, or on another die) is programmed onto dies that differ: every conductance
lands within a relative spread of its target, and every amplifier has its own input offset and loop gain. A die
is a copy of the network with those draws, seeded by the die's number, so the same die is the same circuit in the
native solver and in its SPICE netlist (the netlist is written from it). Shockley neuron diodes get their own
saturation current (log-normal: IS x exp(sigma z), a relative spread sigma) and emission coefficient (N x (1 +
sigma z)), each diode of each node its own draw (``MismatchedShockleyDiode``). A fraction of each die's hidden nodes
can be dead: shorted to 0 V (mid-rail) through their two bias conductances, raised to a million times the node's
total conductance, so the native solver and the netlist hold the same failed circuit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .devices import Amplifier, DiodeClamp, MismatchedShockleyDiode, OpAmp, ShockleyDiode
from .errors import NetworkError
from .network import LayeredNetwork


@dataclass(frozen=True)
class Mismatch:
    """Relative spread of every conductance (``conductance``: a normal draw of that deviation, times the target,
    clipped at 0), each amplifier's input-offset spread (V) and relative loop-gain spread, the Shockley diodes'
    spreads, and the fraction of hidden nodes that are dead (``dead_nodes``: held at 0 V, each die its own)."""

    conductance: float = 0.0
    amplifier_offset: float = 0.0
    amplifier_gain: float = 0.0
    diode_is: float = 0.0
    diode_n: float = 0.0
    dead_nodes: float = 0.0

    def __post_init__(self):
        for name, hi in (("conductance", 1.0), ("amplifier_offset", 1.0), ("amplifier_gain", 0.2), ("diode_is", 2.0),
                         ("diode_n", 0.2), ("dead_nodes", 1.0)):
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
        if self.diode_is or self.diode_n:
            die.neurons = self._diodes(net, np.random.default_rng([int(seed), 2]))
        if self.dead_nodes:
            _short_to_ground(die, self.dead(net, seed))
        die.validate()
        return die

    def dead(self, net: LayeredNetwork, seed: int) -> list:
        """Per hidden layer the indices of die ``seed``'s dead nodes: each node dead with probability
        ``dead_nodes``, drawn from the die's own stream."""
        rng = np.random.default_rng([int(seed), 3])
        return [np.flatnonzero(rng.random(n) < self.dead_nodes) for n in net.sizes[1:-1]]

    def _diodes(self, net: LayeredNetwork, rng) -> list:
        """Each layer's clamp with every node's two diodes drawn (up then down, layer by layer)."""
        neurons = []
        for c, clamp in enumerate(net.neurons):
            if clamp is None:
                neurons.append(None)
                continue
            d = clamp.diode
            if type(d) not in (ShockleyDiode, MismatchedShockleyDiode):
                raise NetworkError(f"diode mismatch (IS, N) is drawn for Shockley diodes; layer {c + 1} has "
                                   f"{d.kind!r} diodes: train with --diode shockley, or leave the diode spreads at 0")
            n = net.sizes[c + 1]
            z = rng.standard_normal((4, n))
            if isinstance(d, MismatchedShockleyDiode):  # a die drawn again: spread around its own values
                is_up, is_dn, n_up, n_dn = (np.array(a) for a in (d.is_up, d.is_dn, d.n_up, d.n_dn))
            else:
                is_up = is_dn = np.full(n, d.i_s)
                n_up = n_dn = np.full(n, d.n)
            drawn = MismatchedShockleyDiode(
                i_s=d.i_s, n=d.n, vt=d.vt, gmin=d.gmin,
                is_up=is_up * np.exp(self.diode_is * z[0]), is_dn=is_dn * np.exp(self.diode_is * z[1]),
                n_up=n_up * np.maximum(1.0 + self.diode_n * z[2], 0.5),
                n_dn=n_dn * np.maximum(1.0 + self.diode_n * z[3], 0.5))
            neurons.append(DiodeClamp(drawn, clamp.v_low, clamp.v_high))
        return neurons


def _short_to_ground(die: LayeredNetwork, dead: list) -> None:
    """Shorts the dead nodes (per hidden layer, their indices) to 0 V: both bias conductances of each (to +V and
    -V) set to ``DEAD_SHORT`` times the node's total, so it sits within a millionth of its drive of 0 V (the
    Thevenin equivalent of a short to mid-rail), in the native solver and in the netlist alike."""
    totals = die.node_totals()
    for c, idx in enumerate(dead):
        die.biases[c][:, idx] = DEAD_SHORT * totals[c][idx]


DEAD_SHORT = 1e6  # a dead node's bias conductances, in units of its own total conductance
