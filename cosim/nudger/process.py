"""``Nudger``: the nudging controller of the co-simulation. Every period it reads the ADC codes of the output
nodes and the control word, and sets the nudging DACs to sign * beta * (y - R v) in DAC codes, in integer
arithmetic: e = y_code - (code(+) - code(-)), dac = sign * ((e * m) >> s) with m / 2^s = beta * ADC lsb / DAC lsb
(the host's fixed-point multiplier). ``ops`` counts its integer operations."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class Nudger(AbstractProcess):
    def __init__(self, *, n_nodes: int, pos: np.ndarray, neg: np.ndarray, layout, name: str | None = None):
        n_targets = len(pos)
        super().__init__(pos=np.asarray(pos), neg=np.asarray(neg), layout=layout, name=name)
        self.adc_in = InPort(shape=(n_nodes,))
        self.ctrl_in = InPort(shape=(layout.size,))
        self.dac_out = OutPort(shape=(n_targets,))
        self.ops = Var(shape=(1,), init=np.zeros(1, dtype=np.int64))
