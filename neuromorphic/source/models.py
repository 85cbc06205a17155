"""ProcessModels of the sources: floating point (tag 'floating_pt')."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.source.process import ClampedSource, ValueSource


@implements(proc=ClampedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyClampedSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)
    sent: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        delta = self.values - self.sent  # only a new batch (or new inputs) sends anything
        self.sent = self.values.copy()
        self.s_out.send(delta)


@implements(proc=ValueSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyValueSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.s_out.send(self.values.copy())
