"""``SamplePlayer``: the input layer of the Loihi path. It holds a data set's source voltages (integers, in
voltage LSBs) and, on the schedule of ``LoihiNeurons``, clamps sample after sample: at a sample's reset
step it starts sending that sample's voltages by sigma-delta encoding (graded: at once; binary: one
quantum per step and node until the sent value is within a quantum). ``spikes`` counts what it sent per
sample and phase."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class SamplePlayer(AbstractProcess):
    def __init__(self, *, sources: np.ndarray, steps: int, phases: int, theta: int, binary: bool,
                 shift: int = 0, pre: int = 1, cal: int = 0, name: str | None = None):
        samples, n = sources.shape
        super().__init__(sources=sources, steps=steps, phases=phases, theta=theta, binary=binary, shift=shift,
                         pre=pre, cal=cal, name=name)
        self.s_out = OutPort(shape=(n,))
        self.s_pos = OutPort(shape=(n,))
        self.s_neg = OutPort(shape=(n,))
        self.sent = Var(shape=(n,), init=np.zeros(n, dtype=np.int64))
        self.spikes = Var(shape=(samples * phases,), init=np.zeros(samples * phases, dtype=np.int64))
