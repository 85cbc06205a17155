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
    source voltages). ``residual`` is the largest KCL residual in amperes over every node and sample.
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
        return np.split(self.voltages, np.cumsum(self.layer_sizes)[:-1], axis=1)

    @property
    def outputs(self) -> np.ndarray:
        return self.layers[-1]
