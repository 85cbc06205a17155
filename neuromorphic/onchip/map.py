"""Host side of on-chip training on Lava's bit-approximate learning engine (no Lava import): the integer
mapping of a LayeredNetwork, fixed once per training run.

Units. Payloads during the phases: voltages, 1 LSB = 2^-vf V (24 bits). Currents into free layer i:
1 unit = 2^-frac_i A. Synapses: Lava ``LearningDense`` (model ``PyLearningDenseModelBitApproximate``),
8-bit unsigned mantissas (sign mode excitatory) times 2^q S, with weight exponent q + frac - vf so a
synapse's output arrives in its target layer's current unit.

Two copies of one conductance G (gain a = 2^k between layers): forward a G, backward G / a. Their
exponents differ by 2k, so both store the *same* mantissa; the learning rule (``rule_strings``) gives both
the same integer increments from the same products and, with Lava's per-process random stream (same seed,
one draw per step), the same stochastic rounding: the copies stay bit-identical. A gain that is not a power
of two cannot keep two integer copies equal and is refused.

The learning epilogue (after the -beta phase of every sample). The tag of a synapse between u (lower
layer, amplified by a: u~ = a u) and v must take  coef (D+ - D-)(D+ + D-)  with D = u~ - v:

    dD sD = P(u~) - du~ sv - su~ dv + P(v)      (d = +beta minus -beta, s = sum, P = d s)

Each quantity is sent as a 7-bit signed code (stochastically rounded by the neuron): as the presynaptic
payload 2 (64 + X) (the engine keeps x1 = payload / 2) or as a third factor y. Slot A: X = du~, y2 = sv;
slot B: X = su~, y2 = dv; slot C1: X = P(u~)/64U, y2 = -64; slot C2: y1 = P(v)/64U, y3 = -64 (U = s_d s_s);
one product per slot that can saturate the tag, so both copies saturate alike.
The rule  dt = 2^e (x1 - 64) y2 + 2^e y1 y3 - y0 t  sums them (the engine floors each product to 1/8;
y1 = 1, y3 = 8 once per floored pair puts the mean back), and 2^e = 8 |coef| s_d s_s fixes the units.
Connections of even and odd index take turns (a layer sends one payload per step): 4 slots per parity.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eqprop.circuits.errors import InputError, NetworkError

MANTISSA_MAX = 255
MANTISSA_START = 128  # the largest conductance's mantissa at the start: one bit of headroom to grow
CODE_MAX = 63  # 7-bit signed codes (x1 = 64 + X must stay in 1..127)
E_MIN = -7  # the engine's accumulator keeps 7 fractional bits of a tag LSB
E_MAX = 8  # the largest exponent of a rule's scaling constant (lava.magma.core.learning.product_series refuses >= 9)
TAG_BITS_MAX = 7  # a weight update keeps 7 fractional bits before it is rounded
STATE_MAX = 2**23 - 1
NO_DECAY = 2.0**60  # a trace's tau at which exp(-1 / tau) is exactly 1.0 (``onchip.network.three_factor_rule``)


def rule_strings(e: int, s: int = 0) -> dict:
    """The rule with product exponent ``e`` (weight LSBs) and ``s`` fractional bits in the tag: the tag
    counts 2^-s weight LSBs (finer than the engine's own rounding after every step) and the apply step
    rounds it into the weight once, stochastically."""
    return {"dt": f"u0 * 2^{e + s} * (x1 - 64) * y2 + u0 * 2^{e + s} * y1 * y3 - y0 * t",
            "dw": f"2^{-s} * y0 * t" if s else "y0 * t"}


@dataclass
class IntOnchipMap:
    vf: int
    fracs: list  # per free layer
    q: list  # per connection: exponent of the forward copy's mantissa LSB (S); backward: q - 2 log2 a
    q_bias: list
    s_delta: list  # per connection (and bias_*): code LSB of the phase differences (V)
    s_sigma: list
    bias_s_delta: list
    bias_s_sigma: list
    stat_max: list = field(default_factory=list)  # per connection (forward, bias): largest |batch sum of dD sD| (V^2)
    exps: list = field(default_factory=list)  # rule exponent per connection (forward and backward copies)
    bias_exps: list = field(default_factory=list)
    tag_bits: list = field(default_factory=list)  # per connection (forward, bias): fractional bits of the tag
    g_max: list = field(default_factory=list)  # per free layer: largest node conductance when mapped (S); [] : unset

    def mantissas(self, net) -> dict:
        """Each copy's mantissas (n_out, n_in) and weight exponent; a conductance the mapping cannot hold
        (above 255 LSBs) is refused."""
        out = {"forward": [], "backward": [], "bias": []}
        L = net.n_connections
        for c in range(L):
            a = float(net.gains[c])
            out["forward"].append((self._m(a * net.weights[c].T, self.q[c], f"connection {c}"),
                                   self.q[c] + self.fracs[c] - self.vf))
            out["bias"].append((self._m(a * net.biases[c].T, self.q_bias[c], f"bias {c}"),
                                self.q_bias[c] + self.fracs[c] - self.vf))
            if c > 0:
                qb = self.q[c] - 2 * _log2_gain(a)
                out["backward"].append((self._m(net.weights[c] / a, qb, f"connection {c} (backward)"),
                                        qb + self.fracs[c - 1] - self.vf))
        return out

    @staticmethod
    def _m(w, q, what):
        m = np.rint(w / 2.0**q)
        if m.max(initial=0) > MANTISSA_MAX:
            raise NetworkError(f"{what}: a conductance of {w.max():.3g} S exceeds the mapping's 255 LSBs of "
                               f"{2.0**q:.3g} S; map the network again")
        return m.astype(np.int64)

    def conductances(self, net, fwd, bias) -> tuple:
        """The LayeredNetwork conductances the mantissas stand for (exact: powers of two)."""
        L = net.n_connections
        weights = [fwd[c].T.astype(float) * 2.0**self.q[c] / net.gains[c] for c in range(L)]
        biases = [bias[c].T.astype(float) * 2.0**self.q_bias[c] / net.gains[c] for c in range(L)]
        return weights, biases


def _log2_gain(a: float) -> int:
    k = int(np.rint(np.log2(a)))
    if a <= 0 or 2.0**k != a:
        raise NetworkError(f"the bit-approximate engine keeps two integer copies of each conductance (a G and "
                           f"G / a) equal only for power-of-two gains; got gain {a:g}: use --gain 2, 4 or 8")
    return k


def check_network(net) -> None:
    net.require_ideal_amplifiers("on-chip learning")
    for c in range(1, net.n_connections):
        _log2_gain(float(net.gains[c]))


def check_integer_neurons(net) -> None:
    """Integer on-chip neurons (``onchip.network.integer_neurons``) clamp with ideal diodes only."""
    for c, clamp in enumerate(net.neurons):
        if clamp is not None and clamp.diode.kind != "ideal":
            raise NetworkError(f"integer on-chip neurons clamp with ideal diodes only; layer {c + 1} has "
                               f"{type(clamp.diode).__name__}: use --diode ideal or --neurons float")


def build_map(net, v_in_max: float, v_free_max: list, delta_max: list, sigma_max: list,
              stat_max: list | None = None) -> IntOnchipMap:
    """Exponents from the network's current conductances (largest mantissa 128); current units from the
    worst case with every mantissa at 255; code LSBs from the largest phase difference and sum per
    connection (``delta_max``/``sigma_max``: (connection, bias) pairs of volts, of u~ and v alike)."""
    check_network(net)
    L = net.n_connections
    if not (np.isfinite(v_in_max) and v_in_max > 0):
        raise InputError(f"v_in_max must be a positive voltage, got {v_in_max}")
    vmax = max([v_in_max] + list(v_free_max))
    vf = min(20, int(np.floor(np.log2(STATE_MAX / (2.0 * vmax)))))
    q, qb = [], []
    for c in range(L):
        a = float(net.gains[c])
        q.append(_exponent(a * net.weights[c]))
        qb.append(_exponent(a * net.biases[c]))
    fracs = []
    for i in range(L):
        a = float(net.gains[i])
        v_low = v_in_max if i == 0 else v_free_max[i - 1]
        worst = MANTISSA_MAX * 2.0**q[i] * net.sizes[i] * v_low + MANTISSA_MAX * 2.0**qb[i] * 2 * abs(net.bias_voltage) / a
        if i + 1 < L:
            a2 = float(net.gains[i + 1])
            worst += MANTISSA_MAX * 2.0 ** (q[i + 1] - 2 * _log2_gain(a2)) * net.sizes[i + 2] * v_free_max[i + 1]
        fracs.append(int(np.floor(np.log2(STATE_MAX / (2.0 * worst)))))
    sd, ss, bsd, bss = [], [], [], []
    for c in range(L):
        (d, db), (s, sb) = delta_max[c], sigma_max[c]
        sd.append(_lsb(d))
        ss.append(_lsb(s))
        bsd.append(_lsb(db))
        bss.append(_lsb(sb))
    return IntOnchipMap(vf, fracs, q, qb, sd, ss, bsd, bss, list(stat_max or [(0.0, 0.0)] * L))


def _exponent(w) -> int:
    top = float(np.max(w, initial=0.0))
    if (np.asarray(w) < 0).any():
        raise NetworkError("the bit-approximate engine stores conductances >= 0 (found a negative one)")
    return 0 if top == 0.0 else int(np.ceil(np.log2(top / MANTISSA_START)))


def _lsb(top: float) -> float:
    """A power-of-two code LSB that holds +-top in 63 codes."""
    top = max(float(top), 1e-12)
    return 2.0 ** int(np.ceil(np.log2(top / CODE_MAX)))


def set_rates(m: IntOnchipMap, net, coefs) -> None:
    """Rule exponents for the coefficients ``coefs`` (per connection: forward, bias; in conductance per V^2
    of the forward copy's stored a G): 2^e = 8 |coef| s_d s_s / LSB, e >= -7; when the rate is too small
    for that, s_s grows (coarser sums) until it fits."""
    m.exps, m.bias_exps, m.tag_bits = [], [], []
    for c in range(net.n_connections):
        bits = []
        for which, q, sd, ss, out in ((0, m.q[c], m.s_delta, m.s_sigma, m.exps),
                                      (1, m.q_bias[c], m.bias_s_delta, m.bias_s_sigma, m.bias_exps)):
            k = abs(float(coefs[c][which])) / 2.0**q  # mantissa LSBs per V^2
            if k == 0.0:
                out.append(None)
                bits.append(0)
                continue
            # tag bits: the calibration batch's largest update fills half the tag's 255 counts (0..7 bits)
            top = k * float(m.stat_max[c][which])
            s = 0 if top <= 0 else int(np.clip(np.floor(np.log2(127.0 / top)), 0, TAG_BITS_MAX))
            e = int(np.ceil(np.log2(8.0 * k * sd[c] * ss[c])))
            e = max(e, E_MIN - s)
            if e + s > E_MAX:
                what = f"connection {c}" if which == 0 else f"the biases of connection {c}"
                raise InputError(f"the learning rate of {what} asks the engine for a rule scale of 2^{e + s}, above "
                                 f"Lava's 2^{E_MAX} (a learning rule's scaling exponents lie in -7..8): lower "
                                 "--lr (it moves a weight by the whole of its 8 bits in one batch)")
            ss[c] = 2.0**e / (8.0 * k * sd[c])  # exact: the rate is what the host asked, not rounded
            out.append(e)
            bits.append(s)
        m.tag_bits.append(tuple(bits))


def codes(x, lsb: float, rng) -> np.ndarray:
    """7-bit signed codes of ``x`` in units of ``lsb``, stochastically rounded; saturating at +-63."""
    y = np.asarray(x, dtype=float) / lsb
    f = np.floor(y)
    q = f + (rng.random(y.shape) < (y - f))
    return np.clip(q, -CODE_MAX, CODE_MAX).astype(np.int64)


CODE_MULT_BITS = 22  # an integer code's multiplier (a 24-bit signed operand)
CODE_OPERAND_BITS = 40  # what a quantity is shifted down to before the multiply: 40 + 22 bits fit int64


def code_constants(lsb: float, bits: int) -> tuple:
    """(m, sh, pre): an integer neuron's 7-bit code of a quantity x of at most ``bits`` bits (voltage LSBs, or
    their products) whose code LSB is ``lsb`` in the same units: ``int_codes`` takes (((x >> pre) m) + R) >> sh
    with R uniform on [0, 2^sh), a stochastic rounding of x / lsb with m / 2^(sh - pre) = 1 / lsb to 22 bits.
    ``pre`` drops what a 40-bit operand cannot hold (a product of two 25-bit sums): a floor of at most 2^pre
    units, 2^-12 of a code LSB or less where ``lsb`` is 2^20 units or more (refused below 2^(pre + 8))."""
    pre = max(0, int(bits) - CODE_OPERAND_BITS)
    if not (np.isfinite(lsb) and lsb > 0):
        raise InputError(f"a code LSB must be positive and finite, got {lsb}")
    if pre and lsb < 2.0 ** (pre + 8):
        raise InputError(f"a code LSB of {lsb:.3g} units is too fine for a {bits}-bit quantity shifted by {pre} "
                         "(the floor would bias the codes)")
    r = 2.0**pre / lsb  # code per operand unit
    sh = CODE_MULT_BITS - 1 - int(np.floor(np.log2(r)))
    if sh < 0:  # the LSB is finer than one operand unit: every nonzero x saturates its code anyway
        return min(int(np.rint(r)), 1 << CODE_MULT_BITS), 0, pre
    if sh > 62:
        return 0, 62, pre  # the LSB is so coarse that every code is 0
    return int(np.rint(r * 2.0**sh)), sh, pre


def int_codes(x, m: int, sh: int, pre: int, rng) -> np.ndarray:
    """7-bit signed codes of the integer array x with ``code_constants``, in integers: stochastic rounding by an
    integer random draw below 2^sh, saturating at +-63."""
    x = np.asarray(x, dtype=np.int64)
    r = rng.integers(0, 1 << sh, size=x.shape, dtype=np.int64) if sh else np.zeros(x.shape, dtype=np.int64)
    return np.clip(((x >> pre) * m + r) >> sh, -CODE_MAX, CODE_MAX)


def ranges_from_phases(net, sources, plus: list, minus: list) -> tuple:
    """(delta_max, sigma_max, stat_max) per connection for ``build_map``, from one batch's nudged equilibria (free
    layers' voltages, batch x units): connection c joins u~ = a_c u (the sources for c = 0) and v = layer c;
    its bias copy joins the rails (u~ = +-vb) and v. The largest |difference| and |sum| of either end."""
    L = net.n_connections
    vb = abs(float(net.bias_voltage))
    delta, sigma, stat = [], [], []
    for c in range(L):
        a = float(net.gains[c])
        dv = np.abs(plus[c] - minus[c]).max(initial=0.0)
        sv = np.abs(plus[c] + minus[c]).max(initial=0.0)
        if c == 0:
            du, su = 0.0, 2 * a * np.abs(sources).max(initial=0.0)
        else:
            du = a * np.abs(plus[c - 1] - minus[c - 1]).max(initial=0.0)
            su = a * np.abs(plus[c - 1] + minus[c - 1]).max(initial=0.0)
        delta.append((max(du, dv), dv))
        sigma.append((max(su, sv), max(2 * vb, sv)))
        lo = sources if c == 0 else None
        up_p, up_m = (a * lo, a * lo) if c == 0 else (a * plus[c - 1], a * minus[c - 1])
        fwd = np.abs(_sq_stat(up_p, plus[c]) - _sq_stat(up_m, minus[c])).max(initial=0.0)
        rails = np.array([[vb, -vb]])
        bias = np.abs(_sq_stat(np.repeat(rails, len(plus[c]), 0), plus[c]) -
                      _sq_stat(np.repeat(rails, len(minus[c]), 0), minus[c])).max(initial=0.0)
        stat.append((float(fwd), float(bias)))
    return delta, sigma, stat


def _sq_stat(u, v) -> np.ndarray:
    """sum over the batch of (u_i - v_j)^2, (n_u, n_v)."""
    return (u * u).sum(0)[:, None] - 2.0 * u.T @ v + (v * v).sum(0)[None, :]
