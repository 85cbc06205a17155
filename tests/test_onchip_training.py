"""On-chip training on Lava (lava-onchip): the learning engine's tag-and-apply rule makes the host's update,
both copies of every conductance stay equal, and the training loop runs on it."""
import numpy as np
import pytest

from eqprop.circuits import layered
from eqprop.learning import cosine, eqprop_gradient, run_phases
from eqprop.backends.native import NativeBackend
from eqprop.neuromorphic import LavaSession


def case(seed=1, batch=6):
    net = layered([12, 8, 6, 4], diode="ideal", rails=(-0.05, 0.05), gain=3.0, seed=seed)
    rng = np.random.default_rng(seed)
    return net, rng.uniform(0, 1, (batch, 6)), rng.uniform(-0.05, 0.05, (batch, 2))


def test_engine_update_is_the_host_update_and_the_copies_stay_equal():
    """Two batches of 3, one Lava run each (the second built from the conductances the first left: the neurons'
    leak, their node's total conductance, is set when a run starts). Against host-side centered EqProp done
    the same way: cosine 1 and the same size to 1e-3; the forward (a G) and backward (G / a) copies agree to
    rounding."""
    net, x, y = case()
    native = NativeBackend(net.copy(), tol=1e-13)
    beta = 0.1 * native.beta_unit()
    g0 = eqprop_gradient(native, run_phases(native, x[:3], y[:3], beta, "centered"))
    step = 0.02 * max(float(w.max()) for w in net.weights) / (3 * max(float(np.abs(g).max()) for g in g0))
    scales = [step, 0.5 * step, 2 * step, step, 0.5 * step, 2 * step]  # 2% of the largest conductance, or so
    host = native.network
    for half in (slice(0, 3), slice(3, 6)):
        g = eqprop_gradient(native, run_phases(native, x[half], y[half], beta, "centered"))
        for p, gg, s in zip(host.weights + host.biases, g, scales):
            p -= s * 3 * gg  # dG = -scale x batch x (estimate of d mean loss / dG)
        native.sync()
    chip = net.copy()
    with LavaSession(timeout=300) as session:
        for half in (slice(0, 3), slice(3, 6)):
            r = session.onchip_train(chip, chip.encode_inputs(x[half]), y[half], beta, scales, 3, 60)
            assert r["copy_mismatch"] <= 1e-12
            chip.weights, chip.biases = r["weights"], r["biases"]
    got = [a - b for a, b in zip(chip.weights + chip.biases, net.weights + net.biases)]
    want = [a - b for a, b in zip(host.weights + host.biases, net.weights + net.biases)]
    assert cosine(got, want) >= 0.9999
    for a, b in zip(got, want):
        assert np.abs(a - b).max() <= 1e-3 * np.abs(b).max()


def test_onchip_backend_refuses_what_its_rule_does_not_do():
    from eqprop.learning.trainer import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="--momentum 0"):
        TrainConfig(backend="lava-onchip", momentum=0.9).validate()
    with pytest.raises(ConfigError, match="--nudging centered"):
        TrainConfig(backend="lava-onchip", nudging="positive").validate()
    TrainConfig(backend="lava-onchip").validate()  # its defaults are what the rule does
