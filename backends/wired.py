"""The wired backend: the network settled as crossbars with resistive row and column wires, trained in situ.

Each phase solves ``circuits.parasitics.wired(network, wire)`` (the sparse graph solver, the wires eliminated
once per batch) and each conductance's statistic is the squared drop across its own crossing, between its row
wire and its column wire, not between the two nodes the layered model joins: the EqProp rule as a crossbar
carrying its IR drops would apply it. As the wire resistance goes to 0 it is the native backend (tested).
Its parameters, checkpoints and reports are the layered network's; evaluation settles the wired circuit too.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from eqprop.circuits import Equilibrium, LayeredNetwork, solve
from eqprop.circuits.parasitics import check_wirable, neuron_voltages, wired

from .base import ResistiveBackend


class WiredBackend(ResistiveBackend):
    name = "wired"

    def __init__(self, network: LayeredNetwork, wire: float, tol: float = 1e-10, max_iter: int = 5000):
        check_wirable(network)
        self.network = network
        self.wire = float(wire)
        self.tol = tol
        self.max_iter = max_iter
        self._graph = None  # built once per unchanged() block (the phases of a step)

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
        """The phases of a step: the network laid out once, its graph checked and compiled once (its own
        ``unchanged()`` block), instead of for every phase."""
        with self.network.unchanged():
            if self._graph is not None:  # nested: the outer block's graph
                yield self
                return
            self._graph = self._layout()
            try:
                with self._graph[0].unchanged():
                    yield self
            finally:
                self._graph = None

    def _layout(self):
        graph = wired(self.network, self.wire, validate=False)  # a solve or the step's block checks it
        free = {n: i for i, n in enumerate(graph.free_nodes)}
        crossings = []  # per connection: the row-wire and column-wire node indices of each crossing
        for c, (w, b) in enumerate(zip(self.network.weights, self.network.biases)):
            rows, cols = w.shape[0] + b.shape[0], w.shape[1]
            crossings.append(tuple(np.array([[free[f"{k}{c}_{r}_{j}"] for j in range(cols)] for r in range(rows)])
                                   for k in "wu"))
        return graph, crossings

    def settle(self, x, y=None, beta=0.0, init=None) -> Equilibrium:
        graph, crossings = self._graph if self._graph is not None else self._layout()
        eq = solve(graph, x, y, beta, tol=self.tol, max_iter=self.max_iter)
        net = self.network
        return Equilibrium(neuron_voltages(graph, eq, net), np.asarray(x, dtype=float), eq.prediction, eq.iterations,
                           eq.residual, beta, eq.targets, tuple(net.free_sizes), "wired",
                           {"nodes": eq.voltages, "crossings": crossings})

    def local_statistics(self, eq: Equilibrium) -> list:
        return self._statistics(eq, None)

    def statistics_difference(self, hi: Equilibrium, lo: Equilibrium) -> list:
        return self._statistics(hi, lo)

    def _statistics(self, hi, lo) -> list:
        """Per weight and bias array: kappa_c / 2 x the sum over the batch of the squared drop across each
        crossing (at ``hi`` minus at ``lo`` where given)."""
        kappa = self.network.energy_weights
        weights, biases = [], []
        for c, (w_ix, u_ix) in enumerate(hi.info["crossings"]):
            def sq(eq):
                v = eq.info["nodes"]
                return ((v[:, w_ix] - v[:, u_ix]) ** 2).sum(0)
            s = 0.5 * kappa[c] * (sq(hi) - (sq(lo) if lo is not None else 0.0))
            n = self.network.weights[c].shape[0]
            weights.append(s[:n])
            biases.append(s[n:])
        return weights + biases
