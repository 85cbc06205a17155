"""The parameter update of a training step: SGD with momentum, through the programming model.

    v <- momentum v + g_scale g          (g: this step's gradient estimate, in the parameter's own units)
    p <- device(p, -step v)              (plain SGD for signed weights; clipped to [g_min, g_max] for an
                                          ideal or bounded device; the full device model otherwise)

For the large arrays of a wide network this is the step's costliest part after the solves: in numpy it is
five or six passes over every parameter array, each a 1568 x 1024 float64 matrix (12.8 MB) on the
1024-hidden MNIST network, which at small batches is more time than the solves. Where the device is a
plain bounded addition (``ProgrammingModel.bounded_addition``) the whole update is one compiled pass, for small
arrays too (there numpy's passes cost more than one compiled call), on one thread: numba's parallel loops'
OpenMP threads spin after each loop and slowed the solver's BLAS calls (19.8k -> 13.5k samples/s on 1568-100-20
at batch 512), and a split over the toolkit's threads loses to OpenBLAS's own spinning threads
(``circuits.threads``). Other device models and installs without numba take the numpy path,
which gives the same result (tested).
"""
from __future__ import annotations

import numpy as np

from eqprop.circuits import kernels

try:
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None

# Velocities below this are set to zero. A conductance whose gradient is exactly zero step after step (the
# column of a hidden node on a rail in every sample of both phases) has a velocity that shrinks by the
# momentum each step and reaches the subnormal floats (< 2.2e-308) after about 6,700 steps; arithmetic on
# subnormals takes the CPU's slow path, ~100x per operation. On 1568-1024-20 at batch 16 a quarter of the
# input layer's velocities were subnormal after 10 epochs and the update took most of a training step (an
# epoch 2x longer than the same steps from a fresh velocity). Flushed here, a velocity never becomes
# subnormal, and the flushed values moved no conductance: step * 1e-300 is far below any conductance's ulp.
FLUSH = 1e-300


def _fused_available() -> bool:
    return njit is not None and kernels.available()


if njit is not None:
    @njit(nogil=True, cache=True, fastmath=False, error_model="numpy", inline="always")
    def _one(p, v, g, momentum, g_scale, step, lo, hi):  # pragma: no cover - compiled
        """(new p, new v) of one parameter: momentum, the flush of a tiny velocity, the step, the clip."""
        vi = momentum * v + g_scale * g
        vi = vi if abs(vi) >= FLUSH else 0.0
        return min(max(p - step * vi, lo), hi), vi

    @njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
    def _momentum_clip(p, g, v, momentum, g_scale, step, lo, hi):  # pragma: no cover - compiled
        pf, gf, vf = p.reshape(-1), g.reshape(-1), v.reshape(-1)
        for i in range(pf.size):
            pf[i], vf[i] = _one(pf[i], vf[i], gf[i], momentum, g_scale, step, lo, hi)

    @njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
    def _pair_rows_step(p, plus, row, v, momentum, g_scale, step, lo, hi, decay, coef):  # pragma: no cover
        # feature i's + row (g = plus) and - row (g = row - plus, formed here: ``PairedRows``) together, so its
        # statistics row is read once; rows as 1-d slices, which LLVM vectorises (each entry is updated alone: the
        # order changes no number)
        n, m = plus.shape
        for i in range(n):
            pp, pm, vp, vm, g = p[i], p[n + i], v[i], v[n + i], plus[i]
            if decay:
                for j in range(m):
                    pp[j], vp[j] = _one(pp[j], vp[j], g[j] + coef * pp[j], momentum, g_scale, step, lo, hi)
                    pm[j], vm[j] = _one(pm[j], vm[j], (row[j] - g[j]) + coef * pm[j], momentum, g_scale, step, lo,
                                        hi)
            else:
                for j in range(m):
                    pp[j], vp[j] = _one(pp[j], vp[j], g[j], momentum, g_scale, step, lo, hi)
                    pm[j], vm[j] = _one(pm[j], vm[j], row[j] - g[j], momentum, g_scale, step, lo, hi)


def _bounds(device, gains):
    """(lo, hi) the fused update clips to, or (None, None) where the device model applies the step itself."""
    if device is None:
        return -np.inf, np.inf
    if gains is None and device.bounded_addition:
        return device.g_min, device.g_max
    return None, None


def sgd_step_pairs(p: np.ndarray, pairs, v: np.ndarray, momentum: float, g_scale: float, step: float, device=None,
                   gains=None, decay: float | None = None) -> bool:
    """``sgd_step`` of an input connection of +x/-x pairs whose statistics come as ``circuits.energy.PairedRows``
    (``pairs``): its - rows formed as the update reads them, never written; ``decay``: the weight decay
    coefficient the trainer adds first (g + decay p, as ``EqPropTrainer.decay_weights``), None for none. The same
    parameters and velocities bit for bit as ``pairs.full()`` through ``decay_weights`` and ``sgd_step``. Returns
    False, doing nothing, where the fused kernel does not serve (a device model that applies the step itself,
    numba missing, other arrays): the caller then takes ``pairs.full()``."""
    lo, hi = _bounds(device, gains)
    plus, row = pairs.plus, pairs.row
    if (lo is None or not _fused_available() or p.shape != pairs.shape or v.shape != p.shape
            or row.shape != (plus.shape[1],)
            or not all(a.dtype == np.float64 and a.flags.c_contiguous for a in (p, plus, row, v))):
        return False
    _pair_rows_step(p, plus, row, v, float(momentum), float(g_scale), float(step), float(lo), float(hi),
                    decay is not None, 0.0 if decay is None else float(decay))
    return True


def sgd_step(p: np.ndarray, g: np.ndarray, v: np.ndarray, momentum: float, g_scale: float, step: float,
             device=None, rng=None, gains=None) -> None:
    """One update of parameter array ``p`` in place (``v``: its velocity, updated in place; ``g`` may be
    overwritten). ``device``: a ProgrammingModel, or None for signed weights (no bounds)."""
    lo, hi = _bounds(device, gains)
    if (lo is not None and _fused_available() and p.dtype == g.dtype == v.dtype == np.float64
            and p.flags.c_contiguous and g.flags.c_contiguous and v.flags.c_contiguous):
        _momentum_clip(p, g, v, float(momentum), float(g_scale), float(step), float(lo), float(hi))
        return
    v *= momentum
    g *= g_scale
    v += g
    np.copyto(v, 0.0, where=np.abs(v) < FLUSH)
    delta = np.multiply(v, -step, out=g)
    if device is None:
        p += delta
    else:
        device.apply(p, delta, rng, gains)
