"""Processes of the on-chip learning path: one sample at a time, plastic synapses in Lava's learning engine.

Lava's ``LearningDense`` (the Loihi 2 learning engine on the CPU simulator) holds a 1-D population per
side, so this path settles one sample per run instead of a batch; its purpose is the weight update, which
the engine accumulates over the samples of a batch.

- ``ValueSource``: clamped voltages (inputs, or the bias rails), sent every step as graded spikes.
- ``PlasticNeurons``: a layer of free nodes, like ``EqPropNeurons`` (exact node minimiser, nudging on the
  output layer), that sends its voltage every step (the graded payload drives the next synapse's current
  and becomes the synapse's presynaptic trace x1 = payload / 2), and, while ``plasticity`` is non-zero,
  the third factors the synapses' learning rule needs (see ``plastic_network``).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class ValueSource(AbstractProcess):
    def __init__(self, *, values: np.ndarray, name: str | None = None):
        super().__init__(name=name)
        self.s_out = OutPort(shape=values.shape)
        self.values = Var(shape=values.shape, init=values)


class PlasticNeurons(AbstractProcess):
    """Free nodes of one layer. ``gain_in``/``kappa_in``: gain and energy weight of the connection that
    feeds this layer; ``gain_out``/``kappa_out``: those of the connection it drives (0 for the last layer)."""

    def __init__(self, *, conductance: np.ndarray, clamp_params: dict, gain_in: float, kappa_in: float,
                 gain_out: float = 0.0, kappa_out: float = 0.0, alpha: float = 1.0,
                 readout: np.ndarray | None = None, name: str | None = None):
        n = conductance.shape[0]
        super().__init__(clamp_params=clamp_params, alpha=alpha, gain_in=gain_in, kappa_in=kappa_in,
                         gain_out=gain_out, kappa_out=kappa_out, name=name)
        self.a_in = InPort(shape=(n,))
        self.s_out = OutPort(shape=(n,))
        # third factors: towards the synapses that feed this layer (forward) and that it feeds back through
        self.bap = OutPort(shape=(n,))
        self.y1_forward = OutPort(shape=(n,))
        self.y2_forward = OutPort(shape=(n,))
        self.y1_backward = OutPort(shape=(n,))
        self.y2_backward = OutPort(shape=(n,))
        self.v = Var(shape=(n,), init=np.zeros(n))
        self.conductance = Var(shape=(n,), init=conductance)
        self.change = Var(shape=(1,), init=np.array([np.inf]))
        n_t = 1 if readout is None else readout.shape[0]
        self.readout = Var(shape=(n_t, n), init=np.zeros((n_t, n)) if readout is None else readout)
        self.beta = Var(shape=(1,), init=np.zeros(1))
        self.targets = Var(shape=(n_t,), init=np.zeros(n_t))
        self.plasticity = Var(shape=(1,), init=np.zeros(1))
