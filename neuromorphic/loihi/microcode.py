"""The integer neuron of the Loihi path: one time step of an EqProp node as Loihi 2 neuron microcode would run
it, with add, multiply, shift, compare and select only, on integer state of stated widths.

No Lava import: the bit-accurate ProcessModel (``proc/neurons/models.py``) calls ``step`` with one
sample's state (shape (n,)), the batched emulator (``emulator.py``) with a batch (shape (B, n)); the
two are the same integer program, so they agree bit for bit (tested against Lava runs).

Per step, for a node with host-given constants (``LayerProgram``, made once per network by
``loihi.map``):

    i_acc  += a_in                                     sigma decoding of the synaptic input (24 bits)
    drive   = i_acc + bias [+ (beta * (t + p)) >> beta_shift]  nudging current beta (t - v + p), output layer
    target  = (drive * r + round) >> rs                resting voltage I / G: r = 2^rs / G (host-given; in a
                                                       nudged phase r = 2^rs / (G + beta): the nudge's -beta v)
    target  = diode(target)                            ideal: clip to the rails; PWL: the on-branch
    v      += ((target - v) * dv + 2^11) >> 12         leaky integration, dv = 4096 dt G / C
    delta   = v - sent                                 sigma-delta encoding
    graded: send delta >> shift where |delta| >= max(theta, 2^shift);  binary: one +-1 spike where |delta| >= quantum

``v += alpha (I/G - v)`` is forward Euler of C dv/dt = I - G v with dt G / C = alpha: the node's own
leaky integration, whose fixed points are the network's equilibria. Every product is of two operands of at
most 24 bits, shifted right at once (a 48-bit intermediate, as the microcode's multiply-and-shift); every
state (``i_acc``, ``p_acc``, ``drive``, ``v``, ``sent``, the payload) must fit 24 signed bits, which
``Peaks`` records and ``check_widths`` enforces.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATE_BITS = 24
STATE_MAX = 2 ** (STATE_BITS - 1) - 1
DV_SHIFT = 12  # the leak's fraction: dv in units of 2^-12, as Loihi's decay constants
# every quantity the step holds or multiplies, recorded before any saturation: "target" is the resting voltage
# the multiplier gives (the diode's output, before the 24-bit saturation), "update" the leak's operand target - v
WIDTHS = {"i_acc": STATE_BITS, "p_acc": STATE_BITS, "drive": STATE_BITS, "v": STATE_BITS, "sent": STATE_BITS,
          "payload": STATE_BITS, "a_in": STATE_BITS, "target": STATE_BITS, "update": STATE_BITS, "g": STATE_BITS}
#: per sample, steps before the phases: the reset step; a measured leak adds the two calibration steps before it
PRE_STEPS = {"reciprocal": 1, "measured": 3}


@dataclass
class LayerProgram:
    """A free layer's constants, all integers (host-computed when the network is built or a phase starts).

    ``r``/``rs``: reciprocal node conductance as multiplier and shift; ``bias``: bias current; ``low``/
    ``high``: ideal-clamp rails in voltage LSBs (None: no ideal clamp); ``pwl``: for piecewise-linear diodes
    the knees (LSBs), G times each knee (current units) and the on-branch multiplier ``r_on``: past a knee
    k the target is k + (drive - G k) r_on >> rs; ``dv``: alpha * 4096;
    ``theta``: graded threshold (LSBs) or, with ``binary``, the spike quantum; ``beta``/``beta_shift``:
    the nudging conductance per phase (output layer), ``pairs``: the nudge reads a partner node."""

    r: np.ndarray
    rs: int
    bias: np.ndarray
    dv: int
    theta: int
    binary: bool = False
    low: int | None = None
    high: int | None = None
    pwl: dict | None = None
    beta: tuple = (0,)
    beta_shift: int = 0
    output: bool = False
    pairs: bool = False
    per_phase: list | None = None  # output layer: (r, pwl) per phase, the nudge's own conductance folded in
    shift: int = 0  # graded payloads in units of 2^shift LSB (``encode``; chosen by ``loihi.map``)
    # leak="measured" (``measured_step``): the node integrates v += k (I - g v) >> ks with g, its conductance in
    # current units per LSB x 2^gs, measured on chip in the calibration steps; nothing here depends on the
    # synapses' conductances, so they may change (learn) without the host touching the neuron
    leak: str = "reciprocal"
    gs: int = 0
    g_const: np.ndarray | None = None  # the node's own conductances that are no synapse (bias, PWL g_mid), x 2^gs
    beta_g: tuple = (0,)  # per phase: the nudge's conductance on the output nodes, x 2^gs
    k: int = 0  # dt / C as the multiplier of k >> ks: LSB of voltage per current unit and step
    ks: int = 0
    r_on: tuple = (0, 0)  # PWL: (m, s) of 1 / (1 + k g_on), the diode's current taken implicitly past a knee
    cal_first: str = "below"  # which side's calibration payload arrives in the first calibration step
    cal_below: tuple = (0, 0)  # (m, s): g += (I_below * m) >> s (I_below: the calibration current from below)
    cal_above: tuple = (0, 0)
    level: int = 0  # the layer's level (inputs 0, free layer c: c + 1): it sends its calibration payload in
    cal_payload: int = 0  # step ``cal_step(level)``, this many payload units (graded; binary: one spike)

@dataclass
class NeuronState:
    v: np.ndarray
    sent: np.ndarray
    i_acc: np.ndarray
    p_acc: np.ndarray
    g: np.ndarray | None = None  # the measured conductance (leak="measured"), x 2^gs

    @classmethod
    def zeros(cls, shape) -> "NeuronState":
        z = lambda: np.zeros(shape, dtype=np.int64)  # noqa: E731
        return cls(z(), z(), z(), z(), z())


def cal_step(level: int) -> int:
    """The calibration step (0 or 1) in which a sender at ``level`` sends: levels 0, 1 in step 0, levels 2, 3 in
    step 1, and so on modulo 4. A node at level l hears levels l - 1 and l + 1, which this puts in different
    steps: each calibration current is one side's sum alone (no division to separate them)."""
    return (level >> 1) & 1  # level mod 4 < 2: bit 1 clear (a shift and a mask, no division)


def calibration_send(level: int, local: int, payload: int, n: int, binary: bool):
    """What a sender sends in calibration step ``local`` (0 or 1): ``payload`` units (binary: one +1 spike)
    from every node in its step, nothing in the other."""
    on = cal_step(level) == local
    return np.full(n, (1 if binary else payload) if on else 0, dtype=np.int64)


def calibrate(p: LayerProgram, st: NeuronState, a_in, local: int) -> None:
    """Calibration step ``local`` (1 or 2: the payloads of steps 0 and 1 arrive one step late): the node turns
    the current from one side into its share of g. Below: the synapses store a G (a the gain into the layer),
    so g takes I_below / (a V_cal); above: they store G / a', so g takes I_above a' / V_cal (the node's own
    conductance to the layer above is a' times what its backward synapses carry)."""
    first = (local == 1) == (p.cal_first == "below")
    m, s = p.cal_below if first else p.cal_above
    share = mul_shift(a_in, m, s)
    st.g = share if local == 1 else st.g + share


@dataclass
class Peaks:
    """Largest magnitude each quantity reached (for the width check)."""

    values: dict = field(default_factory=lambda: {k: 0 for k in WIDTHS})

    def see(self, name: str, x) -> None:
        if np.size(x):
            m = int(np.abs(x).max())
            if m > self.values[name]:
                self.values[name] = m

    def merge(self, other: dict) -> None:
        for k, m in other.items():
            self.values[k] = max(self.values.get(k, 0), int(m))


def bits_needed(magnitude: int) -> int:
    """Signed bits that hold +-magnitude."""
    return int(magnitude).bit_length() + 1


def check_widths(peaks: dict) -> None:
    """Raises OverflowError naming every quantity whose peak does not fit its declared width (a target the
    24-bit state saturated included: its peak is recorded before the saturation)."""
    bad = [f"{k} needed {bits_needed(m)} bits (peak {m}) > {WIDTHS[k]}" for k, m in peaks.items()
           if k in WIDTHS and bits_needed(m) > WIDTHS[k]]
    if bad:
        raise OverflowError("Loihi state overflow: " + "; ".join(bad) + " (a saturated or wrapped state: the network "
                            "does not fit the 24-bit state at this mapping; lower the gains or the input range)")


def mul_shift(x, m, shift: int):
    """(x * m) >> shift, rounded to nearest (a half added before the arithmetic shift)."""
    if shift <= 0:
        return (x * m) << -shift
    return (x * m + (1 << (shift - 1))) >> shift


def _diode(p: LayerProgram, pwl, drive, target):
    if pwl is not None:
        w = pwl
        upper = w["knee_high"] + mul_shift(drive - w["gk_high"], w["r_on"], p.rs)
        lower = w["knee_low"] + mul_shift(drive - w["gk_low"], w["r_on"], p.rs)
        target = np.where(target > w["knee_high"], upper, target)
        target = np.where(target < w["knee_low"], lower, target)
    if p.low is not None:
        target = np.minimum(np.maximum(target, p.low), p.high)
    return target


def step(p: LayerProgram, st: NeuronState, a_in, p_in, phase: int, targets, peaks: Peaks | None = None):
    """One time step; updates ``st`` in place and returns the outgoing payload: graded (int, 0 = no spike)
    or, with ``p.binary``, the signed spike (+1, -1, 0; a chip sends them on two binary ports)."""
    if p.leak == "measured":
        return measured_step(p, st, a_in, p_in, phase, targets, peaks)
    drive = _drive(p, st, a_in, p_in, phase, targets)
    r, pwl = p.r, p.pwl
    if p.output and p.beta[phase]:  # the -beta v part of the nudge is in this phase's multipliers
        r, pwl = p.per_phase[phase]
    raw = _diode(p, pwl, drive, mul_shift(drive, r, p.rs))
    target = np.minimum(np.maximum(raw, -STATE_MAX), STATE_MAX)  # saturating, as 24-bit microcode
    update = target - st.v
    st.v += mul_shift(update, p.dv, DV_SHIFT)
    out, st.sent = encode(st.v, st.sent, p.theta, p.binary, p.shift)
    if peaks is not None:
        _record(peaks, st, a_in, drive, out, raw, update)  # a saturated target needs more than 24 bits here
    return out


def _drive(p: LayerProgram, st: NeuronState, a_in, p_in, phase: int, targets):
    """Sigma-decodes the synaptic input (and the partner's, output layer) and returns the drive: the input, the
    bias and, in a nudged phase, beta (t + partner) (the -beta v part is the caller's)."""
    st.i_acc += a_in
    drive = st.i_acc + p.bias
    if p.output:
        if p.pairs:
            st.p_acc += p_in
        beta = p.beta[phase]
        if beta:
            drive = drive + mul_shift(targets + st.p_acc if p.pairs else targets, beta, p.beta_shift)
    return drive


def _record(peaks: Peaks, st: NeuronState, a_in, drive, out, target, update, g=None) -> None:
    """Every quantity of a step into ``peaks``, ``target`` before the 24-bit saturation (``check_widths``)."""
    for name, x in (("a_in", a_in), ("i_acc", st.i_acc), ("p_acc", st.p_acc), ("drive", drive), ("v", st.v),
                    ("sent", st.sent), ("payload", out), ("target", target), ("update", update)):
        peaks.see(name, x)
    if g is not None:
        peaks.see("g", g)


def measured_step(p: LayerProgram, st: NeuronState, a_in, p_in, phase: int, targets, peaks: Peaks | None = None):
    """One time step of a node with a measured leak (``leak="measured"``): forward Euler of C dv/dt = I - g v,
    v' = v + (k (I - (g v >> gs))) >> ks, with g = the measured conductance + the node's constant ones (+ beta in
    a nudged phase). A PWL diode's current g_on (v - knee) is taken implicitly (it is stiff): past a knee,
    v = knee + (v' - knee) / (1 + k g_on), a constant multiplier; an ideal clamp holds v between its rails.
    Its fixed points are the network's equilibria (I = g v + the diode's current) whatever g is: the synapses
    may learn and the node follows (a host reciprocal of G would not)."""
    drive = _drive(p, st, a_in, p_in, phase, targets)
    g = st.g + p.g_const
    if p.output and p.beta[phase]:
        g = g + p.beta_g[phase]
    cur = drive - mul_shift(st.v, g, p.gs)  # I - g v, current units
    raw = st.v + mul_shift(cur, p.k, p.ks)
    if p.pwl is not None:
        kh, kl = p.pwl["knee_high"], p.pwl["knee_low"]
        m, s = p.r_on
        raw = np.where(raw > kh, kh + mul_shift(raw - kh, m, s), np.where(raw < kl, kl + mul_shift(raw - kl, m, s), raw))
    if p.low is not None:
        raw = np.minimum(np.maximum(raw, p.low), p.high)
    st.v = np.minimum(np.maximum(raw, -STATE_MAX), STATE_MAX)  # saturating, as 24-bit microcode
    out, st.sent = encode(st.v, st.sent, p.theta, p.binary, p.shift)
    if peaks is not None:
        _record(peaks, st, a_in, drive, out, raw, cur, g)
    return out


def schedule_slot(time_step: int, steps: int, phases: int, pre: int = 1) -> tuple:
    """(sample, local step) of Lava time step ``time_step`` (from 1): each sample has ``pre`` steps (the reset
    step last; local 0 .. pre - 1) and then phases x steps steps. The host's reference for ``Schedule``, which
    the neurons run."""
    per = pre + phases * steps
    return (time_step - 1) // per, (time_step - 1) % per


@dataclass
class Schedule:
    """Where a process is in the sample schedule, kept as counters a neuron core holds (add, compare, select;
    no division): ``sample``, ``local`` (0 .. pre - 1: the calibration steps of a measured leak and the reset
    step, then pre .. pre - 1 + phases x steps), ``phase`` and ``count`` (1 .. steps within the phase). ``tick``
    advances them by one time step; they start before time step 1."""

    steps: int
    phases: int
    pre: int = 1
    sample: int = 0
    local: int = -1
    phase: int = 0
    count: int = 0

    def tick(self) -> None:
        self.local += 1
        if self.local >= self.pre + self.phases * self.steps:
            self.local = 0
            self.sample += 1
        if self.local < self.pre:
            self.phase = 0
            self.count = 0
        else:
            self.count += 1
            if self.count > self.steps:
                self.count = 1
                self.phase += 1

    @property
    def slot(self) -> int:
        """The (sample, phase) record index, sample x phases + phase."""
        return self.sample * self.phases + self.phase


def encode(x, sent, theta: int, binary: bool, shift: int = 0):
    """Sigma-delta encoder of voltages x given what was sent: (payload, new sent). Graded: where the change is
    at least max(theta, 2^shift) LSB, the change in units of 2^shift LSB, rounded (the sender's payload shift,
    ``loihi.map``: it keeps the receiving Dense's weight exponent in range; what was sent then stands within
    2^(shift-1) LSB of x, and a silent sender within max(theta, 2^shift)); binary: one signed spike of one
    quantum where the change is >= theta."""
    delta = x - sent
    if binary:
        out = (delta >= theta).astype(np.int64) - (delta <= -theta).astype(np.int64)
        return out, sent + out * theta
    if shift <= 0:
        out = np.where(np.abs(delta) >= max(theta, 1), delta, 0)
        return out, sent + out
    out = np.where(np.abs(delta) >= max(theta, 1 << shift), (delta + (1 << (shift - 1))) >> shift, 0)
    return out, sent + (out << shift)
