"""Two-terminal device models and the neuron nonlinearity (antiparallel diodes to bias rails).

Every model gives its current, its small-signal conductance and its co-content (the integral of
current over voltage), because the co-content is the device's contribution to the network energy
and its derivative is the device's contribution to Kirchhoff's current law.

Diode currents are written for a junction voltage ``vd = V_anode - V_cathode``; the neuron
``DiodeClamp`` places one diode from the node to the upper rail and one from the lower rail to the
node, so the node is held (softly or hard) inside ``[v_low, v_high]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NetworkError

# ngspice's constants (CODATA 2014), not the 2019 SI values: vt differs by 3e-7 relative, which moves a
# strongly forward-biased diode's node by ~1e-7 V and would break microvolt agreement with ngspice.
BOLTZMANN = 1.38064852e-23
ELEMENTARY_CHARGE = 1.6021766208e-19
SPICE_TNOM_KELVIN = 300.15  # ngspice evaluates devices at 27 C unless told otherwise
SPICE_GMIN = 1e-12  # ngspice puts this conductance across every junction
# Exponent cap: beyond it the diode is a near-short anyway; the cap keeps Newton steps finite.
EXP_CAP = 80.0


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


@dataclass(frozen=True)
class IdealDiode:
    """Zero current when reverse biased, a short when forward biased: a hard clamp at the rail."""

    kind = "ideal"
    smooth = False


@dataclass(frozen=True)
class ShockleyDiode:
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

    def current(self, vd):
        return self.junction(vd)[0] + self.gmin * np.asarray(vd, dtype=float)

    def conductance(self, vd):
        return self.junction(vd)[1] + self.gmin

    def cocontent(self, vd):
        vd = np.asarray(vd, dtype=float)
        nvt = self.nvt
        forward = lambda v: self.i_s * (nvt * (np.exp(np.minimum(v / nvt, EXP_CAP)) - 1.0) - v)  # noqa: E731
        v0 = -3.0 * nvt
        c3 = (3.0 * nvt / np.e) ** 3
        safe = np.where(vd < v0, vd, v0)
        reverse = forward(v0) - self.i_s * ((safe - v0) - 0.5 * c3 * (safe ** -2 - v0 ** -2))
        return np.where(vd < v0, reverse, forward(vd)) + 0.5 * self.gmin * vd**2


@dataclass(frozen=True)
class PiecewiseLinearDiode:
    """i = g_off vd + g_on max(vd - v_on, 0): an off leakage and an on-resistance past a knee."""

    g_on: float = 1e-2
    v_on: float = 0.0
    g_off: float = 0.0
    kind = "pwl"
    smooth = False

    def __post_init__(self):
        if not np.isfinite(self.g_on) or self.g_on <= 0:
            raise NetworkError(f"PiecewiseLinearDiode.g_on must be positive, got {self.g_on!r}")
        if self.g_off < 0 or not np.isfinite(self.g_off) or not np.isfinite(self.v_on):
            raise NetworkError("PiecewiseLinearDiode.g_off must be >= 0 and v_on finite")

    def current(self, vd):
        return self.g_off * vd + self.g_on * np.maximum(vd - self.v_on, 0.0)

    def conductance(self, vd):
        return self.g_off + self.g_on * (vd > self.v_on)

    def cocontent(self, vd):
        return 0.5 * self.g_off * vd**2 + 0.5 * self.g_on * np.maximum(vd - self.v_on, 0.0) ** 2


DIODE_MODELS = {"ideal": IdealDiode, "shockley": ShockleyDiode, "pwl": PiecewiseLinearDiode}


def diode_model(spec) -> IdealDiode | ShockleyDiode | PiecewiseLinearDiode:
    """A diode model from an instance or a name ('ideal', 'shockley', 'pwl')."""
    if isinstance(spec, (IdealDiode, ShockleyDiode, PiecewiseLinearDiode)):
        return spec
    if isinstance(spec, str) and spec in DIODE_MODELS:
        return DIODE_MODELS[spec]()
    raise NetworkError(f"unknown diode model {spec!r}; use one of {sorted(DIODE_MODELS)} or a model instance")


@dataclass(frozen=True)
class DiodeClamp:
    """The neuron nonlinearity: a diode node->rail v_high and a diode rail v_low->node.

    Its current out of the node is ``i(V - v_high) - i(v_low - V)``; with ideal diodes the node
    voltage is confined to ``[v_low, v_high]``, which is the hard-sigmoid of the Hopfield model.
    """

    diode: IdealDiode | ShockleyDiode | PiecewiseLinearDiode
    v_low: float = -1.0
    v_high: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "diode", diode_model(self.diode))
        if not (np.isfinite(self.v_low) and np.isfinite(self.v_high) and self.v_low < self.v_high):
            raise NetworkError(f"diode rails need v_low < v_high, got [{self.v_low}, {self.v_high}]")

    @property
    def v_mid(self) -> float:
        return 0.5 * (self.v_low + self.v_high)

    def current(self, v):
        """Current leaving the node through both diodes (amperes); zero for ideal diodes inside the rails."""
        if self.diode.kind == "ideal":
            return np.zeros_like(v)
        return self.diode.current(v - self.v_high) - self.diode.current(self.v_low - v)

    def conductance(self, v):
        if self.diode.kind == "ideal":
            return np.zeros_like(v)
        return self.diode.conductance(v - self.v_high) + self.diode.conductance(self.v_low - v)

    def cocontent(self, v):
        """Energy term of the two diodes; +inf outside the rails for ideal diodes."""
        if self.diode.kind == "ideal":
            tol = 1e-9 * max(1.0, abs(self.v_low), abs(self.v_high))
            outside = (v > self.v_high + tol) | (v < self.v_low - tol)
            return np.where(outside, np.inf, 0.0)
        return self.diode.cocontent(v - self.v_high) + self.diode.cocontent(self.v_low - v)


@dataclass(frozen=True)
class Amplifier:
    """Bidirectional amplifier (Kendall et al. 2020): VCVS of gain ``a`` forward, CCCS of 1/a backward.

    The next layer sees ``a * V``; the current it draws is reflected into the driving node divided by
    ``a``. The network keeps an energy function: layer k's terms are weighted by 1/(a_2 ... a_k)^2.
    """

    gain: float = 1.0

    def __post_init__(self):
        if not np.isfinite(self.gain) or self.gain <= 0:
            raise NetworkError(f"amplifier gain must be positive and finite, got {self.gain!r}")
