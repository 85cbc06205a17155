"""Integer ProcessModel of ``Nudger`` (tag ``fixed_pt``). Asynchronous: it handles one period per word from the
host, in order; the host's words are the clock (no per-step barrier with the other processes)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyAsyncProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.async_protocol import AsyncProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.cosim.nudger.process import Nudger
from eqprop.cosim.protocol import shift_round


@implements(proc=Nudger, protocol=AsyncProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNudgerFixed(PyAsyncProcessModel):
    host_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    host_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    ctrl_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    adc_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    ops: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.pos = np.asarray(proc_params["pos"], dtype=np.int64)
        self.neg = np.asarray(proc_params["neg"], dtype=np.int64)  # -1: the target's - side is ground
        self.layout = proc_params["layout"]
        self.n_ctrl = self.layout.size

    def run_async(self):
        for _ in range(self.num_steps):
            self.period()

    def period(self):
        word = np.asarray(self.host_in.csp_ports[-1].recv())
        ctrl, adc = word[:self.n_ctrl], word[self.n_ctrl:]
        codes = np.rint(adc).astype(np.int64)
        w = self.layout.unpack(ctrl)
        out = np.zeros(len(self.pos), dtype=np.int64)
        if w["sign"]:
            pred = codes[self.pos] - np.where(self.neg >= 0, codes[np.maximum(self.neg, 0)], 0)
            err = w["y"] - pred
            m, s = w["beta"]
            out = w["sign"] * shift_round(err, m, s).astype(np.int64)
            self.ops[0] += 4 * len(self.pos)  # subtract, subtract, multiply, shift per target
        self.host_out.csp_ports[-1].send(out.astype(float))  # the host waits for this; the Learner does not
        self.ctrl_out.send(ctrl)
        self.adc_out.send(adc)
