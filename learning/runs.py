"""The training loop, one for every backend: config -> data -> network -> backend -> epochs -> run directory.

A run is deterministic given its config: the data order of epoch e comes from (seed, e) and the
trainer's random state is checkpointed, so a run killed at any point and resumed from its last
checkpoint ends with the same parameters as one that never stopped. Everything is validated (config,
data, network size, backend) before the first file is written; what is on disk is ``rundir``'s business.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from eqprop import backends

from .data import load_for, shifted
from .programming import preset
from .rundir import (CHECKPOINT, CONFIG, RunError, RunLock, changed_fields, check_data, recorded_data_hashes, relocate_data, check_run_dir,
                     load_checkpoint, load_config, parameter_shapes, provenance, record_provenance, save_checkpoint,
                     held_signals, write_config, write_metrics, write_plots, writable_dir)
from .trainer import ConfigError, EqPropTrainer, TrainConfig

MEMORY_FRACTION = 0.8  # refuse a network whose arrays would need more than this share of the machine's memory


def backend_class(cfg: TrainConfig):
    return backends.get(cfg.backend).load()


def make_backend(cfg: TrainConfig, network):
    """The backend a config names, around ``network``."""
    return backend_class(cfg).from_config(network, cfg)


def build_network(cfg: TrainConfig, n_features: int, n_classes: int):
    return backend_class(cfg).build_network(cfg, n_features, n_classes)


def check_memory(cfg: TrainConfig, n_features: int, n_classes: int) -> None:
    """Refuses, before allocating, a network whose parameters, optimiser state and per-batch states would not
    fit in memory (the solver holds about 6 arrays of the parameters' size and 10 of the batch's states)."""
    sizes = [2 * n_features] + list(cfg.hidden) + [2 * n_classes]
    rows = [s * (2 if c > 0 and cfg.hidden_pairs else 1) for c, s in enumerate(sizes[:-1])]  # differential: twice
    params = sum(a * b for a, b in zip(rows, sizes[1:]))
    need = 8 * (6 * params + 10 * 512 * sum(sizes))
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return
    if need > MEMORY_FRACTION * have:
        raise ConfigError(f"hidden {list(cfg.hidden)}: the network needs about {need / 2**30:.1f} GiB "
                          f"({params:,} conductances), more than this machine's {have / 2**30:.1f} GiB allows; "
                          "use smaller --hidden layers")


def resolved(cfg: TrainConfig) -> TrainConfig:
    """The config as it will be recorded: defaults filled, the rate rule applied, the data path absolute."""
    if cfg.data is not None:
        cfg.data = os.path.abspath(cfg.data)
    if cfg.lr is None:
        cfg.lr = [float(v) for v in backend_class(cfg).default_lr(cfg.hidden)]
    return cfg.validate()


def train(cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool | None = None, log=print,
          stop_after_steps: int | None = None, recipe: str | None = None, on_epoch=None) -> dict:
    """Trains per cfg into run_dir; returns the last epoch's metrics. ``resume`` continues a killed run
    (or, with a larger ``cfg.epochs``, trains a finished one further). ``progress``: None shows a bar only
    on a terminal. ``on_epoch(metrics)`` is called after each epoch's checkpoint and metrics are written (a
    tuner reports them there; an exception it raises ends the run, which stays resumable)."""
    cfg.validate()
    run_dir = Path(run_dir)
    if resume and run_dir.is_dir():
        check_data(run_dir, cfg)
    ds = load_for(cfg)
    check_memory(cfg, ds.n_features, ds.n_classes)
    check_shift(cfg, ds)
    cfg = resolved(cfg)
    if resume and not run_dir.is_dir():
        raise RunError(f"--resume {run_dir}: no such run directory")
    with RunLock(writable_dir(run_dir)):  # created only now, after everything above was validated
        return _train_locked(cfg, run_dir, ds, resume, progress, log, stop_after_steps, recipe, on_epoch)


def _sizes(cfg, ds) -> list:
    """The layer sizes as the circuit has them: +x/-x input sources, hidden layers, output pairs."""
    cls = backends.get(cfg.backend).load()
    if cls.signed and not getattr(cls, "backprop", False):  # the Hopfield reference: x in, one unit per class
        return [ds.n_features, *cfg.hidden, ds.n_classes]
    return [2 * ds.n_features, *cfg.hidden, 2 * ds.n_classes]


def check_shift(cfg, ds) -> None:
    """--shift needs images, and a move smaller than them."""
    if not cfg.shift:
        return
    if ds.image_shape is None:
        raise RunError(f"--shift {cfg.shift}: the {ds.name} samples ({ds.n_features} features) are not images of a "
                       "known height and width; store them as (N, H, W) arrays, or leave --shift out")
    if cfg.shift >= min(ds.image_shape):
        raise RunError(f"--shift {cfg.shift} would move the {ds.image_shape[0]}x{ds.image_shape[1]} {ds.name} images "
                       f"off themselves; give fewer pixels than {min(ds.image_shape)} (1 or 2 is usual)")


def _train_locked(cfg, run_dir, ds, resume, progress, log, stop_after_steps, recipe=None, on_epoch=None) -> dict:
    # in place: the data set was loaded for this run alone (x_valid, the held-out tail, is scaled in _loop)
    x_train, x_test = (np.multiply(x, cfg.input_scale, out=x) if x.dtype == float and x.flags.writeable
                       else x * cfg.input_scale for x in (ds.x_train, ds.x_test))
    check_run_dir(run_dir, resume)  # before the headline: a refused directory prints only the refusal
    log(f"training {cfg.backend} backend on {cfg.dataset}: {'-'.join(map(str, _sizes(cfg, ds)))}, {cfg.epochs} epochs "
        f"-> {run_dir}")
    unseen = np.setdiff1d(ds.y_test, ds.y_train)
    if unseen.size:  # (a data set's own split, or too small an --n-train)
        log(f"warning: the test labels {', '.join(map(str, unseen[:10]))}{' ...' if unseen.size > 10 else ''} never "
            f"appear among the {len(ds.y_train)} training samples: the network cannot learn them, and its test "
            "accuracy counts them as errors")
    history: list = []
    state = None
    if resume and (run_dir / CHECKPOINT).exists():
        saved = load_config(run_dir)
        changed = changed_fields(saved, cfg)
        if "data" in changed and recorded_data_hashes(run_dir):
            changed.remove("data")  # a moved or copied file: check_data found the recorded sha256 in it
        if changed:
            raise RunError(f"{run_dir} was started with other values of {', '.join(changed)}; resume it as it was "
                           "(eqprop train --resume RUN reads its config; only --epochs may be raised), or choose a "
                           "new --out")
        net, state, history = load_checkpoint(run_dir, saved)
        if state["epoch"] > cfg.epochs:
            raise RunError(f"{run_dir} has already trained {state['epoch']} epochs; --epochs {cfg.epochs} would undo "
                           f"them: give --epochs {state['epoch']} or more to train it further")
    else:
        done = (run_dir / "metrics.json").exists() and (run_dir / "metrics.json").stat().st_size > 2
        if resume and done:
            raise RunError(f"{run_dir} has metrics.json but no {CHECKPOINT}: the checkpoint was lost or moved; "
                           f"nothing was changed: restore {run_dir / CHECKPOINT}, or start a new --out")
        if resume:
            log(f"{run_dir} has no checkpoint yet (killed in its first epoch): starting from the beginning")
        net = build_network(cfg, ds.n_features, ds.n_classes)
    backend = make_backend(cfg, net)  # before anything is written: a backend that cannot start leaves no run behind
    try:
        write_config(run_dir, cfg)  # a new run, or a resumed one whose --epochs was raised
        record_provenance(run_dir, provenance(cfg, recipe))
        return _loop(cfg, run_dir, ds, x_train, x_test, backend, state, history, progress, log, stop_after_steps,
                     on_epoch)
    finally:
        backend.close()


def _loop(cfg, run_dir, ds, x_train, x_test, backend, state, history, progress, log, stop_after_steps,
          on_epoch=None) -> dict:
    # Scales fixed at the start of a run (a resumed run must not recompute them from trained values).
    programming = None
    if not backend.signed:
        g_max = state["g_max"] if state else 2.0 * max(float(w.max()) for w in backend.network.weights)
        programming = preset(cfg.device, g_max)
    trainer = EqPropTrainer(backend, cfg, programming, ds.n_classes)
    position = state.get("position") if state else None  # a checkpoint from inside an epoch
    if state is not None:
        trainer.load_state(state)
        backend.load_state(state["backend_state"])
        if history:  # killed between the checkpoint and the metrics files: bring them level with the checkpoint
            write_metrics(run_dir, history)
        where = f"epoch {trainer.epoch + 1}, step {position['steps'] + 1}" if position else f"epoch {trainer.epoch + 1}"
        log(f"resuming {run_dir} at {where} (its last checkpoint)" if trainer.epoch < cfg.epochs
            else f"{run_dir} has finished its {cfg.epochs} epochs; writing its plots")
    last = history[-1] if history else {}
    x_valid = None if ds.x_valid is None else ds.x_valid * cfg.input_scale  # scaled once, like x_test
    trainer.warmup_steps = int(np.ceil(cfg.warmup * -(-len(x_train) // cfg.batch_size)))
    steps = 0
    whole_epochs = getattr(backend, "epoch_run", False)  # the backend runs each epoch in one go (lava-chip)
    show = progress if progress is not None else _is_terminal()
    for epoch in range(trainer.epoch, cfg.epochs):
        t0 = t_saved = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(x_train))
        # fixed by (seed, epoch) like the order, so a resumed run moves the images an uninterrupted one does
        moves = np.random.default_rng([cfg.seed, epoch, 1]).integers(-cfg.shift, cfg.shift + 1, (len(order), 2))
        batches = range(0, len(order), cfg.batch_size)
        done, loss_sum, correct, before = 0, 0.0, 0, 0.0
        if position:  # the data order is fixed by (seed, epoch): skip what the checkpoint already holds
            done, loss_sum, correct = position["steps"], position["loss_sum"], position["correct"]
            before = position.get("seconds", 0.0)
            position = None
        if whole_epochs:  # the whole epoch in one run of the backend (one chip)
            xs = shifted(x_train[order], ds.image_shape, moves) if cfg.shift else x_train[order]
            r = trainer.epoch_step(xs, ds.y_train[order], cfg.batch_size)
            loss_sum, correct = r["loss"] * len(order), r["correct"]
            steps += len(batches)
            batches = ()
        bar = _progress(batches[done:], show, f"epoch {epoch + 1}/{cfg.epochs}")
        for n_done, i in enumerate(bar, start=done + 1):
            idx = order[i:i + cfg.batch_size]
            xb = shifted(x_train[idx], ds.image_shape, moves[i:i + cfg.batch_size]) if cfg.shift else x_train[idx]
            r = trainer.step(xb, ds.y_train[idx])
            loss_sum += r["loss"] * len(idx)
            correct += r["correct"]
            seen = min(i + cfg.batch_size, len(order))
            if hasattr(bar, "set_postfix") and n_done % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.2e}", acc=f"{correct / seen:.3f}")
            steps += 1
            if (cfg.checkpoint_every is not None and n_done < len(batches)
                    and time.perf_counter() - t_saved >= cfg.checkpoint_every):
                save_checkpoint(run_dir, cfg, backend, trainer, history,
                                {"steps": n_done, "loss_sum": loss_sum, "correct": correct,
                                 "seconds": before + time.perf_counter() - t0})
                t_saved = time.perf_counter()
            if stop_after_steps is not None and steps >= stop_after_steps:
                return {"stopped": True}
        trainer.epoch = epoch + 1
        test = trainer.evaluate(x_test, ds.y_test)
        last = {"epoch": epoch + 1, "train_loss": loss_sum / len(order), "train_accuracy": correct / len(order),
                "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                "seconds": before + time.perf_counter() - t0}
        if x_valid is not None:  # held-out training samples (--validation)
            valid = trainer.evaluate(x_valid, ds.y_valid)
            last["valid_loss"], last["valid_accuracy"] = valid["loss"], valid["accuracy"]
        history.append(last)
        with held_signals():  # a Ctrl-C between the two would leave the metrics an epoch behind the checkpoint
            save_checkpoint(run_dir, cfg, backend, trainer, history)
            write_metrics(run_dir, history)
        log(f"epoch {epoch + 1}: train acc {last['train_accuracy']:.4f}  "
            + (f"valid acc {last['valid_accuracy']:.4f}  " if "valid_accuracy" in last else "")
            + f"test acc {last['test_accuracy']:.4f}  ({last['seconds']:.1f} s)")
        if on_epoch is not None:
            on_epoch(last)
        if whole_epochs and stop_after_steps is not None and steps >= stop_after_steps:
            return {"stopped": True}  # a backend that runs whole epochs stops at the end of one
    write_plots(run_dir, backend, history, x_test[:512])
    return last


def _is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def _progress(iterable, enabled, desc):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def load_run(run_dir):
    """(config, backend class, network) of a finished or running run, checked against each other."""
    cfg = load_config(run_dir)
    net, _, _ = load_checkpoint(run_dir, cfg)
    return cfg, backend_class(cfg), net


def load_circuit_run(run_dir, what: str, data=None, check: bool = True) -> tuple:
    """(config, network) of a run of a circuit backend; a digital model's run (Hopfield, backprop) is refused in
    one line saying that ``what`` takes a circuit. ``check``: the run's data file checked against its recorded
    sha256 (``data``: where it was moved or copied)."""
    cfg, _, net = load_run(run_dir)
    _require_circuit(run_dir, cfg, net, what)
    if data is not None:
        relocate_data(run_dir, cfg, data)
    if check:
        check_data(run_dir, cfg)
    return cfg, net


def _require_circuit(run_dir, cfg, net, what: str) -> None:
    if not hasattr(net, "neurons"):
        raise RunError(f"{run_dir} is a {cfg.backend} run: a digital model, not a circuit; {what} takes a circuit run "
                       "(native, spice, lava)")


def evaluate_run(run_dir, split: str = "test", data=None, nodes: bool = False) -> dict:
    """Accuracy and loss of a trained run on a split; ``data``: the run's data file where it was moved or
    copied (checked against the sha256 the run recorded). ``nodes``: also how the circuit uses its nodes
    (``node_usage``'s rows under ``"nodes"``), read from the same settles: a simulator's split is settled once."""
    cfg, cls, net = load_run(run_dir)
    if nodes:
        _require_circuit(run_dir, cfg, net, "--nodes")
    if data is not None:
        relocate_data(run_dir, cfg, data)
    check_data(run_dir, cfg)
    ds = load_for(cfg)
    expected = cls.build_network(cfg, ds.n_features, ds.n_classes)
    if parameter_shapes(net) != parameter_shapes(expected):
        raise RunError(f"{run_dir}: its checkpoint's network {parameter_shapes(net)} does not fit its dataset "
                       f"{cfg.dataset} and config {parameter_shapes(expected)}; restore the run's own files")
    backend = make_backend(cfg, net)
    try:
        trainer = EqPropTrainer(backend, cfg, None, ds.n_classes)
        x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        batches = []
        result = trainer.evaluate(x * cfg.input_scale, y, each=_layers_of(run_dir, cfg, batches) if nodes else None)
    finally:
        backend.close()
    if nodes:
        result["nodes"] = _node_rows(net, batches)
    return result


def _layers_of(run_dir, cfg, batches: list):
    """A function that keeps each settled batch's layers in ``batches``; a backend that settles its circuit as a
    graph (no layers) is refused at the first batch."""
    def keep(eq):
        if eq.layer_sizes is None:
            raise RunError(f"{run_dir}: the {cfg.backend} backend settles its circuit as a graph of nodes, "
                           "not in layers; --nodes reads layered circuits (native, spice, lava, loihi)")
        batches.append(eq.layers)

    return keep


RAIL_TOL = 1e-6  # V: a node this close to where its clamp's diode starts to conduct, or past it, is on that rail


def node_usage(run_dir, split: str = "test", data=None, batch_size: int = 512) -> list:
    """How a trained circuit uses its nodes on a split: one dict per free layer (its hidden layers, then the
    outputs) with the share of node readings on the low rail, on the high rail and between (where the layer has
    diode clamps: at or past the voltage where a diode starts to conduct, within ``RAIL_TOL``), and the 1st, 50th
    and 99th percentiles of the node voltages (the swing a converter reading them must cover). Circuit runs only."""
    cfg, net = load_circuit_run(run_dir, "--nodes", data=data)
    ds = load_for(cfg)
    x = (ds.x_test if split == "test" else ds.x_train) * cfg.input_scale
    backend = make_backend(cfg, net)
    batches = []  # per batch, its layers' voltages
    keep = _layers_of(run_dir, cfg, batches)
    try:
        with backend.unchanged():
            for i in range(0, len(x), batch_size):
                keep(backend.settle(x[i:i + batch_size]))
    finally:
        backend.close()
    return _node_rows(net, batches)


def _node_rows(net, batches: list) -> list:
    """``node_usage``'s rows from the settled batches' layers."""
    rows = []
    layers = [np.concatenate(vs) for vs in zip(*batches)]
    for c, v in enumerate(layers):
        clamp = net.neurons[c]
        row = {"layer": f"hidden {c + 1}" if c < len(layers) - 1 else "outputs", "nodes": int(v.shape[1]),
               "readings": int(v.size), "percentiles_v": [float(q) for q in np.percentile(v, [1, 50, 99])]}
        if clamp is not None:
            knee = float(clamp.diode.knee())
            low = float((v <= clamp.v_low - knee + RAIL_TOL).mean())
            high = float((v >= clamp.v_high + knee - RAIL_TOL).mean())
            row.update(rails_v=[float(clamp.v_low), float(clamp.v_high)], low=low, high=high, between=1.0 - low - high)
        rows.append(row)
    return rows


__all__ = ["CONFIG", "RunError", "build_network", "evaluate_run", "load_run", "make_backend", "node_usage", "train"]
