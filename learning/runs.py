"""Run directories: resolved config, per-epoch metrics (CSV + JSON), atomic checkpoints, plots, resume.

A run is deterministic given its config: the data order of epoch e comes from (seed, e) and the
trainer's random state is checkpointed, so a run killed at any point and resumed from its last
checkpoint ends with the same conductances as one that never stopped.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from eqprop.circuits import ShockleyDiode, layered
from eqprop.circuits.serialize import network_from_data, network_to_data

from .data import load
from .device_models import preset
from .native import NativeBackend
from .trainer import EqPropTrainer, TrainConfig, mean_output_conductance

BACKENDS = ("native", "spice", "hopfield", "lava")
CHECKPOINT = "checkpoint.npz"


class RunError(ValueError):
    """A run directory is missing, incomplete or belongs to a different config."""


def make_backend(cfg: TrainConfig, network):
    if cfg.cluster and cfg.backend != "spice":
        raise RunError(f"--cluster runs ngspice batches on Ray; the {cfg.backend} backend does not use it (use "
                       "--backend spice, or eqprop sweep --cluster to spread whole runs)")
    if cfg.backend == "native":
        return NativeBackend(network, tol=cfg.tol)
    if cfg.backend == "spice":
        if cfg.diode == "ideal":
            raise RunError("ngspice cannot simulate ideal diodes; train the spice backend with --diode shockley "
                           "(or pwl)")
        from .spice import SpiceBackend  # imports PySpice only when asked for
        return SpiceBackend(network, workers=cfg.workers, cluster=cfg.cluster)
    if cfg.backend == "lava":
        from .lava import LavaBackend  # starts Lava in its own process only when asked for
        return LavaBackend(network, tol=cfg.tol, fixed=cfg.fixed_point)
    if cfg.backend == "hopfield":
        raise RunError("the hopfield reference has its own network; train it with eqprop train --backend hopfield")
    if cfg.backend in BACKENDS:
        raise RunError(f"backend {cfg.backend!r} is not available in this version of eqprop-hw "
                       "(implemented: native, spice, hopfield, lava); use --backend native")
    raise RunError(f"unknown backend {cfg.backend!r}; use one of {BACKENDS}")


def build_network(cfg: TrainConfig, n_features: int, n_classes: int):
    sizes = [2 * n_features] + list(cfg.hidden) + [2 * n_classes]
    diode = cfg.diode
    if cfg.diode == "shockley" and cfg.diode_is is not None:
        diode = ShockleyDiode(i_s=cfg.diode_is)
    return layered(sizes, diode=diode, rails=cfg.rails, gain=cfg.gain, g_range=cfg.g_range, seed=cfg.seed)


TEMP_SUFFIX = ".tmp"
_UMASK = os.umask(0o022)  # read once (there is no other way to read it), then put back
os.umask(_UMASK)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over the target.

    A process killed mid-write leaves the old file intact and at most a stray NAME.XXXX.tmp, which
    the next train/resume removes (check_run_dir).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# What atomic_write leaves when killed: the target's name, mkstemp's 8 random characters, .tmp.
_STRAY_TEMP = re.compile(r"(checkpoint\.npz|config\.json|metrics\.json|metrics\.csv)\.[a-z0-9_]{8}\.tmp")


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Removes what a write killed half-way left (NAME.XXXX.tmp beside a file of the run), then refuses to
    start a new run over a directory that holds anything else."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for p in run_dir.glob(f"*{TEMP_SUFFIX}"):
        if _STRAY_TEMP.fullmatch(p.name) and p.is_file():
            p.unlink()
    if not resume and any(run_dir.iterdir()):
        raise RunError(f"{run_dir} already holds a run; pass --resume to continue it or choose a new --out")


def save_checkpoint(run_dir: Path, net, trainer: EqPropTrainer, history: list, position: dict | None = None) -> None:
    """``position``: inside an epoch, the steps done and the running loss/correct counts of that epoch."""
    meta, arrays = network_to_data(net)
    state = trainer.state()
    for i, v in enumerate(state["velocity"]):
        arrays[f"velocity_{i}"] = v
    for i, d in enumerate(state["d2d"]):
        if d is not None:
            arrays[f"d2d_{i}"] = d
    info = {"network": meta, "epoch": state["epoch"], "rng": state["rng"], "g_ref": state["g_ref"],
            "beta_abs": state["beta_abs"], "g_max": trainer.device.g_max, "history": history,
            "position": position}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(run_dir / CHECKPOINT, buf.getvalue())


def load_checkpoint(run_dir: Path):
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise RunError(f"{run_dir} has no {CHECKPOINT}; is it a run directory written by 'eqprop train'?")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(arrays.pop("info").tobytes().decode())
    net = network_from_data(info["network"], arrays)
    n_params = 2 * net.n_connections
    state = {"velocity": [arrays[f"velocity_{i}"] for i in range(n_params)],
             "d2d": [arrays.get(f"d2d_{i}") for i in range(n_params)],
             "epoch": info["epoch"], "rng": info["rng"], "g_ref": info["g_ref"], "beta_abs": info["beta_abs"],
             "g_max": info["g_max"], "position": info.get("position")}
    return net, state, info["history"]


def load_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir} has no config.json; is it a run directory written by 'eqprop train'?")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON ({exc}); restore it or start a new run") from None
    return TrainConfig.from_dict(d, where=str(path)).validate()


def _result_fields(cfg: TrainConfig) -> dict:
    """What decides a run's numbers: where it runs (workers, a Ray cluster) and how often it checkpoints do not."""
    d = cfg.to_dict()
    for key in ("workers", "cluster", "checkpoint_every"):
        d.pop(key, None)
    return d


def train(cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True, log=print,
          stop_after_steps: int | None = None) -> dict:
    """Trains per cfg into run_dir; returns the last epoch's metrics. ``resume`` continues a killed run."""
    cfg.validate()
    if cfg.backend == "hopfield":
        from .hopfield_train import train_hopfield

        return train_hopfield(cfg, run_dir, resume=resume, progress=progress, log=log)
    run_dir = Path(run_dir)
    ds = load(cfg.dataset, cfg.data, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    x_train, x_test = ds.x_train * cfg.input_scale, ds.x_test * cfg.input_scale
    history: list = []
    check_run_dir(run_dir, resume)
    if resume and (run_dir / CHECKPOINT).exists():
        saved = load_config(run_dir)
        if _result_fields(saved) != _result_fields(cfg):
            raise RunError(f"{run_dir} was started with a different config; resume it with that config "
                           "(eqprop train --resume RUN reads it) or choose a new --out")
        net, state, history = load_checkpoint(run_dir)
    else:
        if resume:
            log(f"{run_dir} has no checkpoint yet (killed in its first epoch): starting from the beginning")
        net, state = build_network(cfg, ds.n_features, ds.n_classes), None
    backend = make_backend(cfg, net)  # before anything is written: a backend that cannot start leaves no run behind
    if state is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1).encode())
    # Scales fixed at the start of a run (a resumed run must not recompute them from trained values).
    g_max = state["g_max"] if state else 2.0 * max(float(w.max()) for w in net.weights)
    trainer = EqPropTrainer(backend, cfg, preset(cfg.device, g_max), mean_output_conductance(net))
    position = state.get("position") if state else None  # a checkpoint from inside an epoch
    if state is not None:
        trainer.load_state(state)
        if history:  # killed between the checkpoint and the metrics files: bring them level with the checkpoint
            _write_metrics(run_dir, history)
        where = f"epoch {trainer.epoch + 1}, step {position['steps'] + 1}" if position else f"epoch {trainer.epoch + 1}"
        log(f"resuming {run_dir} at {where} (its last checkpoint)" if trainer.epoch < cfg.epochs
            else f"{run_dir} has finished its {cfg.epochs} epochs; writing its plots")
    last = history[-1] if history else {}
    steps = 0
    for epoch in range(trainer.epoch, cfg.epochs):
        t0 = t_saved = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x_train))
        batches = range(0, len(order), cfg.batch_size)
        done, loss_sum, correct = 0, 0.0, 0
        if position:  # the data order is fixed by (seed, epoch): skip what the checkpoint already holds
            done, loss_sum, correct = position["steps"], position["loss_sum"], position["correct"]
            position = None
        bar = _progress(batches[done:], progress, f"epoch {epoch + 1}/{cfg.epochs}")
        for n_done, i in enumerate(bar, start=done + 1):
            idx = order[i:i + cfg.batch_size]
            r = trainer.step(x_train[idx], ds.y_train[idx])
            loss_sum += r["loss"] * len(idx)
            correct += r["correct"]
            seen = min(i + cfg.batch_size, len(order))
            if hasattr(bar, "set_postfix") and n_done % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.2e}", acc=f"{correct / seen:.3f}")
            steps += 1
            if (cfg.checkpoint_every is not None and n_done < len(batches)
                    and time.perf_counter() - t_saved >= cfg.checkpoint_every):
                save_checkpoint(run_dir, net, trainer, history,
                                {"steps": n_done, "loss_sum": loss_sum, "correct": correct})
                t_saved = time.perf_counter()
            if stop_after_steps is not None and steps >= stop_after_steps:
                return {"stopped": True}
        trainer.epoch = epoch + 1
        test = trainer.evaluate(x_test, ds.y_test)
        last = {"epoch": epoch + 1, "train_loss": loss_sum / len(order), "train_accuracy": correct / len(order),
                "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                "seconds": time.perf_counter() - t0}
        history.append(last)
        save_checkpoint(run_dir, net, trainer, history)
        _write_metrics(run_dir, history)
        log(f"epoch {epoch + 1}: train acc {last['train_accuracy']:.4f}  test acc {last['test_accuracy']:.4f}  "
            f"({last['seconds']:.1f} s)")
    _plots(run_dir, net, backend, history, x_test[:512])
    return last


def _progress(iterable, enabled, desc):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def _write_metrics(run_dir: Path, history: list) -> None:
    atomic_write(run_dir / "metrics.json", json.dumps(history, indent=1).encode())
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    atomic_write(run_dir / "metrics.csv", buf.getvalue().encode())


def _plots_curve(run_dir: Path, history) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ep = [h["epoch"] for h in history]
        ax.plot(ep, [1 - h["train_accuracy"] for h in history], "o-", label="train")
        ax.plot(ep, [1 - h["test_accuracy"] for h in history], "s-", label="test")
        ax.set(xlabel="epoch", ylabel="error rate", yscale="log", title="learning curve")
        ax.legend()
        fig.tight_layout()
        fig.savefig(run_dir / "learning_curve.png", dpi=120)
        plt.close(fig)


def _plots(run_dir: Path, net, backend, history, x_sample) -> None:
    import matplotlib.pyplot as plt

    _plots_curve(run_dir, history)
    fig, axes = plt.subplots(1, net.n_connections, figsize=(4 * net.n_connections, 3))
    for c, ax in enumerate(np.atleast_1d(axes)):
        ax.hist(net.weights[c].ravel() * 1e9, bins=60)
        ax.set(title=f"conductances, connection {c}", xlabel="G (nS)")
    fig.tight_layout()
    fig.savefig(run_dir / "conductances.png", dpi=120)
    plt.close(fig)
    eq = backend.settle(x_sample)
    fig, axes = plt.subplots(1, len(eq.layers), figsize=(4 * len(eq.layers), 3))
    for c, (ax, v) in enumerate(zip(np.atleast_1d(axes), eq.layers)):
        ax.hist(v.ravel(), bins=60)
        ax.set(title=f"free-phase voltages, layer {c + 1}", xlabel="V")
    fig.tight_layout()
    fig.savefig(run_dir / "voltages.png", dpi=120)
    plt.close(fig)


def evaluate_run(run_dir, split: str = "test") -> dict:
    cfg = load_config(run_dir)
    if cfg.backend == "hopfield":
        from .hopfield_train import evaluate, load_hopfield_checkpoint

        net = load_hopfield_checkpoint(run_dir)[0]
        ds = load(cfg.dataset, cfg.data, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
        x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        return evaluate(net, x * cfg.input_scale, y)
    net, _, _ = load_checkpoint(run_dir)
    ds = load(cfg.dataset, cfg.data, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    backend = make_backend(cfg, net)
    trainer = EqPropTrainer(backend, cfg, preset("ideal", 1.0), mean_output_conductance(net))
    x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
    return trainer.evaluate(x * cfg.input_scale, y)
