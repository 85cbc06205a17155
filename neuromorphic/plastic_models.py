"""Floating-point ProcessModels of ``plastic_process`` (tag 'floating_pt'); the synapses are Lava's own
``LearningDense`` with its floating-point learning engine."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.circuits.serialize import clamp_from_dict

# absolute import: Lava loads this file on its own when it looks for ProcessModels
from eqprop.neuromorphic.models import relax
from eqprop.neuromorphic.plastic_process import PlasticNeurons, ValueSource


@implements(proc=ValueSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyValueSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        self.s_out.send(self.values.copy())


@implements(proc=PlasticNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPlasticNeuronsFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool)
    y1_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    conductance: np.ndarray = LavaPyType(np.ndarray, float)
    change: np.ndarray = LavaPyType(np.ndarray, float)
    readout: np.ndarray = LavaPyType(np.ndarray, float)
    beta: np.ndarray = LavaPyType(np.ndarray, float)
    targets: np.ndarray = LavaPyType(np.ndarray, float)
    plasticity: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.clamp = clamp_from_dict(proc_params["clamp_params"])
        self.alpha = float(proc_params["alpha"])
        self.gain_in, self.kappa_in = float(proc_params["gain_in"]), float(proc_params["kappa_in"])
        self.gain_out, self.kappa_out = float(proc_params["gain_out"]), float(proc_params["kappa_out"])

    def run_spk(self):
        old = self.v
        relax(self, self.a_in.recv())
        new = self.v
        self.s_out.send(new)
        # Third factors. A conductance G between u (this layer's input side, amplified by a) and v learns
        #   dG = s kappa d[(a u - v)^2] = s kappa [a^2 d(u^2) + d(v^2) - 2 a (u dv + v du)]   (s = plasticity)
        # The synapse into this layer (post = v) realises s kappa_in (d(v^2) - 2 a_in u dv) and the one out
        # of it (post = u) s kappa_out (a_out^2 d(u^2) - 2 a_out v du), both as  y1 - 4 x1 y2  with x1 the
        # presynaptic voltage / 2: the rule's constants stay plain powers of two, the scaling lives here.
        s = float(self.plasticity[0])
        dv, dsq = new - old, new * new - old * old
        self.bap.send(np.full(new.shape, s != 0.0))
        self.y1_forward.send(s * self.kappa_in * dsq)
        self.y2_forward.send(s * self.kappa_in * self.gain_in * dv)
        self.y1_backward.send(s * self.kappa_out * self.gain_out ** 2 * dsq)
        self.y2_backward.send(s * self.kappa_out * self.gain_out * dv)
