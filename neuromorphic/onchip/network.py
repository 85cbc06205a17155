"""On-chip EqProp training: every conductance update is made by Lava's learning engine during the phases
(runs inside a LavaSession's child process; one sample after another, as on a chip).

Each conductance G of connection c (between u, amplified by a_c, and v) has two plastic copies, Lava
``LearningDense`` synapses: forward (u -> v) storing a_c G and, between free layers, backward (v -> u)
storing G / a_c; bias conductances are forward synapses from the rails +-vb / a_c. Every synapse runs the
same tag-and-apply rule (``TAG_RULE``):

    dt = y1 + x1 y2 + x1 x1 y3 - y0 t        the tag takes k (a u - v)^2 when the third factors say so
    dw = y0 t                                and is added to the weight on the bap that ends a batch

x1 is the presynaptic voltage (the graded payload, GradedSpikeCfg.OVERWRITE); y1..y3 are third factors
the postsynaptic ``TaggedNeurons`` send only at the last step of each nudged phase (k = +coef at +beta,
-coef at -beta), and y0 is its back-propagating spike, sent on the apply step after a batch's last
sample. So each copy accumulates  coef x sum over the batch of [(a u - v)^2 at +beta - at -beta]  and
applies it once: the weights do not move while a phase settles. The coefficients are -eta a_c for the
forward copy and -eta / a_c for the backward one, so the two copies receive the same dG in the units each
stores and stay a_c G and G / a_c. The host loads the samples and targets, fixes beta and the schedule,
and reads the weights back; it computes no update.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.learning.constants import GradedSpikeCfg
from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import LearningDense
from lava.utils.weightutils import SignMode

from eqprop.circuits.serialize import clamp_to_dict

from eqprop.neuromorphic.onchip.map import NO_DECAY
from eqprop.neuromorphic.simulation.proc.neurons.process import TaggedNeurons
from eqprop.neuromorphic.simulation.proc.source.models import CAL_STEPS
from eqprop.neuromorphic.simulation.proc.source.process import SampleSource, ValueSource

TAG_RULE = {"dt": "u0 * y1 + u0 * 2^1 * x1 * y2 + u0 * 2^2 * x1 * x1 * y3 - y0 * t", "dw": "y0 * t"}
# A trace that never decays. Every trace here is overwritten each step (x1 by the graded payload, y1..y3 by the
# third-factor ports), so none may decay within it. Lava has no "no decay": tau 0 clears a trace (its
# bit-approximate engine) or makes it NaN (its float engine), and a finite tau decays it, stochastically in the
# bit-approximate engine. At tau = 2^60, exp(-1 / tau) is exactly 1.0 in float64: the value, its fraction 0 and
# so its stochastic rounding are exact, by construction.
THIRD_FACTOR_TAU = NO_DECAY  # the third factors' tau (``three_factor_rule``); benchmarks/onchip_copies.py sets Lava's


def rule_seed(seed: int) -> int:
    """One seed for the trace random streams of every learning rule of a run. Left out, Lava draws each rule's
    from numpy's global random state when the rule is built, so the forward and backward copies of a
    conductance got different streams, a session's later runs differed from its first, and the two copies of
    the bit-approximate engine came 1 LSB apart after a few to a few dozen batches (replayed: the same batch,
    the same inputs, a mismatch or not depending on the calls before it in the session)."""
    return 1 + int(seed) % 2_000_000_000


def three_factor_rule(dw: str, dt: str | None = None, seed: int = 0):
    """A Loihi 2 three-factor rule whose traces never decay (``NO_DECAY``), the x traces and the third factors
    alike. Lava's ``Loihi3FLearningRule`` fixes the third factors' tau at 65535: in the bit-approximate engine a
    third factor Y then drops one code towards 0 with probability |Y| / 65535 per step, on the one random number
    per step the process draws, so the two copies of a conductance, whose third factors are different codes
    (v's sum in one, u's difference in the other), lost the same code in different steps and their tags, then
    their weights, came 1 LSB apart: one batch in 300 per synapse array with the per-batch runs, three synapses
    in the fifth epoch of the one-chip digits run (docs/onchip.md, the copies). Set here to ``NO_DECAY``."""
    rule = Loihi3FLearningRule(dw=dw, dt=dt, t_epoch=1, x1_tau=NO_DECAY, x2_tau=NO_DECAY, rng_seed=rule_seed(seed))
    rule.y1_tau = rule.y2_tau = rule.y3_tau = THIRD_FACTOR_TAU
    return rule


def _rule(seed: int = 0):
    return three_factor_rule(TAG_RULE["dw"], TAG_RULE["dt"], seed)


def hold_tags(training) -> bool:
    return training.map is not None and training.hold


def _int_rule(e: int, s: int, seed: int = 0):
    """The bit-approximate engine's rule (``onchip.map.rule_strings``). x1 must hold its payload for the
    step's rule and the third factors theirs: no trace decays (``three_factor_rule``)."""
    from eqprop.neuromorphic.onchip.map import rule_strings

    r = rule_strings(e, s)
    return three_factor_rule(r["dw"], r["dt"], seed)


def integer_neurons(net, m, targets, beta: float, alpha: float) -> list:
    """Per free layer, the constants of integer neurons (``PyTaggedNeuronsFixed`` with ``integer``): the node
    integrates v += (k (I - (g v >> gs))) >> ks in voltage LSBs (forward Euler of C dv/dt = I - g v), with g
    measured from the calibration currents in integers (the gains are powers of two: shifts) and an ideal clamp
    as a compare-and-select. The step k is the layer's dt / C: alpha over 1.5 times the largest node
    conductance when the mapping was fixed (``IntOnchipMap.g_max``; room for the conductances to grow as they
    learn: mantissas mapped at most 128 reach at most 255, so a node's total at most doubles and k g stays
    below 4 alpha / 3 < 2, where forward Euler is stable), plus 2 beta at the outputs (the nudge's own
    conductance, taken explicitly)."""
    from eqprop.circuits.energy import node_conductance
    from eqprop.neuromorphic.loihi.map import to_fixed
    from eqprop.neuromorphic.onchip.map import check_integer_neurons

    L = net.n_connections
    check_integer_neurons(net)
    # the largest node conductance of each layer when the mapping was fixed (a design constant), else now
    g_top = list(m.g_max) or [float(t.max()) for t in node_conductance(net)]
    vf = m.vf
    out = []
    for c in range(L):
        unit = 2.0 ** (m.fracs[c] - vf)  # S -> current units per voltage LSB
        b = beta if c == L - 1 else 0.0
        g_max = float(g_top[c])
        gs = int(np.floor(np.log2(2.0**20 / (g_max * unit))))
        k_in = int(np.rint(np.log2(net.gains[c])))
        k_out = int(np.rint(np.log2(net.gains[c + 1]))) if c + 1 < L else 0
        k, ks = to_fixed(alpha / ((1.5 * g_max + 2.0 * b) * unit))
        clamp = net.neurons[c]
        rails = None if clamp is None else (int(np.ceil(clamp.v_low * 2.0**vf)), int(np.floor(clamp.v_high * 2.0**vf)))
        layer = {"gs": gs, "t": 4 - vf + gs - k_in, "k_in": k_in, "k_out": k_out, "k": k, "ks": ks, "rails": rails}
        if c == L - 1:
            layer["beta"] = to_fixed(b * unit)
            layer["readout"] = np.rint(net.readout_matrix).astype(np.int64)
            layer["targets"] = np.rint(np.asarray(targets, dtype=float) * 2.0**vf).astype(np.int64)
        out.append(layer)
    return out


def epilogue_codes(net, m, c: int) -> dict:
    """Free layer c's ``code_constants`` for its epilogue codes in integers (``PyTaggedNeuronsFixed._encode``),
    as the upper end v of connection c (s, d, P = d s; the bias copy's d and P) and as the lower end u~ = a u of
    connection c + 1 (a = 2^k: du~, su~ and their product), in voltage LSBs (2^-vf V) and their squares."""
    from eqprop.neuromorphic.onchip.map import code_constants

    one, two = 2.0**m.vf, 2.0 ** (2 * m.vf)
    out = {"v": [code_constants(m.s_sigma[c] * one, 25), code_constants(m.s_delta[c] * one, 25),
                 code_constants(64 * m.s_delta[c] * m.s_sigma[c] * two, 50)],
           "bias": [code_constants(m.bias_s_delta[c] * one, 25),
                    code_constants(64 * m.bias_s_delta[c] * m.bias_s_sigma[c] * two, 50)]}
    if c + 1 < net.n_connections:
        k = int(np.rint(np.log2(net.gains[c + 1])))
        out["u"] = [code_constants(m.s_delta[c + 1] * one, 25 + k), code_constants(m.s_sigma[c + 1] * one, 25 + k),
                    code_constants(64 * m.s_delta[c + 1] * m.s_sigma[c + 1] * two, 50 + 2 * k)]
        out["k_out"] = k
    return out


def coefficients(net, scales, beta: float) -> list:
    """Per free layer, (forward, bias, backward) coefficients: dG = -eta [(a u - v)^2_+beta - (.)^2_-beta] per
    sample with eta = scale x kappa_c / (4 beta kappa_L) (centered EqProp, the trainer's units); forward copies
    learn a dG, backward ones dG / a. ``scales``: per parameter array (weights, then biases), from the trainer."""
    L = net.n_connections
    kappa = net.energy_weights
    eta = [scales[p] * kappa[p % L] / (4.0 * beta * kappa[-1]) for p in range(2 * L)]
    out = []
    for c in range(L):
        backward = -eta[c + 1] / net.gains[c + 1] if c + 1 < L else 0.0
        out.append(np.array([-eta[c] * net.gains[c], -eta[L + c] * net.gains[c], backward]))
    return out


class OnchipTraining:
    """``int_map`` (an ``onchip.map.IntOnchipMap``): run the bit-approximate engine (Lava's
    ``PyLearningDenseModelBitApproximate``: 8-bit weights, 7-bit traces, stochastic rounding) with the
    integer rule of ``onchip.map``; None: the float engine with ``TAG_RULE``."""

    def __init__(self, net, sources, targets, beta: float, scales, batch: int, steps: int = 40, alpha: float = 1.0,
                 int_map=None, seed: int = 0, hold: bool = False, neurons: str = "float", backward=None):
        """``backward``: per connection after the first, the backward copy's mantissas (n_in, n_out) as a previous
        run left them (a chip keeps both copies); None: the forward copy's, as mapped from ``net``."""
        self.net, self.map, self.hold = net, int_map, bool(hold)
        if neurons not in ("float", "integer"):
            raise ValueError(f"neurons must be 'float' or 'integer', got {neurons!r}")
        if neurons == "integer" and int_map is None:
            raise ValueError("integer neurons run with the bit-approximate engine's integer mapping (int_map)")
        integer = integer_neurons(net, int_map, targets, beta, alpha) if neurons == "integer" else None
        S = sources.shape[0]
        L = net.n_connections
        self.S, self.steps = S, steps
        coef = coefficients(net, scales, beta)
        vb = net.bias_voltage
        m = int_map
        if m is not None:
            from eqprop.neuromorphic.onchip.map import set_rates

            set_rates(m, net, coef)
            if any(e is None for e in m.exps + m.bias_exps):
                raise ValueError("the bit-approximate engine needs a positive rate for every parameter array")
            self.epilogue = 4 * min(L, 2)
            mant = m.mantissas(net)
            if backward is not None:
                for c, b in enumerate(backward):
                    old = mant["backward"][c][0]
                    b = np.asarray(b)
                    if b.shape != old.shape or b.dtype.kind != "i" or b.min(initial=0) < 0 or b.max(initial=0) > 255:
                        raise ValueError(f"backward copy {c + 1}: mantissas must be a {old.shape} integer array in "
                                         f"0..255, got {b.dtype} {b.shape}")
                    mant["backward"][c] = (b, mant["backward"][c][1])
        else:
            self.epilogue = 0
        per_sample = CAL_STEPS + 3 * steps + self.epilogue + 1
        self.per_sample = per_sample

        def fixed(**kw):
            if m is None:
                return None
            return {"vf": m.vf, "steps": steps, "epilogue": self.epilogue, "seed": seed * 1000 + len(used),
                    "hold": bool(hold), **kw}

        used = []

        def layer_fixed(c):
            used.append(c)
            o = None if c + 1 >= L else {"sd": m.s_delta[c + 1], "ss": m.s_sigma[c + 1]}
            if integer is not None:  # the epilogue's codes in integers, with the rates' code LSBs (set_rates)
                integer[c]["codes"] = epilogue_codes(net, m, c)
            return fixed(frac=m.fracs[c], index=c, out=o, integer=None if integer is None else integer[c],
                         **{"in": {"sd": m.s_delta[c], "ss": m.s_sigma[c], "bsd": m.bias_s_delta[c],
                                   "bss": m.bias_s_sigma[c]}})

        self.inputs = SampleSource(sources=sources, per_sample=per_sample, name="inputs",
                                   fixed=fixed(group=0, gain=float(net.gains[0]), ss=m.s_sigma[0], level=0) if m else None)
        used.append("inputs")
        self.layers = [TaggedNeurons(
            conductance=np.zeros(net.sizes[c + 1]), index=c, clamp_params=clamp_to_dict(net.neurons[c]), samples=S, steps=steps, batch=batch,
            gain_in=net.gains[c], gain_out=net.gains[c + 1] if c + 1 < L else 0.0, coef=coef[c],
            targets=targets if c == L - 1 else None, beta=beta if c == L - 1 else 0.0, alpha=alpha,
            readout=net.readout_matrix if c == L - 1 else None, fixed=layer_fixed(c) if m else None,
            name=f"layer{c + 1}") for c in range(L)]

        def synapse(weights, name, pre, post, side, e=None, weight_exp=0, bits=0):
            if m is None:
                kw = {"learning_rule": _rule(seed)}
            else:
                kw = {"learning_rule": _int_rule(e, bits, seed), "weight_exp": int(weight_exp), "num_weight_bits": 8}
            syn = LearningDense(weights=weights, num_message_bits=24, graded_spike_cfg=GradedSpikeCfg.OVERWRITE,
                                sign_mode=SignMode.EXCITATORY, name=name, **kw)  # conductances saturate at 0
            pre.s_out.connect(syn.s_in)
            syn.a_out.connect(post.a_in)
            self.wiring.append((syn, pre, post, side))
            post.bap.connect(syn.s_in_bap)
            for k in (1, 2, 3):
                getattr(post, f"y{k}_{side}").connect(getattr(syn, f"s_in_y{k}"))
            return syn

        self.forward, self.backward, self.bias, self.rails = [], [], [], []
        self.wiring = []  # (synapses, pre, post, side) per synapse array, for the emulator
        for c in range(L):
            a, post = net.gains[c], self.layers[c]
            pre = self.inputs if c == 0 else self.layers[c - 1]
            rails = np.array([vb / a, -vb / a])
            if m is None:
                self.forward.append(synapse(a * net.weights[c].T, f"forward{c}", pre, post, "forward"))
                self.rails.append(ValueSource(values=rails, per_sample=per_sample, level=c, name=f"rails{c}"))
                self.bias.append(synapse(a * net.biases[c].T, f"bias{c}", self.rails[c], post, "bias"))
                if c > 0:
                    self.backward.append(synapse(net.weights[c] / a, f"backward{c}", post, pre, "backward"))
                continue
            used.append(f"rails{c}")
            self.forward.append(synapse(mant["forward"][c][0], f"forward{c}", pre, post, "forward", m.exps[c],
                                        mant["forward"][c][1], m.tag_bits[c][0]))
            self.rails.append(ValueSource(values=rails, name=f"rails{c}", per_sample=per_sample, level=c,
                                          fixed=fixed(group=c % 2, gain=float(a), ss=m.bias_s_sigma[c], level=c)))
            self.bias.append(synapse(mant["bias"][c][0], f"bias{c}", self.rails[c], post, "bias", m.bias_exps[c],
                                     mant["bias"][c][1], m.tag_bits[c][1]))
            if c > 0:
                self.backward.append(synapse(mant["backward"][c - 1][0], f"backward{c}", post, pre, "backward",
                                             m.exps[c], mant["backward"][c - 1][1], m.tag_bits[c][0]))

    def emulate(self) -> dict:
        """``run`` on the host emulator (``onchip.emulator``, bit-exact with the Lava run, no Lava runtime)."""
        from eqprop.neuromorphic.onchip.emulator import emulate

        if self.map is None:
            raise ValueError("the emulator runs the bit-approximate engine (an integer mapping, int_map)")
        r = emulate(self)
        out = self._result(r["forward"], r["backward"], r["bias"], r["free_out"], r["tags"], r["back_tags"])
        out["activity"] = r["activity"]
        return out

    def run(self) -> dict:
        """Every sample's phases; the conductances the learning engine left (weights from the forward copies,
        and how far the backward copies are from them), and the free-phase outputs."""
        tag = "floating_pt" if self.map is None else "fixed_pt"
        try:
            if self.map is None:
                cfg = Loihi2SimCfg(select_tag=tag)
            else:  # Lava's model, its rounding stream seeded per run (dense.models.seeded_rounding_model)
                from eqprop.neuromorphic.simulation.proc.dense.models import seeded_rounding_model

                cfg = Loihi2SimCfg(select_tag=tag, exception_proc_model_map={LearningDense: seeded_rounding_model()})
            self.inputs.run(condition=RunSteps(num_steps=self.S * self.per_sample), run_cfg=cfg)
            fwd = [s.weights.get() for s in self.forward]
            bwd = [s.weights.get() for s in self.backward]
            bias = [s.weights.get() for s in self.bias]
            tags = [s.tag_1.get() for s in self.forward + self.bias] if hold_tags(self) else None
            back_tags = [s.tag_1.get() for s in self.backward] if hold_tags(self) else None
            free_out = self.layers[-1].free_out.get()
        finally:
            self.inputs.stop()
        return self._result(fwd, bwd, bias, free_out, tags, back_tags)

    def _result(self, fwd, bwd, bias, free_out, tags, back_tags) -> dict:
        net = self.net
        L = net.n_connections
        if self.map is not None:
            fwd = [np.rint(f).astype(np.int64) for f in fwd]
            bwd = [np.rint(b).astype(np.int64) for b in bwd]
            bias = [np.rint(b).astype(np.int64) for b in bias]
            weights, biases = self.map.conductances(net, fwd, bias)
            mismatch = max([int(np.abs(bwd[c - 1] - fwd[c].T).max()) for c in range(1, L)], default=0)
            out = {"weights": weights, "biases": biases, "free_out": free_out, "copy_mismatch": float(mismatch),
                   "mantissas": {"forward": fwd, "backward": bwd, "bias": bias}}
            if tags is not None:  # the update held in the tags (never applied), in conductance
                bits = [b[0] for b in self.map.tag_bits] + [b[1] for b in self.map.tag_bits]
                qs = self.map.q + self.map.q_bias
                gains = list(net.gains) * 2
                out["held"] = [t.T * 2.0 ** (q - b) / a for t, q, b, a in zip(tags, qs, bits, gains)]
                out["held_tags"] = {"forward": [np.rint(t).astype(np.int64) for t in tags[:L]],
                                    "backward": [np.rint(t).astype(np.int64) for t in back_tags]}
            return out
        weights = [fwd[c].T / net.gains[c] for c in range(L)]
        mismatch = 0.0
        for c in range(1, L):
            other = bwd[c - 1] * net.gains[c]
            mismatch = max(mismatch, float(np.abs(other - weights[c]).max() / max(np.abs(weights[c]).max(), 1e-300)))
        return {"weights": weights, "biases": [bias[c].T / net.gains[c] for c in range(L)], "free_out": free_out,
                "copy_mismatch": mismatch}
