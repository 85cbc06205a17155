"""Lava Processes (the interfaces) of an EqProp network; their behaviour is in ``models.py``.

Every port carries a whole batch: shapes are (batch, units), so one Lava execution settles a batch.
- ``ClampedSource``: the input voltage sources (+x/-x and nothing else); sends changes of its values.
- ``BatchDense``: a conductance array between two layers; integrates the graded messages it receives
  (changes of the presynaptic voltages) and outputs the currents  received @ weights.T.
- ``EqPropNeurons``: a layer of free nodes. Each step it sums its input currents and moves its voltage
  towards the node's exact minimiser given its neighbours (leaky integration, whose fixed points are the
  network's equilibria; ``alpha`` = dt / tau). Output layers add the nudging current beta R^T (y - R v).
  It sends a graded spike (the voltage change since its last message) only where that change exceeds
  ``threshold`` (sigma-delta messaging, O'Connor et al. 2019), and counts the messages it sends.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class ClampedSource(AbstractProcess):
    def __init__(self, *, values: np.ndarray, name: str | None = None):
        super().__init__(values=values, name=name)
        self.s_out = OutPort(shape=values.shape)
        self.values = Var(shape=values.shape, init=values)
        self.sent = Var(shape=values.shape, init=np.zeros(values.shape))


class BatchDense(AbstractProcess):
    def __init__(self, *, weights: np.ndarray, batch: int, name: str | None = None):
        super().__init__(weights=weights, batch=batch, name=name)
        n_out, n_in = weights.shape
        self.s_in = InPort(shape=(batch, n_in))
        self.a_out = OutPort(shape=(batch, n_out))
        self.weights = Var(shape=(n_out, n_in), init=weights)
        self.received = Var(shape=(batch, n_in), init=np.zeros((batch, n_in)))


class EqPropNeurons(AbstractProcess):
    """Free nodes of one layer. ``readout`` (targets x units) reads the prediction as R v for nudging."""

    def __init__(self, *, batch: int, conductance: np.ndarray, bias_current: np.ndarray, clamp_params: dict,
                 alpha: float = 1.0, threshold: float = 0.0, readout: np.ndarray | None = None,
                 name: str | None = None):
        n = conductance.shape[0]
        super().__init__(batch=batch, clamp_params=clamp_params, alpha=alpha, name=name)
        self.a_in = InPort(shape=(batch, n))
        self.s_out = OutPort(shape=(batch, n))
        self.v = Var(shape=(batch, n), init=np.zeros((batch, n)))
        self.sent = Var(shape=(batch, n), init=np.zeros((batch, n)))
        self.conductance = Var(shape=(n,), init=conductance)
        self.bias_current = Var(shape=(n,), init=bias_current)
        self.threshold = Var(shape=(1,), init=np.array([threshold]))
        self.change = Var(shape=(1,), init=np.array([np.inf]))
        self.messages = Var(shape=(1,), init=np.zeros(1))
        n_t = 1 if readout is None else readout.shape[0]
        self.readout = Var(shape=(n_t, n), init=np.zeros((n_t, n)) if readout is None else readout)
        self.beta = Var(shape=(1,), init=np.zeros(1))
        self.targets = Var(shape=(batch, n_t), init=np.zeros((batch, n_t)))

