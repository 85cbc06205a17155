"""Why the two copies of a conductance came apart on Lava's bit-approximate engine, measured on their tags.

    python benchmarks/onchip_copies.py [--samples 96] [--hidden 100] [--taus 256 4096 65535]

One hold run (tags accumulated over every sample, never applied) of lava-onchip-int's integer rule on digits,
the network mapped as the backend maps it, per third-factor tau: Lava's own (65535, which ``Loihi3FLearningRule``
fixes), shorter ones that make its stochastic decay fire more often (the same mechanism, magnified: a third
factor Y drops a code with probability about |Y| / tau per step), and the toolkit's (``onchip.network.NO_DECAY``:
no trace moves). Prints, per
connection with two copies, how many synapses' forward and backward tags differ. The tags are the update before
it is rounded into the weights: a tag difference is what turned into the 1-LSB weight differences. Runs Lava in
this process (minutes: about 0.8 s per sample on 2 cores).
"""
from __future__ import annotations

import argparse

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=96, help="samples in the hold run (its tags saturate beyond a few batches, which can hide a difference)")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--steps", type=int, default=20, help="time steps per phase")
    p.add_argument("--taus", type=float, nargs="+", default=[256.0, 4096.0, 65535.0],
                   help="third-factor taus to run besides no decay (65535: Lava's)")
    args = p.parse_args(argv)

    from eqprop.backends.lava_onchip_int import program_network
    from eqprop.backends.native import NativeBackend
    from eqprop.learning.data import load
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig
    from eqprop.neuromorphic.onchip import network as onchip

    cfg = TrainConfig(backend="lava-onchip-int", hidden=[args.hidden], seed=0).resolve()
    ds = load("digits", seed=0)
    from eqprop.backends.lava_onchip_int import LavaOnchipIntBackend

    net = LavaOnchipIntBackend.build_network(cfg, ds.n_features, ds.n_classes)
    x = ds.x_train[:args.samples] * cfg.input_scale
    native = NativeBackend(net.copy())
    trainer = EqPropTrainer(native, cfg, None, ds.n_classes)
    y = trainer.targets(ds.y_train[:args.samples])
    beta = trainer.beta_abs
    m = program_network(net, x[:cfg.batch_size], y[:cfg.batch_size], beta)
    scales = [lr * ref * ref / trainer.loss_unit / cfg.batch_size for lr, ref in zip(trainer.lr, trainer.g_ref)]
    print(f"# digits {'-'.join(map(str, net.sizes))}, {args.samples} samples in one hold run, {args.steps} steps "
          "per phase; synapses whose forward and backward tags differ, per connection with two copies")
    print("| third factors' tau | " + " | ".join(f"connection {c}" for c in range(1, net.n_connections)) + " |")
    print("|---|" + "---|" * (net.n_connections - 1))
    rows = [(t, f"{t:g}" + (" (Lava's Loihi3FLearningRule)" if t == 65535 else "")) for t in args.taus]
    for tau, name in rows + [(onchip.NO_DECAY, "2^60 (no decay: the toolkit's)")]:
        onchip.THIRD_FACTOR_TAU = tau
        run = onchip.OnchipTraining(net.copy(), net.encode_inputs(x), y, beta, scales, args.samples, args.steps,
                                    int_map=m, seed=0, hold=True)
        tags = run.run()["held_tags"]
        counts = [int(np.count_nonzero(b != tags["forward"][c + 1].T)) for c, b in enumerate(tags["backward"])]
        print(f"| {name} | " + " | ".join(f"{n} of {b.size}" for n, b in zip(counts, tags["backward"])) + " |",
              flush=True)


if __name__ == "__main__":
    main()
