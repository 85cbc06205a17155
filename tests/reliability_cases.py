"""Bad inputs over every entry point, with what a user must be told. Shared by tests/test_reliability.py
(which asserts every case) and benchmarks/reliability.py (which reports the figures).

A case passes ("clear") when it ends in an error of the expected kind within its deadline, the message
names the problem (all of ``expect``, case-insensitive), a CLI run exits with status 2 and prints no
traceback, an API error is raised from eqprop's own code (not from deep inside a library), and the files
the case marks as precious are byte-for-byte unchanged afterwards ("data lost" otherwise).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

PACKAGE_DIRS = ("circuits", "netlists", "neuromorphic", "backends", "learning", "experiments")


@dataclass
class Case:
    name: str
    category: str
    expect: tuple
    argv: Callable | None = None  # CLI: tmp -> argv after 'eqprop'
    call: Callable | None = None  # API: tmp -> None, must raise
    env: dict = field(default_factory=dict)
    precious: Callable | None = None  # tmp -> files that must survive unchanged
    timeout: float = 120.0

    @property
    def entry(self) -> str:
        return "cli" if self.argv else "api"


@dataclass
class Outcome:
    case: str
    entry: str
    category: str
    status: str  # clear | unclear message | traceback | no error | hang | data lost
    message: str
    seconds: float


# ---------------------------------------------------------------- files the cases need
def _tune_file(tmp: Path, body: str) -> Path:
    f = tmp / "space.toml"
    f.write_text(f'[tune]\nout = "{tmp / "tune-out"}"\ntrials = 2\n' + body)
    return f


def _npz(tmp: Path, name="d.npz", **override):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 8, 8)).astype(np.uint8), "y_train": rng.integers(0, 10, 20),
              "x_test": rng.integers(0, 256, (10, 8, 8)).astype(np.uint8), "y_test": rng.integers(0, 10, 10)}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp / name
    np.savez(path, **arrays)
    return path


def _truncated_npz(tmp: Path):
    path = _npz(tmp, "t.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _idx_dir(tmp: Path, truncate=False):
    d = tmp / "idx"
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)

    def write(name, arr):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
        raw = header + arr.astype(np.uint8).tobytes()
        if truncate and name.startswith("train-images"):
            raw = raw[: len(raw) - 7]
        with gzip.open(d / (name + ".gz"), "wb") as f:
            f.write(raw)
    write("train-images-idx3-ubyte", rng.integers(0, 256, (5, 4, 4)))
    write("train-labels-idx1-ubyte", rng.integers(0, 10, 5))
    write("t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 4, 4)))
    write("t10k-labels-idx1-ubyte", rng.integers(0, 10, 3))
    return d


def _finished_run(tmp: Path) -> Path:
    """A real (tiny) run directory, made once per tmp."""
    run = tmp / "run"
    if not (run / "checkpoint.npz").exists():
        from eqprop.learning.runs import train
        from eqprop.learning.trainer import TrainConfig
        train(TrainConfig(hidden=[8], epochs=1, n_train=100, n_test=50), run, progress=False, log=lambda *_: None)
    return run


def _notes(tmp: Path, name: str) -> Path:
    f = tmp / name
    if not f.exists():
        f.write_text("a user's notes\n")
    return f


def api_graph_g_inv_without_gain(tmp):
    import networkx as nx

    from eqprop.circuits.network import GraphNetwork

    g = nx.Graph()
    g.add_node("in0", role="input", feature=0, sign=1.0)
    g.add_node("out0", role="output", readout=(0, 1.0))
    g.add_edge("in0", "out0", g_inv=1e-6)
    GraphNetwork(g, n_features=1, readout="nodes")


def _differential_run(tmp: Path) -> Path:
    """A tiny run with differential hidden layers (the default for two hidden layers)."""
    run = tmp / "pairs"
    if not (run / "checkpoint.npz").exists():
        from eqprop.learning.runs import train
        from eqprop.learning.trainer import TrainConfig
        train(TrainConfig(hidden=[6, 6], epochs=1, n_train=60, n_test=30), run, progress=False, log=lambda *_: None)
    return run


def _corrupt_config_run(tmp: Path) -> Path:
    run = tmp / "corrupt"
    run.mkdir(exist_ok=True)
    (run / "config.json").write_text('{"dataset": "digits", "epochs": ')
    (run / "metrics.json").write_text("[]")
    return run


def _notes_dir(tmp: Path) -> Path:
    """A user's directory with a file of their own in it."""
    d = tmp / "mine"
    d.mkdir(exist_ok=True)
    (d / "NOTES.txt").write_text("notes the toolkit must never delete\n")
    return d


def _tampered_run(tmp: Path, edit) -> Path:
    """A copy of the finished run whose files were edited by hand."""
    import shutil
    src = _finished_run(tmp)
    dst = tmp / f"tampered-{edit}"
    if not dst.exists():
        shutil.copytree(src, dst)
        cfg = json.loads((dst / "config.json").read_text())
        if edit == "hidden":
            cfg["hidden"] = [9]
        elif edit == "diode":
            cfg["diode"] = "pwl"
        (dst / "config.json").write_text(json.dumps(cfg))
        if edit == "garbage":
            (dst / "checkpoint.npz").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    return dst


def _foreign_checkpoint_run(tmp: Path) -> Path:
    """A run whose checkpoint was copied in from a run of another size."""
    import shutil
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import TrainConfig
    other = tmp / "other-size"
    if not (other / "checkpoint.npz").exists():
        train(TrainConfig(hidden=[5], epochs=1, n_train=60, n_test=30), other, progress=False, log=lambda *_: None)
    dst = tmp / "mixed"
    if not dst.exists():
        shutil.copytree(_finished_run(tmp), dst)
        shutil.copy(other / "checkpoint.npz", dst / "checkpoint.npz")
    return dst


def _hopfield_run(tmp: Path) -> Path:
    run = tmp / "hopfield"
    if not (run / "checkpoint.npz").exists():
        from eqprop.learning.runs import train
        from eqprop.learning.trainer import TrainConfig
        train(TrainConfig(backend="hopfield", hidden=[8], epochs=1, n_train=60, n_test=30), run, progress=False,
              log=lambda *_: None)
    return run


def _sweep(tmp: Path, text: str) -> Path:
    path = tmp / "sweep.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- API cases
def _net():
    from eqprop.circuits import layered
    return layered([8, 6, 4], seed=0)


def _shockley_net():
    from eqprop.circuits import ShockleyDiode, layered
    return layered([8, 6, 4], diode=ShockleyDiode(i_s=1e-7), rails=(-0.05, 0.05), seed=0)


def api_solve_nan(tmp):
    from eqprop.circuits import solve
    x = np.ones((3, 4))
    x[1, 2] = np.nan
    solve(_net(), x)


def api_solve_shape(tmp):
    from eqprop.circuits import solve
    solve(_net(), np.ones((3, 5)))


def api_solve_inf_target(tmp):
    from eqprop.circuits import solve
    y = np.zeros((3, 2))
    y[0, 0] = np.inf
    solve(_net(), np.ones((3, 4)), y, beta=1e-7)


def api_negative_conductance(tmp):
    from eqprop.circuits import solve
    net = _net()
    net.weights[0][2, 3] = -1e-7
    solve(net, np.ones((2, 4)))


def api_zero_conductance_node(tmp):
    from eqprop.circuits import solve
    net = _net()
    net.weights[1][:] = 0.0
    net.weights[0][:, 1] = 0.0
    net.biases[0][:, 1] = 0.0
    solve(net, np.ones((2, 4)))


def api_unknown_diode(tmp):
    from eqprop.circuits import layered
    layered([8, 6, 4], diode="zener")


def api_unknown_device_model(tmp):
    from eqprop.learning.programming import preset
    preset("flash", 1e-6)


def api_netlist_nan(tmp):
    from eqprop.netlists import to_netlist
    x = np.ones((1, 4))
    x[0, 0] = np.nan
    to_netlist(_shockley_net(), x)


def api_pool_no_workers(tmp):
    from eqprop.netlists import SpicePool
    SpicePool(_shockley_net(), workers=0)


def api_pool_after_close(tmp):
    from eqprop.netlists import SpicePool
    pool = SpicePool(_shockley_net(), workers=1)
    pool.close()
    pool.equilibrium(np.ones((1, 4)))


def api_spice_backend_after_close(tmp):
    from eqprop.backends.spice import SpiceBackend
    backend = SpiceBackend(_shockley_net(), workers=1)
    backend.close()
    backend.settle(np.ones((1, 4)))


def api_float_and_int_splits(tmp):
    from eqprop.learning.data import load
    rng = np.random.default_rng(0)
    load("mnist", str(_npz(tmp, "mixed.npz", x_train=rng.uniform(0, 1, (20, 8, 8)))))


def api_spice_wrong_shape(tmp):
    from eqprop.netlists import NgspiceCircuit
    NgspiceCircuit(_shockley_net()).equilibrium(np.ones((2, 7)))


def api_spice_bad_options(tmp):
    from eqprop.netlists import SpiceOptions
    SpiceOptions(reltol=-1e-3)


def api_spice_does_not_converge(tmp):
    """Every ngspice analysis fails (no sweep settles, every rescue fails): the sample must be named.
    ngspice itself converges on every circuit we could build (gmin and source stepping rescue it), so
    the failure is injected at the one place ngspice reports it."""
    from eqprop.netlists import NgspiceCircuit
    circuit = NgspiceCircuit(_shockley_net())
    real_run, real_sweep = NgspiceCircuit._analyse, NgspiceCircuit._sweep
    NgspiceCircuit._analyse = lambda self, text, card: False
    NgspiceCircuit._sweep = lambda self, x, y, beta, repeats: (np.empty((0, repeats, len(self.free_nodes))),
                                                               np.empty(0))
    try:
        circuit.equilibrium(np.ones((2, 4)))
    finally:
        NgspiceCircuit._analyse, NgspiceCircuit._sweep = real_run, real_sweep


def api_config_unknown_field(tmp):
    from eqprop.learning.trainer import TrainConfig
    TrainConfig.from_dict({"dataset": "digits", "hiden": [10]})


def api_config_bad_nudging(tmp):
    from eqprop.learning.trainer import TrainConfig
    TrainConfig(nudging="sideways").validate()


def api_data_truncated_idx(tmp):
    from eqprop.learning.data import load
    load("mnist", str(_idx_dir(tmp, truncate=True)))


def api_netlist_names_differ_in_case(tmp):
    import networkx as nx

    from eqprop.circuits import GraphNetwork
    from eqprop.netlists import to_netlist
    g = nx.Graph()
    g.add_node("x", role="input", feature=0, sign=1.0)
    g.add_node("H", role="hidden")
    g.add_node("h", role="output", readout=(0, 1.0))
    g.add_edge("x", "H", g=1e-6)
    g.add_edge("H", "h", g=1e-6)
    to_netlist(GraphNetwork(g, n_features=1, readout="nodes"), np.ones((1, 1)))


def api_data_idx_header_overflows(tmp):
    from eqprop.learning.data import read_idx
    path = tmp / "bad-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + b"".join(n.to_bytes(4, "big") for n in (0, 256, 2**31, 2**31)))
    read_idx(path)


def api_data_missing(tmp):
    from eqprop.learning.data import load
    load("mnist", str(tmp / "nowhere.npz"))


def api_lava_nan(tmp):
    from eqprop.backends.lava import LavaBackend
    backend = LavaBackend(_net(), timeout=60)
    try:
        backend.settle(np.full((2, 4), np.nan))
    finally:
        backend.close()


def api_lava_bad_alpha(tmp):
    from eqprop.neuromorphic import LavaSession
    LavaSession(alpha=2.0)


def api_lava_model_fails_in_its_process(tmp):
    """A ProcessModel that fails inside Lava's runtime (targets of the wrong width, past validation)."""
    from eqprop.circuits.serialize import network_to_data
    from eqprop.neuromorphic import LavaSession
    net = _net()
    meta, arrays = network_to_data(net)
    with LavaSession(timeout=60) as s:
        s._call("settle", (meta, arrays, net.encode_inputs(np.ones((2, 4))), np.zeros((2, 5)), 1e-7, 1e-10, 200, 50))


def api_lava_stalls(tmp):
    from eqprop.neuromorphic import LavaSession
    with LavaSession(timeout=3) as s:
        s._call("sleep", 30)


def api_lava_does_not_settle(tmp):
    from eqprop.backends.lava import LavaBackend
    backend = LavaBackend(_net(), max_steps=4, chunk=2, timeout=60)
    try:
        backend.settle(np.ones((2, 4)))
    finally:
        backend.close()


# ---------------------------------------------------------------- the table
def cases() -> list:
    from eqprop.circuits.errors import InputError  # noqa: F401  (the kinds a user sees)

    run = _finished_run
    C = Case
    return [
        # malformed configs (CLI flags, config.json, sweep files)
        C("train --epochs 0", "config", ("epochs", "positive"), argv=lambda t: ["train", "--epochs", "0", "--out", str(t / "r0")]),
        C("train --hidden 0", "config", ("hidden",), argv=lambda t: ["train", "--hidden", "0", "--out", str(t / "r1")]),
        C("train --beta nan", "config", ("beta", "finite"), argv=lambda t: ["train", "--beta", "nan", "--out", str(t / "r2")]),
        C("train --lr -1", "config", ("lr",), argv=lambda t: ["train", "--lr", "-1", "--out", str(t / "r3")]),
        C("train --momentum 1.5", "config", ("momentum",), argv=lambda t: ["train", "--momentum", "1.5", "--out", str(t / "r4")]),
        C("train --beta 1e300 (no equilibrium mid-run)", "config", ("no equilibrium", "--beta"),
          argv=lambda t: ["train", "--beta", "1e300", "--hidden", "8", "--epochs", "1", "--n-train", "50",
                          "--out", str(t / "r4b")]),
        C("train --checkpoint-every -5", "config", ("--checkpoint-every", ">= 0"),
          argv=lambda t: ["train", "--checkpoint-every", "-5", "--out", str(t / "r16")]),
        C("train --deadline on a backend without ngspice", "config", ("--deadline", "runs none"),
          argv=lambda t: ["train", "--deadline", "60", "--out", str(t / "r18")]),
        C("train --backend spice past its --deadline", "ngspice", ("deadline of 1e-07 s", "--deadline"),
          argv=lambda t: ["train", "--backend", "spice", "--deadline", "1e-7", "--hidden", "8", "--epochs", "1",
                          "--n-train", "40", "--n-test", "20", "--workers", "1", "--out", str(t / "r19")]),
        C("tune without a validation split", "config", ("add validation = N",),
          argv=lambda t: ["tune", str(_tune_file(t, "[train]\nhidden = [8]\n[search]\nbeta = { low = 0.01, high = 0.1 }\n"))]),
        C("tune: a choice no trial can train", "config", ("batch_size",),
          argv=lambda t: ["tune", str(_tune_file(t, "[train]\nvalidation = 100\n[search]\nbatch_size = { choices = [16, 0] }\n"))]),
        C("train --rails 0.1 -0.1", "config", ("rails",), argv=lambda t: ["train", "--rails", "0.1", "-0.1", "--out", str(t / "r5")]),
        C("train --device flash", "device", ("invalid choice", "flash"), argv=lambda t: ["train", "--device", "flash"]),
        C("train --diode zener", "device", ("invalid choice", "zener"), argv=lambda t: ["train", "--diode", "zener"]),
        C("train --epochs ten", "config", ("--epochs", "'ten' is not an integer"), argv=lambda t: ["train", "--epochs", "ten"]),
        C("resume with corrupt config.json", "config", ("not valid json",),
          argv=lambda t: ["train", "--resume", str(_corrupt_config_run(t))],
          precious=lambda t: [t / "corrupt" / "config.json", t / "corrupt" / "metrics.json"]),
        C("resume a directory that is not a run", "config", ("no config.json",),
          argv=lambda t: ["train", "--resume", str(t)]),
        C("train into an existing run", "config", ("already holds a run",),
          argv=lambda t: ["train", "--epochs", "1", "--hidden", "8", "--out", str(run(t))],
          precious=lambda t: [run(t) / "checkpoint.npz", run(t) / "config.json", run(t) / "metrics.json"]),
        C("train --gain, one too many", "config", ("gain", "one per hidden layer"),
          argv=lambda t: ["train", "--hidden", "8", "8", "--gain", "2", "3", "4", "--out", str(t / "r17")]),
        C("train --hidden-pairs on where the backend has none", "config", ("single-ended", "hidden-pairs"),
          argv=lambda t: ["train", "--backend", "loihi", "--hidden", "8", "8", "--hidden-pairs", "on",
                          "--out", str(t / "r18")]),
        C("sweep: hidden_pairs not a boolean", "config", ("hidden_pairs", "true, false"),
          argv=lambda t: ["sweep", str(_sweep(t, "[base]\nhidden = [8, 8]\n[grid]\nhidden_pairs = ['yes']\n"))]),
        C("netlist of a differential run over an existing file", "runs", ("exists", "--force"),
          argv=lambda t: ["netlist", str(_differential_run(t)), "--out", str(_notes(t, "pairs.cir"))],
          precious=lambda t: [_differential_run(t) / "checkpoint.npz", t / "pairs.cir"]),
        C("graph edge from an inverting output without a gain", "conductance", ("g_inv", "no gain"),
          call=api_graph_g_inv_without_gain),
        C("sweep: not TOML", "config", ("not valid toml",), argv=lambda t: ["sweep", str(_sweep(t, "[grid\nbeta = 1"))]),
        C("sweep: unknown field", "config", ("unknown field", "hiden"),
          argv=lambda t: ["sweep", str(_sweep(t, "[base]\nhiden = [3]\n[grid]\nbeta = [0.1]\n"))]),
        C("sweep: bad value in the grid", "config", ("epochs", "positive"),
          argv=lambda t: ["sweep", str(_sweep(t, "[grid]\nepochs = [1, 0]\n"))]),
        C("sweep: grid value not a list", "config", ("beta", "list"),
          argv=lambda t: ["sweep", str(_sweep(t, "[grid]\nbeta = 0.1\n"))]),
        C("sweep: empty grid", "config", ("grid", "empty"), argv=lambda t: ["sweep", str(_sweep(t, "[base]\nepochs = 1\n"))]),
        C("sweep: missing file", "config", ("does not exist",), argv=lambda t: ["sweep", str(t / "none.toml")]),
        C("evaluate: not a run", "config", ("no such run directory",), argv=lambda t: ["evaluate", str(t / "nothing")]),
        C("--cluster with the native backend", "config", ("cluster", "spice"),
          argv=lambda t: ["train", "--cluster", "ray", "--out", str(t / "r6")]),
        C("gradcheck --spice 1e-3", "config", ("reltol:settle_tol",), argv=lambda t: ["gradcheck", "--spice", "1e-3"]),
        # wrong shapes, NaN / inf, conductances, devices (Python API)
        C("solve: NaN input", "nan/inf", ("nan", "sample 1"), call=api_solve_nan),
        C("solve: inf target", "nan/inf", ("inf",), call=api_solve_inf_target),
        C("solve: wrong input width", "shapes", ("4",), call=api_solve_shape),
        C("solve: negative conductance", "conductance", ("negative", "weights[0]"), call=api_negative_conductance),
        C("solve: node with no conductance", "conductance", ("conductance",), call=api_zero_conductance_node),
        C("layered: unknown diode", "device", ("zener",), call=api_unknown_diode),
        C("device model: unknown preset", "device", ("flash",), call=api_unknown_device_model),
        C("config: unknown field", "config", ("hiden",), call=api_config_unknown_field),
        C("config: unknown nudging", "config", ("nudging", "sideways"), call=api_config_bad_nudging),
        # SPICE
        C("netlist: NaN input", "nan/inf", ("nan",), call=api_netlist_nan),
        C("SpicePool(workers=0)", "config", ("workers", ">= 1"), call=api_pool_no_workers),
        C("SpicePool used after close()", "api misuse", ("closed",), call=api_pool_after_close),
        C("spice backend used after close()", "api misuse", ("closed",), call=api_spice_backend_after_close),
        C("data: float [0, 1] train split with 0..255 test split", "data", ("float", "0..255"),
          call=api_float_and_int_splits),
        C("netlist: node names differing only in case", "netlist", ("differ only in case",),
          call=api_netlist_names_differ_in_case),
        C("ngspice: wrong input width", "shapes", ("4",), call=api_spice_wrong_shape),
        C("ngspice: negative reltol", "config", ("reltol",), call=api_spice_bad_options),
        C("ngspice: does not converge", "convergence", ("sample",), call=api_spice_does_not_converge, timeout=180),
        C("train --backend hopfield --diode shockley", "device", ("ideal diodes only",),
          argv=lambda t: ["train", "--backend", "hopfield", "--diode", "shockley", "--out", str(t / "r7")]),
        C("ngspice missing", "ngspice", ("libngspice", "apt-get install"),
          argv=lambda t: ["train", "--backend", "spice", "--diode", "shockley", "--out", str(t / "r8")],
          env={"NGSPICE_LIBRARY_PATH": "/nonexistent/libngspice.so"}),
        # data files
        C("data: missing file", "data", ("does not exist",),
          argv=lambda t: ["train", "--dataset", "mnist", "--data", str(t / "none.npz"), "--out", str(t / "r9")]),
        C("data: truncated npz", "data", ("not a readable .npz",),
          argv=lambda t: ["train", "--dataset", "mnist", "--data", str(_truncated_npz(t)), "--out", str(t / "r10")]),
        C("data: npz without y_test", "data", ("lacks", "y_test"),
          argv=lambda t: ["train", "--dataset", "mnist", "--data", str(_npz(t, "m.npz", y_test=None)), "--out", str(t / "r11")]),
        C("data: NaN pixels", "data", ("nan",),
          argv=lambda t: ["train", "--dataset", "mnist", "--out", str(t / "r12"), "--data",
                          str(_npz(t, "n.npz", x_train=np.full((20, 8, 8), np.nan)))]),
        C("data: labels out of range", "data", ("labels", "0..9"),
          argv=lambda t: ["train", "--dataset", "mnist", "--out", str(t / "r13"), "--data",
                          str(_npz(t, "l.npz", y_train=np.arange(20)))]),
        C("data: images and labels disagree", "data", ("do not match",),
          argv=lambda t: ["train", "--dataset", "mnist", "--out", str(t / "r14"), "--data",
                          str(_npz(t, "s.npz", y_train=np.zeros(19, int)))]),
        C("data (npz): one class only", "data", ("at least two classes",),
          argv=lambda t: ["train", "--dataset", "npz", "--out", str(t / "r15"), "--data",
                          str(_npz(t, "one.npz", y_train=np.zeros(20, int), y_test=np.zeros(10, int)))]),
        C("data (npz): inf features", "data", ("nan/inf",),
          argv=lambda t: ["train", "--dataset", "npz", "--out", str(t / "r16"), "--data",
                          str(_npz(t, "inf.npz", x_train=np.full((20, 5), np.inf), x_test=np.zeros((10, 5))))]),
        C("data (npz): negative labels", "data", ("class numbers 0..k-1",),
          argv=lambda t: ["train", "--dataset", "npz", "--out", str(t / "r17"), "--data",
                          str(_npz(t, "neg.npz", y_train=-np.ones(20, int)))]),
        C("data (npz): a directory", "data", ("is a directory",),
          argv=lambda t: ["train", "--dataset", "npz", "--out", str(t / "r18"), "--data", str(t)]),
        C("data: truncated IDX", "data", ("truncated",), call=api_data_truncated_idx),
        C("data: missing path (API)", "data", ("does not exist",), call=api_data_missing),
        C("data: IDX header with an impossible shape", "data", ("corrupt",), call=api_data_idx_header_overflows),
        # Lava
        C("lava: NaN input", "nan/inf", ("nan",), call=api_lava_nan),
        C("lava: alpha out of range", "config", ("alpha",), call=api_lava_bad_alpha),
        C("lava: a model fails in Lava's process", "lava", ("could not broadcast",), call=api_lava_model_fails_in_its_process),
        C("lava: a run stalls past its deadline", "lava", ("did not finish within 3 s",), call=api_lava_stalls),
        C("lava: does not settle in max_steps", "lava", ("did not settle", "max_steps"), call=api_lava_does_not_settle),
        # issue 14: run directories, one-line errors, silent wrong results
        C("demo --out a directory with a user's file", "data loss", ("did not write", "notes.txt"),
          argv=lambda t: ["demo", "--epochs", "1", "--no-compare", "--out", str(_notes_dir(t))],
          precious=lambda t: [t / "mine" / "NOTES.txt"]),
        C("demo --out . (a working directory)", "data loss", ("did not write",),
          argv=lambda t: ["demo", "--epochs", "1", "--no-compare", "--out", str(_notes_dir(t) / ".")],
          precious=lambda t: [t / "mine" / "NOTES.txt"]),
        C("train --out a directory with a user's file", "data loss", ("not empty", "notes.txt"),
          argv=lambda t: ["train", "--epochs", "1", "--out", str(_notes_dir(t))],
          precious=lambda t: [t / "mine" / "NOTES.txt"]),
        C("train --out a file", "config", ("is a file",),
          argv=lambda t: ["train", "--epochs", "1", "--out", str(_notes_dir(t) / "NOTES.txt")],
          precious=lambda t: [t / "mine" / "NOTES.txt"]),
        C("train --out in a directory that cannot be written (sysfs)", "config", ("cannot create", "/sys/eqprop-run"),
          argv=lambda t: ["train", "--epochs", "1", "--out", "/sys/eqprop-run"]),
        C("evaluate a run whose config.json was edited (hidden)", "runs", ("does not belong",),
          argv=lambda t: ["evaluate", str(_tampered_run(t, "hidden"))]),
        C("resume a run whose config.json was edited (diode)", "runs", ("does not belong",),
          argv=lambda t: ["train", "--resume", str(_tampered_run(t, "diode")), "--epochs", "2"],
          precious=lambda t: [t / "tampered-diode" / "checkpoint.npz"]),
        C("netlist from a run with a checkpoint of another size", "runs", ("does not belong",),
          argv=lambda t: ["netlist", str(_foreign_checkpoint_run(t)), "--out", str(t / "n.cir")]),
        C("evaluate a garbage checkpoint.npz", "runs", ("not a readable eqprop checkpoint",),
          argv=lambda t: ["evaluate", str(_tampered_run(t, "garbage"))]),
        C("train --hidden 16 16 --lr 1 2 3 4", "config", ("lr", "3 for hidden"),
          argv=lambda t: ["train", "--hidden", "16", "16", "--lr", "1", "2", "3", "4", "--out", str(t / "h2")]),
        C("resume with a changed flag", "runs", ("cannot change", "--hidden"),
          argv=lambda t: ["train", "--resume", str(run(t)), "--hidden", "12"],
          precious=lambda t: [run(t) / "checkpoint.npz", run(t) / "config.json"]),
        C("resume with fewer epochs than done", "runs", ("epochs",),
          argv=lambda t: ["train", "--resume", str(run(t)), "--epochs", "0"]),
        C("netlist --count 0", "config", ("--count", ">= 1"), argv=lambda t: ["netlist", str(run(t)), "--count", "0"]),
        C("netlist --sample -5", "config", ("--sample", ">= 0"), argv=lambda t: ["netlist", str(run(t)), "--sample", "-5"]),
        C("netlist --out a directory", "config", ("is a directory",),
          argv=lambda t: ["netlist", str(run(t)), "--out", str(t)]),
        C("compare --hidden 0", "config", ("--hidden", ">= 1"), argv=lambda t: ["compare", "--hidden", "0"]),
        C("physics --samples 0", "config", ("--samples", ">= 1"), argv=lambda t: ["physics", "--samples", "0"]),
        C("onchip --samples 0", "config", ("--samples", ">= 1"), argv=lambda t: ["onchip", "--samples", "0"]),
        C("physics --sizes 64-x-10", "config", ("--sizes", "64-x-10"), argv=lambda t: ["physics", "--sizes", "64-x-10"]),
        C("physics --capacitance -1e-12", "config", ("--capacitance", "> 0"),
          argv=lambda t: ["physics", "--capacitance", "-1e-12"]),
        C("physics --wire-capacitance without --wire", "config", ("--wire-capacitance", "--wire OHMS"),
          argv=lambda t: ["physics", "--wire-capacitance", "1e-15"]),
        C("physics --wire-capacitance 1 F", "config", ("--wire-capacitance", "range of on-chip"),
          argv=lambda t: ["physics", "--wire", "100", "--wire-capacitance", "1"]),
        C("train --lr 0", "config", ("lr", "nothing would train"), argv=lambda t: ["train", "--lr", "0", "--out", str(t / "z")]),
        C("train --diode-is with ideal diodes", "config", ("diode_is", "--diode shockley"),
          argv=lambda t: ["train", "--diode-is", "1e-7", "--out", str(t / "di")]),
        C("train --fixed-point (replaced by the loihi backend)", "config", ("fixed_point", "--backend loihi"),
          argv=lambda t: ["train", "--fixed-point", "--out", str(t / "fp")]),
        C("physics on a Hopfield run", "runs", ("digital model",),
          argv=lambda t: ["physics", str(_hopfield_run(t))]),
        C("netlist of a Hopfield run", "runs", ("digital model",),
          argv=lambda t: ["netlist", str(_hopfield_run(t)), "--out", str(t / "h.cir")]),
        C("loihi on a Hopfield run", "runs", ("digital model",),
          argv=lambda t: ["loihi", str(_hopfield_run(t))]),
        C("cosim of a Hopfield run", "runs", ("digital model",),
          argv=lambda t: ["cosim", "--run", str(_hopfield_run(t))]),
        C("transistors --run a Hopfield run", "runs", ("digital model",),
          argv=lambda t: ["transistors", "--run", str(_hopfield_run(t)), "--out", str(t / "tr")]),
        C("compare --out a file", "config", ("is a file",),
          argv=lambda t: ["compare", "--out", str(_notes_dir(t) / "NOTES.txt")],
          precious=lambda t: [t / "mine" / "NOTES.txt"]),
        C("train a network too big for memory", "config", ("gib", "smaller --hidden"),
          argv=lambda t: ["train", "--hidden", "2000000", "--out", str(t / "big")]),
        C("train --backend loihi --diode shockley", "lava", ("ideal", "pwl"),
          argv=lambda t: ["train", "--backend", "loihi", "--diode", "shockley", "--epochs", "1",
                          "--n-train", "20", "--n-test", "10", "--out", str(t / "r15")]),
        C("train integer on-chip neurons with PWL diodes", "config", ("ideal diodes only", "--neurons float"),
          argv=lambda t: ["train", "--backend", "lava-onchip-int", "--neurons", "integer", "--diode", "pwl",
                          "--epochs", "1", "--n-train", "16", "--out", str(t / "r16")]),
        C("train --neurons on a backend without a choice", "config", ("not a neuron kind", "lava-onchip-int"),
          argv=lambda t: ["train", "--neurons", "integer", "--epochs", "1", "--out", str(t / "r17")]),
    ]


# ---------------------------------------------------------------- running a case
def _digest(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).exists() else None for p in paths}


class _Deadline(Exception):
    pass


def _alarm(signum, frame):
    raise _Deadline()


def run_cli(*argv, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``eqprop ARGV`` in this process, as ``subprocess.run(..., capture_output=True, text=True)`` would report it
    (the tests' way to run a command without an interpreter start per call)."""
    argv = [str(a) for a in argv]
    code, out, err = _cli_in_process(argv, Path(cwd) if cwd else Path.cwd(), timeout, with_stdout=True)
    return subprocess.CompletedProcess(argv, code, out, err)


def _cli_in_process(argv, tmp: Path, seconds: float, with_stdout: bool = False):
    """``eqprop ARGV`` run by ``cli.main`` in this process (no interpreter start-up and imports per case): its
    exit code and stderr (and stdout), an escaping exception printed as the traceback a user would see. Signal
    handlers, stdout and the working directory are put back afterwards."""
    import contextlib
    import io

    from eqprop.experiments import cli

    err, out = io.StringIO(), io.StringIO()
    handlers, cwd = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}, os.getcwd()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(seconds))
    try:
        os.chdir(tmp)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse's own errors
                code = exc.code if isinstance(exc.code, int) else 1
            except _Deadline:
                raise
            except BaseException:
                traceback.print_exc(file=err)
                code = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        for s, h in handlers.items():
            signal.signal(s, h)
        os.chdir(cwd)
    return (code, out.getvalue(), err.getvalue()) if with_stdout else (code, err.getvalue())


def check(case: Case, tmp: Path, in_process: bool = False) -> Outcome:
    """``in_process``: run a CLI case by ``cli.main`` here when it sets no environment (the test suite does, to
    save an interpreter start per case); the benchmark runs every case as its own ``eqprop`` process."""
    tmp.mkdir(parents=True, exist_ok=True)
    argv = case.argv(tmp) if case.argv else None  # may write the files the case needs
    precious = case.precious(tmp) if case.precious else []
    before = _digest(precious)
    t0 = time.perf_counter()
    if argv:
        try:
            if in_process and not case.env:
                returncode, stderr = _cli_in_process(argv, tmp, case.timeout)
            else:
                env = {**os.environ, **case.env}
                p = subprocess.run([sys.executable, "-m", "eqprop.experiments.cli", *argv], capture_output=True,
                                   text=True, timeout=case.timeout, env=env, cwd=tmp)
                returncode, stderr = p.returncode, p.stderr
        except (subprocess.TimeoutExpired, _Deadline):
            return Outcome(case.name, "cli", case.category, "hang", f"no answer in {case.timeout:g} s",
                           time.perf_counter() - t0)
        p = subprocess.CompletedProcess(argv, returncode, "", stderr)
        message = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        if "Traceback" in p.stderr:
            status = "traceback"
        elif p.returncode == 0:
            status = "no error"
        elif p.returncode != 2 or not all(k.lower() in p.stderr.lower() for k in case.expect):
            status = "unclear message"
        else:
            status = "clear"
    else:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(int(case.timeout))
        try:
            case.call(tmp)
            status, message = "no error", ""
        except _Deadline:
            status, message = "hang", f"no answer in {case.timeout:g} s"
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            frames = traceback.extract_tb(exc.__traceback__)
            ours = bool(frames) and any(f"{os.sep}{d}{os.sep}" in frames[-1].filename for d in PACKAGE_DIRS)
            if not ours:
                status = "traceback"  # raised deep inside a library: the user sees its words, not ours
            elif not all(k.lower() in str(exc).lower() for k in case.expect):
                status = "unclear message"
            else:
                status = "clear"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    if precious and _digest(precious) != before:
        status = "data lost"
    return Outcome(case.name, case.entry, case.category, status, message, time.perf_counter() - t0)
