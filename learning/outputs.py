"""One owner for every file eqprop writes outside a training run's own files.

Every command that writes a directory (compare, demo, gradcheck, loihi, cosim, report, sweep) opens it as an
``OutputDir`` of its kind, and every command that writes a single file (netlist) claims it with
``claim_file``. The rules, checked before the first byte is written:

- a directory belongs to one kind of command: its manifest (``.eqprop-output.json``) names the kind, and a
  training run (``config.json`` or ``checkpoint.npz``) is kind ``train``. A command of another kind is
  refused: a demo never replaces a train run, a compare never a demo.
- a directory without a manifest is taken only when it is empty or new. In one with a manifest, a file the
  command is about to write may be replaced only if the manifest lists it (an earlier run of the same kind
  wrote it); anything else a user put there later stays, and one that would be overwritten is refused.
- the directory's lock (``run.lock``, the same lock a training run holds) is held while the command writes,
  so a command never writes into a directory a running ``eqprop train`` holds.
- a single file that exists is replaced only with ``--force``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .rundir import CHECKPOINT, CONFIG, LOCK, RunError, RunLock, atomic_write, writable_dir

MANIFEST = ".eqprop-output.json"


class OutputError(RunError):
    """An output path eqprop may not write (another command's, a user's, a file where a directory belongs)."""


def kind_of(path: Path) -> str | None:
    """Which eqprop command owns a directory: its manifest's kind, 'train' for a run directory, else None."""
    path = Path(path)
    manifest = _read_manifest(path)
    if manifest is not None:
        return manifest.get("kind")
    if (path / CONFIG).exists() or (path / CHECKPOINT).exists():
        return "train"
    return None


def _read_manifest(path: Path) -> dict | None:
    f = Path(path) / MANIFEST
    if not f.is_file():
        return None
    try:
        d = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError, OSError):
        raise OutputError(f"{f} is not an eqprop manifest (unreadable); restore it, or choose another --out") from None
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str) or not isinstance(d.get("files", []), list):
        raise OutputError(f"{f} is not an eqprop manifest; restore it, or choose another --out")
    return d


def _listing(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


class OutputDir:
    """``with OutputDir(path, "compare", ["report.md", "report.json"]) as out: out.write_text("report.md", ...)``.

    ``names``: every entry the command may create in the directory (files or sub-directories), declared up front
    so that everything is checked before anything is written; ``check()`` alone validates without writing."""

    def __init__(self, path, kind: str, names, flag: str = "--out"):
        self.raw, self.path, self.kind, self.names, self.flag = str(path), Path(path), kind, set(names), flag
        self._lock = None
        self._owned: set = set()

    def check(self) -> "OutputDir":
        """Refuses (writing nothing) a path this command may not write: see the module's rules."""
        p, flag = self.path, self.flag
        if self.raw.strip() == "":
            raise OutputError(f"{flag} is empty (an unset variable?); give a directory path")
        if p.is_symlink() and not p.exists():
            raise OutputError(f"{flag} {p} is a dangling symbolic link; give a directory path")
        if p.exists() and not p.is_dir():
            raise OutputError(f"{flag} {p} is a file, not a directory; give a directory path")
        if not p.exists():
            self._owned = set()
            return self
        owner = kind_of(p)
        if owner is not None and owner != self.kind:
            what = "a training run" if owner == "train" else f"the output of 'eqprop {owner}'"
            raise OutputError(f"{flag} {p} holds {what}; 'eqprop {self.kind}' does not write over it: choose another "
                              f"{flag}")
        manifest = _read_manifest(p)
        if manifest is None:  # not an eqprop output: only an empty directory is taken
            entries = sorted(e.name for e in p.iterdir() if e.name != LOCK)
            if entries:
                raise OutputError(f"{flag} {p} holds files eqprop {self.kind} did not write ({_listing(entries)}); "
                                  f"nothing was changed: give a new or empty directory")
            manifest = {}
        self._owned = set(manifest.get("files", []))
        taken = sorted(n for n in self.names if (p / n).exists() or (p / n).is_symlink())
        foreign = [n for n in taken if n not in self._owned]
        if foreign:
            raise OutputError(f"{flag} {p} holds {_listing(foreign)}, which eqprop {self.kind} did not write; "
                              f"nothing was changed: move {'them' if len(foreign) > 1 else 'it'} away or choose "
                              f"another {flag}")
        return self

    def __enter__(self) -> "OutputDir":
        self.check()
        writable_dir(self.path, f"the eqprop {self.kind} directory", OutputError)
        self._lock = RunLock(self.path).acquire()
        try:
            self.check()  # again under the lock: another process may have written meanwhile
            self._owned |= self.names
            self._write_manifest()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _write_manifest(self) -> None:
        atomic_write(self.path / MANIFEST, json.dumps({"kind": self.kind, "files": sorted(self._owned)},
                                                      indent=1).encode())

    def __truediv__(self, name: str) -> Path:
        """The path of a declared entry (for writers that take a path, e.g. savefig)."""
        if name.split("/")[0] not in self.names:
            raise AssertionError(f"eqprop {self.kind} writes {name!r}, which it did not declare")
        return self.path / name

    def write_bytes(self, name: str, data: bytes) -> Path:
        target = self / name
        atomic_write(target, data)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode())

    def savefig(self, name: str, fig, **kw) -> Path:
        """A matplotlib figure written atomically (a temporary file in the directory, then renamed)."""
        target = self / name
        tmp = target.with_name(f".{target.name}.partial{target.suffix}")
        fig.savefig(tmp, **kw)
        os.replace(tmp, target)
        return target


def claim_file(path, force: bool = False, flag: str = "--out") -> Path:
    """A single output file: refused when it exists (unless ``force``), is a directory, or cannot be written."""
    p = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{flag} is empty (an unset variable?); give a file name")
    if p.is_dir():
        raise OutputError(f"{flag} {p} is a directory; give a file name such as {p / 'net.cir'}")
    if p.is_symlink() and not p.exists():
        raise OutputError(f"{flag} {p} is a dangling symbolic link; give a file name")
    if p.exists() and not force:
        raise OutputError(f"{flag} {p} exists; nothing was written: choose another name, or add --force to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{flag} {p}: the directory {parent} does not exist; create it or choose another name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {p}: the directory {parent} is not writable by this user; choose another name")
    return p


__all__ = ["LOCK", "MANIFEST", "OutputDir", "OutputError", "claim_file", "kind_of"]
