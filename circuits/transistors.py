"""Transistor-level parts and the behavioural models the native solver learns them by.

A designer's part is a transistor circuit on a published process (``Process``); ngspice simulates it as
written. The native solver cannot run transistors, so each part is *characterised* (``eqprop.netlists.
characterise`` sweeps it in ngspice at DC) and the sweep becomes a behavioural model here, a table the solver
interpolates. The model keeps the part's transistor text: a network trained natively on the table is written
to SPICE with the transistors themselves, so ngspice checks what the table leaves out.

- ``Process``: a published set of level-3 model cards and its supplies (``PROCESSES``).
- ``TwoStageOpAmp``: the bidirectional amplifier at transistor level: a two-stage Miller op-amp (NMOS input
  pair, PMOS mirror load, PMOS common-source second stage with an NMOS current sink, one bias mirror) in a
  non-inverting loop of resistors R1 and R2 = (a - 1) R1; the current its output gives to the next layer is
  sensed after the feedback tap and passed back into the driving node divided by a (the CCCS of Kendall et
  al.'s amplifier stays behavioural: a transistor current conveyor is not modelled).
- ``TabulatedAmplifier`` (kind ``table``): the closed loop's DC output V_out(V_in, I_load) at each nominal gain,
  as ngspice computed it on a grid, interpolated bilinearly; the output's operating point on the load line is
  solved exactly for the interpolant (a few Newton steps, the function is monotone).
- ``PmosClamp``: the neuron's clamp at transistor level: each of its two diodes a diode-connected p-MOSFET in its
  own n-well (bulk on source: no body effect), biased ``shift`` volts past its rail so that it turns on at the
  rail (the knee sits at the rail for shift = |VTO|).
- ``TabulatedDiode`` (kind ``table``): one such diode's current i(vd) from ngspice's DC sweep, interpolated
  linearly (its co-content piecewise quadratic); the node's minimiser is solved exactly for the interpolant.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import kernels
from .devices import Amplifier, DiodeModel, diode_from_data, diode_to_data, model_file, spice_number
from .errors import NetworkError

# R. J. Baker, "CMOS: Circuit Design, Layout, and Simulation" (3rd ed., Wiley-IEEE 2010), the long-channel
# 1 um process (level 3, VDD = 5 V) as published on CMOSedu.com; both cards verbatim in the book's parameter
# names. The supplies here are split +-2.5 V (5 V) so that signals sit around ground as the network's do.
BAKER_1UM_NMOS = ("LEVEL=3 TOX=200E-10 NSUB=1E17 GAMMA=0.5 PHI=0.7 VTO=0.8 DELTA=3.0 UO=650 ETA=3.0E-6 "
                  "THETA=0.1 KP=120E-6 VMAX=1E5 KAPPA=0.3 RSH=0 NFS=1E12 TPG=1 XJ=500E-9 LD=100E-9 "
                  "CGDO=200E-12 CGSO=200E-12 CGBO=1E-10 CJ=400E-6 PB=1 MJ=0.5 CJSW=300E-12 MJSW=0.5")
BAKER_1UM_PMOS = ("LEVEL=3 TOX=200E-10 NSUB=1E17 GAMMA=0.6 PHI=0.7 VTO=-0.9 DELTA=0.1 UO=250 ETA=0 "
                  "THETA=0.1 KP=40E-6 VMAX=5E4 KAPPA=1 RSH=0 NFS=1E12 TPG=-1 XJ=500E-9 LD=100E-9 "
                  "CGDO=200E-12 CGSO=200E-12 CGBO=1E-10 CJ=400E-6 PB=1 MJ=0.5 CJSW=300E-12 MJSW=0.5")


@dataclass(frozen=True)
class Process:
    """A CMOS process: its model cards (ngspice parameter text), supplies (V) and the channel length used."""

    name: str
    source: str
    nmos: str
    pmos: str
    vdd: float
    vss: float
    length: float  # m: the drawn channel length of every transistor of the parts below

    def model_lines(self, suffix: str = "") -> list:
        return [f".model nch{suffix} NMOS({self.nmos})", f".model pch{suffix} PMOS({self.pmos})"]


PROCESSES = {
    "baker-1um": Process("baker-1um", "R. J. Baker, CMOS: Circuit Design, Layout, and Simulation, 3rd ed. (2010), "
                         "long-channel 1 um level-3 models (CMOSedu.com)", BAKER_1UM_NMOS, BAKER_1UM_PMOS,
                         2.5, -2.5, 2e-6),
}


def process(name: str) -> Process:
    if name not in PROCESSES:
        raise NetworkError(f"unknown process {name!r}; known: {sorted(PROCESSES)}")
    return PROCESSES[name]


@dataclass(frozen=True)
class TwoStageOpAmp:
    """A two-stage Miller op-amp in the bidirectional amplifier's non-inverting loop (see the module notes).

    Widths in metres at the process's channel length; ``ibias`` (A) is mirrored 1:1 into the input pair's
    tail and ``w7 / w8`` into the output stage; ``cc`` (F) is the Miller capacitor; ``r1`` (ohms) the feedback
    resistor to ground (R2 = (gain - 1) R1). The second stage is sized for no systematic offset:
    (W/L)6 / (W/L)4 = 2 (W/L)7 / (W/L)5.
    """

    process: str = "baker-1um"
    ibias: float = 10e-6
    w_in: float = 10e-6  # M1, M2: the NMOS input pair
    w_load: float = 30e-6  # M3, M4: the PMOS mirror
    w_tail: float = 10e-6  # M5 and the bias diode M8
    w_out: float = 120e-6  # M6: the PMOS second stage
    w_sink: float = 20e-6  # M7: the output stage's current sink
    cc: float = 2e-12
    r1: float = 100e3

    def __post_init__(self):
        process(self.process)
        for name in ("ibias", "w_in", "w_load", "w_tail", "w_out", "w_sink", "cc", "r1"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise NetworkError(f"TwoStageOpAmp.{name} must be a positive number, got {v!r}")

    @property
    def quiescent_current(self) -> float:
        """A from the supplies by design: the bias branch, the tail and the output stage."""
        return self.ibias * (2.0 + self.w_sink / self.w_tail)

    def subckt(self) -> list:
        """``bidir_amp in out params: gain=...`` at transistor level, with its own supply sources."""
        p, num, L = process(self.process), spice_number, spice_number(process(self.process).length)
        m = lambda name, d, g, s, b, kind, w: f"{name} {d} {g} {s} {b} {kind} W={num(w)} L={L}"  # noqa: E731
        return [".subckt bidir_amp in out params: gain=4",
                f"* two-stage Miller op-amp on {p.name} ({p.source}); Ibias {self.ibias:g} A, Cc {self.cc:g} F;",
                "* non-inverting loop R1 to ground, R2 = (gain - 1) R1; the load current sensed after the tap "
                "and passed back as a CCCS of 1/gain",
                f"V_dd vdd 0 DC {num(p.vdd)}", f"V_ss vss 0 DC {num(p.vss)}",
                f"I_bias vdd nb DC {num(self.ibias)}",
                m("M8", "nb", "nb", "vss", "vss", "nch", self.w_tail),
                m("M5", "tail", "nb", "vss", "vss", "nch", self.w_tail),
                m("M1", "d1", "minus", "tail", "vss", "nch", self.w_in),
                m("M2", "d2", "in", "tail", "vss", "nch", self.w_in),
                m("M3", "d1", "d1", "vdd", "vdd", "pch", self.w_load),
                m("M4", "d2", "d1", "vdd", "vdd", "pch", self.w_load),
                m("M6", "o", "d2", "vdd", "vdd", "pch", self.w_out),
                m("M7", "o", "nb", "vss", "vss", "nch", self.w_sink),
                f"C_c d2 o {num(self.cc)}",
                f"R_1 minus 0 {num(self.r1)}",
                f"R_2 o minus {{{num(self.r1)}*(gain-1)}}",
                "V_sense o out DC 0",
                "F_back in 0 V_sense {1/gain}",
                *p.model_lines(),
                ".ends bidir_amp"]

    def to_data(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (f"two-stage Miller op-amp on {self.process} (Ibias {1e6 * self.ibias:g} uA, Iq {1e6 * self.quiescent_current:g}"
                f" uA by design, Cc {1e12 * self.cc:g} pF, R1 {1e-3 * self.r1:g} kohm)")


DESIGNS = {"two-stage": TwoStageOpAmp}


def _design(cls, spec: str, what: str):
    """A part's design from a text of key=value (its dataclass fields; ``process`` by name, the rest numbers)."""
    fields = cls.__dataclass_fields__
    params = {}
    for item in (spec or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise NetworkError(f"{what} design {spec!r}: {item!r} is not key=value with a key among {sorted(fields)}")
        try:
            params[key] = value if key == "process" else float(value)
        except ValueError:
            raise NetworkError(f"{what} design {spec!r}: {key}={value!r} is not a number") from None
    return cls(**params)


def opamp_design(spec: str = "") -> TwoStageOpAmp:
    """A two-stage op-amp from a text such as ``"ibias=5e-6 w_out=60e-6 process=baker-1um"`` (keys: its fields;
    left out: the defaults)."""
    return _design(TwoStageOpAmp, spec, "op-amp")


@dataclass(frozen=True, eq=False)
class TabulatedAmplifier(Amplifier):
    """A characterised amplifier: V_out(V_in, I_load) at each nominal gain from ngspice's DC sweep of ``design``.

    ``vout[k]`` is the output at ``gains[k]`` on the grid ``vin`` x ``iload`` (row-major, V_in outer); I_load is
    the current the output gives to its load. Inputs past the grid's ends take the end's value (the grid spans
    the output's saturation), load currents past it extrapolate along the end cell's output resistance.
    ``supply_current`` (A) and ``supply`` (V) at rest give the quiescent power; ``settled`` says how well ngspice's
    repeated solves of each grid point agreed (its largest gap). SPICE gets the transistors.
    """

    design: dict = None
    gains: tuple = ()
    vin: tuple = ()
    iload: tuple = ()
    vout: tuple = ()
    supply_current: float = 0.0
    supply: float = 0.0
    settled: float = 0.0  # V: the largest gap between ngspice's last two solves of a grid point
    kind = "table"
    needs_file = True
    ideal = False
    inverting = False  # characterised as a non-inverting loop only

    def __post_init__(self):
        for name in ("gains", "vin", "iload"):  # a saved form's lists: one spelling
            object.__setattr__(self, name, tuple(float(v) for v in np.ravel(getattr(self, name))))
        object.__setattr__(self, "vout", tuple(tuple(float(v) for v in row) for row in self.vout))
        kind = (self.design or {}).get("kind") if isinstance(self.design, dict) else None
        if kind not in DESIGNS:
            raise NetworkError(f"a tabulated amplifier needs its transistor design (kind among {sorted(DESIGNS)}), "
                               f"got {self.design!r}")
        vin, il = np.asarray(self.vin, dtype=float), np.asarray(self.iload, dtype=float)
        if vin.ndim != 1 or il.ndim != 1 or len(vin) < 2 or len(il) < 2 or np.any(np.diff(vin) <= 0) \
                or np.any(np.diff(il) <= 0) or not (np.isfinite(vin).all() and np.isfinite(il).all()):
            raise NetworkError("a tabulated amplifier's vin and iload grids must each be 2 or more increasing numbers")
        table = np.asarray(self.vout, dtype=float)
        if table.shape != (len(self.gains), len(vin) * len(il)) or not np.isfinite(table).all():
            raise NetworkError(f"a tabulated amplifier's vout must be one finite row of {len(vin)} x {len(il)} per "
                               f"gain ({len(self.gains)}), got shape {table.shape}")
        if len(set(self.gains)) != len(self.gains) or any(not np.isfinite(g) or g <= 1 for g in self.gains):
            raise NetworkError(f"a tabulated amplifier's gains must be distinct numbers > 1, got {self.gains!r}")

    def __hash__(self):
        return id(self)

    # ---- the table ----------------------------------------------------------------------------
    @functools.cached_property
    def _grid(self):
        vin, il = np.asarray(self.vin, dtype=float), np.asarray(self.iload, dtype=float)
        tables = np.asarray(self.vout, dtype=float).reshape(len(self.gains), len(vin), len(il))
        return vin, il, tables

    @functools.cached_property
    def _design(self):
        spec = dict(self.design)
        return DESIGNS[spec.pop("kind")](**spec)

    def _table(self, gain):
        if np.ndim(gain):
            raise NetworkError("a tabulated amplifier has no per-amplifier gain mismatch")
        for k, g in enumerate(self.gains):
            if abs(g - float(gain)) <= 1e-9 * g:
                return self._grid[2][k]
        raise NetworkError(f"the amplifier was characterised at gains {list(self.gains)}, not {float(gain):g}: "
                           f"characterise it at the network's gains (eqprop transistors --gain ...)")

    def _interp(self, table, v_in, i):
        """Bilinear value and its partial derivatives (d/dV_in, d/dI) at (v_in, i), arrays of one shape."""
        vin, il, _ = self._grid
        x = np.clip(v_in, vin[0], vin[-1])
        a = np.clip(np.searchsorted(vin, x, side="right") - 1, 0, len(vin) - 2)
        b = np.clip(np.searchsorted(il, i, side="right") - 1, 0, len(il) - 2)
        hx, hy = vin[a + 1] - vin[a], il[b + 1] - il[b]
        tx, ty = (x - vin[a]) / hx, (i - il[b]) / hy  # ty outside [0, 1] extrapolates the end cell
        f00, f01, f10, f11 = table[a, b], table[a, b + 1], table[a + 1, b], table[a + 1, b + 1]
        value = (f00 * (1 - tx) + f10 * tx) * (1 - ty) + (f01 * (1 - tx) + f11 * tx) * ty
        d_v = ((f10 - f00) * (1 - ty) + (f11 - f01) * ty) / hx
        d_v = np.where((v_in < vin[0]) | (v_in > vin[-1]), 0.0, d_v)
        d_i = ((f01 - f00) * (1 - tx) + (f11 - f10) * tx) / hy
        return value, d_v, d_i

    def _operating_point(self, gain, v_in, load_g, load_i):
        """V_out on the load line I = load_g V_out - load_i (Newton on V - f(V_in, I), whose slope 1 - f_I load_g
        is >= 1 where the output resistance is positive), with the table's partials there."""
        table = self._table(gain)
        v_in = np.asarray(v_in, dtype=float)
        shape = np.broadcast_shapes(v_in.shape, np.shape(load_i), np.shape(load_g))
        v_in, load_g, load_i = (np.broadcast_to(t, shape) for t in (v_in, load_g, load_i))
        v = self._interp(table, v_in, -load_i)[0]
        for _ in range(60):
            f, d_v, d_i = self._interp(table, v_in, load_g * v - load_i)
            step = (v - f) / (1.0 - d_i * load_g)
            v = v - step
            if np.abs(step).max(initial=0.0) <= 1e-14:
                break
        f, d_v, d_i = self._interp(table, v_in, load_g * v - load_i)
        return v, d_v, d_i

    # ---- the Amplifier interface --------------------------------------------------------------
    def output(self, gain, v_in, load_g, load_i, offset=None):
        return self._operating_point(gain, v_in, load_g, load_i)[0]

    def slopes(self, gain, v_in, load_g, load_i, offset=None) -> tuple:
        """dV = f_V dV_in + f_I (load_g dV - d load_i): alpha = f_V / (1 - f_I load_g), rho = -f_I / (1 - f_I load_g)."""
        _, d_v, d_i = self._operating_point(gain, v_in, load_g, load_i)
        den = 1.0 - d_i * load_g
        return d_v / den, -d_i / den

    def closed_loop_gain(self, gain: float) -> float:
        """The small-signal gain at rest (V_in = 0, no load)."""
        return float(self._interp(self._table(gain), np.zeros(1), np.zeros(1))[1][0])

    @property
    def quiescent_power(self) -> float:
        return self.supply_current * self.supply

    def spice_lines(self) -> list:
        return self._design.subckt()

    @property
    def supply_sources(self) -> tuple:
        """(name, volts) of the supply sources in each SPICE instance: ngspice's power reads them."""
        p = process(self._design.process)
        return (("v_dd", p.vdd), ("v_ss", p.vss))

    def describe(self) -> str:
        return f"characterised amplifiers: {self._design.describe()}"

    # ---- saved form ---------------------------------------------------------------------------
    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_data()))

    @staticmethod
    def load(path) -> "TabulatedAmplifier":
        model = model_file(path, "amplifier", Amplifier.from_data)
        if not isinstance(model, TabulatedAmplifier):
            raise NetworkError(f"{path} holds a {model.kind} amplifier, not a characterised one")
        return model



@dataclass(frozen=True)
class PmosClamp:
    """The neuron clamp at transistor level: two diode-connected p-MOSFETs, each in its own n-well (bulk on its
    source), the upper one from the node to a bias ``shift`` below the upper rail, the lower one from a bias
    ``shift`` above the lower rail to the node: each conducts once the node passes its rail by |VT| - shift."""

    process: str = "baker-1um"
    w: float = 100e-6
    shift: float = 0.6  # V: the bias past the rail: 10 nA at the rail on baker-1um (|VTO| 0.9 V: microamperes)

    def __post_init__(self):
        process(self.process)
        for name in ("w", "shift"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0 or (name == "w" and v == 0):
                raise NetworkError(f"PmosClamp.{name} must be a {'positive' if name == 'w' else 'non-negative'} number, "
                                   f"got {v!r}")

    def lines(self, suffix: str = "") -> tuple:
        """(body, models) of the neuron subcircuit ``node hi lo``."""
        p, num = process(self.process), spice_number
        w, length = num(self.w), num(p.length)
        return ([f"V_bu hi bu DC {num(self.shift)}", f"M_up bu bu node node pclamp{suffix} W={w} L={length}",
                 f"V_bl bl lo DC {num(self.shift)}", f"M_dn node node bl bl pclamp{suffix} W={w} L={length}"],
                [f".model pclamp{suffix} PMOS({p.pmos})"])

    def to_data(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (f"diode-connected p-MOSFETs on {self.process} (W/L {1e6 * self.w:g}/{1e6 * process(self.process).length:g} "
                f"um, biased {self.shift:g} V past the rails)")


CLAMPS = {"pmos": PmosClamp}


def clamp_design(spec: str = "") -> PmosClamp:
    """A clamp design from a text such as ``"w=50e-6 shift=0.55"`` (keys: ``PmosClamp``'s fields)."""
    return _design(PmosClamp, spec, "clamp")


@dataclass(frozen=True, eq=False)
class TabulatedDiode(DiodeModel):
    """A characterised diode: its current ``i[k]`` at junction voltage ``vd[k]`` from ngspice's DC sweep of
    ``design``, linear between the points and along the end segments past them. Both of the neuron's diodes are
    this device (the clamp is symmetric). Its noise is the channel's of a saturated MOSFET, two-sided
    2 k T (2/3) g_m with g_m the table's slope (a diode-connected transistor is always saturated). SPICE gets the
    transistors."""

    design: dict = None
    vd: tuple = ()
    i: tuple = ()
    settled: float = 0.0
    kind = "table"
    needs_file = True  # built from a characterisation, not by name
    smooth = True
    no_integer_form = "it is a characterised transistor's table; the Loihi path maps ideal and piecewise-linear diodes"

    def __post_init__(self):
        object.__setattr__(self, "vd", tuple(float(v) for v in np.ravel(self.vd)))
        object.__setattr__(self, "i", tuple(float(v) for v in np.ravel(self.i)))
        kind = self.design.get("kind") if isinstance(self.design, dict) else None
        if kind not in CLAMPS:
            raise NetworkError(f"a tabulated diode needs its transistor design (kind among {sorted(CLAMPS)}), got "
                               f"{self.design!r}")
        vd, i = np.array(self.vd), np.array(self.i)
        if vd.size < 3 or vd.size != i.size or np.any(np.diff(vd) <= 0) or not (np.isfinite(vd).all() and
                                                                             np.isfinite(i).all()):
            raise NetworkError("a tabulated diode needs 3 or more increasing voltages and as many finite currents")
        if np.any(np.diff(i) <= 0) or not vd[0] <= 0 <= vd[-1]:
            raise NetworkError("a tabulated diode's current must increase with its voltage and the grid span 0 V "
                               "(a clamp's energy is convex only then)")

    def __hash__(self):
        return id(self)

    @functools.cached_property
    def _arrays(self):
        vd, i = np.array(self.vd), np.array(self.i)
        g = np.diff(i) / np.diff(vd)
        # co-content at the grid points, from 0 V: the trapezoids of a piecewise-linear current
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(vd))])
        k0 = np.searchsorted(vd, 0.0, side="right") - 1
        k0 = min(max(k0, 0), vd.size - 2)
        at0 = cum[k0] + i[k0] * (0.0 - vd[k0]) + 0.5 * g[k0] * (0.0 - vd[k0]) ** 2
        return vd, i, g, cum - at0

    @functools.cached_property
    def _design(self):
        spec = dict(self.design)
        return CLAMPS[spec.pop("kind")](**spec)

    def _segment(self, vd):
        grid = self._arrays[0]
        return np.clip(np.searchsorted(grid, vd, side="right") - 1, 0, grid.size - 2)

    def current(self, vd):
        vd = np.asarray(vd, dtype=float)
        grid, i, g, _ = self._arrays
        k = self._segment(vd)
        return i[k] + g[k] * (vd - grid[k])

    def conductance(self, vd):
        vd = np.asarray(vd, dtype=float)
        return self._arrays[2][self._segment(vd)]

    def cocontent(self, vd):
        vd = np.asarray(vd, dtype=float)
        grid, i, g, cum = self._arrays
        k = self._segment(vd)
        d = vd - grid[k]
        return cum[k] + i[k] * d + 0.5 * g[k] * d * d

    def noise_density(self, vd, kt: float):
        return 2.0 * kt * (2.0 / 3.0) * self.conductance(vd)

    def solve_clamp(self, clamp, S, T, v_prev=None, tol: float = 1e-14):
        """The root of S v - T + i(v - vh) - i(vl - v), increasing in v: Newton from T / S, each step kept inside the
        bracket that the signs so far give (bisection where Newton would leave it). Exact for the piecewise-linear
        current in a few steps: Newton lands on the root once it is in the root's segment."""
        vl, vh = clamp.v_low, clamp.v_high
        S = np.asarray(S, dtype=float)
        T = np.asarray(T, dtype=float)
        shape = np.broadcast_shapes(S.shape, T.shape)
        S, T = np.broadcast_to(S, shape).ravel(), np.broadcast_to(T, shape).ravel()
        f = lambda v: S * v - T + self.current(v - vh) - self.current(vl - v)  # noqa: E731
        v = T / S if v_prev is None else np.broadcast_to(np.asarray(v_prev, dtype=float), shape).ravel().copy()
        lo, hi = np.minimum(T / S, vl) - 1.0, np.maximum(T / S, vh) + 1.0
        while True:  # widen until the bracket holds the root (a current extrapolated past the table)
            flo, fhi = f(lo), f(hi)
            bad = (flo > 0) | (fhi < 0)
            if not bad.any():
                break
            lo, hi = np.where(flo > 0, lo - 2 * (hi - lo), lo), np.where(fhi < 0, hi + 2 * (hi - lo), hi)
        v = np.clip(v, lo, hi)
        for _ in range(200):
            fv = f(v)
            lo, hi = np.where(fv < 0, v, lo), np.where(fv > 0, v, hi)
            slope = S + self.conductance(v - vh) + self.conductance(vl - v)
            new = v - fv / slope
            new = np.where((new <= lo) | (new >= hi), 0.5 * (lo + hi), new)
            step = np.abs(new - v)
            v = new
            if step.max(initial=0.0) <= tol or (hi - lo).max(initial=0.0) <= tol:
                break
        return v.reshape(shape)

    def layer_update(self, clamp):
        """``solve_clamp`` node by node in one compiled loop (``kernels.table_update``)."""
        if not kernels.available():
            return None
        grid, cur, slope, _ = self._arrays
        vl, vh = float(clamp.v_low), float(clamp.v_high)

        def update(ta, tb, k, v, terms, S, inv_s, omega, tol):
            return kernels.table_update(ta, tb, k, v, terms, S, grid, cur, slope, vl, vh, tol, 200)

        return update

    def spice_lines(self, suffix: str, options, stand_in=None) -> tuple:
        body, models = self._design.lines(suffix)
        return body, models, []

    def describe(self) -> str:
        return f"characterised clamps: {self._design.describe()}"

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(diode_to_data(self)))

    @staticmethod
    def load(path) -> "TabulatedDiode":
        model = model_file(path, "clamp", diode_from_data)
        if not isinstance(model, TabulatedDiode):
            raise NetworkError(f"{path} does not hold a characterised clamp (eqprop transistors writes clamp.json)")
        return model
