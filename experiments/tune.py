"""``eqprop tune SPACE.toml``: a search for a training recipe with Optuna (TPE sampling, pruning of poor trials).

The file has three tables::

    [tune]                      # where, and how much
    out = "runs/tune-digits"    # the study, one run directory per trial (trials/0000, ...), the summary
    trials = 24                 # finished trials in all (a rerun resumes the study and runs what is missing)
    jobs = 2                    # trials at once, each a process with cores / jobs threads (EQPROP_THREADS)
    seed = 0                    # the samplers' seed
    metric = "valid_accuracy"   # or "valid_loss": what the search maximises (minimises)
    prune = true                # stop a trial whose metric after an epoch is below the median of earlier trials'

    [train]                     # any field of TrainConfig (eqprop train --help), for every trial
    dataset = "digits"
    hidden = [100]
    epochs = 10
    validation = 297            # held out of the training set: trials are scored there, never on the test set

    [search]                    # what is searched: a range, or a list of choices
    beta = { low = 0.01, high = 1.0, log = true }
    lr = { low = 1.0, high = 100.0, log = true, per_connection = true }   # one rate per connection
    input_scale = { low = 0.5, high = 4.0 }
    batch_size = { choices = [8, 16, 32, 64] }
    lr_decay = { low = 0.9, high = 1.0 }

Ranges take ``log = true`` (sampled evenly in the logarithm) and ``step`` (integers: ``step = 1``). Every trial's
config is validated at the ranges' ends before the first trial runs, so a bad range fails at once, not an hour in.
The study lives in the output directory (``study.journal``, Optuna's journal storage, which several processes
share): a search that was stopped resumes where it was, trials that were running then are marked failed and
rerun. Each trial is an ordinary training run (``trials/NNNN``: ``eqprop report`` and ``evaluate`` read it); its
per-epoch validation metric is reported to Optuna, which prunes it when it falls behind. At the end the best
trial is written as a recipe (``best.toml``, which ``eqprop train --config`` reproduces), with ``trials.md`` /
``trials.csv`` (every trial, its values, validation and test metrics) and ``search.png`` (the metric per trial
and against each searched field). The test metric is recorded for the report only: the choice never sees it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
import warnings
from pathlib import Path

from eqprop.circuits.errors import ConvergenceError, InputError, NetworkError
from eqprop.learning.trainer import ConfigError, TrainConfig

DIVERGED = (NetworkError, InputError, ConvergenceError, FloatingPointError, OverflowError)

SECTIONS = ("tune", "train", "search")
TUNE_KEYS = {"out": str, "trials": int, "jobs": int, "seed": int, "metric": str, "prune": bool}
METRICS = {"valid_accuracy": "maximize", "valid_loss": "minimize"}
RANGE_KEYS = ("low", "high", "log", "step", "per_connection")
STUDY = "study.journal"
# What a trial whose values make training diverge scores: chance-level or worse, so that the sampler avoids the
# region (Optuna's samplers ignore failed trials, and a search over wide rate ranges would keep proposing them).
# Divergence is what the circuits and the trainer raise on it: conductances or weights gone NaN/inf, a nudge past
# what the outputs' conductance allows (NetworkError, InputError), no equilibrium (ConvergenceError),
# overflow; every trial's config was validated before the search began, so these come from its values.
WORST = {"valid_accuracy": 0.0, "valid_loss": 1e300}
SUMMARY_FILES = ("best.toml", "trials.md", "trials.csv", "trials.json", "search.png", STUDY, "trials")


class TuneError(ValueError):
    """A search file that cannot be run as written."""


def load_space(path, data=None) -> tuple:
    """(options, base, space): the [tune] options with their defaults, the [train] fields, and the [search]
    fields, each checked (a trial's config is validated at every range's ends). ``data`` (``--data``): the data
    path, in place of [train] data (a search file for MNIST need not hold a path of one machine)."""
    from .recipes import toml_tables

    path = Path(path)
    doc = toml_tables(path, "search", SECTIONS, TuneError, "docs/tune.md")
    options = {"out": "runs/tune", "trials": 20, "jobs": 1, "seed": 0, "metric": "valid_accuracy", "prune": True}
    given = doc.get("tune", {})
    for key, value in given.items():
        kind = TUNE_KEYS.get(key)
        if kind is None:
            raise TuneError(f"{path}: unknown [tune] key {key!r}; use {', '.join(TUNE_KEYS)}")
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise TuneError(f"{path}: [tune] {key} = {value!r} must be {kind.__name__ if kind is not str else 'a string'}")
    options.update(given)
    if options["metric"] not in METRICS:
        raise TuneError(f"{path}: [tune] metric = {options['metric']!r}; use one of {', '.join(METRICS)}")
    for key in ("trials", "jobs"):
        if options[key] < 1:
            raise TuneError(f"{path}: [tune] {key} = {options[key]} must be at least 1")
    if not str(options["out"]).strip():
        raise TuneError(f"{path}: [tune] out is empty; give a directory")
    base, space = doc.get("train", {}), doc.get("search", {})
    if not isinstance(base, dict) or not isinstance(space, dict):
        raise TuneError(f"{path}: [train] and [search] must be tables")
    if data is not None:
        if not str(data).strip():
            raise TuneError("--data is empty (an unset shell variable?); give the data file or directory")
        base = {**base, "data": os.path.abspath(data)}
    if not space:
        raise TuneError(f"{path}: [search] is empty; give at least one field, e.g. beta = {{ low = 0.01, high = 1.0, "
                        "log = true }")
    if base.get("validation") is None:
        raise TuneError(f"{path}: [train] has no validation: trials are scored on training samples held out for it, "
                        "never on the test set; add validation = N (a tenth of the training samples is usual)")
    fields = set(TrainConfig.__dataclass_fields__)
    for name, spec in space.items():
        _check_spec(path, name, spec, fields)
        if name in base:
            raise TuneError(f"{path}: {name!r} is both fixed in [train] and searched in [search]; keep one")
    for corner in _corners(space, base):
        try:
            TrainConfig.from_dict({**base, **corner}, where=f"{path} [train] with [search] at {corner}").validate()
        except (ConfigError, TypeError) as exc:
            raise TuneError(f"{path}: {exc}") from None
    _check_data(path, TrainConfig.from_dict({**base, **next(iter(_corners(space, base)))}))
    return options, base, space


def check_split(path, base, space) -> None:
    """The data load and the validation split, once, before anything is written (not in every failed trial)."""
    from eqprop.learning.data import load_for

    try:
        load_for(TrainConfig.from_dict({**base, **next(iter(_corners(space, base)))}))
    except ValueError as exc:
        raise TuneError(f"{path}: {exc}") from None


def _check_spec(path, name, spec, fields) -> None:
    if name not in fields:
        raise TuneError(f"{path}: [search] {name!r} is not a training field (eqprop train --help lists them)")
    if name in ("validation", "dataset", "data", "backend", "epochs", "n_train", "n_test", "out"):
        raise TuneError(f"{path}: [search] {name!r} sets what the trials are scored on or how long they run; fix it "
                        "in [train]")
    if not isinstance(spec, dict):
        raise TuneError(f"{path}: [search] {name} must be a range {{ low = .., high = .. }} or {{ choices = [..] }}, "
                        f"got {spec!r}")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise TuneError(f"{path}: [search] {name}: choices = [..] is a non-empty list, and alone")
        return
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise TuneError(f"{path}: [search] {name}: unknown key(s) {unknown}; a range has {', '.join(RANGE_KEYS)}")
    lo, hi = spec.get("low"), spec.get("high")
    number = (int, float)
    if (not isinstance(lo, number) or not isinstance(hi, number) or isinstance(lo, bool) or isinstance(hi, bool)
            or not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi):
        raise TuneError(f"{path}: [search] {name}: a range needs finite low < high, got low = {lo!r}, high = {hi!r}")
    if spec.get("log") and lo <= 0:
        raise TuneError(f"{path}: [search] {name}: a log range needs low > 0, got {lo!r}")
    step = spec.get("step")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or not step > 0):
        raise TuneError(f"{path}: [search] {name}: step must be > 0, got {step!r}")
    if spec.get("per_connection") and name not in ("lr", "gain"):
        raise TuneError(f"{path}: [search] {name}: per_connection applies to lr and gain (lists per connection)")


def _integer(spec) -> bool:
    return isinstance(spec.get("step"), int) and isinstance(spec["low"], int) and isinstance(spec["high"], int)


def _n_values(name, spec, base) -> int:
    """How many values a per-connection field takes: lr one per connection, gain one per hidden layer."""
    hidden = base.get("hidden", [100])
    return len(hidden) + 1 if name == "lr" else len(hidden)


def _value(name, spec, base, pick):
    """A field's value from ``pick(spec_key, spec)`` per sampled number (a list for per-connection fields)."""
    if "choices" in spec:
        return pick(name, spec)
    if spec.get("per_connection"):
        return [pick(f"{name}_{i}", spec) for i in range(_n_values(name, spec, base))]
    value = pick(name, spec)
    return [value] if name in ("lr", "gain") else value


def _corners(space, base):
    """Configs at every range's low and high ends and every choice, one field varied at a time."""
    ends = {n: ([s["low"], s["high"]] if "choices" not in s else list(s["choices"])) for n, s in space.items()}
    first = {n: _value(n, s, base, lambda key, spec, n=n: ends[n][0] if "choices" not in spec else spec["choices"][0])
             for n, s in space.items()}
    yield first
    for n, s in space.items():
        for v in ends[n][1:]:
            yield {**first, n: _value(n, s, base, lambda key, spec, v=v: v)}


def suggest(trial, space, base) -> dict:
    """A trial's values of the searched fields (Optuna's suggest_* per sampled number)."""
    def pick(key, spec):
        if "choices" in spec:
            return trial.suggest_categorical(key, spec["choices"])
        if _integer(spec):
            return trial.suggest_int(key, spec["low"], spec["high"], step=spec["step"], log=bool(spec.get("log")))
        return trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")),
                                   step=spec.get("step"))

    return {n: _value(n, s, base, pick) for n, s in space.items()}


def _check_data(path, cfg) -> None:
    from eqprop.learning.data import dataset_spec

    spec = dataset_spec(cfg.dataset)
    if spec.takes_path:
        where = cfg.data or spec.default_path
        if where is None or not Path(where).exists():
            raise TuneError(f"{path}: the {cfg.dataset} data " + (f"{cfg.data} does not exist" if cfg.data else
                            "needs data = \"PATH\" in [train] or --data PATH") + f"; {spec.source}")


# --- the search ----------------------------------------------------------------------------------------------
def run_tune(path, out=None, trials=None, jobs=None, cluster=None, log=print, data=None) -> dict:
    """Runs (or resumes) the search of ``path``; returns the best trial's summary. ``data``: the data path, in
    place of the file's [train] data."""
    from eqprop.learning.outputs import OutputDir

    options, base, space = load_space(path, data)
    if data is not None:
        options["data"] = base["data"]  # the workers read the file again: they take the path from here
    check_split(path, base, space)
    if out is not None and not str(out).strip():
        raise TuneError("--out is empty (an unset shell variable?); give a directory")
    options.update({k: v for k, v in (("trials", trials), ("jobs", jobs)) if v is not None})
    output = OutputDir(out or options["out"], "tune", list(SUMMARY_FILES)).check()
    _optuna()  # refuses at once, before any directory is made, where Optuna is missing
    with output:
        (output / "trials").mkdir(exist_ok=True)
        study = _study(output.path, options, create=True)
        stale = _fail_stale(study)
        done = _counted(study)
        log(f"tune {path}: {options['trials']} trials ({len(done)} done"
            + (f", {stale} interrupted ones marked failed" if stale else "") + f") into {output.path}, "
            f"{options['jobs']} at once" + (f" on Ray ({cluster})" if cluster else ""))
        if len(done) < options["trials"]:
            _run_workers(str(path), str(output.path), options, cluster, log)
        study = _study(output.path, options)
        return _write_summary(output, study, options, base, space, str(path), log)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise TuneError("eqprop tune needs Optuna (a dependency of eqprop-hw: reinstall it, e.g. make setup)") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is one line of ours, not a traceback
    return optuna


def _study(out: Path, options: dict, create: bool = False, sampler=None, pruner=None):
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / STUDY)))
    direction = METRICS[options["metric"]]
    if create:
        study = optuna.create_study(study_name="tune", storage=storage, direction=direction, load_if_exists=True)
        if study.direction.name.lower() != direction:
            raise TuneError(f"{out / STUDY} holds a search that {study.direction.name.lower()}s; this file asks to "
                            f"{direction} {options['metric']}: choose another out")
        return study
    return optuna.load_study(study_name="tune", storage=storage, sampler=sampler, pruner=pruner)


def _counted(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _fail_stale(study) -> int:
    """Trials left running by a search that was stopped (the directory's lock says none runs now): failed, so
    that the count of finished trials is right and their numbers are not reused."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL)
    return len(stale)


def _run_workers(path: str, out: str, options: dict, cluster, log) -> None:
    jobs = options["jobs"]
    args = [(path, out, options, i, jobs) for i in range(jobs)]
    if cluster:
        from eqprop.netlists.ray_pool import connect

        ray = connect(cluster)
        remote = ray.remote(num_cpus=1)(work)
        for ref in [remote.remote(*a) for a in args]:
            ray.get(ref)
        return
    if jobs == 1:
        work(*args[0], log=log)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for f in [pool.submit(work, *a, log=print) for a in args]:
                f.result()
    except BrokenProcessPool:
        raise TuneError(f"a trial process died (killed, or out of memory: see dmesg); the finished trials are kept: "
                        f"rerun eqprop tune {path} to resume") from None


def work(path: str, out: str, options: dict, index: int, jobs: int, log=None) -> None:
    """One worker: trials from the shared study until it holds ``options['trials']`` finished ones. Each worker's
    solver gets cores / jobs threads (EQPROP_THREADS), so the workers together keep every core busy and no more."""
    from optuna.trial import TrialState

    from eqprop.circuits import threads

    if jobs > 1:
        os.environ[threads.ENV] = str(max(1, threads.cores() // jobs))
    optuna = _optuna()
    _, base, space = load_space(path, options.get("data"))
    out = Path(out)
    # TPE after 8 random trials (fewer when fewer are asked for); a trial is pruned from its second epoch on when
    # its metric is worse than the median of the earlier trials' at the same epoch (after 4 finished trials):
    # the first epoch alone says little (a high rate that recovers looks like a dead run)
    sampler = optuna.samplers.TPESampler(seed=options["seed"] + index, n_startup_trials=min(8, options["trials"]))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2) if options["prune"]
              else optuna.pruners.NopPruner())
    study = _study(out, options, sampler=sampler, pruner=pruner)
    metric = options["metric"]

    def objective(trial):
        from eqprop.learning.runs import train

        values = suggest(trial, space, base)
        cfg = TrainConfig.from_dict({**base, **values}, where="a trial").validate()
        run_dir = out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run", str(run_dir.relative_to(out)))

        def on_epoch(m):
            trial.report(m[metric], m["epoch"])
            trial.set_user_attr("test_accuracy", m["test_accuracy"])
            trial.set_user_attr("epochs", m["epoch"])
            if trial.should_prune():
                if log:
                    log(f"  trial {trial.number}: pruned after epoch {m['epoch']} ({metric} {m[metric]:.4f})")
                raise optuna.TrialPruned(f"epoch {m['epoch']}: {metric} {m[metric]:.4g}")

        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():  # a diverging trial's overflows: its outcome is recorded instead
                warnings.simplefilter("ignore", RuntimeWarning)
                last = train(cfg, run_dir, progress=False, log=lambda *_: None, on_epoch=on_epoch)
        except optuna.TrialPruned:
            raise
        except DIVERGED as exc:  # the values trained into NaN, a nudge past what the outputs allow, no equilibrium
            trial.set_user_attr("error", f"diverged: {type(exc).__name__}: {exc}")
            if log:
                log(f"  trial {trial.number}: diverged ({type(exc).__name__}: {exc}); scored {WORST[metric]}")
            return WORST[metric]  # the sampler learns to avoid the region (a failed trial it would ignore)
        except Exception as exc:  # anything else fails the trial (recorded in trials.md); the search goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            if log:
                log(f"  trial {trial.number}: failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - t0)
        if log:
            log(f"  trial {trial.number}: {metric} {last[metric]:.4f} (test accuracy {last['test_accuracy']:.4f})")
        return last[metric]

    failures = 0
    busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    while len(study.get_trials(deepcopy=False, states=busy)) < options["trials"]:
        # one trial per call: a worker starts none once the finished and running ones make the count
        study.optimize(objective, n_trials=1, catch=(Exception,))
        last = study.get_trials(deepcopy=False)[-1]
        failures = failures + 1 if last.state == TrialState.FAIL else 0
        if failures >= 3:  # a config that cannot train (trials.md shows the errors): stop, not loop
            if log:
                log(f"  worker {index}: three trials in a row failed; stopping (see trials.md)")
            return


# --- the summary ---------------------------------------------------------------------------------------------
def _rows(study, space, base) -> list:
    rows = []
    for t in study.get_trials(deepcopy=False):
        values = _values_of(t.params, space, base) if t.params else {}
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     "last_reported": (t.intermediate_values[max(t.intermediate_values)]
                                       if t.intermediate_values else None),
                     **{k: v for k, v in values.items()}, **t.user_attrs})
    return rows


def _values_of(params: dict, space, base) -> dict:
    """The searched fields' values as TrainConfig takes them, from Optuna's per-number params."""
    return {n: _value(n, s, base, lambda key, spec: params[key]) for n, s in space.items()}


def _write_summary(output, study, options, base, space, path, log) -> dict:
    from optuna.trial import TrialState

    metric = options["metric"]
    rows = _rows(study, space, base)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "error" not in t.user_attrs]  # a diverged trial is scored, never chosen
    keys = list(space)
    cols = ["trial", "state", *keys, metric, "test_accuracy", "epochs", "seconds", "run"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(r[k]) if isinstance(r.get(k), list) else
                    (r.get("value") if k == metric else r.get(k, "")) for k in cols})
    output.write_text("trials.csv", buf.getvalue())
    output.write_text("trials.json", json.dumps(rows, indent=1, default=str))
    sign = -1 if METRICS[metric] == "maximize" else 1
    ordered = sorted(rows, key=lambda r: (r["value"] is None, sign * (r["value"] or 0)))
    lines = [f"Search: `eqprop tune {path}`; {metric} on {base['validation']} held-out training samples "
             f"({METRICS[metric]}d); test accuracy recorded, never used to choose.", "",
             "| trial | state | " + " | ".join(keys) + f" | {metric} | test accuracy | epochs | seconds |",
             "|---|---|" + "---|" * len(keys) + "---|---|---|---|"]
    for r in ordered:
        val = r["value"] if r["value"] is not None else r["last_reported"]
        state = r["state"] if "error" not in r else (
            r["error"][:160] if r["error"].startswith("diverged") else f"{r['state']}: {r['error'][:160]}").replace("|", "/")
        lines.append(f"| {r['trial']} | {state} | " + " | ".join(_fmt(r.get(k)) for k in keys)
                     + f" | {_fmt(val)} | {_fmt(r.get('test_accuracy'))} | {r.get('epochs', '-')} | "
                       f"{_fmt(r.get('seconds'), 1)} |")
    output.write_text("trials.md", "\n".join(lines) + "\n")
    _plot(output, rows, space, metric)
    if not complete:
        log("no trial finished without diverging: no best.toml (see trials.md for the failures)")
        return {}
    best = max(complete, key=lambda t: t.value) if METRICS[metric] == "maximize" else min(complete, key=lambda t: t.value)
    values = _values_of(best.params, space, base)
    recipe = _recipe(path, base, values, best, metric, output.path)
    output.write_text("best.toml", recipe)
    log(f"best: trial {best.number}, {metric} {best.value:.4f} (test accuracy "
        f"{best.user_attrs.get('test_accuracy', float('nan')):.4f}): {values}")
    log(f"recipe: {output / 'best.toml'} (eqprop train --config {output / 'best.toml'} reproduces it); "
        f"table: {output / 'trials.md'}")
    return {"trial": best.number, metric: best.value, "test_accuracy": best.user_attrs.get("test_accuracy"),
            **values}


def _fmt(v, digits=4) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{digits}f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(u) for u in v) + "]"
    return str(v)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(u) for u in v) + "]"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


def _recipe(path, base, values, best, metric, out) -> str:
    about = (f"best of eqprop tune {path}: trial {best.number}, {metric} {best.value:.4f}, test accuracy "
             f"{best.user_attrs.get('test_accuracy', float('nan')):.4f}")
    lines = ["# Written by eqprop tune: the best trial's training config. `eqprop train --config` on this file", 
             "# trains the same run (same data, split, seed and values); drop `validation` to train on every",
             "# training sample.", "[recipe]", f"about = {json.dumps(about)}",
             f"out = {json.dumps(str(out).rstrip('/') + '-best')}", "", "[train]"]
    for k, v in {**base, **values}.items():
        if v is not None:
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _plot(output, rows, space, metric) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(space)
    n = 1 + len(keys)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.0), squeeze=False)
    ax = axes[0, 0]
    sign = 1 if METRICS[metric] == "maximize" else -1
    best, xs, ys = None, [], []
    for state, marker in (("complete", "o"), ("pruned", "x")):
        pts = [(r["trial"], r["value"] if r["value"] is not None else r["last_reported"]) for r in rows
               if r["state"] == state and (r["value"] is not None or r["last_reported"] is not None)]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=state, s=18)
    for r in sorted(rows, key=lambda r: r["trial"]):
        if r["state"] == "complete" and r["value"] is not None:
            best = r["value"] if best is None else (max(best, r["value"]) if sign > 0 else min(best, r["value"]))
            xs.append(r["trial"])
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="k", lw=1, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    for ax, key in zip(axes[0, 1:], keys):
        pts = [(r[key] if not isinstance(r.get(key), list) else r[key][0], r["value"]) for r in rows
               if r["state"] == "complete" and r.get(key) is not None and r["value"] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14)
        ax.set_xlabel(key + (" (first)" if any(isinstance(r.get(key), list) for r in rows) else ""))
        if space[key].get("log"):
            ax.set_xscale("log")
    fig.tight_layout()
    output.savefig("search.png", fig, dpi=110)
    plt.close(fig)
