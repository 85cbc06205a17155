"""The converters between the analog core and the digital periphery: an N-bit ADC and an N-bit current DAC.

ADC: samples a node voltage at a period boundary (sample-and-hold), adds optional Gaussian input-referred
noise, and rounds to the nearest of 2^bits codes spanning [-v_range, +v_range]; codes saturate at the
ends. DAC: turns a signed integer code into a current of code * lsb, saturating at 2^(bits-1) - 1 codes.
Both are mid-tread and signed, so a code of 0 is exactly 0 V / 0 A. With noise 0 the error of one
conversion is at most half an LSB (inside the range), which is what ``cosim.bounds`` propagates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqprop.circuits.errors import InputError


def _check_bits(kind: str, bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 32:
        raise InputError(f"{kind} bits must be an integer in [2, 32], got {bits!r}")
    return int(bits)


@dataclass(frozen=True)
class ADC:
    bits: int = 24
    v_range: float = 0.25  # V: codes span [-v_range, +v_range]
    noise: float = 0.0  # V rms, input-referred

    def __post_init__(self):
        _check_bits("ADC", self.bits)
        if not (np.isfinite(self.v_range) and self.v_range > 0):
            raise InputError(f"ADC range must be a positive voltage, got {self.v_range!r}")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise InputError(f"ADC noise must be >= 0 V rms, got {self.noise!r}")

    @property
    def lsb(self) -> float:
        return 2.0 * self.v_range / 2 ** self.bits

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

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

    def __post_init__(self):
        _check_bits("DAC", self.bits)
        if not (np.isfinite(self.i_range) and self.i_range > 0):
            raise InputError(f"DAC range must be a positive current, got {self.i_range!r}")

    @property
    def lsb(self) -> float:
        return 2.0 * self.i_range / 2 ** self.bits

    @property
    def max_code(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def amps(self, codes) -> np.ndarray:
        return np.clip(np.asarray(codes, dtype=np.int64), -self.max_code, self.max_code) * self.lsb
