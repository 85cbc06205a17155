"""A one-chip run's test accuracy on the chip's own free phases, beside the equilibrium's that training reports.

    python benchmarks/chip_test_accuracy.py RUN [--samples 360]

``RUN``: a run of ``--backend lava-chip`` or ``lava-chip-emu`` (e.g. ``recipes/digits-chip-emu.toml``'s). Training
reports a test accuracy from the learned conductances' exact equilibrium (native, or Lava's float models); a chip
would infer with its integer neurons: calibration, then the free phase of its schedule, in voltage LSBs. Here each
test image is played on the host emulator with the run's integer mapping and copies (a hold run: no weight moves),
and its prediction is the chip's free-phase output; prints both accuracies and how many predictions differ.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--samples", type=int, default=None, help="the first N test images (default: all)")
    args = p.parse_args(argv)

    from eqprop.backends.native import NativeBackend
    from eqprop.circuits.energy import readout
    from eqprop.learning.data import load_for
    from eqprop.learning.rundir import load_checkpoint
    from eqprop.learning.runs import load_run
    from eqprop.neuromorphic.onchip.map import IntOnchipMap
    from eqprop.neuromorphic.session import prepare_lava_import

    cfg, cls, net = load_run(args.run)
    if cfg.backend not in ("lava-chip", "lava-chip-emu"):
        sys.exit(f"{args.run} is a {cfg.backend} run; this compares a one-chip run (lava-chip or lava-chip-emu)")
    _, saved, _ = load_checkpoint(args.run, cfg)
    state = saved["backend_state"]
    if not state.get("map") or state.get("backward") is None:
        sys.exit(f"{args.run}: its checkpoint holds no integer mapping or backward copies (no epoch finished)")
    m = IntOnchipMap(**state["map"])
    backward = [np.asarray(b, dtype=np.int64) for b in state["backward"]]
    ds = load_for(cfg)
    x, labels = ds.x_test[:args.samples] * cfg.input_scale, ds.y_test[:args.samples]
    native = NativeBackend(net.copy())
    eq_pred = readout(net, native.settle(x).layers[-1])
    prepare_lava_import("the one-chip emulator")
    from eqprop.neuromorphic.onchip.network import OnchipTraining

    tiny = [1e-30] * (2 * net.n_connections)  # a hold run: the tags are never applied, the rate does not matter
    r = OnchipTraining(net.copy(), net.encode_inputs(x), np.zeros((len(x), net.n_targets)), saved["beta_abs"], tiny,
                       len(x), 20, int_map=m, hold=True, neurons="integer", backward=backward).emulate()
    chip_pred = readout(net, r["free_out"])
    eq_cls, chip_cls = eq_pred.argmax(1), chip_pred.argmax(1)
    print(f"# {args.run}: {len(x)} test images")
    print(f"test accuracy, the conductances' equilibrium (what training reports): {np.mean(eq_cls == labels):.4f}")
    print(f"test accuracy, the chip's integer free phase (emulated):               {np.mean(chip_cls == labels):.4f}")
    print(f"predictions that differ: {int(np.count_nonzero(eq_cls != chip_cls))}; largest output difference "
          f"{float(np.abs(eq_pred - chip_pred).max()):.3g} V")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
