"""ProcessModels of the sources: floating point (tag 'floating_pt')."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.simulation.proc.source.process import ClampedSource, SampleSource, ValueSource


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


@implements(proc=ValueSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyValueSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    values: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        per = self.proc_params.get("per_sample")
        cal = None if per is None else calibration_value(self.proc_params["level"], (self.time_step - 1) % per)
        self.s_out.send(self.values.copy() if cal is None else np.full(self.values.shape, cal))


ZERO_SPIKE = 1e-30  # volts: a spike whose payload is 0 (see spike_payload)

# On-chip training measures each node's leak (its total conductance) on chip at the start of every sample:
# in calibration steps 0 and 1 every sender at level j (sources 0, the rails of connection c: c, free layer
# i: i + 1) sends CAL_VOLTS x (1, j + 1); a node reads both currents one step later and solves for the sums
# of the synapses from below and from above (``measured_leak``); step 2 sends the voltages again.
CAL_STEPS = 3
CAL_VOLTS = 2.0**-5


def calibration_value(level: int, local: int):
    """The calibration payload (volts) of a sender at ``level`` in step ``local`` of a sample, or None."""
    return CAL_VOLTS * (1.0, float(level + 1))[local] if local < 2 else None


def measured_leak(i1, i2, index: int, gain_in: float, gain_out: float) -> np.ndarray:
    """Node conductance of free layer ``index`` from the two calibration currents (amperes): from below,
    synapses storing a_in G (forward and bias copies) sent CAL_VOLTS x (1, index + 1); from above, synapses
    storing G / a_out sent CAL_VOLTS x (1, index + 3)."""
    i1, i2 = np.asarray(i1, dtype=float) / CAL_VOLTS, np.asarray(i2, dtype=float) / CAL_VOLTS
    if gain_out == 0.0:  # the output layer: nothing above
        return i1 / gain_in
    lo, up = index + 1.0, index + 3.0
    above = (i2 - lo * i1) / (up - lo)
    return (i1 - above) / gain_in + above * gain_out


def spike_payload(values: np.ndarray) -> np.ndarray:
    """Graded payloads that are spikes even where the value is 0. Lava's float learning engine overwrites a
    synapse's x1 trace only on a non-zero payload, so a 0 V input (a blank pixel) would leave x1 at the last
    sample's value; a chip sends a spike of payload 0. 1e-30 V stands for it (its current is ~1e-37 A)."""
    return np.where(values == 0.0, ZERO_SPIKE, values)


@implements(proc=SampleSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySampleSourceFloat(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.sources = np.asarray(proc_params["sources"], dtype=float)
        self.per_sample = int(proc_params["per_sample"])

    def run_spk(self):
        k, local = divmod(self.time_step - 1, self.per_sample)
        values = self.sources[k] if k < len(self.sources) else np.zeros(self.sources.shape[1])
        cal = calibration_value(0, local)
        self.s_out.send(spike_payload(values) if cal is None else np.full(values.shape, cal))


class AbstractFixedSource(PyLoihiProcessModel):
    """Integer payloads (2^-vf V) and, in the learning epilogue of its connection's parity group, the codes
    of twice its (amplified) values in slot B, 0 in slots A and C: a clamped source does not move between
    the phases (``onchip.map``)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        from eqprop.neuromorphic.onchip.map import codes

        self._codes = codes
        f = proc_params["fixed"]
        self.fx = f
        self.rng = np.random.default_rng(int(f["seed"]))

    def payload(self, values, local):
        f = self.fx
        T, E = int(f["steps"]), int(f["epilogue"])
        cal = calibration_value(int(f["level"]), local)
        if cal is not None:
            return np.full(values.shape, int(np.rint(cal * 2.0 ** f["vf"])), dtype=np.int64)
        j = local - CAL_STEPS - 3 * T
        if 0 <= j < E:
            g, slot = divmod(j, 4)
            x = np.zeros(values.shape, dtype=np.int64)
            if g == int(f["group"]) and slot == 1:
                x = self._codes(2.0 * f["gain"] * values, f["ss"], self.rng)
            return 2 * (64 + x)
        return np.rint(values * 2.0 ** f["vf"]).astype(np.int64)


@implements(proc=ValueSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyValueSourceFixed(AbstractFixedSource):
    values: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        f = self.fx
        local = (self.time_step - 1) % (CAL_STEPS + 3 * int(f["steps"]) + int(f["epilogue"]) + 1)
        self.s_out.send(self.payload(np.asarray(self.values, dtype=float), local))


@implements(proc=SampleSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySampleSourceFixed(AbstractFixedSource):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.sources = np.asarray(proc_params["sources"], dtype=float)
        self.per_sample = int(proc_params["per_sample"])

    def run_spk(self):
        k, local = divmod(self.time_step - 1, self.per_sample)
        values = self.sources[k] if k < len(self.sources) else np.zeros(self.sources.shape[1])
        self.s_out.send(self.payload(values, local))
