"""Why small deep networks do not train with the defaults: a probe of the bias initialisation (issue 18).

Digits, native backend, default rates, 5 epochs, seed 0. For each network, test accuracy with the default
initialisation (each node's two bias conductances, to +vb and -vb, drawn independently, so a node with
a small fan-in is pushed to a rail by a random net bias current of order vb * g) and with "balanced"
bias pairs beyond the first connection (both conductances of a pair set to their mean: no net bias
current at initialisation). A probe, not the default: adopting it changes every published figure.
About 2 minutes on 2 cores.

``--rails`` prints instead, per hidden layer of untrained networks, the common-mode gain a * G_forward / S
(a node's voltage follows its forward neighbours' mean, amplified by a, through the fraction of its
conductance that connects to them) and the share of digits test samples' nodes on a rail, at
initialisation and after 15 training batches with the default rates: about a minute.

``--gains`` prints the test accuracy (digits, 5 epochs, default rates) of differential networks with the gain
sqrt(c n) between hidden layers (n: the driving layer's nodes; 4 into the outputs) for c = 2, 4, 8, 16: the
measurements behind the rule 4 sqrt(n) (c = 16). About 4 minutes.
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
        return train(TrainConfig(hidden=hidden, epochs=5, hidden_pairs=False), Path(d) / "run", progress=False,
                     log=lambda *_: None)["test_accuracy"]


def rails_table():
    from eqprop.circuits.energy import node_conductance
    from eqprop.circuits import solve
    from eqprop.learning.data import load
    from eqprop.learning.runs import make_backend, preset, resolved
    from eqprop.learning.trainer import EqPropTrainer

    ds = load("digits", None, seed=0)
    x = ds.x_test
    print("| hidden | gain | common-mode gain per hidden layer (after the first) | nodes on a rail per hidden layer "
          "| after 15 batches |")
    print("|---|---|---|---|---|")
    for hidden in ([16, 16], [32, 32, 32], [100, 100, 100]):
        for gain in (4.0, 2.0, 1.0, None):  # None: differential hidden layers, default gains
            cfg = resolved(TrainConfig(hidden=hidden, gain=gain, hidden_pairs=gain is None).validate())
            net = ResistiveBackend.build_network(cfg, ds.n_features, ds.n_classes)
            S = node_conductance(net)
            # common mode through connection c: a (G+ - G-) summed over the driving nodes, over S
            cm = [float(np.mean(net.gains[c] * net.signed_weights(c).sum(0) / S[c])) for c in range(1, len(hidden))]
            lo, hi = cfg.rails

            def on_rails():
                return ", ".join(f"{float(np.mean((v <= lo + 1e-9) | (v >= hi - 1e-9))):.0%}"
                                 for v in solve(net, x).layers[:-1])

            before = on_rails()
            backend = make_backend(cfg, net)
            trainer = EqPropTrainer(backend, cfg, preset(cfg.device, 2.0 * max(float(w.max()) for w in net.weights)),
                                    ds.n_classes)
            for i in range(0, 15 * cfg.batch_size, cfg.batch_size):
                trainer.step(ds.x_train[i:i + cfg.batch_size], ds.y_train[i:i + cfg.batch_size])
            what = f"{gain:g}" if gain is not None else "differential, " + ", ".join(f"{a:g}" for a in cfg.gains())
            print(f"| {'-'.join(map(str, hidden))} | {what} | {', '.join(f'{g:.2f}' for g in cm)} | {before} | "
                  f"{on_rails()} |")


def gains_table():
    cs = (2, 4, 8, 16)
    print("| hidden | " + " | ".join(f"sqrt({c} n)" for c in cs) + " |")
    print("|---" * (len(cs) + 1) + "|")
    for hidden in ([16, 16], [32, 32, 32], [100, 100], [100, 100, 100]):
        row = []
        for c in cs:
            gain = [float(np.sqrt(c * n)) for n in hidden[:-1]] + [4.0]
            with tempfile.TemporaryDirectory() as d:
                row.append(train(TrainConfig(hidden=hidden, epochs=5, gain=gain, hidden_pairs=True), Path(d) / "run",
                                 progress=False, log=lambda *_: None)["test_accuracy"])
        print(f"| {'-'.join(map(str, hidden))} | " + " | ".join(f"{a:.4f}" for a in row) + " |", flush=True)


def main():
    import sys
    if "--rails" in sys.argv[1:]:
        return rails_table()
    if "--gains" in sys.argv[1:]:
        return gains_table()
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
