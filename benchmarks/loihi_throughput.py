"""Throughput of the Loihi path on a 1568-100-20 (Kendall-size) and a 128-100-20 network: samples per second
through the Lava processes (one sample after another, as on a chip: SamplePlayer, LoihiNeurons and Lava's
bit-accurate Dense, one Lava execution for all of them) and through the batched emulator, with the
bit-exact check between the two. Random inputs in [0, 1] V, ideal diodes, threshold 1e-3 V, 64 steps.

    python benchmarks/loihi_throughput.py [--lava-samples 50]
"""
import argparse
import time

import numpy as np

from eqprop.circuits import layered
from eqprop.neuromorphic import LavaSession
from eqprop.neuromorphic.loihi.emulator import emulate
from eqprop.neuromorphic.loihi.map import build_program


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lava-samples", type=int, default=50)
    ap.add_argument("--emulator-samples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=64)
    args = ap.parse_args()
    print("| network | engine | samples | seconds | samples / s | time steps per sample | bit-exact |")
    print("|---|---|---|---|---|---|---|")
    for sizes in ((1568, 100, 20), (128, 100, 20)):
        net = layered(list(sizes), diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (args.emulator_samples, sizes[0] // 2))
        prog = build_program(net, 1.0, alpha=0.5, threshold=1e-3)
        s = prog.sources_int(net.encode_inputs(x))
        t0 = time.perf_counter()
        emu = emulate(prog, s, None, args.steps, 1)
        te = time.perf_counter() - t0
        n = args.lava_samples
        with LavaSession(timeout=1800) as session:
            t0 = time.perf_counter()
            got = session.loihi(prog, s[:n], None, args.steps, 1)
            tl = time.perf_counter() - t0
        exact = all(np.array_equal(a[:, :n], b) for a, b in zip(emu["states"], got["states"]))
        name = "-".join(map(str, sizes))
        print(f"| {name} | Lava processes | {n} | {tl:.1f} | {n / tl:.2f} | {1 + args.steps} | {exact} |")
        print(f"| {name} | batched emulator | {len(s)} | {te:.1f} | {len(s) / te:.0f} | {1 + args.steps} | |")


if __name__ == "__main__":
    main()
