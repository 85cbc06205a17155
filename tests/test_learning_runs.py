"""Training end to end: it learns, runs resume bit for bit, device models act, the CLI reports errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from eqprop.learning.programming import ProgrammingModel as DeviceModel, preset
from eqprop.learning.rundir import RunError, load_checkpoint
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig

SMALL = dict(dataset="digits", hidden=[32], epochs=3, n_test=200, batch_size=20)


def test_training_learns_digits(tmp_path):
    last = train(TrainConfig(**SMALL), tmp_path / "run", progress=False, log=lambda *_: None)
    assert last["test_accuracy"] > 0.8  # chance is 0.1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    for f in ("config.json", "metrics.csv", "checkpoint.npz", "learning_curve.png", "conductances.png", "voltages.png"):
        assert (tmp_path / "run" / f).stat().st_size > 0


@pytest.mark.parametrize("device,warmup,shift", [("ideal", 0.0, 0), ("memristor", 0.0, 0), ("ideal", 2.0, 0),
                                                 ("ideal", 0.0, 1)])
def test_killed_run_resumes_to_identical_conductances(tmp_path, device, warmup, shift):
    """Also with a warm-up the cut falls inside (a checkpoint after every step there, so the resume starts
    mid-ramp): the resumed run continues the ramp from its step count. With --shift it moves the images
    as the uninterrupted run did."""
    cfg = TrainConfig(**SMALL, device=device, warmup=warmup, shift=shift,
                      checkpoint_every=0.0 if warmup else 600.0)
    train(cfg, tmp_path / "full", progress=False, log=lambda *_: None)
    # Stop in the middle of epoch 2 (after the epoch-1 checkpoint), then resume.
    out = train(cfg, tmp_path / "cut", progress=False, log=lambda *_: None, stop_after_steps=30)
    assert out == {"stopped": True}
    train(cfg, tmp_path / "cut", resume=True, progress=False, log=lambda *_: None)
    full, _, hist_full = load_checkpoint(tmp_path / "full")
    cut, _, hist_cut = load_checkpoint(tmp_path / "cut")
    for a, b in zip(full.weights + full.biases, cut.weights + cut.biases):
        np.testing.assert_array_equal(a, b)
    assert [h["test_accuracy"] for h in hist_full] == [h["test_accuracy"] for h in hist_cut]


def test_shift_trains_on_moved_images_and_never_on_moved_test_images(tmp_path, monkeypatch):
    from eqprop.learning import runs
    from eqprop.learning.data import load
    from eqprop.learning.trainer import EqPropTrainer

    seen, evaluated = [], []
    step, evaluate = EqPropTrainer.step, EqPropTrainer.evaluate
    monkeypatch.setattr(EqPropTrainer, "step", lambda self, x, y: seen.append(x.copy()) or step(self, x, y))
    monkeypatch.setattr(EqPropTrainer, "evaluate", lambda self, x, y: evaluated.append(x.copy()) or evaluate(self, x, y))
    cfg = TrainConfig(**{**SMALL, "epochs": 1, "shift": 1})
    train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    ds = load("digits", n_test=SMALL["n_test"])
    order = np.random.default_rng([0, 0]).permutation(len(ds.x_train))
    moves = np.random.default_rng([0, 0, 1]).integers(-1, 2, (len(order), 2))
    first = order[:SMALL["batch_size"]]
    np.testing.assert_array_equal(seen[0], runs.shifted(ds.x_train[first], (8, 8), moves[:SMALL["batch_size"]]))
    assert not np.array_equal(seen[0], ds.x_train[first])  # some image was moved
    assert 0.4 < np.mean(np.any(moves != 0, axis=1)) < 1  # 8 of the 9 offsets move an image
    np.testing.assert_array_equal(evaluated[0], ds.x_test)  # input_scale 1: the test images as stored


@pytest.mark.parametrize("shift,data,match", [(8, None, "off themselves"), (1, "flat", "not images")])
def test_shift_it_cannot_apply_is_refused_before_a_run_exists(tmp_path, shift, data, match):
    if data == "flat":
        data = tmp_path / "flat.npz"
        rng = np.random.default_rng(0)
        np.savez(data, x_train=rng.integers(0, 255, (30, 20)), y_train=rng.integers(0, 10, 30),
                 x_test=rng.integers(0, 255, (10, 20)), y_test=rng.integers(0, 10, 10))
        cfg = TrainConfig(dataset="mnist", data=str(data), hidden=[8], epochs=1, shift=shift)
    else:
        cfg = TrainConfig(**{**SMALL, "shift": shift})
    with pytest.raises(RunError, match=match):
        train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    assert not (tmp_path / "r").exists()


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    with pytest.raises(RunError, match="already holds a run"):
        train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)


def test_device_model_bounds_levels_and_soft_bounds():
    rng = np.random.default_rng(0)
    g = np.array([0.5, 0.5, 0.99])
    DeviceModel("b", g_min=0.1, g_max=1.0).apply(g, np.array([10.0, -10.0, 0.0]), rng)
    np.testing.assert_array_equal(g, [1.0, 0.1, 0.99])
    g = np.array([0.3])
    DeviceModel("q", g_min=0.0, g_max=1.0, levels=5).apply(g, np.array([0.04]), rng)
    np.testing.assert_allclose(g, [0.25])
    near, far = np.array([0.9]), np.array([0.1])
    soft = DeviceModel("s", g_min=0.0, g_max=1.0, soft_bounds=True)
    soft.apply(near, np.array([0.05]), rng)
    soft.apply(far, np.array([0.05]), rng)
    assert near[0] - 0.9 < far[0] - 0.1  # steps shrink near the bound
    with pytest.raises(ValueError, match="unknown device model"):
        preset("flash", 1.0)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "eqprop.experiments.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_reports_user_errors_without_traceback(tmp_path):
    r = run_cli("train", "--dataset", "mnist", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", str(tmp_path))
    assert r.returncode == 2 and "no config.json" in r.stderr
    r = run_cli("train", "--backend", "hopfield", "--diode", "shockley", "--out", str(tmp_path / "l"), "--no-progress")
    assert r.returncode == 2 and "hopfield backend settles ideal diodes only" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "l").exists()


def test_cli_train_and_evaluate(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--hidden", "16", "--epochs", "1", "--n-train", "200", "--n-test", "100", "--out", str(out),
                "--no-progress")
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", str(out))
    assert r.returncode == 0 and "test accuracy" in r.stdout


def test_evaluate_nodes_reports_each_layers_rails_and_swing(tmp_path):
    """``eqprop evaluate RUN --nodes``: per layer the share of readings on each diode rail and between and the
    voltage percentiles, the same as solving the split directly and counting; a digital model's run is refused
    in one line before anything is printed."""
    from eqprop.circuits import solve
    from eqprop.learning.data import load_for
    from eqprop.learning.runs import load_run, node_usage

    out = tmp_path / "run"
    quiet = dict(progress=False, log=lambda *_: None)
    train(TrainConfig(hidden=[16], epochs=2, n_train=200, n_test=100, input_scale=4.0), out, **quiet)
    rows = node_usage(out)
    cfg, _, net = load_run(out)
    hidden, outputs = solve(net, load_for(cfg).x_test * cfg.input_scale).layers
    lo, hi = cfg.rails
    assert [r["layer"] for r in rows] == ["hidden 1", "outputs"] and rows[0]["nodes"] == 16
    assert rows[0]["low"] == pytest.approx(float((hidden <= lo + 1e-9).mean()), abs=1e-12)
    assert rows[0]["high"] == pytest.approx(float((hidden >= hi - 1e-9).mean()), abs=1e-12)
    assert rows[0]["low"] > 0 and rows[0]["high"] > 0 and rows[0]["between"] > 0  # input scale 4 uses both rails
    assert rows[0]["rails_v"] == [lo, hi] and "rails_v" not in rows[1]  # the outputs are linear nodes
    for row, v in zip(rows, (hidden, outputs)):
        np.testing.assert_allclose(row["percentiles_v"], np.percentile(v, [1, 50, 99]), rtol=0, atol=1e-9)
    r = run_cli("evaluate", str(out), "--nodes")
    assert r.returncode == 0 and "hidden 1 (16 nodes)" in r.stdout and "outputs (20 nodes)" in r.stdout, r.stderr
    # the accuracy and the rows from one pass over the split: the same as each alone, half the settles
    from eqprop.backends.native import NativeBackend
    from eqprop.learning.runs import evaluate_run

    settle, calls = NativeBackend.settle, []

    def counted(self, *a, **k):
        calls.append(1)
        return settle(self, *a, **k)

    NativeBackend.settle = counted
    try:
        both = evaluate_run(out, nodes=True)
        n_both = len(calls)
        alone = evaluate_run(out)
    finally:
        NativeBackend.settle = settle
    assert both.pop("nodes") == rows and both == alone and n_both == len(calls) - n_both == 1  # 100 samples
    digital = tmp_path / "bp"
    train(TrainConfig(backend="backprop", hidden=[16], epochs=1, n_train=64, n_test=32), digital, **quiet)
    r = run_cli("evaluate", str(digital), "--nodes")
    assert r.returncode == 2 and "a digital model, not a circuit" in r.stderr and r.stdout == "", (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1
