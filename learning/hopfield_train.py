"""Training the digital Hopfield reference with EqProp, as Scellier & Bengio (2017) did.

Plain SGD with one learning rate per layer (weights and biases of a layer share it), one-hot
targets in {0, 1}, pixel intensities in [0, 1] as the clamped inputs, the same phase machinery and
local statistics as every other backend (``run_phases``, ``eqprop_gradient``). The run directory
holds the config, metrics (CSV and JSON), an atomic checkpoint and a learning-curve PNG; a killed
run resumes from its last epoch.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

from .data import load
from .eqprop import eqprop_gradient, run_phases
from .hopfield import HopfieldBackend, HopfieldNetwork, settle
from .trainer import TrainConfig

CHECKPOINT = "checkpoint.npz"
DEFAULT_LR = [0.1, 0.05]  # Scellier & Bengio (2017), 784-500-10
DEFAULT_BETA = 0.5


def one_hot(labels, n):
    return np.eye(n)[labels]


def evaluate(net: HopfieldNetwork, x, labels, batch_size: int = 1000) -> dict:
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        o = settle(net, x[i:i + batch_size]).prediction
        y = one_hot(labels[i:i + batch_size], net.n_targets)
        loss += float(0.5 * ((o - y) ** 2).sum())
        correct += int((o.argmax(1) == labels[i:i + batch_size]).sum())
    return {"loss": loss / len(x), "accuracy": correct / len(x)}


def _save(run_dir: Path, net, velocity, epoch, rng_state, history) -> None:
    from .runs import atomic_write

    arrays = {f"w{l}": w for l, w in enumerate(net.weights)}
    arrays.update({f"b{l}": b for l, b in enumerate(net.biases)})
    arrays.update({f"v{i}": v for i, v in enumerate(velocity)})
    info = {"sizes": list(net.sizes), "epoch": epoch, "rng": rng_state, "history": history}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(run_dir / CHECKPOINT, buf.getvalue())


def load_hopfield_checkpoint(run_dir):
    with np.load(Path(run_dir) / CHECKPOINT) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(arrays.pop("info").tobytes().decode())
    L = len(info["sizes"]) - 1
    net = HopfieldNetwork(info["sizes"], [arrays[f"w{l}"] for l in range(L)], [arrays[f"b{l}"] for l in range(L)])
    velocity = [arrays[f"v{i}"] for i in range(2 * L)]
    return net, velocity, info


def train_hopfield(cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True, log=print) -> dict:
    from .runs import (RunError, _plots_curve, _progress, _result_fields, _write_metrics, atomic_write,
                       check_run_dir, load_config)

    run_dir = Path(run_dir)
    ds = load(cfg.dataset, cfg.data, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    sizes = [ds.n_features] + list(cfg.hidden) + [ds.n_classes]
    L = len(sizes) - 1
    lr = list(cfg.lr) if len(cfg.lr) != 1 else list(cfg.lr) * L
    if len(lr) != L:
        raise RunError(f"lr needs one value per layer ({L}) or a single value, got {len(cfg.lr)}")
    rng = np.random.default_rng(cfg.seed)
    check_run_dir(run_dir, resume)
    if resume and (run_dir / CHECKPOINT).exists():
        if _result_fields(load_config(run_dir)) != _result_fields(cfg):
            raise RunError(f"{run_dir} was started with a different config; resume it with that config")
        net, velocity, info = load_hopfield_checkpoint(run_dir)
        rng.bit_generator.state = info["rng"]
        history, start = info["history"], info["epoch"]
        if history:  # killed between the checkpoint and the metrics files
            _write_metrics(run_dir, history)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1).encode())
        net = HopfieldNetwork.create(sizes, seed=cfg.seed)
        velocity = [np.zeros_like(p) for p in net.weights + net.biases]
        history, start = [], 0
    backend = HopfieldBackend(net, tol=cfg.tol)
    last = history[-1] if history else {}
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(ds.x_train))
        bar = _progress(range(0, len(order), cfg.batch_size), progress, f"epoch {epoch + 1}/{cfg.epochs}")
        correct, loss_sum = 0, 0.0
        decay = cfg.lr_decay ** epoch
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            x, labels = ds.x_train[idx] * cfg.input_scale, ds.y_train[idx]
            y = one_hot(labels, ds.n_classes)
            ph = run_phases(backend, x, y, cfg.beta, cfg.nudging, rng)
            grads = eqprop_gradient(backend, ph)
            for p, g, v, rate in zip(backend.parameters(), grads, velocity, lr + lr):
                v *= cfg.momentum
                v += g
                p -= rate * decay * v
            o = ph.free.prediction
            correct += int((o.argmax(1) == labels).sum())
            loss_sum += float(0.5 * ((o - y) ** 2).sum())
        test = evaluate(net, ds.x_test * cfg.input_scale, ds.y_test)
        last = {"epoch": epoch + 1, "train_loss": loss_sum / len(order), "train_accuracy": correct / len(order),
                "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                "seconds": time.perf_counter() - t0}
        history.append(last)
        _save(run_dir, net, velocity, epoch + 1, rng.bit_generator.state, history)
        _write_metrics(run_dir, history)
        log(f"epoch {epoch + 1}: train acc {last['train_accuracy']:.4f}  test acc {last['test_accuracy']:.4f}  "
            f"({last['seconds']:.1f} s)")
    _plots_curve(run_dir, history)
    return last
