"""The one-chip run on Lava and on the host emulator, side by side: are they the same run, and how fast is each?

    python benchmarks/chip_emulator.py [--n-train 320] [--epochs 1] [--hidden 100] [--batch-size 20]

Trains ``recipes/digits-chip.toml`` (digits, integer neurons, the bit-approximate engine) for ``--epochs`` on its
first ``--n-train`` images twice, with ``--backend lava-chip`` (each epoch one Lava run) and ``--backend
lava-chip-emu`` (``neuromorphic.onchip.emulator``), each through ``eqprop train`` into a temporary folder, and
compares what each run left: every forward and bias mantissa (the checkpoint's conductances), every backward
copy (the backend's state), each epoch's training accuracy (the chip's own free-phase predictions) and its
test accuracy. Prints the wall time per training sample of each. Minutes: about 1.2 s per sample on Lava and
0.1 s on the emulator (2 cores); no other job should run beside it (Lava busy-waits).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(backend: str, out: str, args) -> float:
    cmd = [sys.executable, "-c", "import sys; from eqprop.experiments.cli import main; sys.exit(main())", "train", "--config",
           os.path.join(ROOT, "recipes", "digits-chip.toml"), "--backend", backend, "--epochs", str(args.epochs),
           "--n-train", str(args.n_train), "--n-test", str(args.n_test), "--hidden", str(args.hidden),
           "--batch-size", str(args.batch_size), "--out", out, "--no-progress"]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{backend}: eqprop train failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t


def load(out: str) -> dict:
    with np.load(os.path.join(out, "checkpoint.npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(arrays.pop("info").tobytes().decode())
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return {"arrays": arrays, "backward": info["backend_state"].get("backward"), "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=320)
    p.add_argument("--n-test", type=int, default=360)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=20)
    args = p.parse_args(argv)
    res, secs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("lava-chip-emu", "lava-chip"):
            out = os.path.join(tmp, backend)
            secs[backend] = run(backend, out, args)
            res[backend] = load(out)
    a, b = res["lava-chip"], res["lava-chip-emu"]
    differ = {k: int(np.count_nonzero(a["arrays"][k] != b["arrays"][k])) for k in a["arrays"]
              if k.startswith(("weights", "biases"))}
    if a["backward"] is None or b["backward"] is None:
        sys.exit("a run's checkpoint holds no backward copies")
    back = [int(np.count_nonzero(np.asarray(x) != np.asarray(y))) for x, y in zip(a["backward"], b["backward"])]
    n = args.n_train * args.epochs
    print(f"# digits-chip, {args.n_train} training images x {args.epochs} epoch(s), hidden {args.hidden}, "
          f"batch {args.batch_size}")
    print("| | lava-chip (Lava) | lava-chip-emu (emulator) |")
    print("|---|---|---|")
    for e, (ra, rb) in enumerate(zip(a["rows"], b["rows"]), 1):
        print(f"| epoch {e} train / test accuracy | {float(ra['train_accuracy']):.4f} / {float(ra['test_accuracy']):.4f} "
              f"| {float(rb['train_accuracy']):.4f} / {float(rb['test_accuracy']):.4f} |")
    print(f"| wall time per training sample (whole run) | {secs['lava-chip'] / n:.3f} s | {secs['lava-chip-emu'] / n:.3f} s |")
    total = sum(a["arrays"][k].size for k in differ) + sum(np.asarray(x).size for x in a["backward"])
    bad = sum(differ.values()) + sum(back)
    print(f"\nsynapses that differ: {bad} of {total} (forward and bias: {differ}; backward copies: {back})")
    same_train = all(ra["train_accuracy"] == rb["train_accuracy"] for ra, rb in zip(a["rows"], b["rows"]))
    print("training accuracy (the chip's free-phase predictions) identical in every epoch:", same_train)
    return 0 if bad == 0 and same_train else 1


if __name__ == "__main__":
    sys.exit(main())
