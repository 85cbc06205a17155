"""Running a netlist file with the ngspice command-line program (``ngspice -b``) and reading what it prints.

This is the path a user takes by hand, so the tests take it too: a written .cir file must give the
same operating point in the standalone program as in the shared library.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .ngspice import INSTALL_HINT, SpiceError, SpiceUnavailable

_SCALAR = re.compile(r"^\s*(v\([^)]+\))\s*=\s*(\S+)\s*$")


def ngspice_program() -> str:
    path = shutil.which("ngspice")
    if path is None:
        raise SpiceUnavailable(f"the ngspice program is not on PATH; {INSTALL_HINT}")
    return path


def run_file(path, timeout: float = 120.0) -> dict:
    """``ngspice -b path``: every printed vector as an array (one entry per swept sample), by name.

    Raises SpiceError with ngspice's output when it fails or prints nothing, and after ``timeout``
    seconds (the process is killed).
    """
    path = Path(path)
    if not path.is_file():
        raise SpiceError(f"netlist file {path} does not exist")
    try:
        done = subprocess.run([ngspice_program(), "-b", str(path)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SpiceError(f"ngspice -b {path} did not finish in {timeout:g} s (killed)", analysis="batch") from exc
    values = parse_printout(done.stdout)
    # ngspice -b exits 1 after a .control-only deck ("no simulations run" refers to .print cards), so
    # success is judged by what it printed, not by its exit status
    failed = not values or done.returncode not in (0, 1) or "error" in done.stderr.lower()
    if failed:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise SpiceError(f"ngspice -b {path} failed (exit {done.returncode}):\n{tail}", analysis="batch",
                         ngspice_message=done.stdout + done.stderr)
    return values


def parse_printout(text: str) -> dict:
    """Vectors from ngspice ``print`` output: ``v(a) = 1.0`` lines and Index tables (possibly split)."""
    values: dict = {}
    columns = None
    for line in text.splitlines():
        m = _SCALAR.match(line)
        if m:
            values.setdefault(m.group(1), []).append(float(m.group(2)))
            continue
        tokens = line.split()
        if tokens and tokens[0] == "Index":
            columns = tokens[1:]
            continue
        if columns and tokens and tokens[0].isdigit() and len(tokens) == len(columns) + 1:
            for name, value in zip(columns, tokens[1:]):
                values.setdefault(name, []).append(float(value))
    return {name: np.asarray(v) for name, v in values.items()}


def free_voltages(values: dict, free_nodes) -> np.ndarray:
    """(samples, n_free) voltages of the named free nodes from ``run_file``'s result."""
    missing = [n for n in free_nodes if f"v({n})" not in values]
    if missing:
        raise SpiceError(f"ngspice printed no voltage for {len(missing)} free node(s), e.g. {missing[:3]}")
    return np.stack([values[f"v({n})"] for n in free_nodes], axis=1)
