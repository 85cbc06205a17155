"""ProcessModels of ``BatchDense``: floating point (tag 'floating_pt') and fixed point (tag 'fixed_pt': 8-bit
mantissas with a shared exponent, currents in 2^-60 A units)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.neuromorphic.dense.process import BatchDense
from eqprop.neuromorphic.quantize import G_FRAC, quantize_weights


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


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBatchDenseFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=64)
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    received: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        mantissa, exponent = quantize_weights(self.weights)
        got = np.round(self.received).astype(np.int64)  # integrated voltage messages, in LSBs
        # received (V LSB) x mantissa (2^exponent S) -> current units 2^-60 A
        self.a_out.send((got @ mantissa.T) * (2 ** (exponent + G_FRAC)) if exponent + G_FRAC >= 0
                        else (got @ mantissa.T) >> -(exponent + G_FRAC))
        self.received = self.received + self.s_in.recv()
