"""Integer ProcessModel of ``Nudger`` (tag ``fixed_pt``)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.cosim.nudger.process import Nudger
from eqprop.cosim.protocol import shift_round


@implements(proc=Nudger, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNudgerFixed(PyLoihiProcessModel):
    adc_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    ctrl_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    dac_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    ops: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.pos = np.asarray(proc_params["pos"], dtype=np.int64)
        self.neg = np.asarray(proc_params["neg"], dtype=np.int64)  # -1: the target's - side is ground
        self.layout = proc_params["layout"]

    def run_spk(self):
        codes = np.rint(self.adc_in.recv()).astype(np.int64)
        w = self.layout.unpack(self.ctrl_in.recv())
        out = np.zeros(len(self.pos), dtype=np.int64)
        if w["sign"]:
            pred = codes[self.pos] - np.where(self.neg >= 0, codes[np.maximum(self.neg, 0)], 0)
            err = w["y"] - pred
            m, s = w["beta"]
            out = w["sign"] * shift_round(err, m, s).astype(np.int64)
            self.ops[0] += 4 * len(self.pos)  # subtract, subtract, multiply, shift per target
        self.dac_out.send(out.astype(float))
