"""Whether two versions of the code train the same networks bit for bit: prints, for four native training
configurations, a hash of the conductances and velocities after a few steps and the held-in accuracy and loss.

    python scripts/train_hashes.py [--mnist PATH]      # run on each version (a clone at the other commit), diff

1568-100-20 at batch 64 (30 steps), at batch 300 (10 steps: split over the chunk threads) and with weight decay
(20 steps), 1568-1024-20 at batch 16 (10 steps, input scale 3); MNIST training images, the default recipe
settings otherwise. The same hashes mean the same parameters to the last bit; OpenBLAS's kernels must be the
same too (``threads.describe()``), as products round differently on different kernels.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import eqprop.circuits  # noqa: F401  (first, as the eqprop command: OpenBLAS's idle-thread spin, circuits/threads.py)
import numpy as np

DEFAULT_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist" / "mnist.npz"
CASES = [([100], 64, 0.0, 30), ([100], 300, 0.0, 10), ([1024], 16, 0.0, 10), ([100], 64, 1e-4, 20)]


def main(argv=None):
    from eqprop.backends.native import NativeBackend
    from eqprop.circuits import threads
    from eqprop.learning.programming import preset
    from eqprop.learning.runs import build_network, resolved
    from eqprop.learning.trainer import EqPropTrainer, TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", default=str(DEFAULT_MNIST), help="MNIST .npz (default: the project's shared copy)")
    args = p.parse_args(argv)
    if not Path(args.mnist).is_file():
        raise SystemExit(f"train_hashes.py: no MNIST file at {args.mnist}; give --mnist PATH (an .npz with x_train)")
    z = np.load(args.mnist)
    x_all, y_all = z["x_train"][:3000].reshape(-1, 784) / 255.0, z["y_train"][:3000]
    print(f"# {threads.describe()}")
    for hidden, batch, weight_decay, steps in CASES:
        cfg = resolved(TrainConfig(dataset="mnist", hidden=hidden, batch_size=batch, weight_decay=weight_decay,
                                   input_scale=3.0 if hidden[0] > 100 else 1.0))
        net = build_network(cfg, 784, 10)
        x = x_all * cfg.input_scale
        g_max = 2.0 * max(float(w.max()) for w in net.weights)
        trainer = EqPropTrainer(NativeBackend(net, tol=cfg.tol), cfg, preset(cfg.device, g_max), 10)
        for s in range(steps):
            i = (s * batch) % (len(x) - batch)
            trainer.step(x[i:i + batch], y_all[i:i + batch])
        h = hashlib.sha256()
        for a in net.weights + net.biases + trainer.velocity:
            h.update(np.ascontiguousarray(a).tobytes())
        ev = trainer.evaluate(x[:500], y_all[:500])
        print(f"1568-{hidden[0]}-20 batch {batch} weight decay {weight_decay:g}, {steps} steps: {h.hexdigest()[:16]} "
              f"accuracy {ev['accuracy']:.4f} loss {ev['loss']:.10f}", flush=True)


if __name__ == "__main__":
    main()
