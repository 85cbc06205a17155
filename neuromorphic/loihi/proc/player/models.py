"""Bit-accurate ProcessModel of ``SamplePlayer`` (tag ``bit_accurate_loihi``)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.loihi.microcode import Schedule, calibration_send, encode
from eqprop.neuromorphic.loihi.proc.player.process import SamplePlayer


@implements(proc=SamplePlayer, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi")
class PySamplePlayerBitAcc(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    s_pos: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    s_neg: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    sent: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    spikes: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.sources = np.asarray(proc_params["sources"], dtype=np.int64)
        self.steps, self.phases = int(proc_params["steps"]), int(proc_params["phases"])
        self.theta, self.binary = int(proc_params["theta"]), bool(proc_params["binary"])
        self.shift = int(proc_params.get("shift", 0))
        self.pre, self.cal = int(proc_params.get("pre", 1)), int(proc_params.get("cal", 0))
        self.clock = Schedule(self.steps, self.phases, self.pre)

    def run_spk(self):
        clock = self.clock
        clock.tick()
        if clock.sample >= self.sources.shape[0]:
            out = np.zeros(self.sources.shape[1], dtype=np.int64)
        elif clock.local < self.pre - 1:  # a calibration step (measured leak): the inputs are level 0
            out = calibration_send(0, clock.local, self.cal, self.sources.shape[1], self.binary)
            self.spikes[clock.slot] += int(np.count_nonzero(out))
        else:
            if clock.local == self.pre - 1:
                self.sent = np.zeros_like(self.sent)
            out, self.sent = encode(self.sources[clock.sample], self.sent, self.theta, self.binary, self.shift)
            self.spikes[clock.slot] += int(np.count_nonzero(out))
        if self.binary:
            self.s_pos.send(out > 0)
            self.s_neg.send(out < 0)
        else:
            self.s_out.send(out)
