"""ProcessModel of ``BatchDense``: floating point (tag 'floating_pt'). The Loihi path uses Lava's own Dense."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.neuromorphic.simulation.proc.dense.process import BatchDense


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBatchDenseFloat(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    received: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        # currents from what has arrived so far (weights may have been rewritten by the host: recomputed)
        self.a_out.send(self.received @ self.weights.T)
        self.received = self.received + self.s_in.recv()


def seeded_rounding_model():
    """Lava's bit-approximate ``LearningDense`` model, its stochastic rounding seeded from the learning rule.

    Lava 0.10 builds the synaptic variables' random generator as ``ConnVarRandom()``, seed 2, in every
    process. Each on-chip training batch is a new Lava run, so every batch rounded its tags into the
    weights with the same numbers at the same steps: the apply step's rounding compared every tag with
    one fixed threshold, batch after batch, a biased rounding (measured on the host:
    ``benchmarks/onchip_int_emulation.py --fixed-r``). Here the generator takes the rule's ``rng_seed`` + 4,
    which changes from batch to batch and is the same for the two copies of a conductance. (Defined on
    demand: importing Lava's dense models costs a second outside a Lava process.)"""
    global _SEEDED
    if _SEEDED is None:
        from lava.magma.core.learning.random import ConnVarRandom
        from lava.proc.dense.models import PyLearningDenseModelBitApproximate
        from lava.proc.dense.process import LearningDense

        @implements(proc=LearningDense, protocol=LoihiProtocol)
        @requires(CPU)
        @tag("bit_approximate_loihi", "fixed_pt")
        class PyLearningDenseSeededRounding(PyLearningDenseModelBitApproximate):
            def _init_randoms(self) -> None:
                super()._init_randoms()
                self._conn_var_random = ConnVarRandom(seed_stochastic_rounding=int(self._learning_rule.rng_seed) + 4)

        _SEEDED = PyLearningDenseSeededRounding
    return _SEEDED


_SEEDED = None
