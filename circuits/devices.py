"""Two-terminal device models and the neuron nonlinearity (antiparallel diodes to bias rails).

Every model gives its current, its small-signal conductance and its co-content (the integral of
current over voltage), because the co-content is the device's contribution to the network energy
and its derivative is the device's contribution to Kirchhoff's current law.

Diode currents are written for a junction voltage ``vd = V_anode - V_cathode``; the neuron
``DiodeClamp`` places one diode from the node to the upper rail and one from the lower rail to the
node, so the node is held (softly or hard) inside ``[v_low, v_high]``.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import kernels
from .errors import NetworkError

# ngspice's constants (CODATA 2014), not the 2019 SI values: vt differs by 3e-7 relative, which moves a
# strongly forward-biased diode's node by ~1e-7 V and would break microvolt agreement with ngspice.
BOLTZMANN = 1.38064852e-23
ELEMENTARY_CHARGE = 1.6021766208e-19
SPICE_TNOM_KELVIN = 300.15  # ngspice evaluates devices at 27 C unless told otherwise
SPICE_GMIN = 1e-12  # ngspice puts this conductance across every junction
# Exponent cap: beyond it the diode is a near-short anyway; the cap keeps Newton steps finite.
EXP_CAP = 80.0
NEWTON_MAX_ITER = 100


def thermal_voltage(kelvin: float = SPICE_TNOM_KELVIN) -> float:
    """kT/q in volts (25.865 mV at 27 C, as ngspice uses)."""
    return BOLTZMANN * kelvin / ELEMENTARY_CHARGE


@dataclass(frozen=True)
class Conductance:
    """A linear resistor given by its conductance in siemens (must be positive)."""

    g: float

    def __post_init__(self):
        if not np.isfinite(self.g) or self.g <= 0:
            raise NetworkError(f"conductance must be a positive finite number of siemens, got {self.g!r}")


def spice_number(value: float) -> str:
    """Shortest round-trip text of a float, so a netlist reproduces the network to the last bit."""
    return repr(float(value)).replace("e+", "e")


DIODE_MODELS: dict = {}  # kind -> class; a model registers itself by defining ``kind``
AMPLIFIER_MODELS: dict = {}  # the same for amplifier models


class _Registered:
    """A device model family: each subclass that defines ``kind`` registers itself in the family's ``REGISTRY``
    (so a new model is one class), and ``params`` gives its fields for its saved form."""

    REGISTRY: dict = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("kind"):
            cls.REGISTRY[cls.kind] = cls

    def params(self) -> dict:
        return {k: getattr(self, k) for k in getattr(self, "__dataclass_fields__", {})}


class DiodeModel(_Registered):
    """Base of every diode model. A model owns all of its behaviour, so a new one is one class:

    - its physics for a junction voltage vd (``current``, ``conductance``, ``cocontent``), and for the
      neuron's two antiparallel diodes to the rails (``clamp_*``);
    - ``solve_clamp``: the exact per-node minimiser used by block coordinate descent and by Lava's float
      neurons; ``clamp_residual``: its KCL residual rule; ``frozen``: which nodes it pins (for implicit
      differentiation); ``box``: the interval when the node's energy is a quadratic on a box (its
      minimiser is T/S projected on it), which lets the solver over-relax (projected SOR);
    - ``spice_lines``: its SPICE text (model card or behavioural source);
    - ``params`` / ``DIODE_MODELS[kind](**params)``: serialisation;
    - capabilities: ``hard`` (a constraint, not a current: solved by projection / active set),
      ``integer_form`` (an integer neuron exists: ``integer_terms``), ``spice_native`` (ngspice simulates it as written);
    - ``integer_terms``: what a division-free integer neuron (the Loihi path) needs to model it, in SI units,
      or None with ``no_integer_form`` saying why.
    """

    REGISTRY = DIODE_MODELS
    kind: str = ""
    smooth = False
    hard = False
    integer_form = False
    spice_native = True

    # the neuron: a diode node->v_high and one v_low->node; current leaving the node
    def clamp_current(self, clamp, v):
        return self.current(v - clamp.v_high) - self.current(clamp.v_low - v)

    def clamp_conductance(self, clamp, v):
        return self.conductance(v - clamp.v_high) + self.conductance(clamp.v_low - v)

    def clamp_cocontent(self, clamp, v):
        return self.cocontent(v - clamp.v_high) + self.cocontent(clamp.v_low - v)

    def clamp_residual(self, clamp, v, r):
        """KCL residual of nodes at v given the resistive residual r: the diodes' current is added."""
        return r + self.clamp_current(clamp, v)

    def frozen(self, clamp, v, tol):
        """Nodes the clamp pins (they do not move with the parameters); None: none, it has a conductance."""
        return None

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        raise NotImplementedError

    def box(self, clamp) -> tuple | None:
        """(lo, hi) when the clamp adds no current inside [lo, hi] and forbids the outside: the node's energy
        is then a quadratic on a box, ``solve_clamp`` is T/S projected on it, and an over-relaxed step
        projected back on the box still lowers the energy (projected SOR). None for any other model."""
        return None

    #: whether ``relax`` can over-relax this model's nodes (a model without a box needs a curvature bound)
    relaxable = False

    def relax(self, clamp, S, v_old, v_star, omega: float):
        """v_old + omega (v_star - v_old) where that cannot raise the node's energy, v_star elsewhere.

        v_star is the node's minimiser (``solve_clamp``) and S its resistive conductance. Only models with
        ``relaxable`` implement it."""
        raise NotImplementedError

    def layer_update(self, clamp):
        """A compiled update of a whole layer of these neurons for the layered solver (``circuits.kernels``),
        or None where its numpy path serves (numba missing, or no kernel for this model). The function takes
        (ta, tb, k, v, terms, S, inv_s, omega, tol): the drive T = k + ta + tb (``terms`` of ta, tb given), the
        nodes' resistive conductance S and 1/S, and moves v in place to the nodes' minimisers, over-relaxed by
        omega where ``relax`` (or the box) allows; it returns the step the sweeps' stopping test reads (the
        numpy path's: omega x the largest exact step on a box, the largest move otherwise). A model with a
        box needs nothing more: the box kernel serves it."""
        box = self.box(clamp)
        if box is None or not kernels.available():
            return None
        return kernels.box_layer(*box)

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        """(subcircuit body lines, model lines, notes) of the neuron ``neuron{suffix} node hi lo``."""
        raise NotImplementedError

    no_integer_form = "it has no integer form"

    def noise_density(self, vd, kt: float):
        """Two-sided current noise density (A^2/Hz) of one diode at junction voltage vd: none for an abstraction."""
        return np.zeros_like(np.asarray(vd, dtype=float))

    def clamp_noise_density(self, clamp, v, kt: float):
        """Two-sided current noise density (A^2/Hz) of a node's two diodes at node voltage v."""
        return self.noise_density(v - clamp.v_high, kt) + self.noise_density(clamp.v_low - v, kt)

    def knee(self) -> float:
        """V past its rail at which the diode starts to conduct (its threshold). A clamp's two diodes must not both
        conduct inside the rails: the clamps' exact solves have one piece per diode and a middle one."""
        return 0.0

    def spice_subckt_params(self) -> str:
        """Parameters of the neuron subcircuit's header (`` name=default ...``); none unless each node differs."""
        return ""

    def spice_instance_params(self, index) -> str:
        """The parameters of node ``index``'s neuron instance (its place in its layer); none unless nodes differ."""
        return ""

    def integer_terms(self, clamp) -> dict | None:
        """The clamp as an integer neuron sees it (SI units), or None. Keys: ``clip`` (v_low, v_high) for a
        hard clamp; or ``g_mid``/``i_mid`` (conductance and current added between the knees) with ``g_on`` (the
        conductance added past a knee) and ``knee_high``/``knee_low`` (the knee voltages)."""
        return None


@dataclass(frozen=True)
class IdealDiode(DiodeModel):
    """Zero current when reverse biased, a short when forward biased: a hard clamp at the rail."""

    kind = "ideal"
    hard = True
    integer_form = True  # the clamp is a compare-and-select: Loihi's microcode has it
    spice_native = False

    def integer_terms(self, clamp) -> dict:
        return {"clip": (clamp.v_low, clamp.v_high)}

    def box(self, clamp) -> tuple:
        return (clamp.v_low, clamp.v_high)

    def clamp_current(self, clamp, v):
        return np.zeros_like(v)

    def clamp_conductance(self, clamp, v):
        return np.zeros_like(v)

    def clamp_cocontent(self, clamp, v):
        """+inf outside the rails, 0 inside."""
        tol = 1e-9 * max(1.0, abs(clamp.v_low), abs(clamp.v_high))
        outside = (v > clamp.v_high + tol) | (v < clamp.v_low - tol)
        return np.where(outside, np.inf, 0.0)

    def clamp_residual(self, clamp, v, r):
        """An ideal diode carries whatever current keeps its node on the rail, but only forward: at the
        upper rail it can only take current out (r <= 0 is admissible), at the lower rail only bring it in.
        What it cannot carry stays in the residual; a node outside the rails is inf."""
        at_hi = np.isclose(v, clamp.v_high, rtol=0, atol=1e-12)
        at_lo = np.isclose(v, clamp.v_low, rtol=0, atol=1e-12)
        r = np.where(at_hi, np.maximum(r, 0.0), np.where(at_lo, np.minimum(r, 0.0), r))
        outside = (v > clamp.v_high + 1e-12) | (v < clamp.v_low - 1e-12)
        return np.where(outside, np.inf, r)

    def frozen(self, clamp, v, tol):
        return (v >= clamp.v_high - tol) | (v <= clamp.v_low + tol)

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        # The quadratic's minimiser projected on the box [v_low, v_high]: exact for a 1-D convex QP.
        v = np.divide(T, S)
        np.minimum(v, clamp.v_high, out=v)
        return np.maximum(v, clamp.v_low, out=v)

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        stand_in = self.spice_stand_in() if stand_in is None else stand_in
        body, models, notes = stand_in.spice_lines(suffix, options)
        notes = notes + [f"ideal diodes of neuron{suffix} written as {stand_in!r} (SPICE has no ideal diode)"]
        return body, models, notes

    @staticmethod
    def spice_stand_in() -> "PiecewiseLinearDiode":
        """What SPICE simulates for an ideal diode: a piecewise-linear diode with its knee at the rail and
        1 S on-conductance, written as an exact behavioural source. A node held at a rail by a current I
        sits I / 1 S past it: microvolts at this toolkit's microamp currents, where a Shockley stand-in
        (IS 1e-12, N 0.02) sat millivolts past and changed predictions."""
        return PiecewiseLinearDiode(g_on=1.0, v_on=0.0, g_off=0.0)


@dataclass(frozen=True)
class ShockleyDiode(DiodeModel):
    """SPICE's level-1 junction diode (no series resistance or breakdown), with ngspice's vt and GMIN.

    Forward and weakly reverse (vd >= -3 N vt): i = IS (exp(vd / (N vt)) - 1). Further reverse, SPICE
    replaces the exponential by its cubic tail  i = -IS (1 + (3 N vt / (e vd))^3), which meets it with
    equal value and slope at -3 N vt; the difference from the pure exponential is a few percent of IS,
    which matters for large-IS diodes and is modelled here so the native solver matches ngspice to a
    microvolt. GMIN vd is added across the junction, as ngspice does.
    """

    i_s: float = 1e-14
    n: float = 1.0
    vt: float = thermal_voltage()
    gmin: float = SPICE_GMIN
    kind = "shockley"
    smooth = True
    no_integer_form = ("its current is exp(v / n vt), which Loihi's neuron microcode (add, multiply, shift, "
                       "compare) cannot evaluate; use --diode ideal or --diode pwl (a piecewise-linear diode)")

    def __post_init__(self):
        for name in ("i_s", "n", "vt"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise NetworkError(f"ShockleyDiode.{name} must be positive and finite, got {value!r}")
        if self.gmin < 0:
            raise NetworkError(f"ShockleyDiode.gmin must be >= 0, got {self.gmin!r}")

    @property
    def nvt(self) -> float:
        return self.n * self.vt

    def junction(self, vd):
        """(current, conductance) of the junction alone, without GMIN."""
        vd = np.asarray(vd, dtype=float)
        nvt = self.nvt
        e = np.exp(np.minimum(vd / nvt, EXP_CAP))
        i = self.i_s * (e - 1.0)
        g = (self.i_s / nvt) * e
        rev = vd < -3.0 * nvt
        if rev.any():
            # Hot path (every Newton iteration of every node): one reciprocal and products, no float power.
            r = 1.0 / np.minimum(vd, -3.0 * nvt)
            q = (3.0 * nvt / np.e) * r
            arg = q * q * q
            i, g = np.asarray(i), np.asarray(g)  # 0-d inputs give numpy scalars, which copyto cannot write
            np.copyto(i, -self.i_s * (1.0 + arg), where=rev)
            np.copyto(g, (3.0 * self.i_s) * arg * r, where=rev)
        return i, g

    def pair_terms(self, v, v_high: float, v_low: float):
        """(i_up - i_down, g_up + g_down): the junctions from v to v_high and from v_low to v, without GMIN,
        with one exponential: exp((v_low - v) / N vt) = exp((v_low - v_high) / N vt) / exp((v - v_high) / N vt).

        The -IS terms of the two currents cancel in the difference; SPICE's cubic reverse tail (vd < -3 N vt)
        is applied as a correction on the nodes that have it only."""
        shape = np.shape(v)
        v = np.ravel(v)
        nvt, i_s = self.nvt, self.i_s
        ea = np.exp(np.clip((v - v_high) * (1.0 / nvt), -700.0, 700.0))  # never 0 or inf: the quotient stays finite
        cap = np.exp(EXP_CAP)
        e_dn = np.minimum(np.exp((v_low - v_high) / nvt) / ea, cap)
        e_up = np.minimum(ea, cap, out=ea)
        i_net = i_s * (e_up - e_dn)
        g_sum = e_up + e_dn
        g_sum *= i_s / nvt
        knee = 3.0 * nvt
        for sign, rail, e in ((1.0, v_high, e_up), (-1.0, v_low, e_dn)):
            rev = np.nonzero(sign * (v - rail) < -knee)[0]  # this junction's vd = sign (v - rail) is on its tail
            if rev.size:
                r = 1.0 / (sign * (v[rev] - rail))
                q = (knee / np.e) * r
                arg = q * q * q
                # the tail's -IS (1 + arg) and 3 IS arg / vd replace IS (e - 1) and IS e / N vt
                i_net[rev] += sign * (-i_s * (1.0 + arg) - i_s * (e[rev] - 1.0))
                g_sum[rev] += (3.0 * i_s) * arg * r - (i_s / nvt) * e[rev]
        return i_net.reshape(shape), g_sum.reshape(shape)

    @property
    def vcrit(self) -> float:
        """SPICE's critical junction voltage N vt ln(N vt / (sqrt(2) IS)), where the exponential's curvature
        makes a plain Newton step unreliable (``limit``)."""
        return self.nvt * np.log(self.nvt / (np.sqrt(2.0) * self.i_s))

    def limit(self, v, new, v_high: float, v_low: float):
        """SPICE's junction limiting (pnjlim) of a Newton step from v to new, in place on new.

        A step that drives a junction forward past vcrit by more than 2 N vt lands far up the exponential,
        from where Newton crawls back about N vt per iteration (a node driven to T/S = -6 V from 0 V was
        still 1.2 V past its rail after 100 iterations). Such a step is shortened to the junction voltage
        vd_old + N vt ln(1 + (vd_new - vd_old) / N vt) (from a forward-biased start), or N vt ln(vd_new / N vt)
        (from a reverse-biased one). Only forward steps are limited: from above its root Newton does not
        overshoot. v and new are 1-D (``solve_clamp`` works on raveled nodes)."""
        nvt, crit = self.nvt, self.vcrit
        for sign, rail in ((1.0, v_high), (-1.0, v_low)):
            od, nd = sign * (v - rail), sign * (new - rail)
            lim = np.nonzero((nd > crit) & (nd - od > 2.0 * nvt))[0]
            if lim.size:
                o, n = od[lim], nd[lim]
                n = np.where(o > 0, o + nvt * np.log1p((n - o) / nvt), nvt * np.log(n / nvt))
                new[lim] = rail + sign * n
        return new

    def current(self, vd):
        return self.junction(vd)[0] + self.gmin * np.asarray(vd, dtype=float)

    def noise_density(self, vd, kt: float):
        """Shockley shot noise, two-sided q |I| (GMIN noiseless, as in ngspice)."""
        return ELEMENTARY_CHARGE * np.abs(self.junction(vd)[0] + self.gmin * np.asarray(vd, dtype=float))

    def conductance(self, vd):
        return self.junction(vd)[1] + self.gmin

    def cocontent(self, vd):
        vd = np.asarray(vd, dtype=float)
        return _junction_cocontent(vd, self.i_s, self.nvt) + 0.5 * self.gmin * vd**2

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """Safeguarded Newton: the root lies between the rails' midpoint and T/S (f is increasing), and within
        the junction's forward bound past a rail; steps are limited as SPICE limits them (``limit``).

        Each junction's current and conductance come from one evaluation per iteration (shared
        exponential); the diodes add i_up - i_down + GMIN (2V - v_high - v_low).
        """
        vl, vh, gmin = clamp.v_low, clamp.v_high, self.gmin
        shape = np.shape(T)
        S = np.broadcast_to(S, shape).ravel()
        T = np.asarray(T, dtype=float).ravel()
        free = T / S
        lo = np.minimum(free, clamp.v_mid)
        hi = np.maximum(free, clamp.v_mid)
        # Past a rail the root's junction carries at most the drive's excess, T - S v_high (or S v_low - T):
        # that bounds its voltage, and the bracket, to N vt ln(1 + excess / IS) past the rail.
        np.minimum(hi, vh + self.nvt * np.log1p(np.maximum(T - S * vh, 0.0) / self.i_s), out=hi)
        np.maximum(lo, vl - self.nvt * np.log1p(np.maximum(S * vl - T, 0.0) / self.i_s), out=lo)
        v = np.clip(free if v_prev is None else np.ravel(v_prev), lo, hi)
        scale = tol * max(1.0, abs(vh), abs(vl))
        # Newton's error after a step s is |f''| / (2 f') s^2 <= 0.67 s^2 / (N vt): f' >= g (the junctions'
        # conductance), |f''| <= g / (N vt) on the exponential and 4 g / |vd| <= 1.34 g / (N vt) on the cubic
        # tail. So a Newton step below `quadratic` leaves the node within `scale` of its root: it is
        # accepted without another evaluation (late sweeps then take one Newton iteration, not two).
        quadratic = max(scale, np.sqrt(scale * self.nvt / 0.75))
        # f = S v - T + i_up - i_down + GMIN (2 v - v_high - v_low) = S2 v - T2 + i_net
        S2 = S + 2.0 * gmin
        T2 = T + gmin * (vh + vl)
        result, idx = None, None  # once most nodes have converged, iterate on the others only
        for _ in range(NEWTON_MAX_ITER):
            i_net, df = self.pair_terms(v, vh, vl)
            f = S2 * v
            f -= T2
            f += i_net
            df += S2
            pos = f > 0
            hi = np.where(pos, v, hi)
            lo = np.where(pos, lo, v)
            f /= df
            step = self.limit(v, v - f, vh, vl)
            # Bisect where Newton leaves the bracket.
            outside = (step < lo) | (step > hi)
            bisected = outside.any()
            if bisected:
                np.copyto(step, 0.5 * (lo + hi), where=outside)
            moved = np.abs(step - v)
            v = step
            active = moved > quadratic
            if bisected:
                active |= outside & (moved > scale)
            if not active.any():
                break
            if 2 * np.count_nonzero(active) < active.size:
                if result is None:
                    result, idx = v.copy(), np.nonzero(active)[0]
                else:
                    result[idx] = v
                    idx = idx[active]
                S2, T2, lo, hi, v = S2[active], T2[active], lo[active], hi[active], v[active]
        if result is None:
            return v.reshape(shape)
        result[idx] = v
        return result.reshape(shape)

    relaxable = True

    def relax(self, clamp, S, v_old, v_star, omega: float):
        """Over-relaxed where a curvature bound guarantees descent, v_star elsewhere.

        The node's energy has curvature S2 + g(v) (S2 = S + 2 GMIN, g the junctions' conductance). From v_old
        to v_star it falls by at least S2 d^2 / 2 (d = v_star - v_old); past v_star to the relaxed point it
        rises by at most (S2 + g_max) (omega - 1)^2 d^2 / 2, with g_max the largest conductance on that
        segment. So the step is taken where (omega - 1)^2 (S2 + g_max) <= S2. g_up grows with v and g_down
        falls, so g_max <= g_up(right end) + g_down(left end), and each junction's g is at most
        IS / N vt max(exp(vd / N vt), e^-3) (the cubic tail stays below its value at the knee)."""
        return _relax(clamp, S + 2.0 * self.gmin, v_old, v_star, omega, self.i_s, self.i_s, self.nvt, self.nvt)

    def layer_update(self, clamp):
        """``solve_clamp`` and ``relax`` node by node in one compiled loop (``kernels.shockley_update``); its ``sweep``
        gives the compiled sweep loop the same call: (rails, IS, N vt, GMIN, the exponent's cap, the critical
        voltage, the Newton steps allowed) (``kernels.box_sweeps``)."""
        if not kernels.available():
            return None
        params = (clamp.v_low, clamp.v_high, self.i_s, self.nvt, self.gmin, EXP_CAP, self.vcrit)

        def update(ta, tb, k, v, terms, S, inv_s, omega, tol):
            return kernels.shockley_update(ta, tb, k, v, terms, S, *params, tol, omega, NEWTON_MAX_ITER)

        update.sweep = (params[0], params[1], (*params[2:], float(NEWTON_MAX_ITER)))
        return update

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        spice_vt = thermal_voltage(options.temp + 273.15)
        if abs(self.vt - spice_vt) > 1e-9:
            raise NetworkError(f"the diode's thermal voltage {self.vt:.6g} V differs from ngspice's at "
                               f"{options.temp:g} C ({spice_vt:.6g} V); set SpiceOptions(temp=...) or the diode's "
                               "vt to match")
        if abs(self.gmin - options.gmin) > 1e-30:
            raise NetworkError(f"the diode's gmin ({self.gmin:g} S) differs from SpiceOptions.gmin "
                               f"({options.gmin:g} S), which ngspice puts across every junction")
        return ([f"D_up node hi dclamp{suffix}", f"D_dn lo node dclamp{suffix}"],
                [f".model dclamp{suffix} D(IS={spice_number(self.i_s)} N={spice_number(self.n)})"], [])


def _junction(vd, i_s, nvt):
    """(current, conductance) of Shockley junctions without GMIN, every parameter an array broadcast against vd
    (``ShockleyDiode.junction`` for per-node parameters: the exponential, and SPICE's cubic tail past -3 N vt)."""
    vd = np.asarray(vd, dtype=float)
    e = np.exp(np.minimum(vd / nvt, EXP_CAP))
    i = i_s * (e - 1.0)
    g = (i_s / nvt) * e
    knee = -3.0 * nvt
    rev = vd < knee
    if rev.any():
        r = 1.0 / np.minimum(vd, knee)
        q = (3.0 * nvt / np.e) * r
        arg = q * q * q
        i = np.where(rev, -i_s * (1.0 + arg), i)
        g = np.where(rev, (3.0 * i_s) * arg * r, g)
    return i, g


def _junction_cocontent(vd, i_s, nvt):
    """The co-content of Shockley junctions without GMIN (``ShockleyDiode.cocontent``), parameters as arrays."""
    vd = np.asarray(vd, dtype=float)
    forward = lambda v: i_s * (nvt * (np.exp(np.minimum(v / nvt, EXP_CAP)) - 1.0) - v)  # noqa: E731
    v0 = -3.0 * nvt
    c3 = (3.0 * nvt / np.e) ** 3
    safe = np.where(vd < v0, vd, v0)
    reverse = forward(v0) - i_s * ((safe - v0) - 0.5 * c3 * (safe ** -2 - v0 ** -2))
    return np.where(vd < v0, reverse, forward(vd))


def _relax(clamp, s2, v_old, v_star, omega, is_up, is_dn, nvt_up, nvt_dn):
    """``ShockleyDiode.relax`` for junction parameters given as numbers or per-node arrays (s2 = S + 2 GMIN)."""
    new = v_star + (omega - 1.0) * (v_star - v_old)
    right, left = np.maximum(new, v_star), np.minimum(new, v_star)
    floor = np.exp(-3.0)
    g_up = (is_up / nvt_up) * np.maximum(np.exp(np.minimum((right - clamp.v_high) / nvt_up, EXP_CAP)), floor)
    g_dn = (is_dn / nvt_dn) * np.maximum(np.exp(np.minimum((clamp.v_low - left) / nvt_dn, EXP_CAP)), floor)
    safe = (omega - 1.0) ** 2 * (s2 + g_up + g_dn) <= s2
    return np.where(safe, new, v_star)


@dataclass(frozen=True)
class MismatchedShockleyDiode(ShockleyDiode):
    """A layer's neuron diodes as one die realises them: each node's diode to the upper rail and its diode from
    the lower rail with their own saturation current and emission coefficient (``is_up``, ``n_up``, ``is_dn``,
    ``n_dn``: one value per node of the layer, in order), drawn by ``circuits.mismatch.Mismatch``. ``i_s`` and
    ``n`` keep the nominal values. Natively every node is solved exactly with its own parameters (Newton in a
    bracket, by numpy: no compiled kernel, a die is evaluated, not trained); in SPICE each neuron instance
    carries its four values into its own model cards (subcircuit parameters)."""

    is_up: tuple = ()
    is_dn: tuple = ()
    n_up: tuple = ()
    n_dn: tuple = ()
    kind = "shockley-die"
    per_die = True  # drawn for a die by Mismatch, never built by name

    def __post_init__(self):
        super().__post_init__()
        size = None
        for name in ("is_up", "is_dn", "n_up", "n_dn"):
            a = np.asarray(getattr(self, name), dtype=float)
            if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or not np.all(a > 0):
                raise NetworkError(f"MismatchedShockleyDiode.{name} must be one positive finite value per node, got "
                                   f"{getattr(self, name)!r}")
            if size is not None and a.size != size:
                raise NetworkError(f"MismatchedShockleyDiode.{name} has {a.size} values, is_up {size}: give each of "
                                   "is_up, is_dn, n_up and n_dn one value per node")
            size = a.size
            object.__setattr__(self, name, tuple(float(x) for x in a))

    @property
    def size(self) -> int:
        """The number of nodes (the layer's size) it was drawn for."""
        return len(self.is_up)

    @functools.cached_property
    def _arrays(self):
        return (np.array(self.is_up), np.array(self.is_dn), np.array(self.n_up) * self.vt, np.array(self.n_dn) * self.vt)

    def _per_node(self, v):
        if np.shape(v)[-1:] != (self.size,):
            raise NetworkError(f"a die's diodes were drawn for a layer of {self.size} nodes, applied to nodes of shape "
                               f"{np.shape(v)}: per-node diode parameters need a layered network")
        return self._arrays

    def clamp_current(self, clamp, v):
        v = np.asarray(v, dtype=float)
        iu, idn, nu, nd = self._per_node(v)
        return (_junction(v - clamp.v_high, iu, nu)[0] - _junction(clamp.v_low - v, idn, nd)[0]
                + self.gmin * (2.0 * v - clamp.v_high - clamp.v_low))

    def clamp_conductance(self, clamp, v):
        v = np.asarray(v, dtype=float)
        iu, idn, nu, nd = self._per_node(v)
        return _junction(v - clamp.v_high, iu, nu)[1] + _junction(clamp.v_low - v, idn, nd)[1] + 2.0 * self.gmin

    def clamp_cocontent(self, clamp, v):
        v = np.asarray(v, dtype=float)
        iu, idn, nu, nd = self._per_node(v)
        up, dn = v - clamp.v_high, clamp.v_low - v
        return (_junction_cocontent(up, iu, nu) + _junction_cocontent(dn, idn, nd)
                + 0.5 * self.gmin * (up ** 2 + dn ** 2))

    def clamp_noise_density(self, clamp, v, kt: float):
        v = np.asarray(v, dtype=float)
        iu, idn, nu, nd = self._per_node(v)
        up, dn = v - clamp.v_high, clamp.v_low - v
        return ELEMENTARY_CHARGE * (np.abs(_junction(up, iu, nu)[0] + self.gmin * up)
                                    + np.abs(_junction(dn, idn, nd)[0] + self.gmin * dn))

    def _single(self, *_):
        raise NetworkError("a die's diodes differ node by node: use the clamp's current, conductance, co-content and "
                           "noise (DiodeClamp), not one junction's")

    current = conductance = cocontent = noise_density = _single

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """Each node's root of f(v) = S2 v - T2 + i_up(v - v_high) - i_dn(v_low - v) (S2 = S + 2 GMIN, T2 = T +
        GMIN (v_high + v_low)): Newton steps, bisected wherever one leaves the bracket, until every node moves
        less than tol (relative to the rails).

        The bracket: a reverse-biased junction carries less than its IS (its exponential and SPICE's cubic tail
        alike), so f >= S2 v - T2 - IS_up for v >= v_low and f <= S2 v - T2 + IS_dn for v <= v_high: the root is
        at most max((T2 + IS_up) / S2, v_low) and at least min((T2 - IS_dn) / S2, v_high). (With unequal diodes
        the clamp's current at the rails' midpoint is not zero, so the symmetric model's bracket of T/S and the
        midpoint does not hold.) Past a rail, the forward junction carries at most the drive's excess over it,
        which bounds the root to N vt ln(1 + excess / IS) past that rail."""
        T = np.asarray(T, dtype=float)
        shape = T.shape
        iu, idn, nu, nd = (np.broadcast_to(a, shape).ravel() for a in self._per_node(T))
        vl, vh, gmin = clamp.v_low, clamp.v_high, self.gmin
        S = np.broadcast_to(S, shape).ravel()
        T = T.ravel()
        S2, T2 = S + 2.0 * gmin, T + gmin * (vh + vl)
        hi = np.minimum(np.maximum((T2 + iu) / S2, vl), vh + nu * np.log1p(np.maximum(T - S * vh, 0.0) / iu))
        lo = np.maximum(np.minimum((T2 - idn) / S2, vh), vl - nd * np.log1p(np.maximum(S * vl - T, 0.0) / idn))
        v = np.clip(T / S if v_prev is None else np.ravel(v_prev), lo, hi)
        scale = tol * max(1.0, abs(vh), abs(vl))
        out = v.copy()
        idx = np.arange(v.size)
        for _ in range(4 * NEWTON_MAX_ITER):
            i_up, g_up = _junction(v - vh, iu, nu)
            i_dn, g_dn = _junction(vl - v, idn, nd)
            f = S2 * v - T2 + i_up - i_dn
            pos = f > 0
            hi = np.where(pos, v, hi)
            lo = np.where(pos, lo, v)
            step = v - f / (S2 + g_up + g_dn)
            outside = ~((step >= lo) & (step <= hi))  # NaN steps too
            step = np.where(outside, 0.5 * (lo + hi), step)
            active = (np.abs(step - v) > scale) & (hi - lo > scale)
            v = step
            out[idx] = v
            if not active.any():
                break
            keep = np.nonzero(active)[0]
            idx, v, lo, hi, S2, T2 = idx[keep], v[keep], lo[keep], hi[keep], S2[keep], T2[keep]
            iu, idn, nu, nd = iu[keep], idn[keep], nu[keep], nd[keep]
        return out.reshape(shape)

    def relax(self, clamp, S, v_old, v_star, omega: float):
        """``ShockleyDiode.relax`` with each node's own junctions."""
        iu, idn, nu, nd = self._per_node(v_star)
        return _relax(clamp, S + 2.0 * self.gmin, v_old, v_star, omega, iu, idn, nu, nd)

    def layer_update(self, clamp):
        return None  # the numpy path: per-node parameters have no compiled kernel

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        super().spice_lines(suffix, options, stand_in)  # the same checks of vt and GMIN against ngspice's
        return ([f"D_up node hi dup{suffix}", f"D_dn lo node ddn{suffix}",
                 f".model dup{suffix} D(IS={{isu}} N={{nu}})", f".model ddn{suffix} D(IS={{isd}} N={{nd}})"], [], [])

    def spice_subckt_params(self) -> str:
        return (f" isu={spice_number(self.i_s)} nu={spice_number(self.n)} isd={spice_number(self.i_s)} "
                f"nd={spice_number(self.n)}")

    def spice_instance_params(self, index) -> str:
        if index is None or not 0 <= index < self.size:
            raise NetworkError(f"a die's diodes are per node: this node has no place in a layer of {self.size} "
                               f"(got {index!r}); write the netlist from the layered network")
        return (f" isu={spice_number(self.is_up[index])} nu={spice_number(self.n_up[index])} "
                f"isd={spice_number(self.is_dn[index])} nd={spice_number(self.n_dn[index])}")


@dataclass(frozen=True)
class SeriesResistanceDiode(ShockleyDiode):
    """SPICE's level-1 junction diode with series resistance ``rs`` (ohms) and zero-bias junction capacitance
    ``cj`` (farads, ngspice's CJO: transients only; the DC solution does not depend on it).

    The terminal voltage is vd = vj + rs i with i = IS (exp(vj / N vt) - 1) (SPICE's cubic reverse tail below
    -3 N vt) + GMIN vj, GMIN across the junction as ngspice puts it. Given vd the junction voltage is the root of
    vj + rs i(vj) - vd, increasing in vj and bracketed by 0 and vd: a safeguarded Newton finds it. The terminal
    conductance is g / (1 + rs g) (g: the junction's), at most 1 / rs; the co-content is the junction's plus
    rs i^2 / 2. Its noise at the terminals is the junction's shot noise and the resistor's thermal noise through
    the divider: (q |I| + 2 k T rs g^2) / (1 + rs g)^2, two-sided.
    """

    rs: float = 10.0
    cj: float = 0.0
    kind = "shockley-rs"

    def __post_init__(self):
        super().__post_init__()
        for name in ("rs", "cj"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise NetworkError(f"SeriesResistanceDiode.{name} must be a finite number >= 0, got {value!r}")
        if self.rs <= 0:
            raise NetworkError("SeriesResistanceDiode.rs must be positive ohms (rs 0 is ShockleyDiode)")

    def _junction_total(self, vj):
        i, g = self.junction(vj)
        return i + self.gmin * vj, g + self.gmin

    def junction_voltage(self, vd, tol: float = 1e-14):
        """vj with vj + rs i(vj) = vd, elementwise (to tol relative to max(1 V, |vd|))."""
        vd = np.asarray(vd, dtype=float)
        lo, hi = np.minimum(vd, 0.0), np.maximum(vd, 0.0)
        # the forward root is below the junction voltage that carries all of vd / rs: a start close to it
        vj = np.minimum(hi, self.nvt * np.log1p(np.maximum(vd, 0.0) / (self.rs * self.i_s)))
        vj = np.maximum(vj, lo)
        scale = tol * np.maximum(1.0, np.abs(vd))
        for _ in range(NEWTON_MAX_ITER):
            i, g = self._junction_total(vj)
            f = vj + self.rs * i - vd
            hi = np.where(f > 0, vj, hi)
            lo = np.where(f > 0, lo, vj)
            new = vj - f / (1.0 + self.rs * g)
            out = (new <= lo) | (new >= hi)
            new = np.where(out, 0.5 * (lo + hi), new)
            done = np.abs(new - vj) <= scale
            vj = new
            if done.all():
                break
        return vj

    def terminal(self, vd):
        """(current, conductance) at the terminals for terminal voltages vd: one junction solve for both."""
        i, g = self._junction_total(self.junction_voltage(vd))
        return i, g / (1.0 + self.rs * g)

    def current(self, vd):
        return self.terminal(vd)[0]

    def conductance(self, vd):
        return self.terminal(vd)[1]

    def cocontent(self, vd):
        vj = self.junction_voltage(vd)
        i = self._junction_total(vj)[0]
        return super().cocontent(vj) + 0.5 * self.rs * i * i

    def noise_density(self, vd, kt: float):
        """Two-sided current noise density at the terminals (A^2/Hz): shot noise and rs's thermal noise."""
        vj = self.junction_voltage(vd)
        i, g = self._junction_total(vj)
        return (ELEMENTARY_CHARGE * np.abs(i) + 2.0 * kt * self.rs * g * g) / (1.0 + self.rs * g) ** 2

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """Safeguarded Newton on the node (bracketed by the rails' midpoint and T/S, bisected where a step leaves
        the bracket); each evaluation finds both diodes' junction voltages."""
        vl, vh = clamp.v_low, clamp.v_high
        shape = np.shape(T)
        S = np.broadcast_to(S, shape).ravel()
        T = np.asarray(T, dtype=float).ravel()
        free = T / S
        lo, hi = np.minimum(free, clamp.v_mid), np.maximum(free, clamp.v_mid)
        v = np.clip(free if v_prev is None else np.ravel(v_prev), lo, hi)
        scale = tol * max(1.0, abs(vh), abs(vl))
        for _ in range(4 * NEWTON_MAX_ITER):
            (i_up, g_up), (i_dn, g_dn) = self.terminal(v - vh), self.terminal(vl - v)
            f = S * v - T + i_up - i_dn
            df = S + g_up + g_dn
            hi = np.where(f > 0, v, hi)
            lo = np.where(f > 0, lo, v)
            new = v - f / df
            out = (new < lo) | (new > hi)
            new = np.where(out, 0.5 * (lo + hi), new)
            done = np.abs(new - v) <= scale
            v = new
            if done.all():
                break
        return v.reshape(shape)

    relaxable = False  # the curvature bound of ``ShockleyDiode.relax`` is the junction's, not the series pair's

    def relax(self, clamp, S, v_old, v_star, omega: float):
        raise NotImplementedError

    def layer_update(self, clamp):
        return None  # the numpy path (``solve_clamp``): no compiled kernel for the series pair

    def limit(self, v, new, v_high: float, v_low: float):
        return new

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        body, models, notes = super().spice_lines(suffix, options, stand_in)
        extra = f" RS={spice_number(self.rs)}" + (f" CJO={spice_number(self.cj)}" if self.cj else "")
        return body, [models[0][:-1] + extra + ")"], notes


@dataclass(frozen=True)
class MosfetDiode(DiodeModel):
    """A diode-connected n-MOSFET (gate tied to drain, bulk to source): SPICE's level-1 transistor in saturation.

    Current from drain to source i = kp / 2 (vd - vto)^2 above the threshold vto and none below (level 1 has no
    subthreshold conduction), plus ngspice's GMIN across the drain-bulk junction; W = L, no body effect (bulk on
    the source), no channel-length modulation, bulk junctions without saturation current. The node's energy is a
    convex piecewise cubic, so the per-node solve is exact: the root of a quadratic in the one region where a
    transistor conducts. In SPICE each clamp transistor is an ``M`` element with a level-1 model card.
    """

    kp: float = 1e-3  # A/V^2: the transconductance parameter times W / L
    vto: float = 0.0  # V: the threshold, past the rail
    gmin: float = SPICE_GMIN
    kind = "mosfet"
    smooth = True
    no_integer_form = ("its current is quadratic in the voltage past a threshold; the Loihi path maps ideal and "
                       "piecewise-linear diodes")

    def __post_init__(self):
        if not isinstance(self.kp, (int, float)) or not np.isfinite(self.kp) or self.kp <= 0:
            raise NetworkError(f"MosfetDiode.kp must be positive A/V^2, got {self.kp!r}")
        if not isinstance(self.vto, (int, float)) or not np.isfinite(self.vto) or self.vto < 0:
            raise NetworkError(f"MosfetDiode.vto must be a threshold >= 0 V (an n-MOSFET that conducts at 0 V is "
                               f"no clamp), got {self.vto!r}")
        if self.gmin < 0:
            raise NetworkError(f"MosfetDiode.gmin must be >= 0, got {self.gmin!r}")

    def current(self, vd):
        vd = np.asarray(vd, dtype=float)
        on = np.maximum(vd - self.vto, 0.0)
        return 0.5 * self.kp * on * on + self.gmin * vd

    def conductance(self, vd):
        vd = np.asarray(vd, dtype=float)
        return self.kp * np.maximum(vd - self.vto, 0.0) + self.gmin

    def cocontent(self, vd):
        vd = np.asarray(vd, dtype=float)
        on = np.maximum(vd - self.vto, 0.0)
        return self.kp * on**3 / 6.0 + 0.5 * self.gmin * vd * vd

    def noise_density(self, vd, kt: float):
        """A MOSFET in saturation: the channel's thermal noise, two-sided 2 k T (2/3) g_m (SPICE level 1)."""
        return 2.0 * kt * (2.0 / 3.0) * self.kp * np.maximum(np.asarray(vd, dtype=float) - self.vto, 0.0)

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """Exact: with both transistors off v0 = (T + GMIN (vh + vl)) / (S + 2 GMIN); past the upper knee
        vh + vto the node solves S2 u + kp u^2 / 2 = T2 - S2 (vh + vto) for u = v - vh - vto >= 0 (and the mirror
        image below vl - vto), in the cancellation-free form u = 2 c / (S2 + sqrt(S2^2 + 2 kp c))."""
        vl, vh, g = clamp.v_low, clamp.v_high, self.gmin
        S2 = np.asarray(S, dtype=float) + 2.0 * g
        T2 = np.asarray(T, dtype=float) + g * (vh + vl)
        v = T2 / S2
        c_up = T2 - S2 * (vh + self.vto)
        c_dn = S2 * (vl - self.vto) - T2
        up = 2.0 * np.maximum(c_up, 0.0) / (S2 + np.sqrt(S2 * S2 + 2.0 * self.kp * np.maximum(c_up, 0.0)))
        dn = 2.0 * np.maximum(c_dn, 0.0) / (S2 + np.sqrt(S2 * S2 + 2.0 * self.kp * np.maximum(c_dn, 0.0)))
        v = np.where(c_up > 0, vh + self.vto + up, v)
        return np.where(c_dn > 0, vl - self.vto - dn, v)

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        if abs(self.gmin - options.gmin) > 1e-30:
            raise NetworkError(f"the transistor's gmin ({self.gmin:g} S) differs from SpiceOptions.gmin "
                               f"({options.gmin:g} S), which ngspice puts across its drain-bulk junction")
        if abs(options.temp - 27.0) > 1e-9:
            raise NetworkError("the level-1 transistor's kp and vto are given at ngspice's 27 C; set SpiceOptions(temp=27)")
        model = (f".model nclamp{suffix} NMOS(LEVEL=1 VTO={spice_number(self.vto)} KP={spice_number(self.kp)} "
                 "LAMBDA=0 GAMMA=0 IS=0 JS=0)")
        # drain = gate = anode, source = bulk = cathode; W = L
        return ([f"M_up node node hi hi nclamp{suffix} W=10u L=10u", f"M_dn lo lo node node nclamp{suffix} W=10u L=10u"],
                [model], [])


@dataclass(frozen=True)
class PiecewiseLinearDiode(DiodeModel):
    """i = g_off vd + g_on max(vd - v_on, 0): an off leakage and an on-resistance past a knee."""

    g_on: float = 1e-2
    v_on: float = 0.0
    g_off: float = 0.0
    kind = "pwl"
    integer_form = True

    def integer_terms(self, clamp) -> dict:
        vl, vh = clamp.v_low, clamp.v_high
        return {"g_mid": 2.0 * self.g_off, "i_mid": self.g_off * (vh + vl), "g_on": self.g_on,
                "knee_high": vh + self.v_on, "knee_low": vl - self.v_on}

    def __post_init__(self):
        if not np.isfinite(self.g_on) or self.g_on <= 0:
            raise NetworkError(f"PiecewiseLinearDiode.g_on must be positive, got {self.g_on!r}")
        if self.g_off < 0 or not np.isfinite(self.g_off) or not np.isfinite(self.v_on):
            raise NetworkError("PiecewiseLinearDiode.g_off must be >= 0 and v_on finite")

    def knee(self) -> float:
        return self.v_on

    def current(self, vd):
        return self.g_off * vd + self.g_on * np.maximum(vd - self.v_on, 0.0)

    def conductance(self, vd):
        return self.g_off + self.g_on * (vd > self.v_on)

    def cocontent(self, vd):
        return 0.5 * self.g_off * vd**2 + 0.5 * self.g_on * np.maximum(vd - self.v_on, 0.0) ** 2

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """Exact: the node's energy is a convex piecewise quadratic with three pieces."""
        vl, vh = clamp.v_low, clamp.v_high
        # Middle region: both diodes below their knee, only the off leakage flows.
        base_s = S + 2.0 * self.g_off
        base_t = T + self.g_off * (vh + vl)
        v = base_t / base_s
        upper = (base_t + self.g_on * (vh + self.v_on)) / (base_s + self.g_on)
        lower = (base_t + self.g_on * (vl - self.v_on)) / (base_s + self.g_on)
        v = np.where(v - vh > self.v_on, upper, v)
        return np.where(vl - v > self.v_on, lower, v)

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        # i = g_off vd + g_on max(vd - v_on, 0), as a behavioural current source (exact, not a fit). Terms that
        # are zero and factors that are one are left out (the same numbers): ngspice evaluates the expression's
        # tree and its derivative at every Newton iteration, 200 sources of a 100-node layer each time.
        def expr(a, b):
            vd = f"v({a},{b})"
            knee = vd if self.v_on == 0 else f"{vd} - {spice_number(self.v_on)}"
            on = f"max({knee}, 0)" if self.g_on == 1 else f"{spice_number(self.g_on)}*max({knee}, 0)"
            return on if self.g_off == 0 else f"{spice_number(self.g_off)}*{vd} + {on}"
        body = [f"{name} {a} {b} I = {expr(a, b)}" for name, a, b in (("B_up", "node", "hi"), ("B_dn", "lo", "node"))]
        return body, [], []


def model_file(path, what: str, from_data):
    """A device model saved as JSON (its ``to_data``), built through its family's registry."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise NetworkError(f"cannot read the {what} model {path}: {exc}") from None
    if not isinstance(data, dict):
        raise NetworkError(f"{path} does not hold a saved {what} model (a JSON object of its kind and parameters)")
    return from_data(data)


def diode_names() -> tuple:
    """The diode models a name alone builds (a characterised one, ``needs_file``, comes from its file)."""
    return tuple(k for k, cls in DIODE_MODELS.items()
                 if not getattr(cls, "needs_file", False) and not getattr(cls, "per_die", False))


def diode_model(spec) -> DiodeModel:
    """A diode model from an instance, a registered name ('ideal', 'shockley', 'pwl', ...) or the path of a
    characterised clamp's ``.json``."""
    if isinstance(spec, DiodeModel):
        return spec
    if isinstance(spec, str) and spec in diode_names():
        return DIODE_MODELS[spec]()
    if isinstance(spec, str) and spec.strip().endswith(".json"):  # a saved model, e.g. a characterised clamp
        return model_file(spec.strip(), "diode", diode_from_data)
    raise NetworkError(f"unknown diode model {spec!r}; use one of {sorted(diode_names())}, a characterised clamp's "
                       ".json or a model instance")


def diode_from_data(spec: dict) -> DiodeModel:
    """The model saved by ``diode_to_data``."""
    cls = DIODE_MODELS.get(spec.get("diode")) if isinstance(spec, dict) else None
    if cls is None:
        raise NetworkError(f"unknown diode model {spec.get('diode') if isinstance(spec, dict) else spec!r} in saved "
                           f"network; known: {sorted(DIODE_MODELS)}")
    try:
        return cls(**spec.get("params", {}))
    except TypeError as e:
        raise NetworkError(f"saved {cls.kind} diode has bad parameters ({e})") from None


def diode_to_data(diode: DiodeModel) -> dict:
    return {"diode": diode.kind, "params": diode.params()}


@dataclass(frozen=True)
class DiodeClamp:
    """The neuron nonlinearity: a diode node->rail v_high and a diode rail v_low->node.

    Its current out of the node is ``i(V - v_high) - i(v_low - V)``; with ideal diodes the node
    voltage is confined to ``[v_low, v_high]``, which is the hard-sigmoid of the Hopfield model.
    """

    diode: DiodeModel
    v_low: float = -1.0
    v_high: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "diode", diode_model(self.diode))
        if not (np.isfinite(self.v_low) and np.isfinite(self.v_high) and self.v_low < self.v_high):
            raise NetworkError(f"diode rails need v_low < v_high, got [{self.v_low}, {self.v_high}]")
        knee = float(self.diode.knee())
        if 2.0 * knee < self.v_low - self.v_high:
            raise NetworkError(f"the {self.diode.kind} diodes' knee {knee:g} V is more than half the rails' span "
                               f"({self.v_high - self.v_low:g} V) below the rails: both diodes would conduct between "
                               f"them; use a knee of at least {(self.v_low - self.v_high) / 2:g} V or wider rails")

    @property
    def v_mid(self) -> float:
        return 0.5 * (self.v_low + self.v_high)

    def current(self, v):
        """Current leaving the node through both diodes (amperes); zero for ideal diodes inside the rails."""
        return self.diode.clamp_current(self, v)

    def conductance(self, v):
        return self.diode.clamp_conductance(self, v)

    def cocontent(self, v):
        """Energy term of the two diodes; +inf outside the rails for ideal diodes."""
        return self.diode.clamp_cocontent(self, v)

    def solve(self, S, T, v_prev=None, tol: float = 1e-14):
        """V solving S V - T + I_clamp(V) = 0 elementwise: the node's exact energy minimiser."""
        return self.diode.solve_clamp(self, S, T, v_prev, tol)

    def residual(self, v, r):
        return self.diode.clamp_residual(self, v, r)

    @property
    def box(self) -> tuple | None:
        """The diode model's box (``DiodeModel.box``), or None."""
        return self.diode.box(self)

    def to_data(self) -> dict:
        return {**diode_to_data(self.diode), "v_low": self.v_low, "v_high": self.v_high}

    @classmethod
    def from_data(cls, spec: dict) -> "DiodeClamp":
        return cls(diode_from_data(spec), spec["v_low"], spec["v_high"])


@dataclass(frozen=True)
class Amplifier(_Registered):
    """The ideal bidirectional amplifier (Kendall et al. 2020): a VCVS of gain ``a`` forward, a CCCS of 1/a back.

    The next layer sees ``a V``; the current it draws is reflected into the driving node divided by ``a``.
    The network keeps an energy function: layer k's terms are weighted by 1/(a_2 ... a_k)^2. The gain of each
    connection is the network's (``LayeredNetwork.gains``); this class owns how an amplifier of nominal gain
    a behaves (``output``) and its SPICE text (``spice_lines``), so a new amplifier model is one class.
    """

    REGISTRY = AMPLIFIER_MODELS
    kind = "ideal"
    #: whether ``output`` is a V exactly: the network then has an energy function and every path serves it
    ideal = True
    #: whether it has an inverting form (``output`` with a negative gain: -a V), which differential layers need
    inverting = True

    def to_data(self) -> dict:
        return {"amplifier": self.kind, "params": self.params()}

    @staticmethod
    def from_data(spec) -> "Amplifier":
        if spec is None:
            return Amplifier()
        cls = AMPLIFIER_MODELS.get(spec.get("amplifier")) if isinstance(spec, dict) else None
        if cls is None:
            raise NetworkError(f"unknown amplifier model {spec!r} in saved network; known: {sorted(AMPLIFIER_MODELS)}")
        try:
            return cls(**spec.get("params", {}))
        except TypeError as e:
            raise NetworkError(f"saved {cls.kind} amplifier has bad parameters ({e})") from None

    def output(self, gain: float, v_in, load_g, load_i, offset=None):
        """The output voltage of an amplifier of nominal gain ``gain`` with input ``v_in`` driving a load that
        draws load_g V_out - load_i (load_g: the conductances it drives summed; load_i: their conductance
        times the far node's voltage, summed); ``offset``: each amplifier's input offset (``input_offsets``).
        Arrays broadcast (batch, amplifiers)."""
        return gain * np.asarray(v_in, dtype=float)

    def input_offsets(self, c: int, n: int):
        """The input offsets (V) of connection c's n amplifiers, or None where there are none."""
        return None

    def gain_factors(self, c: int, n: int):
        """Each of connection c's n amplifiers' loop gain over the nominal one (its feedback network's mismatch;
        the CCCS stays 1 / nominal), or None where all are nominal."""
        return None

    def slopes(self, gain: float, v_in, load_g, load_i, offset=None) -> tuple:
        """(dV_out / dV_in, dV_out / d load_i) at the operating point ``output`` takes: the small-signal forward
        gain and the output's share of its load current's change (its closed-loop output resistance over
        1 + that resistance times load_g). Ideal: (gain, 0)."""
        shape = np.broadcast_shapes(np.shape(v_in), np.shape(load_i))
        return np.broadcast_to(np.asarray(gain, dtype=float), shape).copy(), np.zeros(shape)

    def closed_loop_gain(self, gain: float) -> float:
        return float(gain)

    def spice_subckt(self, gain: float) -> str:
        """The subcircuit that realises an amplifier of this (signed) gain (``spice_lines`` defines it)."""
        return "bidir_amp"

    def spice_lines(self) -> list:
        """The subcircuit ``bidir_amp in out params: gain=...``: forward VCVS, backward CCCS of 1/gain."""
        return [".subckt bidir_amp in out params: gain=1",
                "* forward: out = gain * V(in); backward: in gives up I(out)/gain",
                "E_fwd drive 0 in 0 {gain}",
                "V_sense drive out DC 0",
                "F_back in 0 V_sense {1/gain}",
                ".ends bidir_amp"]

    def describe(self) -> str:
        return "ideal amplifiers (VCVS forward, CCCS back)"


AMPLIFIER_MODELS[Amplifier.kind] = Amplifier  # the family's root is a model too


@dataclass(frozen=True)
class OpAmp(Amplifier):
    """The bidirectional amplifier built on an op-amp macromodel: a non-inverting loop of nominal gain a.

    The op-amp has DC gain ``a0``, one dominant pole at ``gbw`` / a0 (gain-bandwidth product, Hz), output
    resistance ``rout`` (ohms) behind its gain stage, an output stage that saturates at +-``swing`` volts and an
    input offset ``offset`` (volts, at the + input) plus, per amplifier, a mismatch drawn from a normal
    distribution of deviation ``offset_sigma``, and a loop gain a (1 + ``gain_sigma`` z) per amplifier (its feedback
    divider's mismatch; the CCCS keeps 1/a), both seeded by ``seed`` and the connection: one die, the same values in
    the native solver and in the SPICE netlist, where each amplifier instance carries its own. Its loop feeds back V_out / a (an ideal divider that draws
    no current); the backward CCCS passes the output current, divided by the nominal a, into the input node,
    as in the ideal amplifier. At DC, with beta = 1/a the feedback fraction and I the load current:

        unsaturated:  V_out = A_f (V_in + offset) - R_f I,   A_f = a0 / (1 + a0 beta),  R_f = rout / (1 + a0 beta)
        saturated:    V_out = +-swing - rout I               (the gain stage's output is +-swing)

    The inverting half of a differential amplifier (a negative ``gain`` -a) is the inverting loop: + input at the
    offset, - input on the ideal divider (a V_in + V_out) / (1 + a) (feedback fraction beta = 1 / (1 + a)), so

        unsaturated:  V_out = (-a A0 / (1 + a) V_in + A0 offset - rout I) / (1 + A0 beta)

    (-a V_in + (1 + a) offset as A0 grows: the offset sees the noise gain 1 + a); its CCCS passes -1/a back.

    The forward gain A_f is below a while the backward ratio stays 1/a: the circuit is no longer reciprocal,
    has no energy function, and EqProp's estimate is no longer the gradient; how much that costs is what the
    model is for. ``iq`` (A) and ``supply`` (V, rail to rail) give each amplifier's quiescent power. ``noise`` is
    the op-amp's input-referred voltage noise (V/sqrt(Hz), one-sided, white): it enters where the offset does, so
    it reaches the output through the offset's gain (``offset_gain``) and the nodes through the loads and the CCCS.
    What only a transient has (the pole) is simulated by ngspice, not by the native DC solver.
    """

    a0: float = 1e5
    gbw: float = float("inf")
    rout: float = 0.0
    swing: float = float("inf")
    offset: float = 0.0
    offset_sigma: float = 0.0
    gain_sigma: float = 0.0
    seed: int = 0
    iq: float = 0.0
    supply: float = 0.0
    noise: float = 0.0
    kind = "opamp"
    ideal = False
    inverting = True  # it has an inverting form (``output`` with a negative gain): differential layers take it

    def __post_init__(self):
        for name, lo, inf_ok in (("a0", 1.0, False), ("gbw", 0.0, True), ("rout", 0.0, False), ("swing", 0.0, True),
                                 ("iq", 0.0, False), ("supply", 0.0, False), ("noise", 0.0, False)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or np.isnan(value) or (np.isinf(value) and not inf_ok) \
                    or value < lo or (name in ("gbw", "swing") and value == 0):
                raise NetworkError(f"op-amp {name} must be {'>= 1' if name == 'a0' else 'positive' if name in ('gbw', 'swing') else '>= 0'}"
                                   f"{'' if inf_ok else ' and finite'}, got {value!r}")
        if not isinstance(self.offset, (int, float)) or not np.isfinite(self.offset):
            raise NetworkError(f"op-amp offset must be a finite voltage, got {self.offset!r}")
        if not isinstance(self.offset_sigma, (int, float)) or not np.isfinite(self.offset_sigma) or self.offset_sigma < 0:
            raise NetworkError(f"op-amp offset_sigma must be a finite voltage >= 0, got {self.offset_sigma!r}")
        if not isinstance(self.gain_sigma, (int, float)) or not 0 <= self.gain_sigma <= 0.2:
            raise NetworkError(f"op-amp gain_sigma (relative) must be 0 to 0.2, got {self.gain_sigma!r}")
        if isinstance(self.seed, float) and self.seed.is_integer():
            object.__setattr__(self, "seed", int(self.seed))  # from a text spec ('seed=3')
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**32:
            raise NetworkError(f"op-amp seed must be a whole number from 0 to 2^32 - 1, got {self.seed!r}")
        if self.supply and np.isfinite(self.swing) and 2 * self.swing > self.supply:
            raise NetworkError(f"op-amp swing +-{self.swing:g} V exceeds its supply of {self.supply:g} V rail to rail")

    def loop(self, gain: float) -> float:
        """1 + a0 beta: the loop's return difference at DC (beta = 1/gain; gain a number or one per amplifier)."""
        return 1.0 + self.a0 / (np.asarray(gain, dtype=float) if np.ndim(gain) else float(gain))

    def closed_loop_gain(self, gain: float) -> float:
        return self.a0 / self.loop(gain)

    def closed_loop_rout(self, gain: float) -> float:
        return self.rout / self.loop(gain)

    def input_offsets(self, c: int, n: int):
        return _offsets(self, c, n)

    def gain_factors(self, c: int, n: int):
        return _gain_factors(self, c, n) if self.gain_sigma else None

    def _loop_terms(self, gain) -> tuple:
        """(input gain, offset gain, output resistance) of the closed loop for signed gains (negative: the inverting
        loop, see the class notes)."""
        g = np.asarray(gain, dtype=float) if np.ndim(gain) else float(gain)
        if np.all(np.asarray(g) > 0):
            af = self.closed_loop_gain(g)
            return af, af, self.closed_loop_rout(g)
        mag = np.abs(g)
        loop = np.where(g > 0, 1.0 + self.a0 / mag, 1.0 + self.a0 / (1.0 + mag))
        k_in = np.where(g > 0, 1.0, -mag / (1.0 + mag))
        return self.a0 * k_in / loop, self.a0 / loop, self.rout / loop

    def output(self, gain, v_in, load_g, load_i, offset=None):
        """Exact at DC: the unsaturated solution, replaced by the saturated one where the gain stage's output
        (V_out + rout I) would pass +-swing."""
        v_in = np.asarray(v_in, dtype=float)
        af, a_off, rf = self._loop_terms(gain)
        v = (af * v_in + a_off * (self.offset if offset is None else offset) + rf * load_i) / (1.0 + rf * load_g)
        if np.isfinite(self.swing):
            stage = v + self.rout * (load_g * v - load_i)
            hi = (self.swing + self.rout * load_i) / (1.0 + self.rout * load_g)
            lo = (-self.swing + self.rout * load_i) / (1.0 + self.rout * load_g)
            v = np.where(stage > self.swing, hi, np.where(stage < -self.swing, lo, v))
        return v

    def slopes(self, gain, v_in, load_g, load_i, offset=None) -> tuple:
        """Unsaturated: (A_f, R_f) / (1 + R_f load_g); saturated: the gain stage is fixed, (0, rout / (1 + rout
        load_g))."""
        v_in = np.asarray(v_in, dtype=float)
        af, _, rf = self._loop_terms(gain)
        shape = np.broadcast_shapes(v_in.shape, np.shape(load_i))
        alpha = np.broadcast_to(af / (1.0 + rf * load_g), shape).copy()
        rho = np.broadcast_to(rf / (1.0 + rf * load_g), shape).copy()
        if np.isfinite(self.swing):
            v = self.output(gain, v_in, load_g, load_i, offset)
            stage = v + self.rout * (load_g * v - load_i)
            sat = np.broadcast_to(np.abs(stage) >= self.swing * (1 - 1e-12), shape)
            alpha[sat] = 0.0
            rho[sat] = np.broadcast_to(self.rout / (1.0 + self.rout * load_g), shape)[sat]
        return alpha, rho

    def offset_gain(self, gain, v_in, load_g, load_i, offset=None):
        """dV_out / d(input offset) at the point (the input noise's gain to the output): the closed loop's offset gain
        over 1 + R_f load_g where unsaturated, 0 where the gain stage is saturated."""
        v_in = np.asarray(v_in, dtype=float)
        _, a_off, rf = self._loop_terms(gain)
        shape = np.broadcast_shapes(v_in.shape, np.shape(load_i))
        k = np.broadcast_to(a_off / (1.0 + rf * load_g), shape).copy()
        if np.isfinite(self.swing):
            v = self.output(gain, v_in, load_g, load_i, offset)
            stage = v + self.rout * (load_g * v - load_i)
            k[np.broadcast_to(np.abs(stage) >= self.swing * (1 - 1e-12), shape)] = 0.0
        return k

    @property
    def quiescent_power(self) -> float:
        """W per amplifier: quiescent current times the supply, rail to rail."""
        return self.iq * self.supply

    def spice_lines(self) -> list:
        """``bidir_amp in out params: gain=...``: the op-amp's gain stage (a transconductance into an RC of pole
        gbw / a0, a0 at DC), its output limiter, output resistance, the feedback V(out)/gain and the CCCS."""
        num = spice_number
        head = (f"* op-amp macromodel: A0 {self.a0:g}, GBW {self.gbw:g} Hz, Rout {self.rout:g} ohm, swing "
                f"+-{self.swing:g} V, offset {self.offset:g} V")
        # the offset as a source, so that ngspice's source stepping ramps it with the others
        # the input noise: a resistor of thermal density en^2 in series with the + input, which draws no current
        rn = self.noise**2 / (4.0 * BOLTZMANN * SPICE_TNOM_KELVIN) if self.noise else 0.0
        plus = (lambda node: [f"V_os plus_n {node} DC {{vos}}", f"R_en plus plus_n {num(rn)}"]) if rn else \
            (lambda node: [f"V_os plus {node} DC {{vos}}"])
        non_inverting = [f".subckt bidir_amp in out params: gain=1 vos={num(self.offset)} fb=1",
                         head + "; non-inverting loop of gain `gain`, CCCS back of 1/gain",
                         *plus("in"),
                         "E_fb fb 0 out 0 {1/(gain*fb)}"]
        # the inverting loop of gain `gain` < 0: + input at the offset, - input on the divider (k V_in + V_out) /
        # (1 + k), k = -gain fb (R2 / R1, with the die's mismatch), drawing no current
        inverting = [f".subckt bidir_inv in out params: gain=-1 vos={num(self.offset)} fb=1",
                     head + "; inverting loop of gain `gain` (< 0), CCCS back of 1/gain",
                     *plus("0"),
                     "E_fb_in fb mid in 0 {-gain*fb/(1-gain*fb)}",
                     "E_fb_out mid 0 out 0 {1/(1-gain*fb)}"]
        return self._stage_lines(non_inverting) + self._stage_lines(inverting)

    def spice_subckt(self, gain: float) -> str:
        return "bidir_inv" if gain < 0 else "bidir_amp"

    def _stage_lines(self, lines: list) -> list:
        """The gain stage, limiter, output resistance and CCCS after a subcircuit's input and feedback lines."""
        num = spice_number
        lines = list(lines)
        err = "v(plus) - v(fb)"
        if np.isfinite(self.gbw):
            # gm = a0 / 1k into 1k || C: a0 at DC, one pole at gbw / a0
            cap = self.a0 / (2.0 * np.pi * self.gbw * 1e3)
            # (the macromodel's own resistors are noiseless: its input noise is R_en's, at the + input)
            lines += [f"B_gm 0 pole I = {num(self.a0 / 1e3)} * ({err})", "R_pole pole 0 1k noisy=0",
                      f"C_pole pole 0 {num(cap)}"]
            stage = "v(pole)"
        else:
            stage = f"{num(self.a0)} * ({err})"
        if np.isfinite(self.swing):
            stage = f"max(min({stage}, {num(self.swing)}), {num(-self.swing)})"
        lines.append(f"B_stage stage 0 V = {stage}")
        lines.append(f"R_out stage drive {num(self.rout)} noisy=0" if self.rout > 0 else "V_out stage drive DC 0")
        name = lines[0].split()[1]
        lines += ["V_sense drive out DC 0", "F_back in 0 V_sense {1/gain}", f".ends {name}"]
        return lines

    def describe(self) -> str:
        parts = [f"A0 {self.a0:g}"]
        if np.isfinite(self.gbw):
            parts.append(f"GBW {self.gbw:g} Hz")
        if self.rout:
            parts.append(f"Rout {self.rout:g} ohm")
        if np.isfinite(self.swing):
            parts.append(f"swing +-{self.swing:g} V")
        if self.offset:
            parts.append(f"offset {self.offset:g} V")
        if self.offset_sigma:
            parts.append(f"offset mismatch {self.offset_sigma:g} V rms")
        if self.gain_sigma:
            parts.append(f"gain mismatch {100 * self.gain_sigma:g}% rms")
        if self.offset_sigma or self.gain_sigma:
            parts.append(f"die {self.seed}")
        if self.quiescent_power:
            parts.append(f"{self.quiescent_power:g} W quiescent")
        if self.noise:
            parts.append(f"input noise {self.noise:g} V/rtHz")
        return "op-amp amplifiers (" + ", ".join(parts) + ")"


@functools.lru_cache(maxsize=256)
def _offsets(model: OpAmp, c: int, n: int):
    """Connection c's n input offsets: the nominal one plus the die's mismatch (read-only, drawn once)."""
    off = np.full(n, float(model.offset))
    if model.offset_sigma:
        off += model.offset_sigma * np.random.default_rng([model.seed, c]).standard_normal(n)
    off.setflags(write=False)
    return off


@functools.lru_cache(maxsize=256)
def _gain_factors(model: OpAmp, c: int, n: int):
    """Connection c's n loop gains over nominal: 1 + gain_sigma z (a stream of its own: the offsets stay as drawn)."""
    f = 1.0 + model.gain_sigma * np.random.default_rng([model.seed, c, 1]).standard_normal(n)
    f.setflags(write=False)
    return f


def amplifier_model(spec) -> Amplifier:
    """An amplifier from an instance, None (ideal), a text such as ``"a0=1e3 rout=50 swing=2.5 offset=1e-3"``
    (an op-amp; keys: the ``OpAmp`` fields), ``"ideal"``, or the path of a characterised amplifier's ``.json``."""
    if spec is None or isinstance(spec, Amplifier):
        return spec or Amplifier()
    if not isinstance(spec, str):
        raise NetworkError(f"an amplifier is a model or a text like 'a0=1e3 rout=50', got {spec!r}")
    text = spec.strip()
    if text in ("", "ideal"):
        return Amplifier()
    if text.endswith(".json"):  # a saved model, e.g. a characterised transistor-level amplifier (eqprop transistors)
        return model_file(text, "amplifier", Amplifier.from_data)
    fields = {f for f in OpAmp.__dataclass_fields__}
    params = {}
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise NetworkError(f"amplifier spec {spec!r}: {item!r} is not key=value with a key among {sorted(fields)}")
        try:
            params[key] = int(value) if key == "seed" and value.isdigit() else float(value)
        except ValueError:
            raise NetworkError(f"amplifier spec {spec!r}: {key}={value!r} is not a number") from None
    return OpAmp(**params)
