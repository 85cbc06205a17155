"""``EqPropNeurons``: a layer of free nodes. Each step it sums its input currents and moves its voltage
towards the node's exact minimiser given its neighbours (leaky integration, whose fixed points are the
network's equilibria; ``alpha`` = dt / tau). Output layers add the nudging current beta R^T (y - R v). It
sends a graded spike (the voltage change since its last message) only where that change exceeds
``threshold`` (sigma-delta messaging, O'Connor et al. 2019), and counts the messages it sends. With
``batch`` its state is (batch, units), so one Lava execution settles a batch; with ``batch=None`` it is
one sample, as on a chip.

``PlasticNeurons``: the same layer for the on-chip learning path (one sample, Lava's LearningDense
synapses): it sends its voltage every step (the graded payload drives the next synapse's current and
becomes the synapse's presynaptic trace) and, while ``plasticity`` is non-zero, the third factors the
synapses' learning rule needs (see ``onchip.plastic``). ``gain_in``/``kappa_in``: gain and energy weight
of the connection that feeds it; ``gain_out``/``kappa_out``: those of the connection it drives.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class EqPropNeurons(AbstractProcess):
    """Free nodes of one layer. ``readout`` (targets x units) reads the prediction as R v for nudging."""

    def __init__(self, *, conductance: np.ndarray, clamp_params: dict, batch: int | None = None,
                 bias_current: np.ndarray | None = None, alpha: float = 1.0, threshold: float = 0.0,
                 readout: np.ndarray | None = None, name: str | None = None, **params):
        n = conductance.shape[0]
        super().__init__(batch=batch, clamp_params=clamp_params, alpha=alpha, name=name, **params)
        shape = (n,) if batch is None else (batch, n)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=np.zeros(shape))
        self.sent = Var(shape=shape, init=np.zeros(shape))
        self.conductance = Var(shape=(n,), init=conductance)
        self.bias_current = Var(shape=(n,), init=np.zeros(n) if bias_current is None else bias_current)
        self.threshold = Var(shape=(1,), init=np.array([threshold]))
        self.change = Var(shape=(1,), init=np.array([np.inf]))
        self.messages = Var(shape=(1,), init=np.zeros(1))
        n_t = 1 if readout is None else readout.shape[0]
        self.readout = Var(shape=(n_t, n), init=np.zeros((n_t, n)) if readout is None else readout)
        self.beta = Var(shape=(1,), init=np.zeros(1))
        t_shape = (n_t,) if batch is None else (batch, n_t)
        self.targets = Var(shape=t_shape, init=np.zeros(t_shape))


class PlasticNeurons(EqPropNeurons):
    def __init__(self, *, conductance: np.ndarray, clamp_params: dict, gain_in: float, kappa_in: float,
                 gain_out: float = 0.0, kappa_out: float = 0.0, alpha: float = 1.0,
                 readout: np.ndarray | None = None, name: str | None = None):
        super().__init__(conductance=conductance, clamp_params=clamp_params, alpha=alpha, readout=readout,
                         name=name, gain_in=gain_in, kappa_in=kappa_in, gain_out=gain_out, kappa_out=kappa_out)
        n = conductance.shape[0]
        # third factors: towards the synapses that feed this layer (forward) and that it feeds back through
        self.bap = OutPort(shape=(n,))
        self.y1_forward = OutPort(shape=(n,))
        self.y2_forward = OutPort(shape=(n,))
        self.y1_backward = OutPort(shape=(n,))
        self.y2_backward = OutPort(shape=(n,))
        self.plasticity = Var(shape=(1,), init=np.zeros(1))


class TaggedNeurons(EqPropNeurons):
    """A free layer of the on-chip training path (one sample at a time, Lava's LearningDense synapses, a
    schedule fixed at build time, see ``onchip.network``).

    Per sample: three calibration steps in which it measures its nodes' leak (total conductance) from the
    currents of known payloads (``source.models.measured_leak``; ``conductance`` is only its shape), then
    ``steps`` free steps, ``steps`` at +beta, ``steps`` at -beta, then one apply step. At the
    last step of each nudged phase it sends its synapses the third factors that make their tag take
    s (a u - v)^2 (s = +1 at +beta, -1 at -beta), pre-scaled by each copy's learning coefficient and unit;
    on the apply step that ends a batch it sends a back-propagating spike (bap), on which every synapse adds
    its tag to its weight and clears it. ``coef`` holds the coefficients (forward, bias, backward; the
    host scales them once per epoch for the rate decay); ``free_out`` records the free-phase voltages.

    ``fixed`` (the bit-approximate engine's integer interface, ``onchip.map``): integer currents in and
    payloads out, 7-bit third factors, and a learning epilogue of coded phase differences after each
    sample's -beta phase (model tag 'fixed_pt'); None for the float engine."""

    def __init__(self, *, conductance: np.ndarray, clamp_params: dict, samples: int, steps: int, batch: int,
                 gain_in: float, gain_out: float, coef: np.ndarray, targets=None, beta: float = 0.0,
                 alpha: float = 1.0, readout: np.ndarray | None = None, fixed: dict | None = None,
                 index: int = 0, name: str | None = None):
        super().__init__(conductance=conductance, clamp_params=clamp_params, alpha=alpha, readout=readout,
                         name=name, samples=samples, steps=steps, batch_size=batch, gain_in=gain_in,
                         gain_out=gain_out, schedule_targets=targets, schedule_beta=beta, fixed=fixed, index=index)
        n = conductance.shape[0]
        self.bap = OutPort(shape=(n,))
        for side in ("forward", "bias", "backward"):
            for k in (1, 2, 3):
                setattr(self, f"y{k}_{side}", OutPort(shape=(n,)))
        self.coef = Var(shape=(3,), init=np.asarray(coef, dtype=float))
        self.free_out = Var(shape=(samples, n), init=np.zeros((samples, n)))
