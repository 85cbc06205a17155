"""ProcessModels of the neuron layers: floating point (tag 'floating_pt') on one abstract base shared with
the plastic variant. (The integer, Loihi-faithful neurons are ``loihi.proc.neurons``.)

Connections are buffered one step, like Lava's own Dense: the currents a layer sees at step t come from
its neighbours' messages of step t-1, which keeps the recurrent (bidirectional) graph free of deadlock
and makes the network a delayed Jacobi iteration whose fixed points are the equilibria.
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
# absolute imports: Lava loads this file on its own (as module 'models') when it looks for ProcessModels
from eqprop.neuromorphic.simulation.proc.neurons.process import EqPropNeurons, PlasticNeurons, TaggedNeurons
from eqprop.neuromorphic.loihi.microcode import mul_shift
from eqprop.neuromorphic.simulation.proc.source.models import CAL_STEPS, calibration_value, measured_leak, spike_payload


class NeuronVars(PyLoihiProcessModel):
    """The host-facing Vars of EqPropNeurons, in volts and siemens, shared by the plain and the plastic models."""

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


class AbstractEqPropNeuronsFloat(NeuronVars):
    """The float neuron step shared by the plain and the plastic neurons."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.clamp = clamp_from_dict(proc_params["clamp_params"])
        self.alpha = float(proc_params["alpha"])

    def relax(self, drive) -> None:
        """The nudging current beta R^T (y - R v) from the layer's own voltages, then a step alpha towards the
        node's exact minimiser."""
        beta = float(self.beta[0])
        if beta != 0.0:
            drive = drive + beta * (self.targets - self.v @ self.readout.T) @ self.readout
        target = solve_nodes(self.clamp, self.conductance, drive, self.v)
        new = self.v + self.alpha * (target - self.v)
        self.change[0] = float(np.abs(new - self.v).max(initial=0.0))
        self.v = new


@implements(proc=EqPropNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyEqPropNeuronsFloat(AbstractEqPropNeuronsFloat):
    def run_spk(self):
        self.relax(self.a_in.recv() + self.bias_current)
        delta = self.v - self.sent
        fire = np.abs(delta) > self.threshold[0]
        out = np.where(fire, delta, 0.0)
        self.sent = self.sent + out
        self.messages[0] += float(fire.sum())
        self.s_out.send(out)


@implements(proc=PlasticNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPlasticNeuronsFloat(AbstractEqPropNeuronsFloat):
    bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool)
    y1_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    plasticity: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.gain_in, self.kappa_in = float(proc_params["gain_in"]), float(proc_params["kappa_in"])
        self.gain_out, self.kappa_out = float(proc_params["gain_out"]), float(proc_params["kappa_out"])

    def run_spk(self):
        old = self.v
        self.relax(self.a_in.recv() + self.bias_current)
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


class AbstractTaggedNeurons(AbstractEqPropNeuronsFloat):
    """The schedule and Vars of ``TaggedNeurons``, shared by the float and the fixed-point models."""

    bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool)
    y1_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y1_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y2_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y3_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    coef: np.ndarray = LavaPyType(np.ndarray, float)
    free_out: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.samples, self.steps = int(proc_params["samples"]), int(proc_params["steps"])
        self.batch_size = int(proc_params["batch_size"])
        self.gain_in, self.gain_out = float(proc_params["gain_in"]), float(proc_params["gain_out"])
        t = proc_params["schedule_targets"]
        self.schedule_targets = None if t is None else np.asarray(t, dtype=float)
        self.schedule_beta = float(proc_params["schedule_beta"])
        self.index = int(proc_params["index"])
        self._i1 = None

    def calibrate(self, local: int, current) -> tuple:
        """Steps 0-2 of a sample (see ``source.models``): this layer's calibration payload (None in step 2),
        and the node's leak measured from the currents that arrive in steps 1 and 2 (the host never sets it)."""
        if local == 1:
            self._i1 = current
        elif local == 2:
            self.conductance = measured_leak(self._i1, current, self.index, self.gain_in, self.gain_out)
        return calibration_value(self.index + 1, local)

    def run_spk(self):
        T = self.steps
        k, local = divmod(self.time_step - 1, CAL_STEPS + 3 * T + 1)
        current = self.a_in.recv() + self.bias_current
        if local < CAL_STEPS:
            cal = self.calibrate(local, current)
            self.s_out.send(spike_payload(self.v) if cal is None else np.full(self.v.shape, cal))
            zero = np.zeros_like(self.v)
            for side in ("forward", "bias", "backward"):
                for j in (1, 2, 3):
                    getattr(self, f"y{j}_{side}").send(zero)
            self.bap.send(np.zeros(self.v.shape, dtype=bool))
            return
        local -= CAL_STEPS
        phase = min(local // T, 3)  # 0 free, 1 +beta, 2 -beta, 3 apply
        self.beta[0] = (0.0, self.schedule_beta, -self.schedule_beta, 0.0)[phase]
        if self.schedule_targets is not None and k < self.samples:
            self.targets = self.schedule_targets[k]
        if phase < 3:
            self.relax(current)
        v = self.v
        self.s_out.send(spike_payload(v))
        if local == T - 1 and k < self.samples:
            self.free_out[k] = v
        s = {2 * T - 1: 1.0, 3 * T - 1: -1.0}.get(local, 0.0) if k < self.samples else 0.0
        # the tag of a synapse of conductance G between u (input side, amplified by a) and v takes
        #   k (a u - v)^2 = k v^2 - 2 a k u v + a^2 k u^2  =  y1 + x1 y2 + x1 x1 y3,
        # with x1 the presynaptic voltage; k = s x (its copy's coefficient): forward copies store a G, so
        # learn a dG; backward copies store G / a, so learn dG / a; the coefficients carry -eta and the unit
        zero = np.zeros_like(v)
        for side, pre_gain, post_gain, c in (("forward", self.gain_in, 1.0, self.coef[0]),
                                             ("bias", self.gain_in, 1.0, self.coef[1]),
                                             ("backward", 1.0, self.gain_out, self.coef[2])):
            if s == 0.0 or c == 0.0:
                y1 = y2 = y3 = zero
            elif side == "backward":  # post is u (this layer), pre x1 is v
                kk = s * c
                y1, y2, y3 = kk * (post_gain * v) ** 2, -2.0 * post_gain * kk * v, np.full_like(v, kk)
            else:  # post is v (this layer), pre x1 is u
                kk = s * c
                y1, y2, y3 = kk * v * v, -2.0 * pre_gain * kk * v, np.full_like(v, kk * pre_gain ** 2)
            getattr(self, f"y1_{side}").send(y1)
            getattr(self, f"y2_{side}").send(y2)
            getattr(self, f"y3_{side}").send(y3)
        end_of_batch = (k + 1) % self.batch_size == 0 or k + 1 == self.samples
        self.bap.send(np.full(v.shape, phase == 3 and end_of_batch and k < self.samples))


@implements(proc=TaggedNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyTaggedNeuronsFloat(AbstractTaggedNeurons):
    pass


@implements(proc=TaggedNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyTaggedNeuronsFixed(AbstractTaggedNeurons):
    """The integer interface the bit-approximate learning engine needs (``onchip.map``): integer currents
    in (2^-frac A), integer voltage payloads out (2^-vf V), 7-bit third factors. The node update itself
    is the float one on the decoded current (the Loihi path's integer microcode is ``loihi.proc.neurons``).

    After the -beta phase, a learning epilogue of 3 slots per connection parity: the layer sends its coded
    phase differences and sums as payloads 2 (64 + X) (the engine keeps x1 = payload / 2) and as third
    factors, each code drawn once per sample (stochastic rounding) and used by both copies of a conductance,
    so both copies see the same products (see ``onchip.map``)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    y1_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y2_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3_forward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y1_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y2_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3_bias: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y1_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y2_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y3_backward: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        f = proc_params["fixed"]
        self.fx = f
        self.epilogue = int(f["epilogue"])
        self.rng = np.random.default_rng(int(f["seed"]))
        self.plus = self._plus_i = None
        self.codes = None
        self.clipped = 0
        self.ints = f.get("integer")  # integer neurons (``onchip.network.integer_neurons``), or None: float ones
        self.vi = self.g_int = None  # made on the first step (the Vars are not set yet here)

    def _code(self, x, lsb):
        from eqprop.neuromorphic.onchip.map import CODE_MAX, codes
        c = codes(x, lsb, self.rng)
        self.clipped += int(np.count_nonzero(np.abs(c) == CODE_MAX))
        return c

    def _encode(self, plus, minus) -> dict:
        """This sample's codes: as the upper layer v of connection i (forward and bias copies) and as the
        lower layer u~ = a u of connection i+1. Integer neurons code their voltage LSBs in integers."""
        if self.ints is not None:
            return self._encode_int(self._plus_i, self.vi)
        f = self.fx
        d, s = plus - minus, plus + minus
        i = f["in"]
        out = {"v": (self._code(s, i["ss"]), self._code(d, i["sd"]), self._code(d * s, 64 * i["sd"] * i["ss"])),
               "bias": (self._code(d, i["bsd"]), self._code(d * s, 64 * i["bsd"] * i["bss"]))}
        o = f["out"]
        if o is not None:
            a = self.gain_out
            du, su = a * d, a * s
            out["u"] = (self._code(du, o["sd"]), self._code(su, o["ss"]), self._code(du * su, 64 * o["sd"] * o["ss"]))
        return out

    def _encode_int(self, plus, minus) -> dict:
        """``_encode`` in integers (``onchip.map.int_codes``): sums, differences and their products of the
        voltage LSBs, each times a constant multiplier, plus an integer random draw, shifted; a = 2^k a shift."""
        from eqprop.neuromorphic.onchip.map import CODE_MAX, int_codes

        w = self.ints["codes"]
        d, s = plus - minus, plus + minus

        def code(x, const):
            c = int_codes(x, *const, self.rng)
            self.clipped += int(np.count_nonzero(np.abs(c) == CODE_MAX))
            return c

        v = w["v"]
        out = {"v": (code(s, v[0]), code(d, v[1]), code(d * s, v[2])),
               "bias": (code(d, w["bias"][0]), code(d * s, w["bias"][1]))}
        if "u" in w:
            u, k = w["u"], w["k_out"]
            du, su = d << k, s << k
            out["u"] = (code(du, u[0]), code(su, u[1]), code(du * su, u[2]))
        return out

    def _calibrate_int(self, local: int, a_in) -> None:
        """The node's conductance from the calibration currents, in integers: B2 = I2 - (i + 1) I1 and
        F2 = 2 I1 - B2 are 2 CAL_VOLTS times the sums of its synapses from above and below; g = F / a_in +
        B a_out with power-of-two gains is F2 + (B2 << (k_in + k_out)), shifted into g's units."""
        w = self.ints
        if local == 1:
            self._i1 = a_in
        elif local == 2:
            b2 = a_in - (self.index + 1) * self._i1
            g2 = 2 * self._i1 - b2 + (b2 << (w["k_in"] + w["k_out"]))
            t = w["t"]
            self.g_int = g2 << t if t >= 0 else mul_shift(g2, 1, -t)

    def _relax_int(self, a_in, phase: int, k: int) -> None:
        """One step of v += (k (I - (g v >> gs))) >> ks in voltage LSBs, the nudge beta R^T (t - R v) in a nudged
        phase (output layer), an ideal clamp's rails as a compare-and-select."""
        w = self.ints
        cur = a_in
        if "beta" in w and phase in (1, 2) and k < self.samples:
            err = (w["targets"][k] - w["readout"] @ self.vi) @ w["readout"]
            nudge = mul_shift(err, w["beta"][0], w["beta"][1])
            cur = cur + nudge if phase == 1 else cur - nudge
        cur = cur - mul_shift(self.vi, self.g_int, w["gs"])
        vi = self.vi + mul_shift(cur, w["k"], w["ks"])
        if w["rails"] is not None:
            vi = np.minimum(np.maximum(vi, w["rails"][0]), w["rails"][1])
        self.vi = vi

    def run_spk(self):
        T, E = self.steps, self.epilogue
        f = self.fx
        k, local = divmod(self.time_step - 1, CAL_STEPS + 3 * T + E + 1)
        raw = self.a_in.recv().astype(np.int64)
        current = raw.astype(float) * 2.0 ** -f["frac"]
        v = self.v
        n = v.shape[0]
        if self.ints is not None and self.vi is None:
            self.vi, self.g_int = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        zero = np.zeros(n, dtype=np.int64)
        ys = {side: [zero, zero, zero] for side in ("forward", "bias", "backward")}
        if self.ints is not None and local < CAL_STEPS:
            self._calibrate_int(local, raw)
            cal = calibration_value(self.index + 1, local)
        else:
            cal = self.calibrate(local, current) if local < CAL_STEPS else None
        local -= CAL_STEPS
        phase = min(local // T, 3) if local >= 0 else -1  # -1 calibration, 0 free, 1 +beta, 2 -beta, 3 epilogue
        self.beta[0] = (0.0, self.schedule_beta, -self.schedule_beta, 0.0)[phase] if phase >= 0 else 0.0
        if self.schedule_targets is not None and k < self.samples:
            self.targets = self.schedule_targets[k]
        if 0 <= phase < 3:
            if self.ints is None:
                self.relax(current)
            else:
                self._relax_int(raw, phase, k)
                self.v = self.vi * 2.0 ** -f["vf"]  # the voltages the epilogue codes (and the host reads)
        v = self.v
        payload = self.vi.copy() if self.ints is not None else np.rint(v * 2.0 ** f["vf"]).astype(np.int64)
        if cal is not None:
            payload = np.full(n, int(np.rint(cal * 2.0 ** f["vf"])), dtype=np.int64)
        if k < self.samples and local >= 0:
            if local == T - 1:
                self.free_out[k] = v
            elif local == 2 * T - 1:
                self.plus = v.copy()
                self._plus_i = None if self.vi is None else self.vi.copy()
            elif local == 3 * T - 1:
                self.codes = self._encode(self.plus, v)
            elif 3 * T <= local < 3 * T + E:
                g, slot = divmod(local - 3 * T, 4)
                payload, ys = self._slot(g, slot, k, n, ys)
        for side, (y1, y2, y3) in ys.items():
            getattr(self, f"y1_{side}").send(y1)
            getattr(self, f"y2_{side}").send(y2)
            getattr(self, f"y3_{side}").send(y3)
        self.s_out.send(payload)
        end_of_batch = (k + 1) % self.batch_size == 0 or k + 1 == self.samples
        apply = local == 3 * T + E and end_of_batch and k < self.samples and not f.get("hold", False)
        self.bap.send(np.full(n, apply))

    def _slot(self, g, slot, k, n, ys):
        """Payload and third factors of epilogue slot ``slot`` (A, B, C1, C2) of parity group ``g``. In every
        slot both copies of a conductance get their non-zero products in the same order of the rule's
        terms, so even a saturating tag stays the same in both (C1 and C2 apart: each has one product)."""
        i = self.index
        c = self.codes
        full = lambda value: np.full(n, value, dtype=np.int64)  # noqa: E731
        x = np.zeros(n, dtype=np.int64)
        z = full(0)
        if i % 2 == g:  # this layer is v, the upper end, of connection i
            sv, dv, pv = c["v"]
            x = (sv, dv, z, pv)[slot]
            # one floored product per sample on the input connection and the rails (their differences are 0):
            # the mean-restoring +1 every other sample; two on the others: +1 every sample
            comp = full(1) if (i > 0 or k % 2 == 1) else z
            ys["forward"] = [(comp, sv, full(8)), (z, dv, z), (z, full(-64), z), (pv, z, full(-64))][slot]
            bd, bp = c["bias"]
            comp_b = full(1) if k % 2 == 1 else z
            ys["bias"] = [(comp_b, z, full(8)), (z, bd, z), (z, z, z), (bp, z, full(-64))][slot]
        elif "u" in c and (i + 1) % 2 == g:  # this layer is u, the lower end, of connection i+1
            du, su, pu = c["u"]
            x = (du, su, pu, z)[slot]
            ys["backward"] = [(full(1), du, full(8)), (z, su, z), (pu, z, full(-64)), (z, full(-64), z)][slot]
        return 2 * (64 + x), ys
