"""Run directories: what is on disk, and nothing else. Atomic writes, a lock per directory, one
checkpoint format for every backend (tied to its config by a hash and to its network by its shapes),
metrics (CSV + JSON) and plots.

Rules: a run directory holds only the files listed in ``RUN_FILES`` (and the lock); the toolkit never
deletes a file it did not write; a second writer is refused while the first holds the lock.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from eqprop import backends

CHECKPOINT = "checkpoint.npz"
CONFIG = "config.json"
LOCK = "run.lock"
PLOTS = ("learning_curve.png", "conductances.png", "voltages.png")
PROVENANCE = "provenance.json"
# A run trained on a characterised part (--amplifier FILE.json, --diode FILE.json) keeps a copy of the part's file:
# the run does not depend on where the file was (load_config reads the copy)
PART_COPIES = {"amplifier": "part-amplifier.json", "diode": "part-diode.json"}
RUN_FILES = (CONFIG, CHECKPOINT, "metrics.json", "metrics.csv", PROVENANCE, LOCK) + PLOTS + tuple(PART_COPIES.values())
FORMAT = 2  # checkpoint format version
TEMP_SUFFIX = ".tmp"
# What atomic_write leaves when killed: the target's name, mkstemp's 8 random characters, .tmp.
_STRAY_TEMP = re.compile(r"(checkpoint\.npz|config\.json|metrics\.json|metrics\.csv|provenance\.json|part-amplifier\.json|part-diode\.json)\.[a-z0-9_]{8}\.tmp")
_UMASK = os.umask(0o022)  # read once (there is no other way to read it), then put back
os.umask(_UMASK)
# Fields that do not change a run's numbers: where it runs, how often it checkpoints, how long it goes on.
NOT_RESULT_FIELDS = ("workers", "cluster", "checkpoint_every", "deadline", "epochs")


class RunError(ValueError):
    """A run directory is missing, incomplete, locked, or belongs to a different config."""


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


def writable_dir(run_dir: Path, what: str = "run directory", error=None) -> Path:
    """Creates run_dir (and parents) or says in one line (``error``, default RunError) why it cannot be used."""
    run_dir, error = Path(run_dir), error or RunError
    if run_dir.exists() and not run_dir.is_dir():
        raise error(f"--out {run_dir} is a file, not a directory; choose a directory path")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise error(f"cannot create {what} {run_dir}: {e.strerror}; choose another --out") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise error(f"{what} {run_dir} is not writable by this user; choose another --out")
    return run_dir


class RunLock:
    """An exclusive lock on a run directory (flock on run.lock, which records the holder's pid).

    The kernel drops the lock when its process dies, however it dies, so a SIGKILLed run never leaves a
    directory locked; a second writer while the first is alive gets a RunError naming the holder."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd = None

    def acquire(self) -> "RunLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
            except OSError as e:
                raise RunError(f"cannot create {self.path}: {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    raise RunError(_in_use(self.path.parent, holder)) from None
                raise
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _in_use(run_dir, holder) -> str:
    return (f"{run_dir} is in use by another eqprop process (pid {holder}); wait for it to finish or stop it, or "
            "choose another --out")


def refuse_if_in_use(run_dir: Path) -> None:
    """A RunError naming the holder when another process holds run_dir's lock (checked without taking it: a run
    that is starting holds the lock before its config.json exists)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # conflicts with the holder's exclusive lock
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise RunError(_in_use(run_dir, os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown")) from None
    finally:
        os.close(fd)


def foreign_files(run_dir: Path) -> list:
    """Entries of run_dir that the toolkit did not write."""
    return sorted(p.name for p in Path(run_dir).iterdir() if p.name not in RUN_FILES and not _STRAY_TEMP.fullmatch(p.name))


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Removes what a write killed half-way left (NAME.XXXX.tmp beside a file of the run), then refuses to
    start a new run over a directory that holds anything else. Call it with the lock held."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for p in run_dir.glob(f"*{TEMP_SUFFIX}"):
        if _STRAY_TEMP.fullmatch(p.name) and p.is_file():
            p.unlink()
    if resume:
        return
    entries = [p.name for p in run_dir.iterdir() if p.name != LOCK]
    if (run_dir / CONFIG).exists() or (run_dir / CHECKPOINT).exists():
        raise RunError(f"{run_dir} already holds a run; continue it with eqprop train --resume {run_dir}, or "
                       "choose a new --out")
    if entries:
        raise RunError(f"{run_dir} is not empty ({', '.join(sorted(entries)[:3])}{', ...' if len(entries) > 3 else ''});"
                       " a run needs an empty or new directory: choose another --out")


def clear_run(run_dir: Path) -> None:
    """Removes a previous run's own files so the directory can take a new run. Refuses (and deletes
    nothing) when the directory holds anything the toolkit did not write."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory; choose another --out")
    foreign = foreign_files(run_dir)
    if foreign:
        raise RunError(f"{run_dir} holds files eqprop did not write ({', '.join(foreign[:3])}"
                       f"{', ...' if len(foreign) > 3 else ''}); nothing was deleted: choose another --out")
    with RunLock(run_dir):
        for p in run_dir.iterdir():
            if p.name != LOCK and p.is_file():
                p.unlink()


def result_fields(cfg) -> dict:
    """What decides a run's numbers (not where it runs, how often it checkpoints, or for how many epochs)."""
    d = cfg.to_dict()
    for key in NOT_RESULT_FIELDS:
        d.pop(key, None)
    return d


def changed_fields(saved, cfg) -> list:
    """Fields on which cfg asks for another run than the saved config; a field cfg leaves unset (None:
    the default) takes the saved run's value, and data paths compare as absolute paths."""
    a, b = result_fields(saved), result_fields(cfg)
    if b.get("data"):
        b["data"] = os.path.abspath(b["data"])
    return sorted(k for k, v in b.items() if v is not None and a.get(k) != v)


# Fields added after checkpoint format 2, with their defaults: left out of the hash at the default, so a run
# written before they existed keeps its hash (and stays loadable).
LATER_FIELDS = {"threshold": None, "spikes": "graded", "time_steps": None, "warmup": 0.0, "shift": 0, "dropout": 0.0,
                "weight_decay": 0.0, "wire": None, "pixel_max": None, "noise_capacitance": None, "noise_window": 0.0,
                "amplifier": None, "converters": None, "neurons": None}


def config_hash(cfg) -> str:
    d = {k: v for k, v in result_fields(cfg).items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    for field in PART_COPIES:  # a characterised part counts by its file's contents, not where the file is
        if _part_file(d.get(field)):
            try:
                d[field] = "sha256:" + hashlib.sha256(Path(d[field].strip()).read_bytes()).hexdigest()
            except OSError:
                pass  # a missing file keeps its name: the checkpoint then does not match, as before
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def provenance(cfg, recipe=None) -> dict:
    """Where and from what a run (or its resumption) was started: code, machine, data, recipe."""
    import datetime
    import platform
    import sys

    from .data import content_hash

    from eqprop.circuits.threads import blas_libraries, spin

    return {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "code": code_version(), "machine": machine(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas_libraries(), "blas_idle_spin": spin(), "recipe": recipe,
            "argv": sys.argv[1:],
            "data": cfg.data, "data_sha256": content_hash(cfg.data) if cfg.data else None}


def code_version() -> dict:
    """The package version and, for a git checkout, its commit and whether it had uncommitted changes."""
    import importlib.metadata as md
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        version = md.version("eqprop-hw")
    except md.PackageNotFoundError:
        version = None
    out = {"version": version, "commit": None, "dirty": None}
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode == 0:
            out["commit"] = head.stdout.strip()
            out["dirty"] = bool(run("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def machine() -> dict:
    import platform

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "os": platform.platform()}


def record_provenance(run_dir: Path, entry: dict) -> None:
    """Appends one start (or resumption) to the run's provenance.json."""
    path = Path(run_dir) / PROVENANCE
    entries = read_provenance(run_dir)
    atomic_write(path, json.dumps(entries + [entry], indent=1).encode())


def read_provenance(run_dir: Path) -> list:
    path = Path(run_dir) / PROVENANCE
    if not path.is_file():
        return []
    entries = read_parsed(path, json.loads, json.JSONDecodeError, RunError, missing="",
                          bad="{path} is not valid JSON ({exc}); restore it or move it away")
    if not isinstance(entries, list):
        raise RunError(f"{path} is not a list of run starts; restore it or move it away")
    return entries


def recorded_data_hashes(run_dir: Path) -> list:
    """The sha256 of the data file at each start of the run (``provenance.json``), oldest first."""
    return [e.get("data_sha256") for e in read_provenance(run_dir) if isinstance(e, dict) and e.get("data_sha256")]


def check_data(run_dir: Path, cfg) -> None:
    """Refuses data that is not what the run was trained on (its recorded sha256), naming the file."""
    recorded = recorded_data_hashes(run_dir)
    if not recorded or not cfg.data:
        return
    from .data import content_hash

    if not Path(cfg.data).exists():
        raise RunError(f"{cfg.data}, the data {run_dir} was trained on, is gone; if it was moved or copied, give its "
                       "new path with --data PATH (checked against the sha256 the run recorded)")
    now = content_hash(cfg.data)
    if now != recorded[-1]:
        raise RunError(f"{cfg.data} is not the data {run_dir} was trained on (sha256 {recorded[-1][:12]}... recorded, "
                       f"{now[:12]}... now); restore the original file")


def relocate_data(run_dir: Path, cfg, path) -> None:
    """Points cfg at ``path``, a moved or copied data file, after checking it is the run's data: its sha256
    must equal the one recorded when the run was started (``provenance.json``). Refuses by name otherwise."""
    from .data import content_hash

    path = os.path.abspath(path)
    if not Path(path).is_file():
        raise RunError(f"--data {path}: no such file; give the moved or copied data file of {run_dir}")
    if not cfg.data:
        raise RunError(f"--data {path}: {run_dir} was trained on the built-in {cfg.dataset} data, not on a file; "
                       "drop --data")
    recorded = recorded_data_hashes(run_dir)
    if not recorded:
        raise RunError(f"--data {path}: {run_dir} recorded no sha256 of its data (provenance.json is missing), so "
                       f"the file cannot be checked; copy it back to {cfg.data}")
    now = content_hash(path)
    if now != recorded[-1]:
        raise RunError(f"--data {path} is not the data {run_dir} was trained on (sha256 {recorded[-1][:12]}... "
                       f"recorded, {now[:12]}... in this file); give the run's own data file")
    cfg.data = path


def _part_file(value) -> bool:
    return isinstance(value, str) and value.strip().endswith(".json")


def write_config(run_dir: Path, cfg) -> None:
    """config.json, and a copy of each characterised part's file the config names (``PART_COPIES``)."""
    for field, copy in PART_COPIES.items():
        value = getattr(cfg, field, None)
        if _part_file(value):
            source, target = Path(value.strip()), Path(run_dir) / copy
            if source.resolve() != target.resolve():
                try:
                    data = source.read_bytes()
                except OSError as exc:
                    raise RunError(f"cannot read the {field} model {source}: {exc}") from None
                atomic_write(target, data)
    atomic_write(Path(run_dir) / CONFIG, json.dumps(cfg.to_dict(), indent=1).encode())


def load_config(run_dir: Path):
    from .trainer import TrainConfig

    path = Path(run_dir) / CONFIG
    if not Path(run_dir).exists():
        raise RunError(f"{run_dir}: no such run directory; give a directory written by 'eqprop train'")
    if not Path(run_dir).is_dir():
        raise RunError(f"{run_dir} is a file, not a run directory; give a directory written by 'eqprop train'")
    d = read_parsed(path, json.loads, json.JSONDecodeError, RunError,
                    missing=f"{run_dir} has no {CONFIG}; is it a run directory written by 'eqprop train'?",
                    bad="{path} is not valid JSON ({exc}); restore it or start a new run")
    if isinstance(d, dict) and "hidden_pairs" not in d:
        d["hidden_pairs"] = False  # written before differential hidden layers existed: single-ended
    if isinstance(d, dict):
        for field, copy in PART_COPIES.items():  # the run's own copy of a characterised part, wherever it was
            if _part_file(d.get(field)) and (Path(run_dir) / copy).is_file():
                d[field] = str((Path(run_dir) / copy).resolve())
    return TrainConfig.from_dict(d, where=str(path)).validate()


def read_parsed(path: Path, parse, parse_error, error, missing: str, bad: str):
    """``parse`` of a text file's contents, or one ``error``: ``missing`` when there is no such file, ``bad``
    (formatted with path and exc) when it does not parse."""
    path = Path(path)
    if not path.is_file():
        raise error(missing)
    try:
        return parse(path.read_text())
    except (parse_error, UnicodeDecodeError) as exc:
        raise error(bad.format(path=path, exc=exc)) from None


def save_checkpoint(run_dir: Path, cfg, backend, trainer, history: list, position: dict | None = None) -> None:
    """``position``: inside an epoch, the steps done, the running loss/correct counts and seconds so far."""
    meta, arrays = type(backend).network_to_data(backend.network)
    state = trainer.state()
    for i, v in enumerate(state["velocity"]):
        arrays[f"velocity_{i}"] = v
    for i, d in enumerate(state["d2d"]):
        if d is not None:
            arrays[f"d2d_{i}"] = d
    info = {"format": FORMAT, "backend": cfg.backend, "config_hash": config_hash(cfg),
            "shapes": parameter_shapes(backend.network),
            "network": meta, "epoch": state["epoch"], "steps": state["steps"], "rng": state["rng"], "g_ref": state["g_ref"],
            "beta_abs": state["beta_abs"], "g_max": trainer.device.g_max if trainer.device else None,
            "lr": trainer.lr[:len(trainer.lr) // 2], "history": history, "position": position,
            "backend_state": backend.state()}
    arrays["info"] = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(Path(run_dir) / CHECKPOINT, buf.getvalue())


def load_checkpoint(run_dir: Path, cfg=None):
    """(network, trainer state, history) of a run; checked against its config (``cfg``: config.json's)."""
    run_dir = Path(run_dir)
    cfg = cfg if cfg is not None else load_config(run_dir)
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise RunError(f"{run_dir} has no {CHECKPOINT} yet: its training ended or was stopped before the first one "
                       f"(or is still running); train it from its config with: eqprop train --resume {run_dir}")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        info = json.loads(arrays.pop("info").tobytes().decode())
    except Exception as e:  # zip/pickle/JSON errors of a truncated or foreign file
        raise RunError(f"{path} is not a readable eqprop checkpoint ({type(e).__name__}: {e}); restore it, or "
                       "start a new run") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise RunError(f"{path} was written by another version of eqprop-hw (format {info.get('format')!r}, this "
                       f"version reads {FORMAT}); retrain, or use the version that wrote it")
    if info.get("backend") != cfg.backend or info.get("config_hash") != config_hash(cfg):
        raise RunError(f"{path} does not belong to {run_dir / CONFIG} (the config was edited, or the checkpoint "
                       "copied from another run); restore the run's own config.json or checkpoint.npz")
    cls = backends.get(cfg.backend).load()
    try:
        net = cls.network_from_data(info["network"], arrays)
        n_params = len(info["shapes"])
        state = {"velocity": [arrays[f"velocity_{i}"] for i in range(n_params)],
                 "d2d": [arrays.get(f"d2d_{i}") for i in range(n_params)],
                 "epoch": info["epoch"], "steps": info.get("steps", 0), "rng": info["rng"], "g_ref": info["g_ref"],
                 "beta_abs": info["beta_abs"],
                 "g_max": info["g_max"], "position": info.get("position"), "lr": info["lr"],
                 "backend_state": info.get("backend_state") or {}}
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path} is incomplete or corrupt ({type(e).__name__}: {e}); restore it or start a new "
                       "run") from None
    shapes = parameter_shapes(net)
    if shapes != info["shapes"] or [list(v.shape) for v in state["velocity"]] != shapes:
        raise RunError(f"{path} holds arrays of shapes {shapes} but records {info['shapes']}; it is corrupt")
    return net, state, info["history"]


def parameter_shapes(net) -> list:
    """Shapes of a network's parameter arrays, weights then biases (circuits and the Hopfield reference)."""
    return [list(p.shape) for p in list(net.weights) + list(net.biases)]


@contextmanager
def held_signals():
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP wait until the block has run: files written together (an epoch's checkpoint
    and its metrics) stay level. A signal that came in between is delivered again on leaving, to the handlers that
    were there before, so the command stops as it would have, one step later. Outside the main thread (where Python
    takes no signal handlers) the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        if caught:
            signal.raise_signal(caught[0])


def write_metrics(run_dir: Path, history: list) -> None:
    atomic_write(Path(run_dir) / "metrics.json", json.dumps(history, indent=1).encode())
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    atomic_write(Path(run_dir) / "metrics.csv", buf.getvalue().encode())


def figure(width: float, height: float, n: int = 1):
    """A figure of n side-by-side axes drawn by Agg, without pyplot (whose import and global state a run does
    not need) and with fixed margins (tight_layout measured every label and took a third of the plotting)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.35 / height,
                        wspace=0.3)
    return fig, axes


def write_plots(run_dir: Path, backend, history, x_sample) -> None:
    """Learning curve; for circuits also the conductance and free-phase voltage histograms."""
    run_dir = Path(run_dir)
    if history:
        fig, (ax,) = figure(5, 3.5)
        ep = [h["epoch"] for h in history]
        ax.plot(ep, [1 - h["train_accuracy"] for h in history], "o-", label="train")
        ax.plot(ep, [1 - h["test_accuracy"] for h in history], "s-", label="test")
        ax.set(xlabel="epoch", ylabel="error rate", yscale="log", title="learning curve")
        ax.legend()
        fig.savefig(run_dir / "learning_curve.png", dpi=120)
    weights = backend.parameters()[:len(backend.parameters()) // 2]
    unit, label = (1.0, "weight") if backend.signed else (1e9, "G (nS)")
    fig, axes = figure(4 * len(weights), 3, len(weights))
    for c, ax in enumerate(axes):
        ax.hist(weights[c].ravel() * unit, bins=60, histtype="stepfilled")  # one polygon, not 60 bars
        ax.set(title=f"{label.split()[0]}s, connection {c}", xlabel=label)
    fig.savefig(run_dir / "conductances.png", dpi=120)
    eq = backend.settle(x_sample)
    fig, axes = figure(4 * len(eq.layers), 3, len(eq.layers))
    for c, (ax, v) in enumerate(zip(axes, eq.layers)):
        ax.hist(v.ravel(), bins=60, histtype="stepfilled")
        ax.set(title=f"free-phase states, layer {c + 1}", xlabel="V" if not backend.signed else "unit")
    fig.savefig(run_dir / "voltages.png", dpi=120)
