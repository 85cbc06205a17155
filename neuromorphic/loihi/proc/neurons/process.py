"""``LoihiNeurons``: one free layer of the Loihi path (one sample at a time, as on a chip).

Its ProcessModel (tag ``bit_accurate_loihi``) runs ``microcode.step``: integer operations only, on 24-bit
state. Synaptic input arrives on ``a_in`` from Lava's own bit-accurate ``Dense`` processes (forward and
backward conductances), the pair partner's voltage on ``p_in`` (output layer, pairs readout). It sends
graded sigma-delta payloads on ``s_out`` or, in binary mode, one spike per step on ``s_pos`` / ``s_neg``.

The schedule is the host's, fixed when the network is built: per sample, with a measured leak, two calibration
steps (every node sends its calibration payload in its step, and turns what arrives into its conductance g),
then one reset step (state zero, input ignored, nothing sent), then ``phases`` phases of ``steps`` steps; phase p nudges with the program's beta p
towards the sample's targets. At the end of each phase the layer writes its voltages to ``record`` and its
message count to ``spikes``; ``peaks`` holds the largest magnitude of every state (the width check).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from eqprop.neuromorphic.loihi.microcode import WIDTHS


class LoihiNeurons(AbstractProcess):
    def __init__(self, *, program, samples: int, steps: int, phases: int = 1, targets=None, record: bool = True,
                 pre: int = 1, name: str | None = None):
        n = program.r.shape[0]
        super().__init__(program=program, samples=samples, steps=steps, phases=phases, targets=targets, pre=pre,
                         name=name)
        self.a_in = InPort(shape=(n,))
        self.p_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        self.s_pos = OutPort(shape=(n,))
        self.s_neg = OutPort(shape=(n,))
        for state in ("v", "sent", "i_acc", "p_acc", "g"):
            setattr(self, state, Var(shape=(n,), init=np.zeros(n, dtype=np.int64)))
        rows = samples * phases if record else 1
        self.record = Var(shape=(rows, n), init=np.zeros((rows, n), dtype=np.int64))
        self.spikes = Var(shape=(samples * phases,), init=np.zeros(samples * phases, dtype=np.int64))
        self.last_spike = Var(shape=(samples * phases,), init=np.zeros(samples * phases, dtype=np.int64))
        self.peaks = Var(shape=(len(WIDTHS),), init=np.zeros(len(WIDTHS), dtype=np.int64))
