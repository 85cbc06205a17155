"""Floating-point ProcessModels of the Processes in ``process.py`` (Lava's CPU simulator, tag 'floating_pt').

Connections are buffered one step, like Lava's own Dense: the currents a layer sees at step t come
from its neighbours' messages of step t-1, which keeps the recurrent (bidirectional) graph free of
deadlock and makes the network a delayed Jacobi iteration whose fixed points are the equilibria.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.circuits.node_solve import solve_nodes
from eqprop.circuits.serialize import clamp_from_dict

# absolute import: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.process import BatchDense, ClampedSource, EqPropNeurons


@implements(proc=ClampedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyClampedSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)
    sent: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        delta = self.values - self.sent  # only a new batch (or new inputs) sends anything
        self.sent = self.values.copy()
        self.s_out.send(delta)


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


class NeuronVars(PyLoihiProcessModel):
    """The host-facing Vars of EqPropNeurons, in volts and siemens, shared by the float and fixed-point models."""

    v: np.ndarray = LavaPyType(np.ndarray, float)
    sent: np.ndarray = LavaPyType(np.ndarray, float)
    conductance: np.ndarray = LavaPyType(np.ndarray, float)
    bias_current: np.ndarray = LavaPyType(np.ndarray, float)
    threshold: np.ndarray = LavaPyType(np.ndarray, float)
    change: np.ndarray = LavaPyType(np.ndarray, float)
    messages: np.ndarray = LavaPyType(np.ndarray, float)
    readout: np.ndarray = LavaPyType(np.ndarray, float)
    beta: np.ndarray = LavaPyType(np.ndarray, float)
    targets: np.ndarray = LavaPyType(np.ndarray, float)


def relax(model, drive) -> None:
    """One float neuron step, shared by the plain and the plastic neurons: the nudging current
    beta R^T (y - R v) from the layer's own voltages, then a step alpha towards the node's exact minimiser."""
    beta = float(model.beta[0])
    if beta != 0.0:
        drive = drive + beta * (model.targets - model.v @ model.readout.T) @ model.readout
    target = solve_nodes(model.clamp, model.conductance, drive, model.v)
    new = model.v + model.alpha * (target - model.v)
    model.change[0] = float(np.abs(new - model.v).max(initial=0.0))
    model.v = new


@implements(proc=EqPropNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyEqPropNeuronsFloat(NeuronVars):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.clamp = clamp_from_dict(proc_params["clamp_params"])
        self.alpha = float(proc_params["alpha"])

    def run_spk(self):
        relax(self, self.a_in.recv() + self.bias_current)
        delta = self.v - self.sent
        fire = np.abs(delta) > self.threshold[0]
        out = np.where(fire, delta, 0.0)
        self.sent = self.sent + out
        self.messages[0] += float(fire.sum())
        self.s_out.send(out)
