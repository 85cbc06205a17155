"""The control word the host sends the digital periphery every period (through the ``Nudger``'s host channel).

The host plays the role of the chip's sequencer and sample loader: it says which nudge sign the next period
has, which phase's settled ADC codes to latch, when a sample's statistics are complete, when a batch ends
(emit the programming commands), and it carries the sample's input and target codes and the fixed-point
multipliers of beta and of the learning rates. It never computes a nudge or an update.

Layout (float64, every entry an exact integer):
  [sign, latch, hi, lo, emit, beta_m, beta_s, x codes (n_inputs), y codes (n_targets), (m, s) per array]
sign: nudge of the next period (0 free, +1, -1); latch: phase slot (0 free, 1 +beta, 2 -beta) whose codes
were just sampled, or -1; hi/lo: slots whose statistics difference the learner accumulates, or -1; emit:
1 on the period boundary that ends a batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD = 7


@dataclass
class Layout:
    n_inputs: int
    n_targets: int
    n_arrays: int

    @property
    def size(self) -> int:
        return HEAD + self.n_inputs + self.n_targets + 2 * self.n_arrays

    def pack(self, sign=0, latch=-1, hi=-1, lo=-1, emit=0, beta=(0, 0), x=None, y=None, rates=None) -> np.ndarray:
        w = np.zeros(self.size)
        w[:HEAD] = (sign, latch, hi, lo, emit, beta[0], beta[1])
        a = HEAD
        if x is not None:
            w[a:a + self.n_inputs] = x
        a += self.n_inputs
        if y is not None:
            w[a:a + self.n_targets] = y
        a += self.n_targets
        if rates is not None:
            w[a:] = np.asarray(rates, dtype=float).ravel()
        return w

    def unpack(self, w) -> dict:
        w = np.rint(np.asarray(w)).astype(np.int64)
        a = HEAD + self.n_inputs
        b = a + self.n_targets
        return {"sign": int(w[0]), "latch": int(w[1]), "hi": int(w[2]), "lo": int(w[3]), "emit": int(w[4]),
                "beta": (int(w[5]), int(w[6])), "x": w[HEAD:a], "y": w[a:b], "rates": w[b:].reshape(-1, 2)}


def fixed_point(value: float, bits: int = 24) -> tuple:
    """(m, s) with value ~= m / 2^s and |m| < 2^bits: a multiplier the integer controllers apply as (a*m) >> s."""
    if value == 0 or not np.isfinite(value):
        return 0, 0
    e = int(np.floor(np.log2(abs(value))))
    s = bits - 1 - e
    return int(np.rint(value * 2.0 ** s)), s


def shift_round(a, m: int, s: int):
    """round(a * m / 2^s) in integers (Python ints: no overflow), for int arrays or scalars."""
    prod = np.asarray(a, dtype=object) * m
    if s > 0:
        half = 1 << (s - 1)
        out = (prod + half) >> s
    else:
        out = prod << (-s)
    return out
