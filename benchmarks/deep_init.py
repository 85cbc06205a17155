"""Why small deep networks do not train with the defaults: a probe of the bias initialisation (issue 18).

Digits, native backend, default rates, 5 epochs, seed 0. For each network, test accuracy with the default
initialisation (each node's two bias conductances, to +vb and -vb, drawn independently, so a node with
a small fan-in is pushed to a rail by a random net bias current of order vb * g) and with "balanced"
bias pairs beyond the first connection (both conductances of a pair set to their mean: no net bias
current at initialisation). A probe, not the default: adopting it changes every published figure.
About 2 minutes on 2 cores.
"""
import tempfile
from pathlib import Path

import numpy as np

from eqprop.backends import ResistiveBackend
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig

_build = ResistiveBackend.build_network.__func__


def balanced(cls, cfg, n_features, n_classes):
    net = _build(cls, cfg, n_features, n_classes)
    for c in range(1, net.n_connections):
        m = net.biases[c].mean(0)
        net.biases[c] = np.stack([m, m])
    return net


def accuracy(hidden) -> float:
    with tempfile.TemporaryDirectory() as d:
        return train(TrainConfig(hidden=hidden, epochs=5), Path(d) / "run", progress=False,
                     log=lambda *_: None)["test_accuracy"]


def main():
    nets = ([16], [100], [16, 16], [100, 100], [32, 32, 32], [100, 100, 100])
    default = [accuracy(h) for h in nets]
    ResistiveBackend.build_network = classmethod(balanced)
    try:
        probe = [accuracy(h) for h in nets]
    finally:
        ResistiveBackend.build_network = classmethod(_build)
    print("| hidden | default init | balanced bias pairs after the first connection |")
    print("|---|---|---|")
    for h, a, b in zip(nets, default, probe):
        print(f"| {'-'.join(map(str, h))} | {a:.4f} | {b:.4f} |")


if __name__ == "__main__":
    main()
