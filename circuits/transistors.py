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
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .devices import Amplifier, spice_number
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
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def describe(self) -> str:
        return (f"two-stage Miller op-amp on {self.process} (Ibias {self.ibias:g} A, Iq {self.quiescent_current:g} A, "
                f"Cc {self.cc:g} F, R1 {self.r1:g} ohm)")


DESIGNS = {"two-stage": TwoStageOpAmp}


def opamp_design(spec: str = "") -> TwoStageOpAmp:
    """A two-stage op-amp from a text such as ``"ibias=5e-6 w_out=60e-6 process=baker-1um"`` (keys: its fields;
    left out: the defaults)."""
    fields = TwoStageOpAmp.__dataclass_fields__
    params = {}
    for item in (spec or "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise NetworkError(f"op-amp design {spec!r}: {item!r} is not key=value with a key among {sorted(fields)}")
        if key == "process":
            params[key] = value
            continue
        try:
            params[key] = float(value)
        except ValueError:
            raise NetworkError(f"op-amp design {spec!r}: {key}={value!r} is not a number") from None
    return TwoStageOpAmp(**params)


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
    ideal = False

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
        return f"transistor-level amplifiers, characterised: {self._design.describe()}"

    # ---- saved form ---------------------------------------------------------------------------
    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_data()))

    @staticmethod
    def load(path) -> "TabulatedAmplifier":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise NetworkError(f"cannot read the amplifier model {path}: {e}") from None
        model = Amplifier.from_data(data)
        if not isinstance(model, TabulatedAmplifier):
            raise NetworkError(f"{path} holds a {model.kind} amplifier, not a characterised one")
        return model

    def params(self) -> dict:
        d = super().params()
        d["vout"] = [list(map(float, row)) for row in d["vout"]]
        return d
