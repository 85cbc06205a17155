"""The same-architecture digital reference: its gradient is the loss's, it trains and resumes through the same
run machinery, and it refuses what a feed-forward network does not have."""
import json

import numpy as np
import pytest

from eqprop.backends.backprop import BackpropBackend, FeedForwardNetwork


@pytest.mark.parametrize("sizes", [[16, 12, 6], [16, 12, 10, 6]])
def test_backpropagation_is_the_finite_differences_of_the_loss(sizes):
    net = FeedForwardNetwork.create(sizes, rails=(-0.05, 0.05), seed=1)
    for w in net.weights:
        w *= 3.0  # drive some units past the rails: the clip passes no gradient there
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (5, sizes[0] // 2)), rng.uniform(-0.05, 0.05, (5, sizes[-1] // 2))
    h = net.forward(x)[0]
    assert ((h == 0.05) | (h == -0.05)).any() and ((h > -0.05) & (h < 0.05)).any()
    grads, loss = net.gradient(x, y)
    loss_of = lambda: 0.5 * ((net.prediction(net.forward(x)[-1]) - y) ** 2).sum(1).mean()  # noqa: E731
    assert loss == pytest.approx(loss_of())
    for p, g in zip(net.weights + net.biases, grads):
        for idx in np.ndindex(p.shape):
            p0 = p[idx]
            p[idx] = p0 + 1e-7
            up = loss_of()
            p[idx] = p0 - 1e-7
            down = loss_of()
            p[idx] = p0
            assert abs((up - down) / 2e-7 - g[idx]) < 1e-7 * np.abs(g).max() + 1e-15


def test_it_is_the_circuits_architecture_and_targets():
    from eqprop.backends.native import NativeBackend
    from eqprop.learning.trainer import TrainConfig

    cfg = TrainConfig(backend="backprop", hidden=[100]).resolve().validate()
    net = BackpropBackend.build_network(cfg, 64, 10)
    circuit = NativeBackend.build_network(TrainConfig(hidden=[100]).resolve().validate(), 64, 10)
    assert net.sizes == circuit.sizes == (128, 100, 20) and net.rails == tuple(circuit.neurons[0].v_low for _ in [0]) + \
        (circuit.neurons[0].v_high,)
    labels = np.array([3, 0, 9])
    np.testing.assert_array_equal(BackpropBackend.targets(labels, 10, 0.05), NativeBackend.targets(labels, 10, 0.05))
    eq = BackpropBackend(net).settle(np.random.default_rng(0).uniform(0, 1, (4, 64)))
    assert eq.prediction.shape == (4, 10) and np.abs(eq.layers[0]).max() <= 0.05


def test_it_trains_resumes_and_refuses_circuit_flags(tmp_path, capsys):
    from eqprop.experiments.cli import main

    run, whole = tmp_path / "run", tmp_path / "whole"
    args = ["train", "--backend", "backprop", "--epochs", "3", "--n-train", "300", "--n-test", "100"]
    assert main(args + ["--out", str(whole)]) == 0
    assert main(["train", "--backend", "backprop", "--epochs", "1", "--n-train", "300", "--n-test", "100", "--out",
                 str(run)]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    a, b = np.load(run / "checkpoint.npz"), np.load(whole / "checkpoint.npz")
    for k in (k for k in a.files if k.startswith(("weights", "biases"))):
        np.testing.assert_array_equal(a[k], b[k])  # resumed: bit for bit the uninterrupted run
    assert json.loads((whole / "metrics.json").read_text())[-1]["test_accuracy"] > 0.7  # learning (chance 0.1)
    for extra, match in ((["--amplifier", "a0=100"], "ideal amplifiers only"), (["--gain", "2"], "--gain"),
                         (["--diode", "shockley"], "diodes only"), (["--noise-capacitance", "1e-12"], "noise")):
        assert main(args + ["--out", str(tmp_path / "bad")] + extra) == 2
        assert match in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
