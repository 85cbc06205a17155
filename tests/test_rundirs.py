"""Run directories never lose or mix data (issue 14): locks, checkpoint identity, validation before writing,
absolute data paths, explicit extension, one-line errors, honest progress output."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import default_sigint
from eqprop.learning.rundir import RunError, RunLock, load_checkpoint
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig

CLI = [sys.executable, "-m", "eqprop.experiments.cli"]


def cli(*args, cwd=None, timeout=300):
    from reliability_cases import run_cli

    return run_cli(*args, cwd=cwd, timeout=timeout)


def small(**kw):
    return TrainConfig(hidden=[8], epochs=1, n_train=100, n_test=50, **kw)


def test_lock_refuses_a_second_writer_and_names_the_holder(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # free again once released
    assert not (tmp_path / "run.lock").exists()


def test_two_concurrent_writers_one_refused_the_other_intact(tmp_path):
    out = tmp_path / "run"
    # far longer than the test: the first writer holds the lock while the other two calls start, however
    # loaded the machine; it is then interrupted (Ctrl-C), which must leave it whole and resumable
    args = ["train", "--hidden", "16", "--epochs", "500", "--out", out, "--no-progress"]
    first = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint)
    deadline = time.time() + 60
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = cli(*args)
    assert second.returncode == 2 and "in use by another eqprop process" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    resume = cli("train", "--resume", out)
    assert resume.returncode == 2 and "in use" in resume.stderr
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=300) == 130, first.stderr.read()
    cfg = json.loads((out / "config.json").read_text())
    net, state, history = load_checkpoint(out)
    assert cfg["hidden"] == [16] and cfg["epochs"] == 500 and net.sizes[1] == 16
    assert 1 <= len(history) == state["epoch"] < 500
    assert json.loads((out / "metrics.json").read_text()) == history
    assert not (out / "run.lock").exists()
    assert cli("evaluate", out).returncode == 0


def test_sigkilled_writer_leaves_no_lock_behind(tmp_path):
    out = tmp_path / "run"
    p = subprocess.Popen([*CLI, "train", "--hidden", "16", "--epochs", "50", "--out", str(out), "--no-progress",
                          "--checkpoint-every", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = cli("train", "--resume", out, "--epochs", "1")  # the kernel dropped the dead holder's lock
    assert "in use" not in r.stderr


def test_tampered_or_foreign_checkpoint_is_refused(tmp_path):
    train(small(), tmp_path / "a", progress=False, log=lambda *_: None)
    train(TrainConfig(hidden=[5], epochs=1, n_train=60, n_test=30), tmp_path / "b", progress=False,
          log=lambda *_: None)
    (tmp_path / "a" / "checkpoint.npz").write_bytes((tmp_path / "b" / "checkpoint.npz").read_bytes())
    with pytest.raises(RunError, match="does not belong"):
        load_checkpoint(tmp_path / "a")
    r = cli("evaluate", tmp_path / "a")
    assert r.returncode == 2 and "does not belong" in r.stderr and "Traceback" not in r.stderr


def test_nothing_is_written_when_validation_fails(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "odd.npz"  # test images of another size than the training ones
    np.savez(data, x_train=rng.integers(0, 256, (20, 8, 8)), y_train=rng.integers(0, 10, 20),
             x_test=rng.integers(0, 256, (10, 7, 7)), y_test=rng.integers(0, 10, 10))
    for args in (["--dataset", "mnist", "--data", data], ["--hidden", "16", "16", "--lr", "1", "2"]):
        r = cli("train", *args, "--out", tmp_path / "r", "--no-progress")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "r").exists()


def test_relative_data_path_is_stored_absolute_and_works_elsewhere(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "d").mkdir()
    np.savez(tmp_path / "d" / "m.npz", x_train=rng.integers(0, 256, (40, 4, 4)), y_train=rng.integers(0, 10, 40),
             x_test=rng.integers(0, 256, (20, 4, 4)), y_test=rng.integers(0, 10, 20))
    r = cli("train", "--dataset", "mnist", "--data", "m.npz", "--hidden", "8", "--epochs", "1", "--out", "../run",
            "--no-progress", cwd=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == str(tmp_path / "d" / "m.npz")
    assert cli("evaluate", tmp_path / "run", cwd="/").returncode == 0


def test_resume_extends_explicitly_and_refuses_other_flags(tmp_path):
    out = tmp_path / "run"
    train(small(), out, progress=False, log=lambda *_: None)
    r = cli("train", "--resume", out, "--epochs", "3", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert len(json.loads((out / "metrics.json").read_text())) == 3
    assert json.loads((out / "config.json").read_text())["epochs"] == 3
    r = cli("train", "--resume", out, "--epochs", "4", "--lr", "1")
    assert r.returncode == 2 and "cannot change --lr" in r.stderr
    r = cli("train", "--resume", out, "--epochs", "2")
    assert r.returncode == 2 and "already trained 3 epochs" in r.stderr


def test_metrics_seconds_count_the_whole_epoch_across_a_resume(tmp_path, monkeypatch):
    from eqprop.learning.trainer import EqPropTrainer

    whole = train(small(checkpoint_every=0), tmp_path / "whole", progress=False, log=lambda *_: None)
    step = EqPropTrainer.step

    def slow_step(self, x, labels):  # the part before the kill takes a known time
        time.sleep(0.4)
        return step(self, x, labels)

    monkeypatch.setattr(EqPropTrainer, "step", slow_step)
    train(small(checkpoint_every=0), tmp_path / "cut", progress=False, log=lambda *_: None, stop_after_steps=2)
    monkeypatch.setattr(EqPropTrainer, "step", step)
    resumed = train(small(checkpoint_every=0), tmp_path / "cut", resume=True, progress=False, log=lambda *_: None)
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert resumed["seconds"] >= 0.8  # the two slow steps before the kill are counted, not only the resumed part


def test_no_progress_bar_in_logs(tmp_path):
    r = cli("train", "--hidden", "8", "--epochs", "1", "--n-train", "100", "--n-test", "50", "--out", tmp_path / "r")
    assert r.returncode == 0 and "it/s" not in r.stderr and "\r" not in r.stderr


def test_ctrl_c_during_train_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    # A shell that starts the tests in the background (`make test &`, nohup, CI runners) hands its children
    # SIGINT ignored, and Python keeps an inherited ignore; the user's terminal Ctrl-C is what is tested here.
    p = subprocess.Popen([*CLI, "train", "--hidden", "32", "--epochs", "200", "--out", str(out), "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=default_sigint)
    deadline = time.time() + 60
    while not (out / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err
    assert f"eqprop train --resume {out}" in err and "checkpoint.npz" in err
    assert not (out / "run.lock").exists()


def test_help_shows_defaults_and_every_flag_has_help():
    from eqprop.experiments.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest not in ("help",):
                assert action.help, f"eqprop {name} {action.option_strings or action.dest} has no help"
    text = cli("netlist", "--help").stdout
    assert "default: net.cir" in text
    assert "one per connection" in cli("train", "--help").stdout


def test_float_pixels_in_unit_range_are_not_divided_again(tmp_path):
    from eqprop.learning.data import load

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 4, 4))
    np.savez(tmp_path / "u8.npz", x_train=x.astype(np.uint8), y_train=rng.integers(0, 10, 20),
             x_test=x[:5].astype(np.uint8), y_test=rng.integers(0, 10, 5))
    np.savez(tmp_path / "f.npz", x_train=x / 255.0, y_train=rng.integers(0, 10, 20), x_test=x[:5] / 255.0,
             y_test=rng.integers(0, 10, 5))
    a, b = load("mnist", str(tmp_path / "u8.npz")), load("mnist", str(tmp_path / "f.npz"))
    np.testing.assert_allclose(a.x_train, b.x_train)


def test_default_rates_train_small_and_large_hidden_layers(tmp_path):
    for hidden in (8, 16, 400):
        last = train(TrainConfig(hidden=[hidden], epochs=3), tmp_path / f"h{hidden}", progress=False,
                     log=lambda *_: None)
        assert last["test_accuracy"] > 0.5, (hidden, last)


@pytest.mark.spice
def test_exported_ideal_netlist_gives_the_trained_predictions_and_exits_0(tmp_path):
    from eqprop.circuits import solve
    from eqprop.learning.data import load
    from eqprop.netlists.batch import free_voltages, run_file
    from eqprop.netlists.writer import free_nodes_and_readout

    out = tmp_path / "run"
    train(TrainConfig(hidden=[32], epochs=2), out, progress=False, log=lambda *_: None)
    r = cli("netlist", out, "--count", "40", "--out", tmp_path / "net.cir")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "net.cir").read_text()
    assert "predicted class the same for 40/40 samples" in text
    p = subprocess.run(["ngspice", "-b", str(tmp_path / "net.cir")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-500:]
    net, _, _ = load_checkpoint(out)
    names, R = free_nodes_and_readout(net)
    spice = free_voltages(run_file(tmp_path / "net.cir"), names) @ R.T
    native = solve(net, load("digits").x_test[:40]).prediction
    assert (spice.argmax(1) == native.argmax(1)).all()
    assert np.abs(spice - native).max() < 1e-4  # the 1 S stand-in: microvolts at these currents


def test_demo_replaces_its_own_earlier_files_and_nothing_else(tmp_path):
    from eqprop.experiments.demo import demo

    run = tmp_path / "trained"  # a finished training run is never a demo's to replace
    train(small(), run, progress=False, log=lambda *_: None)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(RunError, match="training run"):
        demo(run, epochs=1, with_compare=False, with_hardware=False, progress=False, log=lambda *_: None)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    old = tmp_path / "demo"
    demo(old, epochs=1, with_compare=False, with_hardware=False, progress=False, log=lambda *_: None)
    assert (old / "run" / "checkpoint.npz").exists()
    (old / "NOTES.txt").write_text("mine")
    demo(old, epochs=1, with_compare=False, with_hardware=False, progress=False, log=lambda *_: None)  # and again over itself
    assert (old / "NOTES.txt").read_text() == "mine" and (old / "run" / "checkpoint.npz").exists()
    (old / "run" / "NOTES.txt").write_text("mine too")
    with pytest.raises(RunError, match="NOTES.txt"):  # a user's file inside the demo's run
        demo(old, epochs=1, with_compare=False, with_hardware=False, progress=False, log=lambda *_: None)
    assert (old / "run" / "NOTES.txt").read_text() == "mine too" and (old / "run" / "checkpoint.npz").exists()


def test_a_simulator_failing_mid_run_ends_in_one_line_naming_the_checkpoint(tmp_path, monkeypatch, capsys):
    """A Lava or ngspice failure during training (the bit-approximate engine's copy check, a model that
    stops answering) is one line on stderr with the run's last checkpoint, not a traceback."""
    from eqprop.backends.native import NativeBackend
    from eqprop.experiments import cli
    from eqprop.neuromorphic import LavaError

    calls = {"n": 0}
    settle = NativeBackend.settle

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] > 80:  # digits, 200 images, batch 32: 7 steps (21 settles) and an evaluation per epoch
            raise LavaError("the model stopped answering")
        return settle(self, *a, **k)

    monkeypatch.setattr(NativeBackend, "settle", failing)
    out = tmp_path / "run"
    rc = cli.main(["train", "--hidden", "8", "--n-train", "200", "--n-test", "50", "--epochs", "20", "--out", str(out),
                   "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"eqprop train: error: the model stopped answering; the run's last checkpoint is {out / 'checkpoint.npz'}"]
    assert (out / "checkpoint.npz").exists()


def test_a_signal_while_an_epoch_is_saved_waits_for_its_metrics(tmp_path):
    """An epoch's checkpoint and metrics are written under ``held_signals``: a Ctrl-C (or SIGTERM) that arrives
    between the two is delivered after both, to the handler that was there, so the files stay level."""
    from eqprop.learning.rundir import held_signals

    order = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own: Ctrl-C raises KeyboardInterrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            with held_signals():
                os.kill(os.getpid(), signal.SIGINT)  # the handler would raise here, between the two writes
                order.append("checkpoint")
                time.sleep(0.01)
                order.append("metrics")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
    finally:
        signal.signal(signal.SIGINT, before)
    assert order == ["checkpoint", "metrics"]
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_run_without_its_first_checkpoint_says_how_to_train_it_and_resume_does(tmp_path):
    """A run directory whose training ended before its first checkpoint (a diverged or stopped run) is named as such,
    with the command that trains it from its config; that command does."""
    run = tmp_path / "early"
    train(small(), run, progress=False, log=lambda *_: None)
    for f in run.iterdir():  # as a run that diverged in its first epoch leaves it: its config and provenance
        if f.name not in ("config.json", "provenance.json"):
            f.unlink()
    with pytest.raises(RunError, match=f"no checkpoint.npz yet: .* eqprop train --resume {run}$"):
        load_checkpoint(run)
    last = train(small(), run, resume=True, progress=False, log=lambda *_: None)
    assert last["epoch"] == 1 and (run / "checkpoint.npz").exists()
