"""Batches of ngspice operating points on a local process pool: one ngspice per worker process.

The shared library is not re-entrant, so parallelism means processes. Workers are started with
'spawn' (a forked copy of a process that already holds ngspice would share its state). Each task
carries the network and a version number; a worker rebuilds its circuit only when the version
changes, i.e. after a training step. A worker that dies is replaced and its chunk retried once;
if it dies again the batch fails with an error naming the samples, so no sample is silently lost.

ngspice does not give back the memory of a circuit it unloads (we measured about 16 MB per load of
a 128-100-20 batch netlist), so workers report their resident memory and the pool replaces them
all once one passes ``memory_limit_mb``. That is also why even ``workers=1`` runs in a worker
process: only a process that ends returns ngspice's memory. A worker whose parent dies exits.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from eqprop.circuits.resource import Resource

from .ngspice import DEADLINE_S, NgspiceCircuit, SpiceError, make_equilibrium
from .options import SpiceOptions

_WORKER = {"version": None, "circuit": None}
DEATH_GRACE_S = 5.0


def _resident_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):  # not Linux: no recycling by memory
        return 0.0


def _init_worker(parent: int) -> None:
    """Exit when the parent process is gone (killed), instead of living on as an orphan."""
    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def settle_chunk(state: dict, version, network, settings, x, y, beta, first, deadline=None):
    """(voltages, rescues, power, resident MB) of samples first .. first + len(x), on the ngspice held in
    ``state`` (a worker's or an actor's), built or reloaded only when the network's version changes; ``deadline``:
    seconds each of its analyses may run (None: no limit)."""
    if state["version"] != version:
        if state["circuit"] is None:
            state["circuit"] = NgspiceCircuit(network, **settings)
        else:
            state["circuit"].load(network)
        state["version"] = version
    state["circuit"].deadline = deadline  # halts an analysis that runs past it (SpiceError), in this worker
    try:
        return state["circuit"].operating_points(x, y, beta) + (_resident_mb(),)
    except SpiceError as exc:  # sample numbers of the whole batch, not of the chunk
        sample = None if exc.sample is None else exc.sample + first
        raise SpiceError(str(exc).replace(f"sample {exc.sample}", f"sample {sample}"), sample, exc.analysis,
                         exc.ngspice_message) from None


def _settle_chunk(version, network, settings, x, y, beta, first, deadline):
    """Runs in a worker process."""
    return settle_chunk(_WORKER, version, network, settings, x, y, beta, first, deadline)


class ChunkedEquilibrium:
    """``equilibrium`` for a pool that settles a batch in chunks (``_settle_all``): checks, then wraps."""

    closed = False

    def equilibrium(self, x, y=None, beta: float = 0.0):
        if self.closed:
            raise SpiceError(f"this {type(self).__name__} was closed; make a new one to settle more batches")
        x = self.network.check_inputs(x)
        if y is not None:
            y = self.network.check_targets(y, x.shape[0])
        volts, rescues, power = self._settle_all(x, y, beta)
        return make_equilibrium(self.network, self.local.free_nodes, self.local.readout, x, y, beta, volts, rescues,
                                power)

    def _settle_all(self, x, y, beta):
        """The one chunk scheduler of the local and the Ray pools: chunks spread over the workers, the chunks
        of workers that died retried once on fresh ones (finished chunks are kept), a loss reported with its
        samples, and workers recycled when ngspice's memory passes ``memory_limit_mb``."""
        B = x.shape[0]
        size = min(self.chunk, -(-B // self.workers))
        starts = list(range(0, B, size))
        results = {}
        for attempt in range(2):
            todo = [s for s in starts if s not in results]
            if not todo:
                break
            self._run_chunks(todo, size, x, y, beta, results)
            if attempt == 1 and len(results) < len(starts):
                lost = [s for s in starts if s not in results]
                raise SpiceError(f"{self.LOST}; samples {lost[0]}.. (chunks starting at {lost}) have no result",
                                 sample=lost[0], analysis="op")
        if max(results[s][3] for s in starts) > self.memory_limit_mb:
            self._shutdown()  # fresh workers (and a fresh ngspice) for the next batch
            self.recycled += 1
        return tuple(np.concatenate([results[s][i] for s in starts]) for i in range(3))


def check_deadline(deadline):
    """A pool's per-analysis deadline: None (no limit) or positive finite seconds."""
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not (0 < deadline < float("inf")):
        raise SpiceError(f"deadline must be positive seconds per ngspice analysis (or None for no limit), got "
                         f"{deadline!r}")
    return float(deadline)


def worker_count(workers) -> int:
    """``workers`` checked (None: up to 2, one per core)."""
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpiceError(f"workers must be an integer >= 1 (processes running ngspice), got {workers!r}")
    return workers


class SpicePool(ChunkedEquilibrium, Resource):
    """Settles batches with ngspice, split over ``workers`` processes (recycled when ngspice's memory grows)."""

    def __init__(self, network, workers: int | None = None, options: SpiceOptions | None = None,
                 ideal_diode=None, nudge: str = "current", chunk: int = 64, progress: bool = False,
                 memory_limit_mb: float = 2000.0, deadline: float | None = DEADLINE_S):
        self.settings = {"options": options or SpiceOptions(), "ideal_diode": ideal_diode, "nudge": nudge}
        self.workers = worker_count(workers)
        self.deadline = check_deadline(deadline)  # seconds each analysis may run in a worker (None: no limit)
        self.chunk = max(1, int(chunk))
        self.progress = progress
        self.memory_limit_mb = memory_limit_mb
        self.recycled = 0  # pools replaced because ngspice's memory grew
        self.restarts = 0  # pools replaced because a worker died
        self.local = NgspiceCircuit(network, **self.settings)  # validates the network now
        self.network = network
        self.version = 0
        self._executor = None

    def load(self, network) -> None:
        """New conductances (or a new network): workers reload before their next chunk."""
        self.network = network
        self.local.load(network)
        self.version += 1

    def _pool(self):
        if self._executor is not None and not self._healthy():
            self._discard_broken_pool()  # a worker died between batches: not a failure of the batch to come
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                                 initargs=(os.getpid(),))
        return self._executor

    def _healthy(self) -> bool:
        """No worker has died (the executor marks itself broken a moment after one does; this sees it at once)."""
        workers = list((getattr(self._executor, "_processes", None) or {}).values())
        return not getattr(self._executor, "_broken", False) and all(p.is_alive() for p in workers)

    def worker_pids(self) -> list:
        """Process ids of the live workers (none before the first batch)."""
        return [] if self._executor is None else list(getattr(self._executor, "_processes", None) or {})

    def _discard_broken_pool(self, count: bool = True) -> None:
        executor, self._executor = self._executor, None
        self.restarts += count
        if executor is not None:
            workers = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for proc in workers:  # a pool wedged by a death mid-submit never stops its workers itself
                if proc.is_alive():
                    proc.kill()

    def close(self) -> None:
        """Stops the workers; the pool cannot be used afterwards."""
        self._shutdown()
        self.closed = True

    def _shutdown(self) -> None:
        """Stops the workers; the next batch starts fresh ones."""
        if self._executor is not None:
            if self._healthy():
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
            else:  # waiting on a pool with a dead worker can block
                self._discard_broken_pool(count=False)

    def _collect(self, futures, results, bar) -> None:
        """Waits for every chunk, watching the workers. A worker killed at an unlucky moment can leave the
        executor waiting instead of broken (one such hang showed in benchmarks/faults.py on Python 3.10), so
        a death it has not flagged within ``DEATH_GRACE_S`` counts as a broken pool, not a wait for ever."""
        pending, dead_since = set(futures.values()), None
        chunk_of = {fut: s for s, fut in futures.items()}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for fut in done:
                results[chunk_of[fut]] = fut.result()  # raises BrokenProcessPool once the executor knows
                bar.update(1)
            if pending and not self._healthy():
                dead_since = dead_since or time.monotonic()
                if time.monotonic() - dead_since > DEATH_GRACE_S:
                    raise BrokenProcessPool("a worker died and the pool did not recover")

    LOST = "ngspice worker processes died twice (killed, or out of memory: see dmesg)"

    def _run_chunks(self, todo, size, x, y, beta, results) -> None:
        bar = _bar(len(todo), self.progress and x.shape[0] >= 256)
        futures = {}
        try:  # submit too: a worker killed while idle breaks the pool before this batch is sent
            pool = self._pool()
            futures = {s: pool.submit(_settle_chunk, self.version, self.network, self.settings,
                                      x[s:s + size], None if y is None else y[s:s + size], beta, s, self.deadline)
                       for s in todo}
            self._collect(futures, results, bar)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): keep the chunks that finished; the rest go to a new pool.
            for s, fut in futures.items():
                if s not in results and fut.done() and not fut.cancelled() and fut.exception() is None:
                    results[s] = fut.result()
            self._discard_broken_pool()
        finally:
            bar.close()


def _bar(total, enabled):
    if enabled:
        from tqdm import tqdm
        return tqdm(total=total, desc="ngspice", leave=False)

    class _Silent:
        def update(self, n):
            pass

        def close(self):
            pass
    return _Silent()
