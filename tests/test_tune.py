"""eqprop tune: an Optuna search scored on held-out training samples, resumable, whose best trial is a recipe
that eqprop train reproduces; bad search files refused in one line before anything is written."""
import json

import pytest

from eqprop.experiments.cli import main

optuna = pytest.importorskip("optuna")

SPACE = """
[tune]
out = "{out}"
trials = {trials}
jobs = {jobs}
seed = 3

[train]
dataset = "digits"
hidden = [16]
epochs = 3
validation = 297
n_test = 120

[search]
beta = {{ low = 0.01, high = 0.3, log = true }}
lr = {{ low = 2.0, high = 50.0, log = true, per_connection = true }}
batch_size = {{ choices = [16, 32] }}
"""


def _space(tmp_path, trials=4, jobs=1, name="space.toml", text=None):
    f = tmp_path / name
    f.write_text(text if text is not None else SPACE.format(out=tmp_path / "out", trials=trials, jobs=jobs))
    return f


def test_a_search_picks_by_validation_resumes_and_its_recipe_reproduces_the_trial(tmp_path, capsys):
    space = _space(tmp_path)
    assert main(["tune", str(space)]) == 0
    out = tmp_path / "out"
    rows = json.loads((out / "trials.json").read_text())
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    assert len(finished) == 4 and all((out / r["run"] / "metrics.json").exists() for r in finished)
    complete = [r for r in rows if r["state"] == "complete"]
    best = max(complete, key=lambda r: r["value"])
    recipe = (out / "best.toml").read_text()
    assert f"trial {best['trial']}," in recipe and "validation = 297" in recipe
    assert (out / "search.png").stat().st_size > 0 and "| trial | state |" in (out / "trials.md").read_text()
    # the recipe trains the best trial again, to the same numbers (same data, split, seed and values)
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "best.toml"), "--out", str(again), "--no-progress"]) == 0
    last = json.loads((again / "metrics.json").read_text())[-1]
    assert abs(last["valid_accuracy"] - best["value"]) <= 0.002
    assert abs(last["test_accuracy"] - best["test_accuracy"]) <= 0.002
    # resumed with more trials: the first four stay as they were, two more run
    capsys.readouterr()
    assert main(["tune", str(space), "--trials", "6"]) == 0
    assert "(4 done)" in capsys.readouterr().out
    rows6 = json.loads((out / "trials.json").read_text())
    assert sum(r["state"] in ("complete", "pruned") for r in rows6) == 6
    assert [r.get("beta") for r in rows6[:len(rows)]] == [r.get("beta") for r in rows]


def test_trials_left_running_by_a_stopped_search_are_failed_and_not_counted(tmp_path, capsys):
    from eqprop.experiments.tune import _study, load_space

    space = _space(tmp_path, trials=2)
    options, _, _ = load_space(space)
    (tmp_path / "out").mkdir()
    study = _study(tmp_path / "out", options, create=True)
    study.ask()  # a trial a killed search left running
    (tmp_path / "out" / ".eqprop-output.json").write_text(json.dumps({"kind": "tune", "files": ["study.journal"]}))
    assert main(["tune", str(space)]) == 0
    assert "1 interrupted ones marked failed" in capsys.readouterr().out
    states = [r["state"] for r in json.loads((tmp_path / "out" / "trials.json").read_text())]
    assert states[0] == "fail" and states[1:].count("complete") + states[1:].count("pruned") == 2


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("validation = 297\n", ""), "add validation = N"),
    (lambda s: s.replace("[search]\n", "[search]\nbogus = { low = 1, high = 2 }\n"), "'bogus' is not a training field"),
    (lambda s: s.replace("high = 0.3, log", "high = 0.001, log"), "finite low < high"),
    (lambda s: s.replace("low = 0.01, high", "low = 0.0, high"), "log range needs low > 0"),
    (lambda s: s.replace("hidden = [16]\n", "hidden = [16]\nbeta = 0.1\n"), "both fixed in [train] and searched"),
    (lambda s: s.replace("seed = 3", "seed = 3\nmetric = \"test_accuracy\""), "use one of valid_accuracy"),
    (lambda s: s.replace("[search]\n", "[search]\nepochs = { low = 1, high = 5, step = 1 }\n"), "fix it in [train]"),
    (lambda s: s.replace("validation = 297", "validation = 5000"), "would hold out all"),
    (lambda s: s.replace("choices = [16, 32]", "choices = [16, -4]"), "batch_size"),
    (lambda s: s.replace("[train]", "[trian]"), "unknown table"),
])
def test_bad_search_files_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, edit, message):
    space = _space(tmp_path, text=edit(SPACE.format(out=tmp_path / "out", trials=2, jobs=1)))
    assert main(["tune", str(space)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_search_does_not_write_over_a_training_run(tmp_path, capsys):
    run = tmp_path / "out"
    assert main(["train", "--hidden", "8", "--epochs", "1", "--n-train", "60", "--out", str(run), "--no-progress"]) == 0
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    assert main(["tune", str(_space(tmp_path))]) == 2
    assert "holds a training run" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_trial_whose_values_diverge_is_scored_worst_and_the_search_goes_on(tmp_path, capsys):
    """Rates that blow the weights up to NaN: each such trial is recorded as diverged and scored 0 (so that the
    sampler learns to avoid them; a failed trial it would ignore), the search runs its count, and no diverged
    trial becomes the recipe."""
    text = SPACE.format(out=tmp_path / "out", trials=3, jobs=1).replace(
        'dataset = "digits"', 'dataset = "digits"\nbackend = "backprop"').replace(
        "beta = {{ low = 0.01, high = 0.3, log = true }}\n".replace("{{", "{").replace("}}", "}"), "").replace(
        "low = 2.0, high = 50.0", "low = 1e6, high = 1e7")
    assert main(["tune", str(_space(tmp_path, text=text))]) == 1
    out = capsys.readouterr().out
    assert out.count("diverged") == 3 and "no best.toml" in out
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    assert [r["value"] for r in rows] == [0.0, 0.0, 0.0] and all(r["error"].startswith("diverged") for r in rows)
    assert not (tmp_path / "out" / "best.toml").exists() and "diverged" in (tmp_path / "out" / "trials.md").read_text()


def test_the_data_path_is_given_on_the_command_line_and_every_trial_and_the_recipe_use_it(tmp_path, capsys,
                                                                                           monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(200) % 10, np.arange(60) % 10
    # a learnable MNIST-shaped file: each class lights its own rows of an 8x8 image
    def images(y):
        x = rng.integers(0, 40, (len(y), 8, 8))
        x[np.arange(len(y)), y % 8, :] += 200
        x[np.arange(len(y)), :, y // 2] += 120
        return x.clip(0, 255).astype(np.uint8)
    np.savez(tmp_path / "tiny.npz", x_train=images(y_train), y_train=y_train, x_test=images(y_test), y_test=y_test)
    text = SPACE.format(out=tmp_path / "out", trials=2, jobs=1).replace(
        'dataset = "digits"', 'dataset = "mnist"').replace("validation = 297", "validation = 50").replace(
        "n_test = 120", "n_test = 60").replace("hidden = [16]", "hidden = [8]").replace("epochs = 3", "epochs = 1")
    space = _space(tmp_path, text=text)
    # without a path: one line that names both ways to give one, nothing written
    assert main(["tune", str(space)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data PATH" in err[0] and not (tmp_path / "out").exists()
    # a relative --data is made absolute before the workers (whose working directory may differ) read it
    monkeypatch.chdir(tmp_path)
    assert main(["tune", str(space), "--data", "tiny.npz"]) == 0
    out = tmp_path / "out"
    rows = [r for r in json.loads((out / "trials.json").read_text()) if r["state"] in ("complete", "pruned")]
    assert len(rows) == 2
    for r in rows:
        assert json.loads((out / r["run"] / "config.json").read_text())["data"] == str(tmp_path / "tiny.npz")
    assert f'data = "{tmp_path / "tiny.npz"}"' in (out / "best.toml").read_text()
