"""Energy and time per training sample and per inference of the one-chip run, from what the emulator counts.

    python benchmarks/chip_energy.py [--samples 64] [--hidden 100] [--cores 3]

One emulated epoch (``--backend lava-chip-emu``, the digits-chip recipe's network and rates) over the first
``--samples`` digits images, in one batch; the run counts what a chip would do (graded messages, synaptic ops,
neuron updates, the learning engine's synapse updates) and ``neuromorphic.loihi.energy.estimate`` prices them
with Loihi 1's published figures (Davies et al. 2018, Table 2; Intel has published none for Loihi 2) as a range.
Time: from every operation on one core to an even share of ``--cores`` cores (one per layer's arrays, say).
Static power, the per-step barrier and host I/O have no published figure and are left out (named in the output).
"""
from __future__ import annotations

import argparse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--cores", type=int, default=3)
    args = p.parse_args(argv)

    from eqprop.backends.lava_chip import LavaChipEmulatorBackend
    from eqprop.learning.data import load
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig

    cfg = TrainConfig(backend="lava-chip-emu", hidden=[args.hidden], seed=0).resolve()
    ds = load("digits", seed=0)
    net = LavaChipEmulatorBackend.build_network(cfg, ds.n_features, ds.n_classes)
    chip = LavaChipEmulatorBackend(net)
    trainer = EqPropTrainer(chip, cfg, None, ds.n_classes)
    x = ds.x_train[:args.samples] * cfg.input_scale
    y = trainer.targets(ds.y_train[:args.samples])
    scales = [lr * ref * ref / trainer.loss_unit / cfg.batch_size for lr, ref in zip(trainer.lr, trainer.g_ref)]
    chip.onchip_epoch(x, y, trainer.beta_abs, scales, len(x))
    fig = chip.chip_figures(cores=args.cores)
    print(f"# digits {'-'.join(map(str, net.sizes))} on one chip, {args.samples} samples emulated, "
          f"{chip.steps} steps per phase; {fig['inference']['figures']}")
    print("| per | time steps | messages | synaptic ops | neuron updates | synapse updates (learning) | energy (uJ) | "
          f"of it, learning | time, {args.cores} cores .. 1 core (us) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for what in ("inference", "training_sample"):
        r = fig[what]
        lo, hi = r["energy_nj"]
        t0, t1 = r["time_us"]
        print(f"| {what.replace('_', ' ')} | {r['steps']:.0f} | {r['messages']:,.0f} | {r['synops']:,.0f} | "
              f"{r['neuron_updates']:,.0f} | {r['synapse_updates']:,.0f} | {lo * 1e-3:.3g} - {hi * 1e-3:.3g} | "
              f"{r['learning_energy_nj'] * 1e-3:.3g} | {t0:.0f} - {t1:.0f} |")
    print(f"\nleft out: {fig['inference']['excluded']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
