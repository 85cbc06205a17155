"""A host emulator of the one-chip run (``onchip.network.OnchipTraining`` with the bit-approximate engine),
bit-exact with the Lava run and without Lava's runtime: no processes, no channels, no busy-waiting.

The run's processes are stepped in lockstep in one Python process, with Lava's timing: at every step each
synapse array first sends the currents it accumulated in the step before (``a_out``), then every source and
neuron layer runs its step (the same ProcessModels Lava runs, ``PySampleSourceFixed``, ``PyValueSourceFixed``,
``PyTaggedNeuronsFixed``: our own microcode), then every synapse array takes the payloads, the third factors
and the back-propagating spike of that step, and its learning engine updates tags and weights.

The synapse arrays are this module's own arithmetic (``BitApproxSynapses``), written from the documented
behaviour of Lava's ``PyLearningDenseModelBitApproximate`` (lava-nc 0.10, ``lava.magma.core.model.py.
connection.LearningConnectionModelBitApproximate`` and ``lava.magma.core.learning.learning_rule_applier.
LearningRuleApplierBitApprox``) and checked against it bit by bit (tests/test_onchip_emulator.py):

- dendritic accumulation: ``a = (W . s) << e`` (``>> -e`` for a negative weight exponent), sent one step
  later, carried as int32 (the port's type);
- graded spikes with ``GradedSpikeCfg.OVERWRITE``: a non-zero payload p overwrites the x1 trace with
  ``round(p / 2)`` as an unsigned byte, then the trace saturates to 0..127 (7 bits);
- the third factors y1..y3 are what the post-synaptic layer sent this step; a back-propagating spike sets y0;
- per product of the rule: an int32 multiply of the dependency and each factor (each saturated to its
  width: traces 7 bits, tag and weight 9, constants 8), times the scale's mantissa, shifted right by
  max(0, widths + 4 - 15) and left by the scale's exponent, saturated to +-(2^15 - 1) (-(2^15) - 1 below),
  and accumulated with the same saturation onto the variable shifted into the 16-bit accumulator;
- one stochastic rounding per step and array (``ConnVarRandom``: one uniform number per step from numpy's
  PCG64 seeded with the rule's ``rng_seed`` + 4, the project's seeded model), then the variable's own
  saturation (weights 0..255 excitatory, tags -257..255).

Only what the one-chip path uses is emulated: t_epoch 1, traces that never decay (``onchip.network.NO_DECAY``),
zero impulses, graded spikes that overwrite; any other rule is refused in one line.
"""
from __future__ import annotations

import numpy as np

W_ACC = 15  # lava.magma.core.learning.constants.W_ACCUMULATOR_U: the accumulator's unsigned width
W_TRACE = 7
W_S_MANT = 4  # the scale's mantissa
WIDTHS = {"x0": 1, "y0": 1, "x1": W_TRACE, "x2": W_TRACE, "y1": W_TRACE, "y2": W_TRACE, "y3": W_TRACE,
          "w": 9, "d": 9, "t": 9, "C": 8}  # a factor's width (signed widths of weight and tags)
VARS = {"w": ("weights", 8), "d": ("tag_2", 8), "t": ("tag_1", 8)}  # unsigned widths of the synaptic variables


class BitApproxSynapses:
    """One ``LearningDense`` array of the one-chip run: 8-bit excitatory weights (n_post, n_pre) with a weight
    exponent, a three-factor rule (``onchip.network.three_factor_rule``), payloads that overwrite x1."""

    def __init__(self, weights, weight_exp: int, rule, num_weight_bits: int = 8):
        from eqprop.neuromorphic.onchip.map import NO_DECAY

        if rule.t_epoch != 1:
            raise ValueError(f"the emulator runs rules with t_epoch 1, got {rule.t_epoch}")
        taus = [rule.x1_tau, rule.x2_tau, rule.y1_tau, rule.y2_tau, rule.y3_tau]
        if any(t != NO_DECAY for t in taus):
            raise ValueError(f"the emulator runs traces that never decay (tau {NO_DECAY:g}), got taus {taus}")
        imp = [rule.x1_impulse, rule.x2_impulse, rule.y1_impulse, rule.y2_impulse, rule.y3_impulse]
        if any(i != 0 for i in imp):
            raise ValueError(f"the emulator runs rules without trace impulses, got {imp}")
        w = np.asarray(weights)
        if w.min(initial=0) < 0:
            raise ValueError("the emulator runs excitatory synapses (weights >= 0)")
        shift = 8 - int(num_weight_bits)
        self.weights = ((np.rint(w).astype(np.int64) >> shift) << shift)  # Lava's truncate_weights
        self.exp = int(weight_exp)
        n_post, n_pre = self.weights.shape
        self.tag_1 = np.zeros((n_post, n_pre), dtype=np.int64)
        self.tag_2 = np.zeros((n_post, n_pre), dtype=np.int64)
        self.x1 = np.zeros(n_pre, dtype=np.int64)
        self.x2 = np.zeros(n_pre, dtype=np.int64)
        self.y = np.zeros((3, n_post), dtype=np.int64)
        self.x_spiked = np.zeros(n_pre, dtype=bool)
        self.y_spiked = np.zeros(n_post, dtype=bool)
        self.a_buff = np.zeros(n_post, dtype=np.int64)
        self.decimate = rule.decimate_exponent
        self.rules = {VARS[target[1:]][0]: ps.products for target, ps in rule.active_product_series.items()}
        # a product is 0 in a step without third factors and back-propagating spikes when it depends on y0 or
        # has a third factor without a constant; when every product is, such a step moves no synaptic variable
        self.gated = all(p.dependency == "y0" or any(f.state_var in ("y1", "y2", "y3") and not f.has_const()
                                                      for f in p.factors)
                         for products in self.rules.values() for p in products)
        self._rng = np.random.default_rng(int(rule.rng_seed) + 4)  # ConnVarRandom: one draw when made
        self._rng.random(1)

    def send(self) -> np.ndarray:
        """The currents accumulated in the step before, as the int32 port carries them."""
        return self.a_buff.astype(np.int32)

    def receive(self, s_in, bap, y1, y2, y3) -> None:
        s_in = np.asarray(s_in, dtype=np.int64)
        acc = self.weights @ s_in
        self.a_buff = acc << self.exp if self.exp > 0 else acc >> -self.exp
        spiked = s_in != 0
        half = np.round(s_in / 2).astype(np.uint8)  # Lava's cast, wrapping as on this platform
        self.x1[spiked] = half[spiked]
        self.x_spiked = spiked
        self.y_spiked = np.asarray(bap, dtype=bool)
        self.y = np.array((y1, y2, y3), dtype=np.int64)

    def learn(self, time_step: int) -> None:
        r = self._rng.random(1)[0]
        x0, y0 = self.x_spiked, self.y_spiked
        if self.gated and not y0.any() and not self.y.any() and self.tag_1.min(initial=0) > -(2**8) - 1:
            # a quiet step: only the traces of the neurons that spiked saturate (x1 came in as a byte, >= 0)
            self.x1 = np.minimum(self.x1, 2**W_TRACE - 1)
            return
        # traces at the step's end: a spike adds its (zero) impulse and saturates its trace to 7 bits; a trace
        # read at its dependency's spike time is its value at the step's end where that neuron spiked, else
        # at the step's start (the same, except for the traces of neurons that spiked in this step)
        x_start = np.stack([self.x1, self.x2])
        x_end = np.where(x0[np.newaxis, :], np.clip(x_start, 0, 2**W_TRACE - 1), x_start)
        y_start = self.y
        y_end = np.where(y0[np.newaxis, :], np.clip(y_start, 0, 2**W_TRACE - 1), y_start)
        self.x1, self.x2 = x_end[0], x_end[1]
        traces = {}
        for i, name in enumerate(("x1", "x2")):
            traces[name, "u"] = traces[name, "x0"] = x_end[i][np.newaxis, :]
            traces[name, "y0"] = np.where(y0[:, np.newaxis], x_end[i][np.newaxis, :], x_start[i][np.newaxis, :])
        for i, name in enumerate(("y1", "y2", "y3")):
            traces[name, "u"] = traces[name, "y0"] = y_end[i][:, np.newaxis]
            traces[name, "x0"] = np.where(x0[np.newaxis, :], y_end[i][:, np.newaxis], y_start[i][:, np.newaxis])
        u = 0
        if self.decimate is not None:
            u = 1 if int(time_step) % 2**int(self.decimate) == 0 else 0
        deps = {"x0": x0[np.newaxis, :].astype(np.int32), "y0": y0[:, np.newaxis].astype(np.int32), "u": u}
        state = {"weights": self.weights, "tag_1": self.tag_1, "tag_2": self.tag_2}
        shape = self.weights.shape
        new = {}
        for name, products in self.rules.items():
            shift = W_ACC + 1 - (VARS_BY_NAME[name] + 1)
            terms = []
            for p in products:
                dep = deps[p.dependency]
                if not np.any(dep):
                    continue
                vals = []
                for f in p.factors:
                    w = WIDTHS[f.state_var]
                    vals.append(np.clip(_factor(f, p.dependency, traces, deps, state), -(2**w), 2**w - 1))
                    if not np.any(vals[-1]):
                        break
                else:
                    terms.append((p, dep, vals))
            if not terms and state[name].min(initial=0) << shift >= -(2**W_ACC) - 1:
                continue  # every product is 0 and the accumulator holds the variable: nothing moves
            acc = np.clip(state[name].astype(np.int32) << shift, -(2**W_ACC) - 1, 2**W_ACC - 1)
            for p, dep, vals in terms:
                # the multiply-accumulate in int32, as the engine's (a product that overflows wraps alike)
                mac = np.ones(shape, dtype=np.int32)
                mac *= dep
                widths = W_S_MANT + sum(WIDTHS[f.state_var] for f in p.factors)
                for val in vals:
                    mac *= np.asarray(val).astype(np.int32)
                mac *= p.s_mantissa
                mac = np.left_shift(np.right_shift(mac, np.maximum(0, widths - W_ACC)), p.s_exp)
                mac = np.clip(mac, -(2**W_ACC) - 1, 2**W_ACC - 1)
                acc = np.clip(acc + mac, -(2**W_ACC) - 1, 2**W_ACC - 1)
            new[name] = self._finish(name, acc, r)
        for name, value in new.items():
            setattr(self, name, value)

    def _finish(self, name: str, acc, r: float) -> np.ndarray:
        """The accumulator's stochastic rounding back to the variable's width, then its saturation: weights
        (excitatory) and delays keep no negative value, tags lie in -(2^8) - 1 .. 2^8 - 1."""
        width = VARS_BY_NAME[name]
        unsigned = name != "tag_1"
        if unsigned:
            acc = np.maximum(acc, 0)
        step = 2 ** (W_ACC - width)
        lo = np.floor_divide(acc, step)
        frac = (acc - lo * step) / step
        value = ((lo + (r < frac)) * step) >> (W_ACC + 1 - (width + 1))
        return np.clip(value, 0 if unsigned else -(2**width) - 1, 2**width - 1)


VARS_BY_NAME = {v[0]: v[1] for v in VARS.values()}


def _factor(f, dependency: str, traces, deps, state):
    const = f.const if f.has_const() else 0
    s = f.state_var
    if s in ("x0", "y0", "u"):
        return deps[s] + const
    if (s, dependency) in traces:
        return traces[s, dependency] + const
    if s in VARS:
        value = state[VARS[s][0]] + const
        return np.sign(value) if f.is_sgn else value
    if s == "C":
        return np.asarray(const)
    raise ValueError(f"the emulator does not know the factor {s!r}")


class _Out:
    """An out port: what was sent this step, in the port's type (a channel carries the sender's type)."""

    def __init__(self, d_type):
        self.d_type, self.data = d_type, None

    def send(self, data) -> None:
        self.data = np.asarray(data).astype(self.d_type)


class _In:
    """An in port: the sum of what its senders sent this step, added onto zeros of the port's type (Lava's
    ``PyInPortVectorDense.recv``)."""

    def __init__(self, shape, d_type):
        self.shape, self.d_type, self.senders = tuple(shape), d_type, []

    def recv(self) -> np.ndarray:
        acc = np.zeros(self.shape, self.d_type)
        for s in self.senders:
            acc = acc + s.data
        return acc


def _model(cls, proc):
    """The ProcessModel ``cls`` of ``proc`` as Lava's builder makes it (its Vars from their initial values, its
    ports as ``_Out`` / ``_In``), to be stepped by hand."""
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType

    pm = cls(proc.proc_params)
    for var in proc.vars:
        lt = getattr(cls, var.name, None)
        if isinstance(lt, LavaPyType) and issubclass(lt.cls, np.ndarray):
            a = np.zeros(var.shape, dtype=lt.d_type)
            a[...] = var.init
            setattr(pm, var.name, a)
    for port in list(proc.out_ports) + list(proc.in_ports):
        lt = getattr(cls, port.name, None)
        if not isinstance(lt, LavaPyType):
            continue
        if issubclass(lt.cls, PyOutPort):
            setattr(pm, port.name, _Out(lt.d_type))
        elif issubclass(lt.cls, PyInPort):
            setattr(pm, port.name, _In(port.shape, lt.d_type))
    return pm


def emulate(training) -> dict:
    """Step every process of ``training`` (an ``onchip.network.OnchipTraining`` with an integer mapping) through
    its whole run; returns the forward, backward and bias mantissas, the free-phase outputs and (with ``hold``)
    the tags, as the Lava run reads them back."""
    from eqprop.neuromorphic.simulation.proc.neurons.models import PyTaggedNeuronsFixed
    from eqprop.neuromorphic.simulation.proc.source.models import CAL_STEPS, PySampleSourceFixed, PyValueSourceFixed

    models = {id(training.inputs): _model(PySampleSourceFixed, training.inputs)}
    for r in training.rails:
        models[id(r)] = _model(PyValueSourceFixed, r)
    for layer in training.layers:
        models[id(layer)] = _model(PyTaggedNeuronsFixed, layer)
    synapses = []
    for syn, pre, post, side in training.wiring:
        pp = syn.proc_params
        s = BitApproxSynapses(syn.weights.init, pp.get("weight_exp", 0), pp["learning_rule"],
                              pp.get("num_weight_bits", 8))
        out = _Out(np.int32)  # Lava's bit-accurate Dense sends int32 currents
        models[id(post)].a_in.senders.append(out)
        pre_m, post_m = models[id(pre)], models[id(post)]
        synapses.append((syn, s, out, pre_m.s_out, post_m.bap, [getattr(post_m, f"y{k}_{side}") for k in (1, 2, 3)]))
    steps = training.S * training.per_sample
    order = list(models.values())
    # what a chip would do, counted as it happens: graded messages sent (non-zero payloads reach synapses), the
    # synaptic ops they make (each message, every synapse of its array), neuron updates (every free-layer neuron
    # every step), and the learning engine's synapse updates (every synapse every learning epoch, t_epoch 1)
    n_neurons = sum(int(layer.v.shape[0]) for layer in training.layers)
    activity = {"steps": steps, "messages": 0, "synops": 0, "neuron_updates": steps * n_neurons,
                "synapse_updates": steps * sum(s.weights.size for _, s, *_ in synapses)}
    # an inference is a sample's calibration and free phase, without the learning engine
    infer_steps = CAL_STEPS + training.steps
    inference = {"steps": training.S * infer_steps, "messages": 0, "synops": 0,
                 "neuron_updates": training.S * infer_steps * n_neurons, "synapse_updates": 0}
    with np.errstate(invalid="ignore"):  # a phase's payloads do not fit x1's byte: Lava's cast wraps them alike
        for t in range(1, steps + 1):
            for _, s, out, *_ in synapses:
                out.data = s.send()
            for m in order:
                m.time_step = t
                m.run_spk()
            counts = (activity, inference) if (t - 1) % training.per_sample < infer_steps else (activity,)
            for _, s, _, s_out, bap, ys in synapses:
                # what each port of a LearningDense receives: the payload (int64), the bap (bool), y1..y3 (int32)
                payload = s_out.data.astype(np.int64)
                synops = int(np.count_nonzero(payload)) * s.weights.shape[0]
                for c in counts:
                    c["synops"] += synops
                s.receive(payload, bap.data.astype(bool), *(y.data.astype(np.int32) for y in ys))
                s.learn(t)
            sent = sum(int(np.count_nonzero(m.s_out.data)) for m in order)
            for c in counts:
                c["messages"] += sent
    activity["inference"] = inference
    by_proc = {id(syn): s for syn, s, *_ in synapses}
    hold = training.hold  # the emulator runs integer mappings only (OnchipTraining.emulate)
    return {"forward": [by_proc[id(p)].weights.astype(np.int64) for p in training.forward],
            "backward": [by_proc[id(p)].weights.astype(np.int64) for p in training.backward],
            "bias": [by_proc[id(p)].weights.astype(np.int64) for p in training.bias],
            "free_out": np.array(models[id(training.layers[-1])].free_out, dtype=float),
            "tags": [by_proc[id(p)].tag_1 for p in training.forward + training.bias] if hold else None,
            "back_tags": [by_proc[id(p)].tag_1 for p in training.backward] if hold else None,
            "activity": activity}
