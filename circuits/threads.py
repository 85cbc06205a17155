"""One threading policy for the toolkit: threads never exceed cores.

The layered solver runs a large batch's sweeps as chunks in threads (numpy and the compiled kernels release the
GIL); each chunk's GEMMs call BLAS, which by default starts a thread per core of its own. Two chunks on two
cores, each with a two-thread BLAS, is four busy threads on two cores: the solves then take 1.5-4x longer and
vary from call to call. So the two are chosen together here:

- ``cores()``: the cores this process may use (its CPU affinity), or ``EQPROP_THREADS`` when set (the override
  for users who want another split, e.g. several runs side by side: ``EQPROP_THREADS=1``).
- ``chunks(B)``: how many threads a batch of B samples is split over: one per ``MIN_CHUNK`` samples, at most
  ``cores()``. A pass over a large array (a training step's update, the check of a wide layer's conductances)
  stays on one thread: OpenBLAS's own threads spin for a while after each multi-threaded call and take the
  second core, so inside a training step a split pass was no faster (docs/solver.md, *Threads*).
- ``run(ranges, fn)``: ``fn`` on each range, the first in the calling thread and the others in the toolkit's
  one thread pool.
- ``blas_threads(n_chunks)``: inside the chunked sweeps BLAS gets ``cores() // n_chunks`` threads (at least 1;
  never more than it had), set through threadpoolctl's controllers (the standard way to limit OpenBLAS, MKL and
  BLIS at run time) and put back after.
- ``limit_blas_spin()``: OpenBLAS's idle threads sleep after 2^22 cycles (``OPENBLAS_THREAD_TIMEOUT=22``) instead
  of 2^28. After every multi-threaded call OpenBLAS's worker threads spin for that long waiting for the next one;
  two such libraries are loaded (numpy's, and the one numba's kernels call), and a spinning worker holds a core
  that a chunk thread or the other library's worker needs (docs/solver.md, *Threads*). OpenBLAS reads the
  variable when it loads, so ``eqprop.circuits`` sets it on import, before it imports numpy, where the user has not
  set it: it applies to every OpenBLAS loaded after that (numba's always; numpy's where eqprop is imported
  first, as the ``eqprop`` command does; child processes inherit it). Results do not change: only idle threads
  sleep sooner.

Every native solve goes through it, so the CLI, the Python API, pool workers and Ray actors follow it (Lava's
child processes run their own models and are not limited here); ``describe()`` states the settings
(benchmarks print it).
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from .settings import setting

MIN_CHUNK = 128  # batch rows per thread below which a thread costs more than it saves
ENV = "EQPROP_THREADS"
SPIN_ENV = "OPENBLAS_THREAD_TIMEOUT"  # OpenBLAS's own variable: its idle threads spin 2^N cycles, then sleep
SPIN = 22  # OpenBLAS's default is 28 (about 0.1 s); 22 against 24 and 20, interleaved: docs/solver.md, *Threads*
_spin = None  # what limit_blas_spin() found: (who set the variable, whether numpy had loaded OpenBLAS before)

_controller = None
_pool = None


def cores() -> int:
    """Threads the toolkit may keep busy: ``EQPROP_THREADS`` if set, else the cores of this process's affinity."""
    value = setting(ENV).strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"{ENV}={value!r}: give a whole number of threads >= 1, or unset it") from None
        if n < 1:
            raise ValueError(f"{ENV}={value!r}: give a whole number of threads >= 1, or unset it")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def chunks(batch: int) -> int:
    """Threads a batch's sweeps are split over."""
    if batch < 2 * MIN_CHUNK:  # one thread whatever the cores (and no system call to count them)
        return 1
    return max(1, min(cores(), batch // MIN_CHUNK))


def ranges(n: int, parts: int) -> list:
    """``parts`` (lo, hi) ranges covering 0..n, as even as whole items allow (integer arithmetic)."""
    if parts <= 1 or n <= 1:
        return [(0, n)]
    parts = min(parts, n)
    edges = [n * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run(bounds: list, fn) -> list:
    """[fn(b) for b in bounds]: the first in this thread, the others in the pool, with BLAS limited to its share of
    the cores (``blas_threads``). This thread works rather than waits: a round trip to a pool thread costs about
    0.1 ms on the 2-core machines (``benchmarks/threads_ab.py``). Every range has finished when this returns or raises (they write into the caller's
    arrays)."""
    if len(bounds) == 1:
        return [fn(bounds[0])]
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="eqprop")
    with blas_threads(len(bounds)):
        rest = [_pool.submit(fn, b) for b in bounds[1:]]
        try:
            first = fn(bounds[0])
        finally:
            wait(rest)
        return [first] + [f.result() for f in rest]


def limit_blas_spin() -> None:
    """Puts ``OPENBLAS_THREAD_TIMEOUT=22`` in the environment where it is not set (the user's value stands), for
    every OpenBLAS that loads after this call; notes whether numpy's had already loaded (``describe`` says so).
    Called by ``eqprop.circuits`` on import, before numpy; once per process."""
    global _spin
    if _spin is not None:
        return
    loaded = "numpy" in sys.modules
    if setting(SPIN_ENV).strip():
        _spin = ("user", loaded)
    else:
        os.environ[SPIN_ENV] = str(SPIN)
        _spin = ("eqprop", loaded)


def spin() -> str:
    """The spin setting in words."""
    if _spin is None:
        return f"{SPIN_ENV} not set by eqprop (eqprop.circuits not imported)"
    who, loaded = _spin
    text = f"{SPIN_ENV}={setting(SPIN_ENV)} ({'yours' if who == 'user' else 'set by eqprop on import'})"
    if loaded:
        text += ("; numpy was imported before eqprop, so its OpenBLAS keeps the value it loaded with (import eqprop "
                 f"first, or set {SPIN_ENV}={SPIN} before starting Python)")
    return text


def _blas():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency; without it BLAS keeps its threads
            _controller = False
    return _controller


@contextmanager
def blas_threads(n_chunks: int):
    """BLAS limited to ``cores() // n_chunks`` threads while ``n_chunks`` threads call it (a library already held to
    fewer keeps its limit). Each library's own get and set calls: cheaper than ``controller.limit``, which reads
    every library's full description (``benchmarks/threads_ab.py`` times both), and a large batch's solve enters
    twice."""
    controller = _blas()
    if n_chunks <= 1 or not controller:
        yield
        return
    want = max(1, cores() // n_chunks)
    changed = []
    for lib in controller.lib_controllers:
        if lib.user_api == "blas":
            had = lib.get_num_threads()
            if had is not None and had > want:
                lib.set_num_threads(want)
                changed.append((lib, had))
    try:
        yield
    finally:
        for lib, had in changed:
            lib.set_num_threads(had)


@contextmanager
def single_blas_thread():
    """BLAS on one thread: for loops of small decompositions (a hundred nodes), where threads only contend."""
    controller = _blas()
    if not controller:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def blas_libraries() -> list:
    """The BLAS libraries loaded, each as {library, version, kernels, threads}. ``kernels``: the CPU kernels the
    library chose (OpenBLAS: its core type, e.g. Haswell or SkylakeX): products round differently on different
    kernels, so a run's figures repeat bit for bit only on the same ones (OpenBLAS takes ``OPENBLAS_CORETYPE``
    to choose them). Empty without threadpoolctl."""
    controller = _blas()
    if not controller:
        return []
    return [{"library": i.get("internal_api"), "version": i.get("version"), "kernels": i.get("architecture"),
             "threads": i.get("num_threads")} for i in controller.info() if i["user_api"] == "blas"]


def describe() -> str:
    """The settings in one line: cores, the split rule, the BLAS libraries, their kernels and current threads."""
    controller = _blas()
    libs = ", ".join(f"{b['library']} ({b['kernels'] or 'kernels not reported'}) {b['threads']} threads"
                     for b in blas_libraries()) if controller else "threadpoolctl missing"
    src = f"{ENV}={setting(ENV)}" if setting(ENV).strip() else "affinity"
    return (f"{cores()} cores ({src}); a batch is split over one thread per {MIN_CHUNK} samples, at most "
            f"{cores()}, and BLAS gets cores / threads inside the split; BLAS: {libs or 'none found'}; idle BLAS "
            f"threads: {spin()}")
