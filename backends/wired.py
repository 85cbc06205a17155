"""The wired backend: the network settled as crossbars with resistive row and column wires, trained in situ.

Each phase solves ``circuits.parasitics.wired(network, wire)`` (the sparse graph solver; the layout is kept and
programmed with each step's conductances, ``Crossbars``, and the wires are eliminated once per step) and each
conductance's statistic is the squared drop across its own crossing, between its row wire and its column wire,
not between the two nodes the layered model joins: the EqProp rule as a crossbar carrying its IR drops would
apply it. As the wire resistance goes to 0 it is the native backend (tested).
Its parameters, checkpoints and reports are the layered network's; evaluation settles the wired circuit too.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork
from eqprop.circuits.parasitics import Crossbars, check_wirable

from .base import ResistiveBackend


class WiredBackend(ResistiveBackend):
    name = "wired"

    def __init__(self, network: LayeredNetwork, wire: float, tol: float = 1e-10, max_iter: int = 5000):
        check_wirable(network)
        self.network = network
        self.wire = float(wire)
        self.tol = tol
        self.max_iter = max_iter
        self._crossbars = None  # laid out at the first solve, again only if the circuit changes
        self._compiled = None  # programmed once per unchanged() block (the phases of a step)

    @classmethod
    def from_config(cls, network, cfg) -> "WiredBackend":
        return cls(network, cfg.wire, tol=cfg.tol)

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.wire is None:
            raise ValueError("the wired backend needs --wire OHMS: the resistance of a crossbar wire segment "
                             "between neighbouring crossings")

    @contextmanager
    def unchanged(self):
        """The phases of a step: the crossbars programmed with the step's conductances once, not for every phase."""
        with self.network.unchanged():
            if self._compiled is not None:  # nested: the outer block's
                yield self
                return
            self._compiled = self._program()
            try:
                yield self
            finally:
                self._compiled = None

    def _program(self):
        """The wired circuit compiled with the network's present conductances (``circuits.parasitics.Crossbars``:
        laid out once, each step a sparse sum)."""
        check_wirable(self.network)
        if self._crossbars is None or not self._crossbars.fits(self.network):
            self._crossbars = Crossbars(self.network, self.wire)
        return self._crossbars.program(self.network)

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        compiled = self._compiled if self._compiled is not None else self._program()
        bars = self._crossbars
        eq = bars.solve(compiled, x, y, beta, tol=self.tol, max_iter=self.max_iter)
        return Equilibrium(eq.voltages[:, bars.neurons], np.asarray(x, dtype=float), eq.prediction, eq.iterations,
                           eq.residual, beta, eq.targets, tuple(self.network.free_sizes), "wired",
                           {"nodes": eq.voltages, "crossings": bars.crossings})

    def local_statistics(self, eq: Equilibrium) -> list:
        return self._statistics(eq, None)

    def statistics_difference(self, hi: Equilibrium, lo: Equilibrium) -> list:
        return self._statistics(hi, lo)

    def _statistics(self, hi, lo) -> list:
        """Per weight and bias array: kappa_c / 2 x the sum over the batch of the squared drop across each
        crossing (at ``hi`` minus at ``lo`` where given, as (d_hi - d_lo)(d_hi + d_lo), d_hi - d_lo from the nodes'
        own changes: the phases differ by a small nudge, and the difference of their squares, or of drops each
        rounded to the nodes' volts, would lose its digits)."""
        kappa = self.network.energy_weights
        v_hi = hi.info["nodes"]
        moved = None if lo is None else v_hi - lo.info["nodes"]  # exact where the phases are close
        weights, biases = [], []
        for c, (w_ix, u_ix) in enumerate(hi.info["crossings"]):
            d_hi = v_hi[:, w_ix] - v_hi[:, u_ix]
            if lo is None:
                s = 0.5 * kappa[c] * (d_hi ** 2).sum(0)
            else:
                change = moved[:, w_ix] - moved[:, u_ix]
                s = 0.5 * kappa[c] * (change * (2.0 * d_hi - change)).sum(0)
            n = self.network.weights[c].shape[0]
            weights.append(s[:n])
            biases.append(s[n:])
        return weights + biases
