"""Fixed-point ProcessModels (tag 'fixed_pt') with Loihi 2 bit widths, and the explicit float -> fixed mapping.

Units (all integers inside the models):
- voltage: 1 LSB = 2^-20 V; the state is 24 bits signed (+-8 V), saturating;
- conductance: an 8-bit signed mantissa per synapse with one shared exponent per connection, chosen so the
  largest weight uses the full mantissa (``quantize_weights``); node totals are 2^-40 S units;
- current: 1 unit = 2^-60 A (voltage LSB x 2^-40 S), accumulated in 64 bits.
A neuron cannot divide, so the host gives each node its reciprocal total conductance as an integer
number of ohms (like a per-compartment decay constant; 1e-6 relative for microsiemens nodes), and the
update is v = clip((T * R_i) >> 40): 64-bit products for currents up to about 2^44 units (16 uA).
Graded spikes carry voltage changes in LSBs. Only ideal-diode clamps (or none) exist in fixed point.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from eqprop.neuromorphic.models import NeuronVars
from eqprop.neuromorphic.process import BatchDense, ClampedSource, EqPropNeurons
from eqprop.neuromorphic.quantize import G_FRAC, I_FRAC, V_FRAC, V_MAX, quantize_weights, to_volts_int


@implements(proc=ClampedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyClampedSourceFixed(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    values: np.ndarray = LavaPyType(np.ndarray, float)
    sent: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        target = to_volts_int(self.values)
        delta = target - to_volts_int(self.sent)
        self.sent = target * 2.0**-V_FRAC
        self.s_out.send(delta)


@implements(proc=BatchDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBatchDenseFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=64)
    weights: np.ndarray = LavaPyType(np.ndarray, float)
    received: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        mantissa, exponent = quantize_weights(self.weights)
        got = np.round(self.received).astype(np.int64)  # integrated voltage messages, in LSBs
        # received (V LSB) x mantissa (2^exponent S) -> current units 2^-60 A
        self.a_out.send((got @ mantissa.T) * (2 ** (exponent + G_FRAC)) if exponent + G_FRAC >= 0
                        else (got @ mantissa.T) >> -(exponent + G_FRAC))
        self.received = self.received + self.s_in.recv()


@implements(proc=EqPropNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyEqPropNeuronsFixed(NeuronVars):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=64)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        clamp = proc_params["clamp_params"]
        if clamp is not None and clamp["diode"] != "ideal":
            raise ValueError("fixed-point neurons model ideal-diode clamps only")
        self.rails = None if clamp is None else (int(to_volts_int(clamp["v_low"])), int(to_volts_int(clamp["v_high"])))
        self.v_int = None

    def run_spk(self):
        if self.v_int is None:
            self.v_int = to_volts_int(self.v)
        drive = self.a_in.recv() + np.round(self.bias_current * 2.0**I_FRAC).astype(np.int64)
        beta = int(round(float(self.beta[0]) * 2.0**G_FRAC))
        if beta:
            r = np.round(self.readout).astype(np.int64)  # +-1 entries
            err = to_volts_int(self.targets) - self.v_int @ r.T
            drive = drive + beta * (err @ r)
        ohms = np.round(1.0 / self.conductance).astype(np.int64)  # the host-given reciprocal, in ohms
        target = (drive * ohms) >> G_FRAC  # 2^-60 A x ohms = 2^-60 V, >> 40 -> 2^-20 V LSBs
        if self.rails is not None:
            target = np.clip(target, *self.rails)
        target = np.clip(target, -V_MAX, V_MAX)
        self.change[0] = float(np.abs(target - self.v_int).max(initial=0)) * 2.0**-V_FRAC
        self.v_int = target
        self.v = target * 2.0**-V_FRAC
        delta = target - to_volts_int(self.sent)
        fire = np.abs(delta) * 2.0**-V_FRAC > self.threshold[0]
        out = np.where(fire, delta, 0)
        self.sent = self.sent + out * 2.0**-V_FRAC
        self.messages[0] += float(fire.sum())
        self.s_out.send(out)
