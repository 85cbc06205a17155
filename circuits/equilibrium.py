"""The result every backend returns: node voltages per sample, with how they were obtained."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Equilibrium:
    """Settled node voltages of a batch.

    ``voltages`` is (batch, n_free): free nodes in layer order for layered networks (the order of
    ``LayeredNetwork.free_node_names()``), in ``GraphNetwork.free_nodes`` order otherwise.
    ``inputs`` are the input features the sources were set from (``network.encode_inputs`` gives the
    source voltages). ``residual`` is the largest KCL residual in amperes over every node and sample;
    a solver may pass a function instead, evaluated on first access (checking costs about a sweep, and
    training never reads it).
    """

    voltages: np.ndarray
    inputs: np.ndarray
    prediction: np.ndarray
    iterations: int
    residual: float
    beta: float = 0.0
    targets: np.ndarray | None = None
    layer_sizes: tuple | None = None
    method: str = ""
    info: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.voltages.shape[0]

    @property
    def layers(self) -> list:
        """Views of the voltages split per free layer (layered networks only)."""
        if self.layer_sizes is None:
            raise AttributeError("this equilibrium comes from a graph network; it has no layers")
        views, a = [], 0  # numpy's split at the sizes' running sums, the same views in a tenth of the time
        for n in self.layer_sizes[:-1]:
            views.append(self.voltages[:, a:a + n])
            a += n
        views.append(self.voltages[:, a:])
        return views

    @property
    def outputs(self) -> np.ndarray:
        return self.layers[-1]


def _residual(self) -> float:
    r = self.__dict__["_residual"]
    if callable(r):
        r = self.__dict__["_residual"] = float(r())
    return r


def _set_residual(self, value) -> None:
    self.__dict__["_residual"] = value


Equilibrium.residual = property(_residual, _set_residual, doc="largest KCL residual (A) over every node and sample")


def _getstate(self) -> dict:
    """Pickled (worker processes, Ray) with the residual evaluated: a solver's function does not travel."""
    state = dict(self.__dict__)
    state["_residual"] = self.residual
    return state


Equilibrium.__getstate__ = _getstate
