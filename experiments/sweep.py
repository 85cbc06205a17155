"""Parameter sweeps: ``eqprop sweep config.toml`` trains one run per point of a grid, then writes one table.

The file has three tables::

    [sweep]                  # where, and how
    out = "runs/sweep"       # one run directory per point below it, and summary.{md,csv,json}
    cluster = "ray"          # optional: points as Ray tasks ('ray' = local Ray, or a Ray address)

    [base]                   # any field of TrainConfig (eqprop train --help), for every point
    dataset = "digits"
    epochs = 3
    hidden = [32]

    [grid]                   # lists of values; the sweep is their Cartesian product
    beta = [0.05, 0.1]
    lr = [[10.0, 5.0], [5.0, 2.5]]
    device = ["ideal", "quantized"]
    backend = ["native"]

Every point is checked before any runs, so a typo fails at once, not an hour in. A sweep that is
stopped resumes where it was: finished points are read back, unfinished ones resume from their
checkpoint. A point that fails is recorded with its error and the others go on.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import time
from pathlib import Path

from eqprop.learning.trainer import ConfigError, TrainConfig

from .recipes import string_table, toml_tables

SECTIONS = ("sweep", "base", "grid")
SWEEP_KEYS = ("out", "cluster")


class SweepError(ValueError):
    """A sweep file that cannot be run as written."""


def load_sweep(path) -> tuple:
    """(options, points): points are (name, TrainConfig), every one validated."""
    path = Path(path)
    doc = toml_tables(path, "sweep", SECTIONS, SweepError, "docs/sweep.toml")
    options = doc.get("sweep", {})
    string_table(path, "sweep", options, SWEEP_KEYS, SweepError, nonempty=True)
    base, grid = doc.get("base", {}), doc.get("grid", {})
    if not grid:
        raise SweepError(f"{path}: [grid] is empty; give at least one field with a list of values, e.g. beta = [0.05, 0.1]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: grid field {key!r} must be a non-empty list of values, got {values!r}")
    keys = list(grid)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = "_".join(f"{k}={_label(v)}" for k, v in values.items())
        try:
            cfg = TrainConfig.from_dict({**base, **values}, where="[base] and [grid]").validate()
        except (ConfigError, TypeError) as exc:
            raise SweepError(f"{path}, point {name}: {exc}") from None
        points.append((name, cfg))
    names = [n for n, _ in points]
    twins = sorted({n for n in names if names.count(n) > 1})
    if twins:
        raise SweepError(f"{path}: two grid points would share the directory {twins[0]!r}; make the grid's values "
                         "differ in how they print (e.g. not 0.1 and 0.10000000000000001)")
    for name, cfg in points:
        _check_data(path, name, cfg)
    return options, points


def _check_data(path, name, cfg) -> None:
    """A point's data is found before any point trains (not after the others have)."""
    from eqprop.learning.data import dataset_spec

    spec = dataset_spec(cfg.dataset)
    if not spec.takes_path:
        return
    where = cfg.data or spec.default_path
    if where is None or not Path(where).exists():
        raise SweepError(f"{path}, point {name}: the {cfg.dataset} data " + (f"{cfg.data} does not exist" if cfg.data
                         else "needs data = \"PATH\" in [base] or [grid]") + f"; {spec.source}")


def _label(v) -> str:
    """A grid value as part of a directory name: floats to 15 significant digits (0.1 and 0.1000001 apart),
    path separators replaced (a data path names one directory, not a tree)."""
    if isinstance(v, list):
        return "-".join(_label(u) for u in v)
    text = f"{v:.15g}" if isinstance(v, float) else str(v)
    return text.replace("/", "%").replace("\\", "%")


def _finished(run_dir: Path, cfg: TrainConfig):
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        return None
    from eqprop.learning.rundir import RunError, changed_fields, load_config, read_parsed

    if changed_fields(load_config(run_dir), cfg):
        raise RunError(f"{run_dir} holds a run with a different config (the sweep file changed?); move it away "
                       "or choose a new [sweep] out")
    history = read_parsed(metrics, json.loads, json.JSONDecodeError, RunError, missing="",
                          bad="{path} is not valid JSON ({exc}); restore it, or move the point's directory away")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise RunError(f"{metrics} is not a list of epochs; restore it, or move the point's directory away")
    return history[-1] if history and history[-1].get("epoch") == cfg.epochs else None


def run_point(name: str, cfg_dict: dict, run_dir: str) -> dict:
    """One point, to its end: a finished run is read back, a started one resumed. Never raises."""
    from eqprop.learning.runs import train

    cfg = TrainConfig.from_dict(cfg_dict)
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    try:
        last = _finished(run_dir, cfg)
        status = "done (earlier)"
        if last is None:
            resume = run_dir.exists() and any(run_dir.iterdir())
            last = train(cfg, run_dir, resume=resume, progress=False, log=lambda *_: None)
            status = "done"
        return {"point": name, "status": status, **last, "wall_seconds": time.perf_counter() - t0}
    except Exception as exc:  # recorded in the table; the other points go on
        return {"point": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "wall_seconds": time.perf_counter() - t0}


def run_sweep(path, out=None, cluster=None, log=print) -> list:
    from eqprop.learning.outputs import OutputDir

    options, points = load_sweep(path)
    if out is not None and not str(out).strip():
        raise SweepError("--out is empty (an unset shell variable?); give a directory")
    output = OutputDir(out or options.get("out") or "runs/sweep", "sweep",
                       [name for name, _ in points] + list(SUMMARY_FILES)).check()
    with output:
        return _run(path, output, points, cluster or options.get("cluster"), log)


SUMMARY_FILES = ("summary.csv", "summary.json", "summary.md")


def _run(path, output, points, cluster, log) -> list:
    out = output.path
    log(f"sweep {path}: {len(points)} points into {out}" + (f" on Ray ({cluster})" if cluster else ""))
    jobs = [(name, cfg.to_dict(), str(out / name)) for name, cfg in points]
    rows = []
    if cluster:
        from eqprop.netlists.ray_pool import connect

        ray = connect(cluster)
        remote = ray.remote(num_cpus=1)(run_point)
        refs = [remote.remote(*job) for job in jobs]
        for name_ref in refs:
            rows.append(ray.get(name_ref))
            log(_line(rows[-1]))
    else:
        for job in jobs:
            rows.append(run_point(*job))
            log(_line(rows[-1]))
    grid_keys = _grid_keys(points)
    for row, (name, cfg) in zip(rows, points):
        row.update({k: cfg.to_dict()[k] for k in grid_keys})
    _write_summary(output, rows, grid_keys)
    return rows


def _grid_keys(points) -> list:
    first = points[0][1].to_dict()
    return [k for k in first if any(cfg.to_dict()[k] != first[k] for _, cfg in points[1:])]


def _line(row) -> str:
    if row["status"] == "failed":
        return f"  {row['point']}: FAILED {row['error']}"
    return f"  {row['point']}: test accuracy {row['test_accuracy']:.4f} ({row['status']}, {row['wall_seconds']:.1f} s)"


def _write_summary(out, rows, grid_keys) -> None:
    cols = ["point", "status", *grid_keys, "test_accuracy", "train_accuracy", "test_loss", "epoch", "wall_seconds",
            "error"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(r[k]) if isinstance(r.get(k), list) else r.get(k, "") for k in cols})
    out.write_text("summary.csv", buf.getvalue())
    out.write_text("summary.json", json.dumps(rows, indent=1))
    lines = ["| point | " + " | ".join(grid_keys) + " | test accuracy | status |",
             "|---|" + "---|" * len(grid_keys) + "---|---|"]
    for r in sorted(rows, key=lambda r: -r.get("test_accuracy", -1)):
        acc = f"{r['test_accuracy']:.4f}" if "test_accuracy" in r else "-"
        status = r["status"] if r["status"] != "failed" else f"failed: {r['error']}"
        lines.append(f"| {r['point']} | " + " | ".join(str(r.get(k)) for k in grid_keys) + f" | {acc} | {status} |")
    out.write_text("summary.md", "\n".join(lines) + "\n")
