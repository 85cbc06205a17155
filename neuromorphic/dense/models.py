"""ProcessModel of ``BatchDense``: floating point (tag 'floating_pt'). The Loihi path uses Lava's own Dense."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.neuromorphic.dense.process import BatchDense


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBatchDenseFloat(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    received: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        # currents from what has arrived so far (weights may have been rewritten by the host: recomputed)
        self.a_out.send(self.received @ self.weights.T)
        self.received = self.received + self.s_in.recv()
