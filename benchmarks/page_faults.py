"""Minor page faults and time of training steps with the memory policy and with glibc's defaults.

    python benchmarks/page_faults.py [--mnist PATH | --random] [--steps 200] [--batch 64 512] [--hidden 100]

Each configuration runs in a fresh process, twice: with the toolkit's memory policy (``circuits/memory.py``, set
by the first solve) and with ``EQPROP_MALLOC=system`` (glibc's defaults). A process trains 1568-H-20 on the first
2,048 MNIST training images (or random inputs) and counts the minor page faults (``getrusage``) of ``--steps``
steps after one warm-up step; prints faults per step and the median step's samples per second (the fastest in
brackets).

glibc raises its mmap threshold whenever a large block it had mapped is freed, so whether the defaults fault
depends on what the process did before: here nothing large was freed before the steps (as in a script that
builds a small data set); in `eqprop train` on MNIST, loading the data had raised it and the defaults faulted no
more than the policy (docs/solver.md). Measured, never asserted.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"

CHILD = textwrap.dedent("""
    import resource, sys, time
    import eqprop.circuits  # first, as the eqprop command: OpenBLAS's idle-thread spin (circuits/threads.py)
    import numpy as np
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits import memory
    from eqprop.learning.programming import preset
    from eqprop.learning.runs import build_network, resolved
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig

    path, batch, hidden, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if path == "random":
        rng = np.random.default_rng(0)
        x, y = rng.uniform(0, 1, (2048, 784)), rng.integers(0, 10, 2048)
    else:
        z = np.load(path)
        x, y = z["x_train"][:2048].reshape(-1, 784) / 255.0, z["y_train"][:2048]
    cfg = resolved(TrainConfig(dataset="mnist", hidden=[hidden], batch_size=batch))
    net = build_network(cfg, 784, 10)
    trainer = EqPropTrainer(NativeBackend(net, tol=cfg.tol), cfg, preset(cfg.device, 2 * float(net.weights[0].max())),
                            10)
    trainer.step(x[:batch], y[:batch])
    times, before = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for s in range(steps):
        i = (s * batch) % (len(x) - batch)
        t0 = time.perf_counter()
        trainer.step(x[i:i + batch], y[i:i + batch])
        times.append(time.perf_counter() - t0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps
    print(f"{faults:.0f} {batch / np.median(times):.0f} {batch / min(times):.0f} {memory.describe()}")
""")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, nargs="+", default=[64, 512])
    p.add_argument("--hidden", type=int, default=100)
    args = p.parse_args(argv)
    if not args.random and not Path(args.mnist).is_file():
        raise SystemExit(f"page_faults.py: no MNIST file at {args.mnist}; give --mnist PATH, or --random")
    source = "random" if args.random else str(args.mnist)
    print(f"# 1568-{args.hidden}-20, {args.steps} training steps after one, a fresh process each; "
          f"{'random inputs' if args.random else 'MNIST'}")
    print("| batch | malloc | minor faults / step | samples / s (fastest) |")
    print("|---|---|---|---|")
    for batch in args.batch:
        for label, env in (("policy", {}), ("system", {"EQPROP_MALLOC": "system"})):
            done = subprocess.run([sys.executable, "-c", CHILD, source, str(batch), str(args.hidden), str(args.steps)],
                                  capture_output=True, text=True,
                                  env={**{k: v for k, v in os.environ.items() if k != "EQPROP_MALLOC"}, **env})
            if done.returncode:
                raise SystemExit(f"page_faults.py: the {label} run failed:\n{done.stderr[-2000:]}")
            faults, median, best, state = done.stdout.split(" ", 3)
            print(f"| {batch} | {state.strip()} | {faults} | {int(median):,} ({int(best):,}) |", flush=True)


if __name__ == "__main__":
    main()
