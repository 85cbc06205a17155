"""Freed memory stays with the process, so a solve's and a training step's temporaries are not faulted in again.

glibc's malloc serves a request above its mmap threshold (128 KB at start, raised as large blocks are freed) with
fresh pages from the kernel, and gives the top of its heap back to the kernel once more than its trim threshold
is free there. A training step makes and frees arrays of 0.1-2 MB (a batch's layers and products, the statistics):
unless something had raised the threshold before, each step's arrays came on fresh pages, one minor page fault per
4 KB touched: on 1568-100-20 at batch 512, 1,561 faults a step, which made the steps 1.3-1.6 times slower
(``python benchmarks/page_faults.py --batch 512 --steps 300``). ``keep()`` fixes the mmap threshold at glibc's largest
(32 MB) and the trim threshold at 1 GiB, once per process, so freed blocks are reused whatever the process did
before. The process then holds the memory of its largest step until it exits, as caching allocators do. Results
do not change: only where arrays live.

The solver calls ``keep()`` on its first solve, so the CLI, the Python API, pool workers and Ray actors all get
it. ``EQPROP_MALLOC=system`` (read at that first call) leaves glibc's defaults. Where the C library has no
``mallopt`` (macOS, musl) nothing changes.
"""
from __future__ import annotations

import ctypes
import os

ENV = "EQPROP_MALLOC"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): larger blocks stay mmapped
TRIM_THRESHOLD = 1 << 30

_state = None  # after the first keep(): what it did, for describe()


def keep() -> str:
    """Sets the thresholds once per process (later calls return at once); returns ``describe()``."""
    global _state
    if _state is None:
        _state = _apply()
    return _state


def _apply() -> str:
    if os.environ.get(ENV, "").strip().lower() == "system":
        return f"the C library's malloc defaults ({ENV}=system)"
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: the C library Python runs on
    except (OSError, AttributeError):
        return "the C library's malloc defaults (no mallopt here)"
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return "the C library's malloc defaults (mallopt refused the thresholds)"
    return (f"freed memory kept (glibc mmap threshold {MMAP_THRESHOLD >> 20} MB, trim threshold "
            f"{TRIM_THRESHOLD >> 30} GiB)")


def describe() -> str:
    """What this process's malloc does with freed memory (after the first solve; before it, 'not set yet')."""
    return _state or "not set yet (the first solve sets it)"
