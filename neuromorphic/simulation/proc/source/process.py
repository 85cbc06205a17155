"""Sources: ``ClampedSource`` (a batch of input voltages; sends the changes of its values) and
``ValueSource`` (one sample's clamped voltages, sent every step as graded spikes, for the plastic path)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class ClampedSource(AbstractProcess):
    def __init__(self, *, values: np.ndarray, name: str | None = None):
        super().__init__(values=values, name=name)
        self.s_out = OutPort(shape=values.shape)
        self.values = Var(shape=values.shape, init=values)
        self.sent = Var(shape=values.shape, init=np.zeros(values.shape))


class ValueSource(AbstractProcess):
    """``per_sample``/``level``: the on-chip training schedule's calibration steps (``source.models``);
    ``fixed``: the bit-approximate engine's schedule (``onchip.map``; model tag 'fixed_pt'): the values
    as integer payloads, and in the learning epilogue the codes of their sums (rails: constant values)."""

    def __init__(self, *, values: np.ndarray, fixed: dict | None = None, per_sample: int | None = None, level: int = 0,
                 name: str | None = None):
        super().__init__(fixed=fixed, per_sample=per_sample, level=level, name=name)
        self.s_out = OutPort(shape=values.shape)
        self.values = Var(shape=values.shape, init=values)


class SampleSource(AbstractProcess):
    """Plays samples on a schedule: sample k's voltages are sent, every step, during its ``per_sample`` steps
    (graded payloads; the plastic synapses read them as their presynaptic trace). ``fixed``: as for
    ``ValueSource``."""

    def __init__(self, *, sources: np.ndarray, per_sample: int, fixed: dict | None = None, name: str | None = None):
        super().__init__(sources=sources, per_sample=per_sample, fixed=fixed, name=name)
        self.s_out = OutPort(shape=(sources.shape[1],))
