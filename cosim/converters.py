"""The converters between the analog core and the digital periphery: an N-bit ADC and an N-bit current DAC,
and ``Converters``, the loop's converter settings as one spec (bits, ranges, noise, latency, figure of merit).

ADC: samples a node voltage at a period boundary (sample-and-hold), adds optional Gaussian input-referred
noise, and rounds to the nearest of 2^bits codes spanning [-v_range, +v_range]; codes saturate at the
ends. DAC: turns a signed integer code into a current of code * lsb, saturating at 2^(bits-1) - 1 codes.
Both are mid-tread and signed, so a code of 0 is exactly 0 V / 0 A. With noise 0 the error of one
conversion is at most half an LSB (inside the range), which is what ``cosim.bounds`` propagates.

Energy. A conversion costs ``fom * 2^ENOB`` joules, Walden's figure of merit (R. H. Walden, "Analog-to-digital
converter survey and analysis", IEEE JSAC 17(4), 1999: FOM = P / (2^ENOB f_s)). The default, 5 fJ per
conversion step, is a good SAR ADC of 8 to 12 bits at MS/s rates: the best reported Walden figures are 2 to 5 fJ
(Harpe et al., ISSCC 2013, 2.2 fJ at 12 b; van Elzakker et al., ISSCC 2008, 4.4 fJ), and B. Murmann's ADC
performance survey (1997 to today, web.stanford.edu/~murmann/adcsurvey.html) shows its state-of-the-art envelope at
a few fJ for Nyquist rates up to about 100 MS/s. ENOB is the bits less what the input-referred noise costs:
ENOB = bits - log2(sqrt(1 + 12 noise^2 / lsb^2)). There is no survey of current-steering DAC efficiency of the same
standing; the DAC's update is counted with the same figure (an assumption, stated where it is printed), and its
output current's energy is in the analog energy (ngspice integrates it).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from eqprop.circuits.errors import InputError

#: J per conversion step (Walden): a good 8-12-bit SAR ADC at MS/s (see the module docstring for the sources)
WALDEN_FOM = 5e-15


def _check_bits(kind: str, bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 32:
        raise InputError(f"{kind} bits must be an integer in [2, 32], got {bits!r}")
    return int(bits)


def _check_fom(fom) -> None:
    if isinstance(fom, bool) or not isinstance(fom, (int, float, np.integer, np.floating)) or not (
            np.isfinite(fom) and 0 <= fom <= 1e-9):
        raise InputError(f"converter figure of merit must be joules per conversion step in [0, 1e-9] (5 fJ is 5e-15), "
                         f"got {fom!r}")


@dataclass(frozen=True)
class ADC:
    bits: int = 24
    v_range: float = 0.25  # V: codes span [-v_range, +v_range]
    noise: float = 0.0  # V rms, input-referred
    fom: float = WALDEN_FOM  # J per conversion step (Walden)

    def __post_init__(self):
        _check_bits("ADC", self.bits)
        if not (np.isfinite(self.v_range) and self.v_range > 0):
            raise InputError(f"ADC range must be a positive voltage, got {self.v_range!r}")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise InputError(f"ADC noise must be >= 0 V rms, got {self.noise!r}")
        _check_fom(self.fom)

    @property
    def lsb(self) -> float:
        return 2.0 * self.v_range / 2 ** self.bits

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def enob(self) -> float:
        """Effective bits: the quantisation noise lsb^2 / 12 plus the input-referred noise."""
        return float(self.bits - 0.5 * np.log2(1.0 + 12.0 * self.noise ** 2 / self.lsb ** 2))

    @property
    def energy(self) -> float:
        """J per conversion: fom * 2^ENOB."""
        return float(self.fom * 2.0 ** self.enob)

    def convert(self, volts, rng=None) -> np.ndarray:
        v = np.asarray(volts, dtype=float)
        if self.noise:
            if rng is None:
                raise InputError("a noisy ADC needs a random generator")
            v = v + rng.normal(0.0, self.noise, v.shape)
        return np.clip(np.rint(v / self.lsb), -self.max_code, self.max_code).astype(np.int64)

    def volts(self, codes) -> np.ndarray:
        return np.asarray(codes, dtype=float) * self.lsb


@dataclass(frozen=True)
class DAC:
    bits: int = 24
    i_range: float = 1e-6  # A: full scale, codes span [-i_range, +i_range]
    fom: float = WALDEN_FOM  # J per code update and step (the ADC's figure: an assumption, see the module)

    def __post_init__(self):
        _check_bits("DAC", self.bits)
        if not (np.isfinite(self.i_range) and self.i_range > 0):
            raise InputError(f"DAC range must be a positive current, got {self.i_range!r}")
        _check_fom(self.fom)

    @property
    def lsb(self) -> float:
        return 2.0 * self.i_range / 2 ** self.bits

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def energy(self) -> float:
        """J per code update: fom * 2^bits."""
        return float(self.fom * 2.0 ** self.bits)

    def amps(self, codes) -> np.ndarray:
        return np.clip(np.asarray(codes, dtype=np.int64), -self.max_code, self.max_code) * self.lsb


#: the largest conversion latency a loop takes, in periods (a pipelined converter has a few)
MAX_LATENCY = 8


@dataclass(frozen=True)
class Converters:
    """The loop's converters: ADC bits, range (+-V), input-referred noise (V rms); DAC bits (default the ADC's) and
    range (+-A; default: the largest nudge, from the output conductances); the latency in periods from a sample
    to the DAC current it decides (0: the DAC changes at the sampling instant; 1: a converter that takes one
    period); the DAC's output resistance (ohms from each terminal to ground) and settling time constant (s); a
    track-and-hold per node (hold capacitance F, switch on-resistance ohms, the part of a period it holds); the
    figure of merit (J per conversion step); the input drivers' DACs (bits, range +-V; default ideal sources). The defaults are ideal: 24 bits, no noise, no latency, exact inputs."""

    adc_bits: int = 24
    adc_range: float = 0.25
    adc_noise: float = 0.0
    dac_bits: int | None = None
    dac_range: float | None = None
    latency: int = 0
    fom: float = WALDEN_FOM
    dac_rout: float | None = None  # ohms from each DAC terminal to ground (None: an ideal current source)
    dac_settle: float = 0.0  # s: the DAC's output settles to a new code with this time constant (0: a step)
    hold: float | None = None  # F: a track-and-hold capacitor per node behind a switch (None: ideal sampling)
    ron: float = 1e3  # ohms: the track-and-hold switch's on-resistance
    hold_time: float = 0.5  # the part of each period the switch holds (the conversion), from the sampling instant
    input_bits: int | None = None  # the input drivers' DACs (None: ideal float-valued sources)
    input_range: float = 1.0  # V: the input DACs span [-input_range, +input_range]

    #: text keys besides the field names: ``bits`` sets both converters' bits
    ALIASES = {"bits": ("adc_bits", "dac_bits"), "range": ("adc_range",), "noise": ("adc_noise",)}

    def __post_init__(self):
        self.adc()  # the checks of each part, in one line each
        if self.dac_bits is not None:
            _check_bits("DAC", self.dac_bits)
        if self.dac_range is not None and not (np.isfinite(self.dac_range) and self.dac_range > 0):
            raise InputError(f"DAC range must be a positive current (A), got {self.dac_range!r}")
        if self.dac_rout is not None and not (np.isfinite(self.dac_rout) and self.dac_rout > 0):
            raise InputError(f"DAC output resistance must be positive ohms, got {self.dac_rout!r}")
        if not (np.isfinite(self.dac_settle) and self.dac_settle >= 0):
            raise InputError(f"DAC settling time constant must be >= 0 s, got {self.dac_settle!r}")
        if self.hold is not None and not (np.isfinite(self.hold) and 0 < self.hold <= 1e-9):
            raise InputError(f"track-and-hold capacitance must be farads in (0, 1e-9] (100 fF is 1e-13), got {self.hold!r}")
        if not (np.isfinite(self.ron) and self.ron > 0):
            raise InputError(f"track-and-hold switch resistance must be positive ohms, got {self.ron!r}")
        if not (np.isfinite(self.hold_time) and 0 < self.hold_time < 1):
            raise InputError(f"hold_time is the part of a period the switch holds, in (0, 1), got {self.hold_time!r}")
        if self.input_bits is not None:
            _check_bits("input DAC", self.input_bits)
        if not (np.isfinite(self.input_range) and self.input_range > 0):
            raise InputError(f"input DAC range must be a positive voltage, got {self.input_range!r}")
        L = self.latency
        if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or not 0 <= L <= MAX_LATENCY:
            raise InputError(f"converter latency must be a whole number of periods in [0, {MAX_LATENCY}], got {L!r}")

    def quantise_inputs(self, x) -> tuple:
        """(x on the input DACs' grid, how many values fell outside their range and were saturated)."""
        x = np.asarray(x, dtype=float)
        if self.input_bits is None:
            return x, 0
        lsb = 2.0 * self.input_range / 2 ** self.input_bits
        top = 2 ** (self.input_bits - 1) - 1
        codes = np.rint(x / lsb)
        return np.clip(codes, -top, top) * lsb, int((np.abs(codes) > top).sum())

    def adc(self) -> ADC:
        return ADC(bits=self.adc_bits, v_range=self.adc_range, noise=self.adc_noise, fom=self.fom)

    def dac(self, default_range: float) -> DAC:
        return DAC(bits=self.adc_bits if self.dac_bits is None else self.dac_bits,
                   i_range=default_range if self.dac_range is None else self.dac_range, fom=self.fom)

    @classmethod
    def parse(cls, text: str | None) -> "Converters":
        """From a text such as ``"bits=10 latency=1 noise=1e-4"`` (keys: the field names, and ``bits`` for both
        converters, ``range`` and ``noise`` for the ADC's); empty or None: the ideal defaults."""
        if text is not None and not isinstance(text, str):
            raise InputError(f"converters must be a text like 'bits=10 latency=1', got {text!r}")
        names = {f.name for f in fields(cls)}
        params = {}
        for item in (text or "").replace(",", " ").split():
            key, sep, value = item.partition("=")
            targets = cls.ALIASES.get(key, (key,))
            if not sep or not all(t in names for t in targets):
                raise InputError(f"converters {text!r}: {item!r} is not key=value with a key among "
                                 f"{sorted(names | set(cls.ALIASES))}")
            try:
                number = float(value)
            except ValueError:
                raise InputError(f"converters {text!r}: {key}={value!r} is not a number") from None
            integer = key in ("bits", "adc_bits", "dac_bits", "latency", "input_bits")
            if integer and number != int(number):
                raise InputError(f"converters {text!r}: {key} must be a whole number, got {value}")
            for t in targets:
                params[t] = int(number) if integer else number
        return cls(**params)

    def describe(self) -> str:
        dac = self.adc_bits if self.dac_bits is None else self.dac_bits
        noise = f", {self.adc_noise * 1e6:.3g} uV rms input noise" if self.adc_noise else ""
        inputs = f", {self.input_bits}-bit input DACs over +-{self.input_range:g} V" if self.input_bits else ""
        if self.dac_rout is not None:
            inputs += f", DAC output resistance {self.dac_rout:g} ohm"
        if self.dac_settle:
            inputs += f", DAC settling {self.dac_settle:g} s"
        if self.hold is not None:
            inputs += (f", track-and-hold {self.hold:g} F behind {self.ron:g} ohm, holding {self.hold_time:g} of each "
                       "period")
        return (f"{self.adc_bits}-bit ADC over +-{self.adc_range:g} V{noise}, {dac}-bit DAC, latency {self.latency} "
                f"period{'s' if self.latency != 1 else ''}{inputs}")
