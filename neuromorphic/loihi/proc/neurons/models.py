"""Bit-accurate ProcessModel of ``LoihiNeurons`` (tag ``bit_accurate_loihi``): ``microcode.step`` on one
sample's integer state, on the host's schedule. Nothing here is float: the constants come integer from
``loihi.map``, and the only host work per sample is the schedule fixed at build time."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.loihi.proc.neurons.process import LoihiNeurons
from eqprop.neuromorphic.loihi.microcode import (WIDTHS, NeuronState, Peaks, Schedule, calibrate, calibration_send,
                                                 step)


@implements(proc=LoihiNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi")
class PyLoihiNeuronsBitAcc(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    s_pos: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    s_neg: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    g: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    sent: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    i_acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    p_acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    spikes: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    last_spike: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    peaks: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.program = proc_params["program"]
        self.steps, self.phases = int(proc_params["steps"]), int(proc_params["phases"])
        targets = proc_params["targets"]
        self.targets = None if targets is None else np.asarray(targets, dtype=np.int64)
        self.recorder = Peaks()
        self.pre = int(proc_params["pre"])
        self.clock = Schedule(self.steps, self.phases, self.pre)

    def run_spk(self):
        a_in = self.a_in.recv().astype(np.int64)
        p_in = self.p_in.recv().astype(np.int64)
        clock = self.clock
        clock.tick()
        n = self.v.shape[0]
        p = self.program
        if clock.local < self.pre - 1:  # a calibration step (measured leak): send the calibration payload
            if clock.local == 1:
                st = NeuronState(self.v, self.sent, self.i_acc, self.p_acc, self.g)
                calibrate(p, st, a_in, 1)
                self.g = st.g
            out = calibration_send(p.level, clock.local, p.cal_payload, n, p.binary)
            fired = int(np.count_nonzero(out))
            self.spikes[clock.slot] += fired
        elif clock.local == self.pre - 1:  # reset step: a new sample starts from zero (the measured g kept)
            if self.pre > 1:
                st = NeuronState(self.v, self.sent, self.i_acc, self.p_acc, self.g)
                calibrate(p, st, a_in, 2)
                self.g = st.g
            self.v, self.sent, self.i_acc, self.p_acc = (np.zeros(n, dtype=np.int64) for _ in range(4))
            out = np.zeros(n, dtype=np.int64)
        else:
            st = NeuronState(self.v, self.sent, self.i_acc, self.p_acc, self.g)
            t = 0 if self.targets is None else self.targets[clock.sample]
            out = step(self.program, st, a_in, p_in, clock.phase, t, self.recorder)
            self.v, self.sent, self.i_acc, self.p_acc = st.v, st.sent, st.i_acc, st.p_acc
            slot = clock.slot
            fired = int(np.count_nonzero(out))
            self.spikes[slot] += fired
            if fired:
                self.last_spike[slot] = clock.count
            if clock.count == self.steps and self.record.shape[0] > 1:
                self.record[slot] = self.v
            self.peaks[:] = [self.recorder.values[k] for k in WIDTHS]
        if self.program.binary:
            self.s_pos.send(out > 0)
            self.s_neg.send(out < 0)
        else:
            self.s_out.send(out)
