"""The default learning-rate rule against fixed rates: digits, native backend, 5 epochs, seed 0.

Prints test accuracy per hidden size for (a) the fixed rates (10, 5), (b) the rule (10, 5) x
min(1, smallest hidden layer / 100) (the default, ``ResistiveBackend.default_lr``) and (c) only the
output connection scaled by its fan-in. Networks of two or more hidden layers have differential hidden
layers and the gain rule (the defaults). About 3 minutes on 2 cores.
"""
import tempfile
from pathlib import Path

from eqprop.backends import ResistiveBackend
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig


def accuracy(hidden, lr) -> float:
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(hidden=list(hidden), epochs=5, lr=lr)
        return train(cfg, Path(d) / "run", progress=False, log=lambda *_: None)["test_accuracy"]


def main():
    print("| hidden | fixed (10, 5) | rule (default) | output connection scaled by fan-in |")
    print("|---|---|---|---|")
    for hidden in ([8], [16], [32], [64], [100], [400], [16, 16], [100, 100], [32, 32, 32], [100, 100, 100]):
        fixed = [10.0] + [5.0] * len(hidden)
        rule = ResistiveBackend.default_lr(hidden)
        out_only = [10.0] + [5.0 * min(1.0, n / 100) for n in hidden]
        row = [accuracy(hidden, lr) for lr in (fixed, rule, out_only)]
        print(f"| {'-'.join(map(str, hidden))} | " + " | ".join(f"{a:.4f}" for a in row) + " |", flush=True)


if __name__ == "__main__":
    main()
