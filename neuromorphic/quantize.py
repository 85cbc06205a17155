"""The float -> fixed-point mapping of the Lava fixed-point models (no Lava import: the host uses it too).

Voltages: 1 LSB = 2^-20 V in a 24-bit signed state. Synaptic conductances: an 8-bit signed mantissa per
synapse and one shared exponent per connection. Currents: 1 unit = 2^-60 A in 64 bits.
"""
from __future__ import annotations

import numpy as np

V_FRAC = 20  # voltage LSB 2^-20 V
STATE_BITS = 24
G_FRAC = 40  # node-total conductance unit 2^-40 S
I_FRAC = V_FRAC + G_FRAC  # current unit 2^-60 A
MANTISSA_BITS = 8
V_MAX = 2 ** (STATE_BITS - 1) - 1


def quantize_weights(w: np.ndarray) -> tuple:
    """(mantissas int64, exponent): w ~ mantissa * 2^exponent, |mantissa| <= 127."""
    top = float(np.abs(w).max(initial=0.0))
    if top == 0.0:
        return np.zeros(w.shape, dtype=np.int64), 0
    limit = 2 ** (MANTISSA_BITS - 1) - 1
    exponent = int(np.ceil(np.log2(top / limit)))
    return np.clip(np.round(w / 2.0**exponent), -limit, limit).astype(np.int64), exponent


def weight_error(w: np.ndarray) -> float:
    """Largest error of the 8-bit mapping, relative to the largest weight of the connection."""
    m, e = quantize_weights(w)
    top = float(np.abs(w).max(initial=0.0))
    return 0.0 if top == 0 else float(np.abs(m * 2.0**e - w).max() / top)


def to_volts_int(v) -> np.ndarray:
    return np.clip(np.round(np.asarray(v, dtype=float) * 2.0**V_FRAC), -V_MAX, V_MAX).astype(np.int64)


def rails_to_int(v_low: float, v_high: float) -> tuple:
    """The rails in voltage LSBs, rounded inward: a clamped state never lies outside the physical rails
    (rounding to nearest put 0.05 V at 0.0500001907 V, outside, and the KCL check reported inf)."""
    return int(np.ceil(v_low * 2.0**V_FRAC)), int(np.floor(v_high * 2.0**V_FRAC))


def snap_to_rails(net, layers) -> list:
    """Voltages within one LSB of a rail, put on it: the fixed-point state resolves a rail to one LSB, so
    its KCL residual is judged at the rail it stands for."""
    lsb = 2.0**-V_FRAC
    out = []
    for clamp, v in zip(net.neurons, layers):
        if clamp is not None:
            v = np.where(np.abs(v - clamp.v_high) <= lsb, clamp.v_high, v)
            v = np.where(np.abs(v - clamp.v_low) <= lsb, clamp.v_low, v)
        out.append(v)
    return out


def weight_errors(net) -> list:
    """Per connection: the largest 8-bit mapping error relative to its largest conductance."""
    return [weight_error(net.gains[c] * net.weights[c]) for c in range(net.n_connections)]
