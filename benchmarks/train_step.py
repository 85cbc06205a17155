"""Training throughput of the native backend (default the Kendall-size network 1568-100-20), and where the time goes.

    python benchmarks/train_step.py [--mnist PATH | --random] [--steps 20] [--hidden 1024 [1024]] [--batch 16 64]
                                    [--input-scale 1] [--from-run RUN] [--diode shockley]

``--from-run RUN`` starts from a native MNIST run's last checkpoint (its network, velocities, rates and
input scale; ``--hidden`` and ``--input-scale`` are then the run's): a trained network and optimiser state,
which a fresh network does not show (dead hidden nodes, decayed velocities). ``--diode shockley``: Shockley clamps
(IS 1e-7 A, as the Shockley recipes) instead of ideal diodes.

A full training step is the free phase, the centered nudged phases (+beta and -beta, warm-started from
the free state), the local statistics and the update through the programming model. Each step is timed: prints
samples per second of the median step at batch 64 and 512, of the fastest beside it, the spread (slowest step
/ median), and the share of each part over all the steps (the backend's settle is wrapped and timed; the rest
of the step is the local statistics, the update and Python), with the default threads (``circuits/threads.py``,
printed). A missing MNIST file is refused; ``--random`` asks for random inputs. Measured, never asserted.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

from eqprop.backends.native import NativeBackend
from eqprop.learning.programming import preset
from eqprop.learning.rundir import load_checkpoint, load_config
from eqprop.learning.runs import build_network, resolved
from eqprop.learning.trainer import EqPropTrainer, TrainConfig

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    p.add_argument("--random", action="store_true", help="random uniform inputs instead of MNIST images")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--hidden", type=int, nargs="+", default=[100], help="hidden layer sizes (default 100)")
    p.add_argument("--batch", type=int, nargs="+", default=[64, 512], help="batch sizes (default 64 512)")
    p.add_argument("--input-scale", type=float, default=1.0)
    p.add_argument("--from-run", help="a native MNIST run directory to start from (its last checkpoint)")
    p.add_argument("--diode", choices=("ideal", "shockley"), default="ideal",
                   help="the hidden layers' clamps (shockley: IS 1e-7 A); a --from-run run keeps its own")
    args = p.parse_args(argv)
    run = None
    if args.from_run:
        run_cfg = load_config(args.from_run)
        run = load_checkpoint(args.from_run, run_cfg)
        args.hidden, args.input_scale = list(run_cfg.hidden), run_cfg.input_scale
    if args.random:
        rng = np.random.default_rng(0)
        x_all, y_all, source = rng.uniform(0, 1, (2048, 784)), rng.integers(0, 10, 2048), "random inputs"
    elif not Path(args.mnist).is_file():
        raise SystemExit(f"train_step.py: no MNIST file at {args.mnist}; give --mnist PATH, or --random")
    else:
        z = np.load(args.mnist)
        x_all, y_all, source = z["x_train"][:512 * 4].reshape(-1, 784) / 255.0, z["y_train"][:512 * 4], "MNIST"
    x_all = x_all * args.input_scale
    sizes = "-".join(str(n) for n in [1568] + args.hidden + [20]) + (f" from {args.from_run}" if run else "")
    from eqprop.circuits import memory, threads

    diode = run_cfg.diode if run else args.diode
    print(f"# native training step, {sizes}, {diode} diodes, centered nudging, input scale {args.input_scale:g}, {source}")
    print(f"# threads: {threads.describe()}")
    print(f"# memory: {memory.keep()} (circuits/memory.py; a solve sets it on its first call)")
    print(f"# {args.steps} steps each: samples / s of the median step (of the fastest), slowest step / median")
    print("| batch | samples / s | spread | free phase | nudged phases (+beta, -beta) | statistics, update, Python |")
    print("|---|---|---|---|---|---|")
    for batch in args.batch:
        if run is None:
            cfg = resolved(TrainConfig(dataset="mnist", hidden=list(args.hidden), batch_size=batch,
                                       input_scale=args.input_scale, diode=args.diode,
                                       diode_is=1e-7 if args.diode == "shockley" else None))
            net = build_network(cfg, 784, 10)
            g_max = 2.0 * max(float(w.max()) for w in net.weights)
        else:
            cfg, (net, state, _) = resolved(load_config(args.from_run)), run
            net, g_max = net.copy(), state["g_max"]
        backend = NativeBackend(net, tol=cfg.tol)
        trainer = EqPropTrainer(backend, cfg, preset(cfg.device, g_max), 10)
        if run is not None:
            trainer.load_state({**state, "velocity": [v.copy() for v in state["velocity"]]})
        spent = defaultdict(float)
        settle = backend.settle

        def timed_settle(x, y=None, beta=0.0, init=None):
            t0 = time.perf_counter()
            try:
                return settle(x, y, beta, init)
            finally:
                spent["nudged" if beta else "free"] += time.perf_counter() - t0

        backend.settle = timed_settle
        trainer.step(x_all[:batch], y_all[:batch])  # warm up
        spent.clear()
        times = []
        for s in range(args.steps):
            i = (s * batch) % (len(x_all) - batch)
            t0 = time.perf_counter()
            trainer.step(x_all[i:i + batch], y_all[i:i + batch])
            times.append(time.perf_counter() - t0)
        total, median = sum(times), float(np.median(times))
        rest = total - spent["free"] - spent["nudged"]
        print(f"| {batch} | {batch / median:,.0f} ({batch / min(times):,.0f}) | {max(times) / median:.2f} | "
              f"{spent['free'] / total:.0%} | {spent['nudged'] / total:.0%} | {rest / total:.0%} |", flush=True)


if __name__ == "__main__":
    main()
