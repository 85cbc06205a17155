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
