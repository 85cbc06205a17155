"""Nothing lost, nothing silently wrong: the output owner, recipes, reports, the pixel rule, run provenance.

Each case here failed (lost data, a wrong result with exit 0, or a raw error) before ``learning/outputs.py``,
the pixel rule and the provenance record.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eqprop.learning.data import DataError, load
from eqprop.learning.outputs import MANIFEST, OutputDir, OutputError, claim_file
from eqprop.learning.rundir import RunError
from eqprop.learning.runs import evaluate_run, train
from eqprop.learning.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))


def cli(*argv, cwd=None):
    from reliability_cases import run_cli

    return run_cli(*argv, cwd=cwd)


def small(**kw):
    return TrainConfig(**{"hidden": [16], "epochs": 1, "n_train": 200, "n_test": 60, **kw})


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    train(small(), run, progress=False, log=lambda *_: None)
    return run


# --- one owner per directory ------------------------------------------------------------------------------
def test_an_output_dir_of_another_kind_or_a_users_is_refused_and_untouched(tmp_path, trained):
    before = snapshot(trained)
    for kind in ("demo", "compare", "report"):
        with pytest.raises(OutputError, match="training run"):
            OutputDir(trained, kind, ("run", "report.md")).check()
    assert snapshot(trained) == before
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.md").write_text("my notes")
    (user / "NOTES.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        with OutputDir(user, "compare", ("report.md",)):
            pass
    assert (user / "report.md").read_text() == "my notes" and not (user / MANIFEST).exists()


def test_an_output_dir_replaces_only_its_own_files(tmp_path):
    d = tmp_path / "out"
    with OutputDir(d, "gradcheck", ("a.json", "b.png")) as out:
        out.write_text("a.json", "1")
    (d / "NOTES.txt").write_text("mine")  # a user's file added later is left alone
    with OutputDir(d, "gradcheck", ("a.json", "b.png")) as out:
        out.write_text("a.json", "2")
    assert (d / "a.json").read_text() == "2" and (d / "NOTES.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="gradcheck"):  # another command kind
        OutputDir(d, "loihi", ("loihi.json",)).check()
    with pytest.raises(OutputError, match="NOTES.txt"):  # a file it would write but does not own
        OutputDir(d, "gradcheck", ("NOTES.txt",)).check()
    with pytest.raises(AssertionError):  # an undeclared name is the command's bug, caught
        with OutputDir(d, "gradcheck", ("a.json",)) as out:
            out.write_text("undeclared.txt", "x")
    for bad, what in (("", "empty"), (str(d / "a.json"), "is a file")):
        with pytest.raises(OutputError, match=what):
            OutputDir(bad, "gradcheck", ("a.json",)).check()
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with pytest.raises(OutputError, match="dangling"):
        OutputDir(tmp_path / "dangling", "gradcheck", ("a.json",)).check()


def test_an_output_dir_is_refused_while_a_run_holds_its_lock(tmp_path):
    from eqprop.learning.rundir import RunLock

    d = tmp_path / "busy"
    d.mkdir()
    with RunLock(d):  # what eqprop train holds while it validates and trains
        with pytest.raises(RunError, match="in use"):
            with OutputDir(d, "demo", ("run", "compare")):
                pass
        assert sorted(p.name for p in d.iterdir()) == ["run.lock"]


def test_single_files_are_replaced_only_with_force(tmp_path):
    f = tmp_path / "notes.cir"
    f.write_text("mine")
    with pytest.raises(OutputError, match="--force"):
        claim_file(f)
    assert claim_file(f, force=True) == f
    for bad, what in (("", "empty"), (str(tmp_path), "directory"), (str(tmp_path / "no" / "x.cir"), "does not exist")):
        with pytest.raises(OutputError, match=what):
            claim_file(bad)


def test_cli_netlist_and_compare_never_overwrite_a_users_file(tmp_path, trained):
    (tmp_path / "net.cir").write_text("mine")
    done = cli("netlist", str(trained), cwd=tmp_path)  # the default --out, net.cir in the working directory
    assert done.returncode == 2 and "--force" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "net.cir").read_text() == "mine"
    rep = tmp_path / "reports"
    rep.mkdir()
    (rep / "report.md").write_text("mine")
    done = cli("compare", "--backends", "native", "--epochs", "1", "--n-train", "50", "--n-test", "20",
               "--out", str(rep))
    assert done.returncode == 2 and "report.md" in done.stderr
    assert (rep / "report.md").read_text() == "mine" and sorted(p.name for p in rep.iterdir()) == ["report.md"]


# --- train's command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, says", [
    (["--resume", ""], "--resume is empty"),
    (["--out", ""], "--out is empty"),
    (["--backend", "hopfield", "--gain", "8", "--rails", "-3", "7"], "--gain, --rails"),
    (["--config", "no-such-recipe.toml"], "does not exist"),
])
def test_train_refuses_what_it_would_silently_get_wrong(tmp_path, argv, says):
    done = cli("train", "--epochs", "1", *argv, cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def test_resume_trains_in_place_or_refuses(tmp_path, trained):
    done = cli("train", "--resume", str(trained), "--out", str(tmp_path / "other"))
    assert done.returncode == 2 and "in place" in done.stderr and not (tmp_path / "other").exists()
    same = cli("train", "--resume", str(trained), "--backend", "native", "--hidden", "16")  # unchanged values
    assert same.returncode == 0, same.stderr
    changed = cli("train", "--resume", str(trained), "--hidden", "17")
    assert changed.returncode == 2 and "--hidden" in changed.stderr


def test_resume_without_its_checkpoint_keeps_the_history(tmp_path):
    run = tmp_path / "run"
    train(small(epochs=2), run, progress=False, log=lambda *_: None)
    (run / "checkpoint.npz").rename(tmp_path / "moved.npz")
    metrics = (run / "metrics.json").read_bytes()
    with pytest.raises(RunError, match="checkpoint was lost"):
        train(small(epochs=3), run, resume=True, progress=False, log=lambda *_: None)
    assert (run / "metrics.json").read_bytes() == metrics


# --- recipes and reports ----------------------------------------------------------------------------------
def _mnist_like(path: Path, n=48):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    np.savez(path, x_train=x, y_train=rng.integers(0, 10, n), x_test=x[:16], y_test=rng.integers(0, 10, 16))
    return path


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_each_recipe_runs_its_first_steps(recipe, tmp_path):
    """The recipe as written (sizes, rates, augmentation, backend), its first step, on its own data shape:
    MNIST and Fashion-MNIST recipes on a 48-image file of their format, so the test needs no download and no
    installed data set."""
    from eqprop.backends import registry
    from eqprop.experiments.recipes import load_recipe

    r = load_recipe(recipe)
    assert r.about, f"{recipe.name} says nothing about itself"
    spec = registry.get(r.train.get("backend", "native"))
    if "lava" in spec.needs:
        pytest.importorskip("lava")
    if "ngspice" in spec.needs:
        from eqprop.experiments.cli import ngspice_status

        if not ngspice_status()[0]:
            pytest.skip("libngspice is not installed")
    mnist_format = r.train.get("dataset") in ("mnist", "fashion-mnist")
    extra = {"data": str(_mnist_like(tmp_path / "mnist.npz"))} if mnist_format else {}
    # one ngspice process and a batch of 4 are enough for a step (every phase a sweep of operating points)
    one_worker = {"workers": 1, "batch_size": 4} if "workers" in r.train else {}
    # (a backend that runs whole epochs evaluates at the end of its first: 16 test images)
    overrides = {**one_worker, **({} if extra else {"n_train": 16, "n_test": 16})}
    cfg = r.config(**extra, **overrides)
    out = train(cfg, tmp_path / "run", progress=False, log=lambda *_: None, stop_after_steps=1, recipe=str(recipe))
    assert out == {"stopped": True}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "batch_size" not in r.train or not one_worker, "the test's batch would hide the recipe's"
    for key, value in r.train.items():
        if key in overrides:
            continue
        assert saved[key] == (list(value) if isinstance(value, tuple) else value), key


def test_config_flags_override_the_recipe_and_report_reads_the_run(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[recipe]\nabout = "test"\n\n[train]\nhidden = [12]\nepochs = 3\nn_train = 120\nn_test = 40\n')
    run = tmp_path / "run"
    done = cli("train", "--config", str(recipe), "--epochs", "2", "--dropout", "0.25", "--rails", "0", "1", "--out",
               str(run), "--no-progress")
    assert done.returncode == 0, done.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["hidden"] == [12] and cfg["epochs"] == 2 and cfg["dropout"] == 0.25
    prov = json.loads((run / "provenance.json").read_text())
    assert prov[0]["recipe"] == str(recipe) and prov[0]["machine"]["cores"] == os.cpu_count()
    from eqprop.circuits.threads import blas_libraries

    assert prov[0]["blas"] == blas_libraries() and prov[0]["blas"], prov[0]["blas"]  # which kernels rounded the run
    rep = tmp_path / "rep"
    done = cli("report", str(run), "--out", str(rep))
    assert done.returncode == 0, done.stderr
    rows = json.loads((rep / "results.json").read_text())["runs"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert rows[0]["epochs"] == 2 and rows[0]["test_error"] == pytest.approx(100 * (1 - metrics[-1]["test_accuracy"]))
    assert "| hidden 12, rails 0 / 1 V, dropout 0.25 |" in (rep / "results.md").read_text()
    bad = tmp_path / "bad.toml"
    for text, says in (('[train]\nhiden = [3]\n', "hiden"), ("[recipe]\nabout = 'x'\n", "no [train]"),
                       ("[train\n", "not valid TOML"), ('[extra]\n[train]\nhidden=[3]\n', "unknown table")):
        bad.write_text(text)
        done = cli("train", "--config", str(bad), "--out", str(tmp_path / "never"))
        assert done.returncode == 2 and says in done.stderr and not (tmp_path / "never").exists(), done.stderr


# --- data: the pixel rule and the data a run was trained on -------------------------------------------------
def _npz(path, x_train, x_test):
    rng = np.random.default_rng(1)
    np.savez(path, x_train=x_train, y_train=rng.integers(0, 10, len(x_train)), x_test=x_test,
             y_test=rng.integers(0, 10, len(x_test)))
    return str(path)


@pytest.mark.parametrize("make, says", [
    (lambda x: (x / 255.0 * 1.0001, x / 255.0), "--pixel-max"),  # floats just above 1: not 0..255
    (lambda x: (x / 255.0, x / 255.0 * 1.0001), "x_test"),  # only the test split overshoots: named
    (lambda x: (x // 16, x // 16), "integer pixels 0..15"),  # a small integer range (raw digits-like)
    (lambda x: (x[:0], x[:5]), "x_train holds no images"),
])
def test_ambiguous_pixels_are_refused_naming_the_split_range_and_flag(tmp_path, make, says):
    x = np.random.default_rng(0).integers(0, 256, (20, 4, 4))
    xtr, xte = make(x)
    with pytest.raises(DataError, match=says.replace("-", r"\-").replace(".", r"\.")):
        load("mnist", _npz(tmp_path / "d.npz", xtr, xte))


def test_pixel_max_states_the_scale(tmp_path):
    x = np.random.default_rng(0).integers(0, 17, (20, 4, 4))
    path = _npz(tmp_path / "d.npz", x, x[:5])
    ds = load("mnist", path, pixel_max=16)
    assert ds.x_train.max() <= 1 and ds.x_train.max() == x.max() / 16
    with pytest.raises(DataError, match="above --pixel-max"):
        load("mnist", path, pixel_max=8)
    whole = _npz(tmp_path / "w.npz", x * 15.0, x[:5] * 15.0)  # whole-number floats reaching 240: 8-bit intensities
    np.testing.assert_allclose(load("mnist", whole).x_train, load("mnist", whole, pixel_max=255).x_train)


@pytest.mark.parametrize("kw, says", [({"n_train": -5}, "n_train"), ({"seed": -1}, "seed"),
                                      ({"seed": 2**32}, "seed"), ({"pixel_max": 16}, "drop --pixel-max")])
def test_load_validates_its_arguments(kw, says):
    with pytest.raises(DataError, match=says):
        load("digits", **kw)


def test_a_run_refuses_data_other_than_it_was_trained_on(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (120, 4, 4)).astype(np.uint8)
    data = _npz(tmp_path / "d.npz", x, x[:40])
    run = tmp_path / "run"
    train(small(dataset="mnist", data=data, n_train=None, n_test=None), run, progress=False, log=lambda *_: None)
    evaluate_run(run)
    _npz(tmp_path / "d.npz", x[::-1].copy(), x[:40])  # replaced in place by other data
    with pytest.raises(RunError, match="not the data"):
        evaluate_run(run)


def test_a_run_follows_its_data_file_when_moved_and_refuses_other_data(tmp_path):
    """evaluate --data and train --resume --data accept the run's data file moved elsewhere (same sha256) and
    refuse another file by name; the run's files are unchanged by a refusal."""
    import shutil

    x = np.random.default_rng(0).integers(0, 256, (120, 4, 4)).astype(np.uint8)
    data = _npz(tmp_path / "d.npz", x, x[:40])
    run = tmp_path / "run"
    assert cli("train", "--dataset", "mnist", "--data", data, "--hidden", "8", "--epochs", "1", "--out", str(run),
               "--no-progress").returncode == 0
    before = cli("evaluate", str(run)).stdout
    moved = tmp_path / "elsewhere" / "copy.npz"
    moved.parent.mkdir()
    shutil.move(data, moved)
    assert cli("evaluate", str(run)).returncode != 0
    r = cli("evaluate", str(run), "--data", str(moved))
    assert r.returncode == 0 and r.stdout == before, r.stderr
    other = _npz(tmp_path / "other.npz", x[::-1].copy(), x[:40])
    files = snapshot(run)
    for argv in (("evaluate", str(run), "--data", other),
                 ("train", "--resume", str(run), "--data", other, "--epochs", "2", "--no-progress")):
        r = cli(*argv)
        assert r.returncode != 0 and "not the data" in r.stderr and other in r.stderr, (argv, r.stderr)
        assert "Traceback" not in r.stderr
        assert snapshot(run) == files
    r = cli("train", "--resume", str(run), "--data", str(moved), "--epochs", "2", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "config.json").read_text())["data"] == str(moved)
    assert len(json.loads((run / "metrics.json").read_text())) == 2


# --- the API ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, says", [({"sizes": [8, 6.7, 4]}, "whole numbers"), ({"sizes": [8, 0, 4]}, "positive"),
                                      ({"sizes": [8, -6, 4]}, "positive"), ({"seed": -1}, "seed"),
                                      ({"bias_voltage": float("nan")}, "bias_voltage")])
def test_layered_validates_its_arguments(kw, says):
    from eqprop.circuits import NetworkError, layered

    with pytest.raises(NetworkError, match=says):
        layered(**{"sizes": [8, 6, 4], **kw})


def test_to_netlist_refuses_a_nudge_without_targets_and_an_empty_batch():
    from eqprop.circuits import InputError, layered
    from eqprop.netlists import to_netlist

    net = layered([8, 6, 4])
    with pytest.raises(InputError, match="give y"):
        to_netlist(net, np.ones((1, 4)), None, 1e-7)
    with pytest.raises(InputError, match="no samples"):
        to_netlist(net, np.ones((0, 4)))


# --- signals and pipes ------------------------------------------------------------------------------------
def _wait_for(path: Path, proc, seconds=120):
    import time

    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < seconds, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", ["SIGTERM", pytest.param("SIGHUP", marks=pytest.mark.slow)])  # one handler for both
def test_a_terminated_run_releases_its_lock_and_says_how_to_resume(tmp_path, sig):
    import signal

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "eqprop.experiments.cli", "train", "--hidden", "16", "--epochs",
                             "500", "--out", str(run), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(run / "metrics.json", proc)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and f"eqprop train --resume {run}" in err and "Traceback" not in err, err
    assert not (run / "run.lock").exists() and not list(run.glob("*.tmp"))
    assert cli("train", "--resume", str(run), "--epochs", "2", "--no-progress").returncode == 0


def test_a_closed_stdout_does_not_stop_training(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "eqprop.experiments.cli", "train", "--hidden", "16", "--epochs",
                             "3", "--out", str(run), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # the first line, then the reader goes away, as `| head -1` does
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and "Broken pipe" not in err, err
    assert len(json.loads((run / "metrics.json").read_text())) == 3


@pytest.mark.parametrize("value", ["1", "1e3", "1e-21"])
def test_physics_refuses_capacitances_that_would_run_for_hours(value):
    done = cli("physics", "--sizes", "8-6-4", "--capacitance", value)
    assert done.returncode == 2 and "outside" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_provenance_names_the_blas_kernels_the_run_used(tmp_path):
    """Products round differently on different BLAS kernels (a recipe's test error can move by a test image from
    one CPU to another), so a run records the kernels it ran on: the ones OpenBLAS was told to use here."""
    from eqprop.circuits.threads import blas_libraries

    if not any(b["library"] == "openblas" for b in blas_libraries()):
        pytest.skip("numpy's BLAS here is not OpenBLAS")
    run = tmp_path / "run"
    env = {**{k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}, "OPENBLAS_CORETYPE": "Haswell"}
    done = subprocess.run([sys.executable, "-m", "eqprop.experiments.cli", "train", "--hidden", "8", "--epochs", "1",
                           "--n-train", "32", "--n-test", "16", "--out", str(run), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    prov = json.loads((run / "provenance.json").read_text())[0]
    blas = prov["blas"]
    assert [b["kernels"] for b in blas if b["library"] == "openblas"] and \
        all(b["kernels"] == "Haswell" for b in blas if b["library"] == "openblas"), blas
    # the command imports eqprop before numpy: the idle-thread spin it set applies to numpy's OpenBLAS too
    from eqprop.circuits.threads import SPIN

    assert prov["blas_idle_spin"] == f"OPENBLAS_THREAD_TIMEOUT={SPIN} (set by eqprop on import)", prov["blas_idle_spin"]
