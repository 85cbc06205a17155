"""SIGKILL an `eqprop train` process at chosen moments, resume it the way a user would, until it finishes.

Shared by tests/test_faults.py (asserts the outcome) and benchmarks/reliability.py --kills (reports it).
A user whose run was killed types `eqprop train --resume RUN` when RUN holds a config.json, and
reruns the original command when the kill came before anything was written; this does the same.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Kill:
    after_s: float  # seconds after the process started
    state: str  # what the run directory held when the kill landed


def cli(*args) -> list:
    return [sys.executable, "-m", "eqprop.experiments.cli", *args]


def checkpoint_info(run_dir: Path) -> dict | None:
    ckpt = run_dir / "checkpoint.npz"
    if not ckpt.exists():
        return None
    with np.load(ckpt) as z:  # safe while the run writes: checkpoints are replaced atomically
        return json.loads(z["info"].tobytes().decode())


def checkpointed_epoch(run_dir: Path) -> int:
    """Epochs completed in the last checkpoint (one written inside an epoch counts the epochs before it)."""
    info = checkpoint_info(run_dir)
    return 0 if info is None else int(info["epoch"])


def run_state(run_dir: Path) -> str:
    """'nothing', 'config only', 'epoch N checkpointed', 'epoch N step S checkpointed' or 'finished'."""
    if (run_dir / "voltages.png").exists():
        return "finished"
    info = checkpoint_info(run_dir)
    if info and info.get("position"):
        return f"epoch {info['epoch'] + 1} step {info['position']['steps']} checkpointed"
    if info:
        return f"epoch {info['epoch']} checkpointed"
    return "config only" if (run_dir / "config.json").exists() else "nothing"


def train_with_kills(train_args: list, run_dir: Path, triggers: list, timeout: float = 300) -> list:
    """One attempt per trigger (new_epochs, delay_s): wait until this attempt has checkpointed new_epochs more
    epochs (0: from the process start; "config": until the run's config.json is there, so the kill lands in the
    first epoch however long the start-up takes; "end": the last epoch, so the kill lands in the final plots;
    "checkpoint": the next checkpoint it writes, inside an epoch or at its end), wait delay_s more,
    SIGKILL it if it still runs, resume. The attempt after the last trigger runs to the end. Returns the
    kills that landed; raises if an attempt fails."""
    kills = []
    for attempt in range(len(triggers) + 1):
        if (run_dir / "config.json").exists():
            cmd = cli("train", "--resume", str(run_dir), "--no-progress")
        else:  # killed before anything was written: the user reruns the command
            cmd = cli("train", *train_args, "--out", str(run_dir), "--no-progress")
        t0, start_epoch = time.monotonic(), checkpointed_epoch(run_dir)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if attempt < len(triggers):
            new_epochs, delay = triggers[attempt]
            if new_epochs == "checkpoint":  # any checkpoint this attempt writes (one inside an epoch, too)
                start_info = checkpoint_info(run_dir)
                while proc.poll() is None and checkpoint_info(run_dir) == start_info:
                    time.sleep(0.005)
                new_epochs = 0
            if new_epochs in ("config", "end"):
                while proc.poll() is None and not (run_dir / "config.json").exists():
                    time.sleep(0.005)
            if new_epochs == "config":
                new_epochs = 0
            if new_epochs == "end":  # the run's epoch count, once its config.json is there
                config = run_dir / "config.json"
                new_epochs = int(json.loads(config.read_text())["epochs"]) - start_epoch if config.exists() else 0
            while new_epochs and proc.poll() is None and checkpointed_epoch(run_dir) < start_epoch + new_epochs:
                time.sleep(0.005)
            try:
                proc.wait(delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                kills.append(Kill(time.monotonic() - t0, run_state(run_dir)))
                continue
        out, err = proc.communicate(timeout=timeout)  # not killed: it must finish, and finish well
        if proc.returncode != 0:
            raise RuntimeError(f"attempt {attempt} ({' '.join(cmd[3:])}) failed with {proc.returncode}:\n{err}")
        if run_state(run_dir) != "finished":
            raise RuntimeError(f"attempt {attempt} exited 0 but {run_dir} is not finished: {run_state(run_dir)}")
        return kills
    raise AssertionError("unreachable")


def final_state(run_dir: Path) -> dict:
    """Everything a finished run's numbers depend on: every array of its checkpoint and its metrics but timings."""
    with np.load(run_dir / "checkpoint.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "info"}
        info = json.loads(z["info"].tobytes().decode())
    for h in info["history"]:
        h.pop("seconds")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for h in metrics:
        h.pop("seconds")
    return {"arrays": arrays, "info": info, "metrics": metrics}


def assert_same_run(a: dict, b: dict) -> None:
    assert a["arrays"].keys() == b["arrays"].keys()
    for k in a["arrays"]:
        np.testing.assert_array_equal(a["arrays"][k], b["arrays"][k], err_msg=k)  # bit for bit, not close
    assert a["info"] == b["info"]
    assert a["metrics"] == b["metrics"]
