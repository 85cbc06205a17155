"""``BatchDense``: a conductance array between two layers; it integrates the graded messages it receives
(changes of the presynaptic voltages) and outputs the currents  received @ weights.T, for a whole batch."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class BatchDense(AbstractProcess):
    def __init__(self, *, weights: np.ndarray, batch: int, name: str | None = None):
        super().__init__(weights=weights, batch=batch, name=name)
        n_out, n_in = weights.shape
        self.s_in = InPort(shape=(batch, n_in))
        self.a_out = OutPort(shape=(batch, n_out))
        self.weights = Var(shape=(n_out, n_in), init=weights)
        self.received = Var(shape=(batch, n_in), init=np.zeros((batch, n_in)))
