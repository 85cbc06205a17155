"""The fault figures: training runs SIGKILLed at random points, and ngspice workers killed mid-batch.

    python benchmarks/faults.py [--trials 10] [--batches 10] [--seed 0]

1. ``--trials`` runs of `eqprop train` (digits, 32 hidden, 10 epochs; ideal and memristor devices in
   turn), each killed 3 to 6 times at random moments (before it writes, inside an epoch, after the
   last checkpoint) and resumed with `eqprop train --resume`, as tests/fault_injection.py does. Each
   must end with the checkpoint and metrics of an uninterrupted run, bit for bit.
2. ``--batches`` batches of 160 samples on the local ngspice pool (2 workers), each with one worker
   SIGKILLed at a random moment: samples lost, pools restarted, results equal to an unkilled batch.

tests/test_faults.py and tests/test_netlists.py assert the same properties on fixed schedules; this
script reports them over random ones. Measured, not asserted.
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fault_injection import assert_same_run, final_state, train_with_kills  # noqa: E402

ARGS = "--hidden 32 --epochs 10 --n-train 1400 --n-test 100 --batch-size 20 --seed 3".split()


def random_triggers(rng) -> list:
    """3 to 6 kills: each waits for 0, 1 or 2 new epochs, or for the end, then a random delay."""
    triggers = []
    for _ in range(rng.integers(3, 7)):
        wait = rng.choice(["0", "1", "2", "end"], p=[0.3, 0.3, 0.2, 0.2])
        delay = rng.uniform(0.0, 1.2) if wait == "0" else rng.uniform(0.0, 0.3)
        triggers.append(("end" if wait == "end" else int(wait), float(delay)))
    return triggers


def where(state: str, epochs: int = 10) -> str:
    if state == "nothing":
        return "before anything was written"
    if state == "config only":
        return "in epoch 1"
    if state == f"epoch {epochs} checkpointed":
        return "after the last checkpoint"
    return "mid-run, after a checkpoint" if "checkpointed" in state else state


def training_trials(n: int, rng, tmp: Path) -> None:
    landed, same, stray = collections.Counter(), 0, 0
    for device in ("ideal", "memristor"):
        train_with_kills(ARGS + ["--device", device], tmp / f"whole-{device}", [])
    for trial in range(n):
        device = ("ideal", "memristor")[trial % 2]
        run = tmp / f"trial{trial}"
        t0 = time.perf_counter()
        kills = train_with_kills(ARGS + ["--device", device], run, random_triggers(rng))
        try:
            assert_same_run(final_state(tmp / f"whole-{device}"), final_state(run))
            ok = True
        except AssertionError as exc:
            ok = False
            print(f"  trial {trial}: DIFFERS from the uninterrupted run: {str(exc)[:200]}")
        same += ok
        stray += len(list(run.glob("*.tmp")))
        landed.update(where(k.state) for k in kills)
        print(f"| {trial} | {device} | {len(kills)} | {', '.join(k.state for k in kills)} | "
              f"{'yes' if ok else 'NO'} | {time.perf_counter() - t0:.1f} |", flush=True)
    print(f"\ntraining runs: {n} trials, {sum(landed.values())} SIGKILLs landed "
          f"({', '.join(f'{v} {k}' for k, v in sorted(landed.items()))}); {same}/{n} resumed runs equal the "
          f"uninterrupted run bit for bit; stray temp files left: {stray}")


def pool_trials(n: int, rng) -> None:
    from eqprop.circuits import ShockleyDiode, layered
    from eqprop.netlists import SpicePool

    net = layered([16, 8, 4], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), gain=4.0, seed=1)
    x = rng.uniform(0, 1, (160, net.n_features))
    lost = equal = 0
    with SpicePool(net, workers=2, chunk=4) as pool:
        ref = pool.equilibrium(x).voltages
        for b in range(n):
            before = pool.restarts
            delay = rng.uniform(0.0, 0.4)

            def kill():
                time.sleep(delay)
                pids = pool.worker_pids()
                if pids:
                    os.kill(pids[int(rng.integers(len(pids)))], signal.SIGKILL)
            t = threading.Thread(target=kill)
            t.start()
            t0 = time.perf_counter()
            try:
                volts = pool.equilibrium(x).voltages
                equal += bool(np.array_equal(volts, ref))
                status = "equal" if np.array_equal(volts, ref) else "DIFFERENT"
            except Exception as exc:  # reported, with the samples: not silent
                lost += 1
                status = f"reported: {str(exc)[:80]}"
            took = time.perf_counter() - t0
            t.join()
            landed = "in the batch" if delay < took else "after it (idle)"
            if delay >= took:
                time.sleep(0.2)  # as between training steps: the pool notices the death before the next batch
            print(f"| {b} | {delay:.2f} {landed} | {pool.restarts - before} | {status} | {took:.2f} |", flush=True)
    print(f"\nngspice pool: {n} batches of {len(x)} samples with a worker SIGKILLed; {equal} complete and equal to "
          f"the unkilled batch, {lost} reported as failed, 0 silently short (each result has {len(x)} rows)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| trial | device | kills | where they landed | bit for bit | s |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        training_trials(args.trials, rng, Path(tmp))
    print("\n| batch | kill after s | pools replaced (an idle death counts in the next batch) | result | s |\n|---|---|---|---|---|")
    pool_trials(args.batches, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
