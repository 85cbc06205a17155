"""Host side of the Loihi path: a LayeredNetwork mapped once to integers (no Lava import).

Units. Voltages (neuron state, graded payloads, rails, targets): 1 LSB = 2^-vf V in 24 signed bits; vf is
20 unless the inputs need more headroom. Currents into free layer l: 1 unit = 2^-if_l A, with if_l the
largest that keeps twice the layer's worst-case input current inside 24 bits (so the sigma-decoded
current and any one step's change fit). Synapses: Lava's own Dense, 8-bit unsigned mantissas (every
conductance is >= 0: sign mode excitatory) and a shared weight exponent per connection; the exponent
also carries the change of units, so a Dense's output arrives in its target layer's current unit.

Every connection c is two Dense processes, mapped explicitly: forward (layer c -> c+1) a_c G_c^T and,
for free layers, backward (c+1 -> c) G_c / a_c. With a pairs readout the output layer has a third, the
partner connection (weight 1: each output node hears its pair's voltage for the nudge).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqprop.circuits.energy import node_conductance
from eqprop.circuits.errors import InputError, NetworkError

from .microcode import PRE_STEPS, STATE_MAX, LayerProgram, cal_step

MANTISSA_MAX = 255  # 8-bit unsigned weights (Lava Dense, sign mode excitatory)
VF_DEFAULT = 20
MULT_MAX = STATE_MAX  # multipliers are 24-bit operands too

# The ranges a mapping is checked against (docs/loihi.md, "Ranges"), each with its source. Intel has not
# published Loihi 2's weight exponent range or its microcode multiplier width: the Loihi 1 range and a 24 x 24-bit
# multiply are assumed and labelled so.
RANGES = {
    "weight mantissa": (0, MANTISSA_MAX, "8-bit weights: lava-nc 0.10 W_WEIGHTS_U = 8 "
                                         "(lava/magma/core/learning/constants.py), PyDenseModelBitAcc weights precision 8"),
    "weight exponent": (-8, 7, "Loihi 1's weight exponent, -8..7 (Davies et al. 2018, IEEE Micro 38(1); Michaelis et al. "
                               "2022, Brian2Loihi, Front. Neuroinform. 16:1015624); assumed for Loihi 2"),
    "leak dv": (0, 4096, "12-bit decay constants, 0..4096 (Loihi's du/dv; Brian2Loihi decay_v; lava-nc LIF du, dv "
                         "precision 12)"),
    "neuron constant": (-STATE_MAX, STATE_MAX, "24-bit neuron state (lava-nc 0.10 PyLifModelBitAcc: 'u and v are "
                                               "24-bits wide'); a 24 x 24-bit multiply operand: assumed"),
    "Dense output": (-(2**15), 2**15 - 1, "lava-nc 0.10 PyDenseModelBitAcc declares a_out precision 16"),
}


def range_violations(program, a_in_peak: int | None = None) -> list:
    """One line per mapped quantity outside ``RANGES`` (weight mantissas and exponents, every per-neuron constant,
    the leak; with ``a_in_peak``, the largest Dense output a run produced)."""
    bad = []

    def check(kind, what, value):
        lo, hi, _ = RANGES[kind]
        if not lo <= value <= hi:
            bad.append(f"{what} = {value} outside the {kind} range {lo}..{hi}")

    for d in program.dense:
        name = f"Dense {d.role} {d.src}->{d.dst}"
        check("weight mantissa", f"{name} mantissa", int(d.mantissa.max(initial=0)))
        check("weight mantissa", f"{name} mantissa", int(d.mantissa.min(initial=0)))
        check("weight exponent", f"{name} weight exponent", int(d.weight_exp))
    for c, p in enumerate(program.layers):
        check("leak dv", f"layer {c + 1} dv", int(p.dv))
        consts = {"r": p.r, "bias": p.bias, "theta": [p.theta], "beta": list(p.beta)}
        if p.pwl is not None:
            consts.update({k: np.atleast_1d(v) for k, v in p.pwl.items()})
        for k, (r_phase, pwl_phase) in enumerate(p.per_phase or []):
            consts[f"r (phase {k})"] = r_phase
        if p.leak == "measured":
            consts.update({"k": [p.k], "g constants": p.g_const, "beta_g": list(p.beta_g),
                           "calibration multipliers": [p.cal_below[0], p.cal_above[0]], "r_on": [p.r_on[0]]})
        for name, values in consts.items():
            values = np.asarray(values, dtype=np.int64)
            if values.size:
                check("neuron constant", f"layer {c + 1} {name}", int(values[np.argmax(np.abs(values))]))
    if a_in_peak is not None:
        check("Dense output", "largest Dense output", int(a_in_peak))
    return bad


@dataclass
class DenseMap:
    """One Lava Dense: weights (n_out, n_in) as int mantissas, its weight exponent, where it reads and
    writes (``src``: 'input' or a free-layer index; ``dst``: a free-layer index), and what it stands for."""

    mantissa: np.ndarray
    weight_exp: int
    src: object
    dst: int
    role: str  # forward / backward / partner
    conductance: np.ndarray  # the conductances it stands for (S), for the error bound
    scale: float  # conductance per mantissa step (S)


@dataclass
class LoihiProgram:
    net: object
    vf: int
    current_frac: list
    layers: list
    dense: list
    theta: int
    binary: bool
    alpha: float
    v_in_max: float
    theta_volts: float
    input_shift: int = 0  # the inputs' graded payloads in units of 2^input_shift LSB (``microcode.encode``)
    leak: str = "reciprocal"  # how the neurons divide by their conductance (``build_program``)
    input_cal: int = 0  # the inputs' calibration payload (leak="measured": ``microcode.calibration_send``)

    @property
    def pre_steps(self) -> int:
        """Steps per sample before the phases: the reset step, after two calibration steps with a measured leak."""
        return PRE_STEPS[self.leak]

    def sender_quantum(self, src) -> int:
        """LSBs within which a silent sender's (``'input'`` or a free layer's) sent value stands to its own:
        max(theta, 2^shift) graded, theta binary (``microcode.encode``)."""
        if self.binary:
            return max(self.theta, 1)
        return max(self.theta, 1 << self.payload_shift(src))

    def payload_shift(self, src) -> int:
        """The graded payload shift of a sender (``'input'`` or a free layer's index)."""
        return self.input_shift if src == "input" else self.layers[src].shift

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.vf

    def sources_int(self, sources) -> np.ndarray:
        s = np.rint(np.asarray(sources, dtype=float) * 2.0**self.vf)
        if np.abs(s).max(initial=0) > STATE_MAX:
            raise InputError(f"input voltages up to {np.abs(sources).max():.3g} V do not fit the 24-bit state "
                             f"mapped for {self.v_in_max:.3g} V; map the network for the inputs it will see")
        return s.astype(np.int64)

    def targets_int(self, y) -> np.ndarray:
        """R^T y in LSBs: the voltage each output node is nudged towards (with its partner's help)."""
        return np.rint(np.asarray(y, dtype=float) @ self.net.readout_matrix * 2.0**self.vf).astype(np.int64)

    def volts(self, v_int) -> np.ndarray:
        return np.asarray(v_int, dtype=float) * self.lsb

    def set_betas(self, betas) -> None:
        """Nudging conductance (S) of each phase, e.g. (0, +beta, -beta): the output layer's beta multipliers
        and, per phase, its reciprocal conductances with the nudge's own conductance folded in (the -beta v
        of beta (t - v + partner) is implicit, so a nudge up to the node conductance stays stable)."""
        out = self.layers[-1]
        g, terms, frac = self._out
        betas = [float(b) for b in betas]
        if min(betas) <= -float(g.min()):
            raise InputError(f"a nudge of {min(betas):.3g} S would make an output node's conductance negative "
                             f"(smallest {g.min():.3g} S); use a smaller beta")
        top = max(abs(b) for b in betas)
        unit = 2.0 ** (frac - self.vf)  # beta [S] * err [LSB] -> current units
        shift = 0 if top == 0 else max(0, int(np.floor(np.log2(MULT_MAX / (top * unit)))))
        out.beta = tuple(int(np.rint(b * unit * 2.0**shift)) for b in betas)
        out.beta_shift = shift
        out.rs = _rs(g + min(0.0, min(betas)), self.vf, frac)
        out.r, out.pwl = _multipliers(g, terms, out.rs, self.vf, frac)
        out.per_phase = [_multipliers(g + b, terms, out.rs, self.vf, frac) for b in betas]
        if self.leak == "measured":  # g's scale with room for the nudge's conductance, and a step stable with it
            _layer_leak(self, len(self.layers) - 1, max(abs(b) for b in betas))
            out.beta_g = tuple(int(np.rint(b * 2.0 ** (frac - self.vf + out.gs))) for b in betas)
            _set_steps(out, float(g.max()) + max(0.0, max(betas)), terms, self.alpha, self.vf, frac)

    def synapses_out(self) -> list:
        """Per free layer (and 'input' first): how many synapses one spike of a node of that layer reaches."""
        fan = {"input": 0}
        fan.update({i: 0 for i in range(len(self.layers))})
        for d in self.dense:
            fan[d.src] += d.mantissa.shape[0]
        return [fan["input"]] + [fan[i] for i in range(len(self.layers))]


def _quantize(w: np.ndarray) -> tuple:
    top = float(w.max(initial=0.0))
    if (w < 0).any():
        raise NetworkError("the Loihi mapping takes conductances >= 0 (found a negative one)")
    if top == 0.0:
        return np.zeros(w.shape, dtype=np.int64), 0
    q = int(np.ceil(np.log2(top / MANTISSA_MAX)))
    return np.clip(np.rint(w / 2.0**q), 0, MANTISSA_MAX).astype(np.int64), q


def _rs(g, vf: int, frac: int) -> int:
    """The shift that makes the largest reciprocal 2^rs 2^(vf - frac) / g a 24-bit multiplier."""
    return int(np.floor(np.log2(MULT_MAX * float(np.min(g)) / 2.0 ** (vf - frac))))


def _multipliers(g, terms, rs: int, vf: int, frac: int) -> tuple:
    """(r, pwl) of nodes with conductance g: target [LSB] = drive [2^-frac A] * r >> rs, and the PWL
    on-branch: past a knee k, target = k + (drive - G k) * r_on >> rs."""
    unit = 2.0 ** (vf - frac)
    r = np.rint(2.0**rs * unit / g).astype(np.int64)
    if "g_on" not in terms:
        return r, None
    knees = {name: int(np.rint(terms[name] * 2.0**vf)) for name in ("knee_high", "knee_low")}
    cur = lambda i: np.rint(i * 2.0**frac).astype(np.int64)  # noqa: E731
    return r, {"r_on": np.rint(2.0**rs * unit / (g + terms["g_on"])).astype(np.int64),
               "gk_high": cur(g * knees["knee_high"] * 2.0**-vf), "gk_low": cur(g * knees["knee_low"] * 2.0**-vf),
               **knees}


def v_bound(clamp, v_in_max: float) -> float:
    """Largest |voltage| a free node reaches (the mapping's headroom; the width check verifies it)."""
    if clamp is None:
        return 2.0 * v_in_max
    terms = clamp.diode.integer_terms(clamp)
    rail = max(abs(clamp.v_low), abs(clamp.v_high))
    return rail if "clip" in terms else max(rail + abs(terms["knee_high"] - clamp.v_high) + 0.1, 2.0 * rail)


def check_network(net) -> None:
    """One line naming what the Loihi path cannot run, or nothing."""
    if hasattr(net, "require_ideal_amplifiers"):
        net.require_ideal_amplifiers("the Loihi path")
    if getattr(net, "hidden_pairs", False):
        raise NetworkError("the Loihi path maps single-ended hidden layers only; this network has differential ones "
                           "(hidden_pairs): settle it with the native or lava backend")
    for c, clamp in enumerate(net.neurons):
        if clamp is not None and clamp.diode.integer_terms(clamp) is None:
            raise NetworkError(f"the Loihi path cannot run layer {c + 1}'s {type(clamp.diode).__name__}: "
                               f"{clamp.diode.no_integer_form}")
    if net.readout not in ("pairs", "nodes"):
        raise NetworkError(f"the Loihi path reads 'pairs' or 'nodes', got {net.readout!r}")


LEAKS = ("reciprocal", "measured")


def build_program(net, v_in_max: float, alpha: float = 1.0, threshold: float = 0.0, binary: bool = False,
                  betas=(0.0,), vf: int | None = None, leak: str = "reciprocal") -> LoihiProgram:
    """Maps ``net`` for inputs up to ``v_in_max`` volts; ``threshold`` (V) is the graded sigma-delta threshold
    or, with ``binary``, the spike quantum (rounded to a power of two LSBs); ``betas``: nudging conductance
    (S) per phase. ``leak``: how a node divides by its conductance: ``reciprocal`` (the resting voltage I / G
    from a host-computed multiplier 2^rs / G, exact for the conductances mapped) or ``measured`` (forward
    Euler of C dv/dt = I - g v with g measured on chip in two calibration steps per sample: the synapses may
    change without the host touching the neurons; ``microcode.measured_step``)."""
    check_network(net)
    if leak not in LEAKS:
        raise InputError(f"unknown leak {leak!r}; use one of {LEAKS}")
    if not (np.isfinite(v_in_max) and v_in_max > 0):
        raise InputError(f"v_in_max must be a positive voltage, got {v_in_max}")
    if not 0 < alpha <= 1:
        raise InputError(f"alpha (dt G / C) must be in (0, 1], got {alpha}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise InputError(f"threshold must be >= 0 volts, got {threshold}")
    if vf is None:
        vf = min(VF_DEFAULT, int(np.floor(np.log2(STATE_MAX / (4.0 * v_in_max)))))
    L = net.n_connections
    vmax = [v_in_max] + [v_bound(net.neurons[c], v_in_max) for c in range(L)]
    theta = int(np.rint(threshold * 2.0**vf))
    if binary:
        theta = 2 ** int(np.rint(np.log2(max(theta, 1))))
    # the Dense connections (float conductances and where they go)
    conns = []
    for c in range(L):
        conns.append(((net.gains[c] * net.weights[c]).T, "input" if c == 0 else c - 1, c, "forward", net.weights[c]))
        if c > 0:
            conns.append((net.weights[c] / net.gains[c], c, c - 1, "backward", net.weights[c]))
    totals = node_conductance(net)
    readout = net.readout_matrix
    t_max = float(np.abs(readout).sum(0).max())  # |R^T y| <= this for |y| <= 1 V targets
    layers, fracs = [], []
    for c in range(L):
        clamp = net.neurons[c]
        terms = {} if clamp is None else clamp.diode.integer_terms(clamp)
        bias = net.bias_voltage * (net.biases[c][0] - net.biases[c][1]) + terms.get("i_mid", 0.0)
        g = totals[c] + terms.get("g_mid", 0.0)
        worst = np.abs(bias).copy()
        for w, src, dst, _, _ in conns:
            if dst == c:
                worst = worst + w @ np.full(w.shape[1], vmax[0] if src == "input" else vmax[src + 1])
        if c == L - 1:
            worst = worst + g.max() * (t_max + 2.0 * vmax[c + 1])  # a nudge of up to beta = node conductance
        frac = int(np.floor(np.log2(STATE_MAX / (2.0 * float(worst.max())))))
        if float(g.min()) <= 0:
            raise NetworkError(f"layer {c + 1} has a node with no conductance; the Loihi path needs G > 0 at every node")
        rs = _rs(g, vf, frac)
        r, pwl = _multipliers(g, terms, rs, vf, frac)
        prog = LayerProgram(r=r, rs=rs, pwl=pwl, bias=np.rint(bias * 2.0**frac).astype(np.int64),
                            dv=int(np.rint(alpha * 4096)), theta=theta, binary=binary, output=c == L - 1,
                            pairs=c == L - 1 and net.readout == "pairs")
        if "clip" in terms:
            lo, hi = terms["clip"]
            prog.low, prog.high = int(np.ceil(lo * 2.0**vf)), int(np.floor(hi * 2.0**vf))  # inward
        layers.append(prog)
        out_consts = (g, terms, frac)  # the output layer's, after the loop (set_betas recomputes its multipliers)
        fracs.append(frac)
    dense = []
    for w, src, dst, role, g in conns:
        m, q = _quantize(w)
        wexp = q + fracs[dst] - vf  # mantissa x payload [2^q S x 2^-vf V] -> 2^-if A
        if binary:
            wexp += int(np.log2(theta))  # a binary spike stands for one quantum
        dense.append(DenseMap(m, wexp, src, dst, role, w, 2.0**q))
    if net.readout == "pairs":
        half = net.sizes[-1] // 2
        perm = np.zeros((net.sizes[-1], net.sizes[-1]), dtype=np.int64)
        perm[np.arange(half), np.arange(half) + half] = 1
        perm[np.arange(half) + half, np.arange(half)] = 1
        dense.append(DenseMap(perm, int(np.log2(theta)) if binary else 0, L - 1, L - 1, "partner",
                              perm.astype(float), 1.0))
    shifts = _fit_exponents(dense, ["input"] + list(range(L)), binary)
    for c, p in enumerate(layers):
        p.shift = shifts[c]
    program = LoihiProgram(net, vf, fracs, layers, dense, theta, binary, alpha, float(v_in_max),
                           theta * 2.0**-vf, shifts["input"])
    program._out = out_consts
    program.leak = leak
    if leak == "measured":
        _measured_leak(program)
    program.set_betas(betas)
    bad = range_violations(program)
    if bad:
        raise NetworkError(f"this network does not fit Loihi 2 as mapped: {bad[0]}"
                           + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                           + "; lower the conductances' spread between connections, the gains or the input range "
                           "(docs/loihi.md, Ranges)")
    return program


def to_fixed(value: float, bits: int = 23) -> tuple:
    """(m, s) with value ~= m / 2^s and 0 <= m < 2^bits (a 24-bit signed multiplier operand)."""
    if value <= 0 or not np.isfinite(value):
        return 0, 0
    s = bits - 1 - int(np.floor(np.log2(value)))
    return int(np.rint(value * 2.0**s)), s


def _set_steps(p, g_ref: float, terms: dict, alpha: float, vf: int, frac: int) -> None:
    """k / 2^ks = alpha / g_ref in LSB per current unit (g_ref: the stiffest node's conductance, S; the step
    dt / C is the layer's, as one capacitance per node would make it); a PWL diode's 1 / (1 + k g_on)."""
    unit = 2.0 ** (frac - vf)  # S -> current units per LSB
    p.k, p.ks = to_fixed(alpha / (g_ref * unit))
    if "g_on" in terms:
        p.r_on = to_fixed(1.0 / (1.0 + p.k * 2.0**-p.ks * terms["g_on"] * unit))


def _measured_leak(program) -> None:
    """The constants of leak="measured" (``microcode.measured_step``, ``microcode.calibrate``): per free layer
    c (level c + 1) the g scale 2^gs, the conductances that are no synapse (biases, a PWL diode's g_mid), the
    step, and the two multipliers that turn the calibration currents into g. Every sender at level l sends
    ``cal`` payload units in calibration step ``cal_step(l)``: the smallest power of two that makes every one
    of its Dense products exact (2^cal x 2^exponent >= 1)."""
    L = len(program.layers)
    program._cal = cal = {}
    for s in ["input"] + list(range(L)):
        exps = [d.weight_exp for d in program.dense if d.src == s and d.role != "partner"]
        cal[s] = 0 if program.binary else max(0, -min(exps, default=0))
    program.input_cal = 1 << cal["input"]
    for c in range(L):
        _layer_leak(program, c, 0.0)
        for d in program.dense:  # the calibration currents must fit the 24-bit input
            if d.dst == c and d.role != "partner":
                top = int(d.mantissa.sum(1).max(initial=0)) * 2.0 ** (cal[d.src] + d.weight_exp)
                if top > STATE_MAX:
                    raise NetworkError(f"layer {c + 1}'s calibration current ({top:.3g} units) does not fit 24 bits; "
                                       "use leak='reciprocal' or a smaller fan-in")


def _layer_leak(program, c: int, beta_max: float) -> None:
    """Free layer c's measured-leak constants: g's scale 2^gs (the largest node conductance, plus ``beta_max``
    at a nudged output, at 2^21: room for g to grow as it learns inside 24 bits), the node's own
    conductances that are no synapse, the calibration multipliers and the step."""
    net, vf, L, cal = program.net, program.vf, len(program.layers), program._cal
    p = program.layers[c]
    clamp = net.neurons[c]
    terms = {} if clamp is None else clamp.diode.integer_terms(clamp)
    frac = program.current_frac[c]
    unit = 2.0 ** (frac - vf)
    g_max = float(node_conductance(net)[c].max() + terms.get("g_mid", 0.0))

    def v_cal(s) -> float:  # a sender's calibration payload in LSB
        if program.binary:
            return float(max(program.theta, 1))
        return float(2 ** (cal[s] + program.payload_shift(s)))

    p.leak = "measured"
    p.gs = int(np.floor(np.log2(2.0**21 / ((g_max + beta_max) * unit))))
    p.g_const = np.rint((net.biases[c].sum(0) + terms.get("g_mid", 0.0)) * unit * 2.0**p.gs).astype(np.int64)
    p.level, p.cal_payload = c + 1, 1 << cal[c]
    p.cal_first = "below" if cal_step(c) == 0 else "above"
    # I_below = (sum of a G) x V_cal x unit-of-current: g takes I_below x 2^gs / (a V_cal)
    p.cal_below = to_fixed(2.0**p.gs / (net.gains[c] * v_cal("input" if c == 0 else c - 1)))
    p.cal_above = to_fixed(2.0**p.gs * net.gains[c + 1] / v_cal(c + 1)) if c + 1 < L else (0, 0)
    _set_steps(p, g_max, terms, program.alpha, vf, frac)


def _fit_exponents(dense: list, senders: list, binary: bool) -> dict:
    """Brings every Dense's weight exponent into ``RANGES`` before any run, exactly where it can be: a
    connection whose exponent is below the range gets its sender's graded payload shifted right (the sender
    sends its change in units of 2^shift LSB, ``microcode.encode``: exponent + shift), the smallest shift that
    lifts every connection from that sender; one above the range has its mantissas scaled up by powers of two
    while they stay 8-bit (exponent - k, the same weights). Returns the shift per sender; what still does not
    fit is left for ``range_violations`` to name (the mapping is then refused)."""
    lo, hi, _ = RANGES["weight exponent"]
    shifts = {}
    for s in senders:
        mine = [d for d in dense if d.src == s]
        low = min((d.weight_exp for d in mine), default=lo)
        shifts[s] = 0 if binary else max(0, lo - low)
        for d in mine:
            d.weight_exp += shifts[s]
            top = int(d.mantissa.max(initial=0))
            while d.weight_exp > hi and 0 < top and 2 * top <= MANTISSA_MAX:
                d.mantissa = d.mantissa * 2
                d.scale /= 2.0
                d.weight_exp -= 1
                top *= 2
    return shifts
