"""ProcessModels of the sources: floating point (tag 'floating_pt') and fixed point (tag 'fixed_pt')."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.quantize import V_FRAC, to_volts_int
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


@implements(proc=ClampedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyClampedSourceFixed(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    values: np.ndarray = LavaPyType(np.ndarray, float)
    sent: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        target = to_volts_int(self.values)
        delta = target - to_volts_int(self.sent)
        self.sent = target * 2.0**-V_FRAC
        self.s_out.send(delta)


@implements(proc=ValueSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyValueSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.s_out.send(self.values.copy())
