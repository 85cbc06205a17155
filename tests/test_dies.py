"""Device mismatch: dies drawn from a seed, the same circuit in the native solver and in ngspice, and the
eqprop dies Monte Carlo over a trained run."""
import json

import numpy as np
import pytest

from eqprop.circuits import NetworkError, OpAmp, layered, solve
from eqprop.circuits.mismatch import Mismatch


def test_a_die_is_its_seed_and_its_spreads():
    net = layered([64, 200, 20], gain=4, seed=0)
    m = Mismatch(conductance=0.05, amplifier_offset=2e-3, amplifier_gain=0.03)
    a, b, c = m.die(net, 3), m.die(net, 3), m.die(net, 4)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)  # the same die twice
    assert a.amplifier == b.amplifier and a.amplifier != c.amplifier
    ratio = a.weights[0] / net.weights[0]
    assert abs(ratio.std() - 0.05) < 0.005 and abs(ratio.mean() - 1) < 0.005
    assert isinstance(a.amplifier, OpAmp) and a.amplifier.offset_sigma == 2e-3 and a.amplifier.gain_sigma == 0.03
    only_g = Mismatch(conductance=0.05).die(net, 3)  # the conductances' stream does not depend on the amplifiers'
    np.testing.assert_array_equal(only_g.weights[1], a.weights[1])
    assert only_g.amplifier.ideal
    assert net.amplifier.ideal and np.array_equal(net.weights[0], layered([64, 200, 20], gain=4, seed=0).weights[0])
    for bad in (dict(conductance=-0.1), dict(conductance=2.0), dict(amplifier_gain=0.5), dict(amplifier_offset=np.nan)):
        with pytest.raises(NetworkError):
            Mismatch(**bad)
    with pytest.raises(NetworkError, match="seed"):
        m.die(net, -1)


def test_eqprop_dies_counts_every_die_and_agrees_with_ngspice(tmp_path):
    from eqprop.experiments.cli import main

    run = tmp_path / "run"
    assert main(["train", "--hidden", "16", "--epochs", "2", "--n-train", "300", "--out", str(run),
                 "--no-progress"]) == 0
    out = tmp_path / "dies"
    assert main(["dies", str(run), "--dies", "3", "--conductance", "0.1", "--amplifier-offset", "0.01",
                 "--spice", "1", "--out", str(out)]) == 0
    r = json.loads((out / "dies.json").read_text())
    assert [d["die"] for d in r["dies"]] == [0, 1, 2]
    first = r["dies"][0]
    assert first["spice_same_classes"] == 40 and first["spice_max_diff"] < 1e-5  # (the ideal diodes' stand-in)
    assert "spice_max_diff" not in r["dies"][1]
    none = tmp_path / "none"
    assert main(["dies", str(run), "--dies", "2", "--conductance", "0", "--out", str(none)]) == 0
    n = json.loads((none / "dies.json").read_text())
    assert all(d["test_accuracy"] == n["summary"]["nominal"] for d in n["dies"])  # no mismatch: the run itself
    assert main(["dies", str(run), "--conductance", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    assert main(["dies", str(run), "--out", str(run)]) == 2  # never into a train run
