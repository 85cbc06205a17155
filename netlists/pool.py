"""Batches of ngspice operating points on a local process pool: one ngspice per worker process.

The shared library is not re-entrant, so parallelism means processes. Workers are started with
'spawn' (a forked copy of a process that already holds ngspice would share its state). Each task
carries the network and a version number; a worker rebuilds its circuit only when the version
changes, i.e. after a training step. A worker that dies is replaced and its chunk retried once;
if it dies again the batch fails with an error naming the samples, so no sample is silently lost.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from .ngspice import NgspiceCircuit, SpiceError, make_equilibrium
from .options import SpiceOptions

_WORKER = {"version": None, "circuit": None}


def _settle_chunk(version, network, settings, x, y, beta, first):
    """Runs in a worker: (voltages, rescues, power) of samples first .. first + len(x)."""
    if _WORKER["version"] != version:
        if _WORKER["circuit"] is None:
            _WORKER["circuit"] = NgspiceCircuit(network, **settings)
        else:
            _WORKER["circuit"].load(network)
        _WORKER["version"] = version
    try:
        return _WORKER["circuit"].operating_points(x, y, beta)
    except SpiceError as exc:
        sample = None if exc.sample is None else exc.sample + first
        raise SpiceError(str(exc).replace(f"sample {exc.sample}", f"sample {sample}"), sample, exc.analysis,
                         exc.ngspice_message) from None


class SpicePool:
    """Settles batches with ngspice, split over ``workers`` processes (1: in this process, no pool)."""

    def __init__(self, network, workers: int | None = None, options: SpiceOptions | None = None,
                 ideal_diode=None, nudge: str = "current", chunk: int = 64, progress: bool = False):
        self.settings = {"options": options or SpiceOptions(), "ideal_diode": ideal_diode, "nudge": nudge}
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self.chunk = max(1, int(chunk))
        self.progress = progress
        self.local = NgspiceCircuit(network, **self.settings)  # validates now, and serves workers=1
        self.network = network
        self.version = 0
        self._executor = None

    def load(self, network) -> None:
        """New conductances (or a new network): workers reload before their next chunk."""
        self.network = network
        self.local.load(network)
        self.version += 1

    def _pool(self):
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to clean
            pass

    def equilibrium(self, x, y=None, beta: float = 0.0):
        x = self.network.check_inputs(x)
        if y is not None:
            y = self.network.check_targets(y, x.shape[0])
        if self.workers == 1 or x.shape[0] <= 1:
            return self.local.equilibrium(x, y, beta)
        volts, rescues, power = self._parallel(x, y, beta)
        return make_equilibrium(self.network, self.local._template, x, y, beta, volts, rescues, power)

    def _parallel(self, x, y, beta):
        B = x.shape[0]
        size = min(self.chunk, -(-B // self.workers))
        starts = list(range(0, B, size))
        results = {}
        for attempt in range(2):
            todo = [s for s in starts if s not in results]
            if not todo:
                break
            pool = self._pool()
            futures = {s: pool.submit(_settle_chunk, self.version, self.network, self.settings, x[s:s + size],
                                      None if y is None else y[s:s + size], beta, s) for s in todo}
            bar = _bar(len(futures), self.progress and B >= 256)
            try:
                for s, fut in futures.items():
                    results[s] = fut.result()
                    bar.update(1)
            except BrokenProcessPool:
                self._executor = None  # a worker died (killed, out of memory): new pool, retry what is missing
                if attempt == 1:
                    lost = [s for s in starts if s not in results]
                    raise SpiceError(f"ngspice worker processes died twice; samples {lost[0]}.. "
                                     f"(chunks starting at {lost}) have no result", sample=lost[0],
                                     analysis="op") from None
            finally:
                bar.close()
        volts = np.concatenate([results[s][0] for s in starts])
        rescues = np.concatenate([results[s][1] for s in starts])
        power = np.concatenate([results[s][2] for s in starts])
        return volts, rescues, power


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
