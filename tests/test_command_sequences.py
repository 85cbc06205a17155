"""Random sequences of commands (train, resume, evaluate, netlist, report, compare, demo, a SIGKILLed train) against
a few shared directories, one of them a user's: after every step, no file a user or another command owns has
changed, a refused command changed nothing, and a command never succeeds in a directory of another kind."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from reliability_cases import run_cli

TINY = ["--hidden", "8", "--epochs", "1", "--n-train", "64", "--n-test", "32", "--no-progress"]
DIRS = ("a", "b", "u")  # u starts as a user's directory of notes
FILES = ("u/notes.txt", "net.cir", "a/net.cir")


def _snapshot(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.endswith(".lock") and ".partial" not in p.name:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _kind(d: Path) -> str | None:
    """What a directory holds: 'train', another command's kind (its manifest), 'user' files, or None (empty)."""
    # what a killed command may leave (a stale lock, a half-written temporary file) is not anyone's data
    if not d.is_dir() or not [e for e in d.iterdir() if e.name != "run.lock" and not e.name.endswith(".tmp")]:
        return None
    if (d / "config.json").exists():
        return "train"
    manifest = d / ".eqprop-output.json"
    if manifest.exists():
        return json.loads(manifest.read_text())["kind"]
    return "user"


STEPS = st.one_of(
    st.tuples(st.just("train"), st.sampled_from(DIRS)),
    st.tuples(st.just("resume"), st.sampled_from(DIRS)),
    st.tuples(st.just("evaluate"), st.sampled_from(DIRS)),
    st.tuples(st.just("netlist"), st.sampled_from(DIRS), st.sampled_from(FILES)),
    st.tuples(st.just("report"), st.sampled_from(DIRS), st.sampled_from(DIRS)),
    st.tuples(st.just("compare"), st.sampled_from(DIRS)),
    st.tuples(st.just("demo"), st.sampled_from(DIRS)),
    st.tuples(st.just("kill"), st.sampled_from(DIRS), st.floats(0.3, 4.0)),
)


def _argv(step, root: Path):
    kind, target = step[0], root / step[1]
    if kind == "train":
        return ["train", *TINY, "--out", target]
    if kind == "resume":
        return ["train", "--resume", target, "--epochs", "2", "--no-progress"]
    if kind == "evaluate":
        return ["evaluate", target]
    if kind == "netlist":
        return ["netlist", target, "--out", root / step[2]]
    if kind == "report":
        return ["report", target, "--out", root / step[2]]
    if kind == "compare":
        return ["compare", "--backends", "native", "--hidden", "8", "--epochs", "1", "--n-train", "32", "--n-test", "16",
                "--out", target]
    if kind == "demo":
        return ["demo", "--out", target]
    raise AssertionError(kind)


def _writes(step, root: Path) -> Path | None:
    """The directory (or file) a step may change when it succeeds."""
    kind = step[0]
    if kind in ("train", "resume", "compare", "demo", "kill"):
        return root / step[1]
    if kind == "report":
        return root / step[2]
    if kind == "netlist":
        return root / step[2]
    return None


def _kill(step, root: Path) -> None:
    """A train (or resume, where the run exists) SIGKILLed after a random delay; the run it leaves must resume."""
    target = root / step[1]
    resume = _kind(target) == "train"
    args = ["--resume", str(target), "--epochs", "3"] if resume else [*TINY, "--epochs", "3", "--out", str(target)]
    proc = subprocess.Popen([sys.executable, "-m", "eqprop.experiments.cli", "train", *args, "--no-progress"],
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(step[2])
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow  # a few dozen commands and kills: about two minutes
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: minutes of reruns; the failing
# sequence is printed as it was drawn
@given(steps=st.lists(STEPS, min_size=3, max_size=7))
def test_no_command_sequence_changes_what_it_does_not_own(tmp_path_factory, steps):
    root = tmp_path_factory.mktemp("seq")
    (root / "u").mkdir()
    (root / "u" / "notes.txt").write_text("my notes\n")
    (root / "u" / "report.md").write_text("# my report\n")
    user = {k: v for k, v in _snapshot(root).items() if k.startswith("u/")}
    for step in steps:
        if step[0] == "demo" and _kind(root / step[1]) in (None, "demo"):
            continue  # a demo that would run (minutes); the test holds the ones that must be refused
        if step[0] == "kill" and _kind(root / step[1]) not in (None, "train"):
            continue  # a kill of a train that is refused at once proves nothing
        before, kinds = _snapshot(root), {d: _kind(root / d) for d in DIRS}
        if step[0] == "kill":
            _kill(step, root)
            code, err = 0, ""
        else:
            r = run_cli(*_argv(step, root), cwd=root, timeout=600)
            code, err = r.returncode, r.stderr
            assert "Traceback" not in err, (step, err)
        after = _snapshot(root)
        writes = _writes(step, root)
        for name, digest in before.items():
            inside = writes is not None and (root / name == writes or writes in (root / name).parents)
            if after.get(name) != digest:
                assert code == 0 and inside, f"{step}: {name} changed (exit {code}): {err[-300:]}"
        if code == 0 and step[0] in ("train", "compare", "demo", "report") and writes is not None:
            held = kinds.get(writes.name)
            want = {"train": "train", "compare": "compare", "demo": "demo", "report": "report"}[step[0]]
            assert held in (None, want), f"{step} succeeded in a directory holding {held}"
        for name, digest in user.items():
            assert after.get(name) == digest, f"{step}: the user's {name} changed"
        if step[0] == "kill" and _kind(root / step[1]) == "train":
            r = run_cli("train", "--resume", root / step[1], "--epochs", "3", "--no-progress", cwd=root, timeout=600)
            assert r.returncode == 0 or "no such run" in r.stderr, r.stderr
