"""Long check (make test-slow, not CI): the Kendall-size MNIST network trains to <= 3.4% test error in 10 epochs."""
from pathlib import Path

import pytest

from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist" / "mnist.npz"


@pytest.mark.slow
def test_kendall_mnist_reaches_published_error(tmp_path):
    assert MNIST.exists(), f"this check needs MNIST at {MNIST} (see shared/data/README.md)"
    cfg = TrainConfig(dataset="mnist", data=str(MNIST), hidden=[100], epochs=10, lr=[20.0, 5.0])
    last = train(cfg, tmp_path / "run", progress=False, log=print)
    assert 1 - last["test_accuracy"] <= 0.034


@pytest.mark.slow
def test_hopfield_reference_on_mnist_is_near_the_published_error(tmp_path):
    """Scellier & Bengio (2017), 784-500-10: about 2-2.5% test error; we measured 1.86% in 25 epochs."""
    assert MNIST.exists(), f"this check needs MNIST at {MNIST} (see shared/data/README.md)"
    cfg = TrainConfig(dataset="mnist", data=str(MNIST), backend="hopfield", hidden=[500], epochs=25, lr=[0.1, 0.05],
                      beta=0.5, momentum=0.0, lr_decay=1.0, batch_size=20, nudging="random", tol=1e-7)
    last = train(cfg, tmp_path / "run", progress=False, log=print)
    assert 1 - last["test_accuracy"] <= 0.025


@pytest.mark.slow
def test_digits_with_ngspice_in_the_loop_reaches_95_percent(tmp_path):
    """Every phase an ngspice operating point: 128-100-20, Shockley diodes (IS 1e-7 A), 10 epochs."""
    cfg = TrainConfig(dataset="digits", backend="spice", diode="shockley", diode_is=1e-7, epochs=10, workers=2)
    last = train(cfg, tmp_path / "run", progress=False, log=print)
    assert last["test_accuracy"] >= 0.95
