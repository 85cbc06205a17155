"""The SPICE-facing commands end to end: train with ngspice in the loop, export a run, physics, gradcheck."""
import json

import numpy as np
import pytest

from eqprop.circuits import solve
from eqprop.experiments.cli import main
from eqprop.learning.rundir import load_checkpoint
from eqprop.learning.runs import train
from eqprop.learning.trainer import TrainConfig
from eqprop.netlists import run_file
from eqprop.netlists.batch import free_voltages

SPICE_SMALL = dict(dataset="digits", hidden=[16], epochs=1, n_train=120, n_test=60, batch_size=20,
                   diode="shockley", diode_is=1e-7)


@pytest.mark.parametrize("hidden", [[16], [8, 8]])  # [8, 8]: differential hidden layers, the deep default
def test_spice_in_the_loop_training_follows_the_native_backend(tmp_path, hidden):
    quiet = dict(progress=False, log=lambda *_: None)
    small = {**SPICE_SMALL, "hidden": hidden}
    spice = train(TrainConfig(**small, backend="spice", workers=1), tmp_path / "spice", **quiet)
    native = train(TrainConfig(**small, backend="native"), tmp_path / "native", **quiet)
    a, _, _ = load_checkpoint(tmp_path / "spice")
    b, _, _ = load_checkpoint(tmp_path / "native")
    assert a.hidden_pairs == b.hidden_pairs == (len(hidden) > 1)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):  # same updates, up to ngspice's precision
        assert np.abs(wa - wb).max() <= 1e-6 * np.abs(wb).max()
    assert abs(spice["test_accuracy"] - native["test_accuracy"]) <= 1 / 60 + 1e-12  # at most one near-tie flips


def test_netlist_export_runs_in_ngspice_and_matches_the_trained_network(tmp_path, capsys):
    train(TrainConfig(**SPICE_SMALL), tmp_path / "run", progress=False, log=lambda *_: None)
    out = tmp_path / "net.cir"
    assert main(["netlist", str(tmp_path / "run"), "--out", str(out), "--count", "2"]) == 0
    assert "ngspice -b" in capsys.readouterr().out
    net, _, _ = load_checkpoint(tmp_path / "run")
    from eqprop.learning.data import load
    ds = load("digits", n_train=120, n_test=60, seed=0)
    volts = free_voltages(run_file(out), net.free_node_names())
    assert np.abs(volts - solve(net, ds.x_test[:2], tol=1e-13).voltages).max() < 1e-6


def test_physics_and_gradcheck_report_numbers(tmp_path, capsys):
    assert main(["physics", "--sizes", "8-6-4", "--samples", "1"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 8-6-4")][0]
    power, settle, energy = (float(c.split()[0]) for c in row.split("|")[3:6])
    assert power > 0 and settle > 0 and energy > 0
    # laid out as crossbars whose wires are slow (1 Mohm and 1 pF a segment): more nodes, slower to settle
    assert main(["physics", "--sizes", "8-6-4", "--samples", "1", "--wire", "1e6", "--wire-capacitance", "1e-12"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 8-6-4")][0]
    nodes, _, wired_settle = (float(c.split()[0]) for c in row.split("|")[2:5])
    assert nodes > 10 and wired_settle > 2 * settle
    assert main(["gradcheck", "--out", str(tmp_path / "g"), "--spice", "1e-6:1e-9"]) == 0
    rows = json.loads((tmp_path / "g" / "gradient_fidelity.json").read_text())
    best = {}
    for r in rows:
        best[(r["backend"], r["nudging"])] = max(best.get((r["backend"], r["nudging"]), 0), r["cosine"])
    assert best[("native", "centered")] >= 0.999
    assert min(v for k, v in best.items() if k[0].startswith("ngspice")) >= 0.99
    assert (tmp_path / "g" / "gradient_fidelity.png").stat().st_size > 0


def test_hopfield_reference_trains_and_resumes(tmp_path):
    cfg = TrainConfig(dataset="digits", backend="hopfield", hidden=[32], epochs=2, n_test=100,
                      lr=[0.1, 0.05], beta=0.5, momentum=0.0, lr_decay=1.0, batch_size=20, nudging="random",
                      tol=1e-7)
    quiet = dict(progress=False, log=lambda *_: None)
    last = train(cfg, tmp_path / "full", **quiet)
    assert last["test_accuracy"] > 0.5  # chance is 0.1
    cfg1 = TrainConfig(**{**cfg.to_dict(), "epochs": 1, "rails": tuple(cfg.rails)})
    train(cfg1, tmp_path / "cut", **quiet)
    (tmp_path / "cut" / "config.json").write_text(json.dumps(cfg.to_dict()))  # the same run, extended
    train(cfg, tmp_path / "cut", resume=True, **quiet)
    a, _, _ = load_checkpoint(tmp_path / "full")
    b, _, _ = load_checkpoint(tmp_path / "cut")
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)


def test_every_ngspice_analysis_of_a_spice_run_has_a_deadline(tmp_path, capsys):
    """The spice backend gives each analysis a deadline (an hour unless --deadline sets another): past it the
    run stops with one line naming it and how to give a longer one, and the run directory stays resumable with
    the deadline changed; a --deadline for a backend that runs no ngspice analysis is refused before anything is
    written."""
    from eqprop.backends.spice import SpiceBackend
    from eqprop.netlists.ngspice import DEADLINE_S

    assert SpiceBackend.from_config(_tiny_net(), TrainConfig(backend="spice")).pool.deadline == DEADLINE_S
    run = tmp_path / "run"
    args = ["train", "--backend", "spice", "--hidden", "8", "--epochs", "1", "--n-train", "40", "--n-test", "20",
            "--batch-size", "20", "--workers", "1", "--no-progress", "--out", str(run)]
    assert main(args + ["--deadline", "1e-7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deadline of 1e-07 s" in err[0] and "--deadline" in err[0], err
    assert (run / "config.json").exists()
    assert main(["train", "--resume", str(run), "--deadline", "600", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["deadline"] == 600
    capsys.readouterr()
    assert main(["train", "--deadline", "5", "--out", str(tmp_path / "native"), "--no-progress"]) == 2
    assert "--deadline bounds each ngspice analysis; the native backend runs none" in capsys.readouterr().err
    assert not (tmp_path / "native").exists()


def _tiny_net():
    from eqprop.circuits import layered

    return layered([8, 4, 4], diode="ideal", rails=(-0.05, 0.05), gain=4.0, seed=0)
