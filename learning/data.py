"""Datasets: scikit-learn's bundled digits (embedded default), MNIST / Fashion-MNIST from a path.

Nothing is downloaded. A path may be an .npz with x_train/y_train/x_test/y_test, or a directory of
IDX files (gzipped or not) with the standard names. Pixels are scaled to [0, 1] (volts at the sources,
times ``input_scale``); labels become targets of +/- ``target_amplitude`` volts per output pair.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist", "fashion-mnist")
IDX_NAMES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class DataError(ValueError):
    """A data file is missing or malformed; the message says what was expected."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def load(name: str = "digits", path: str | None = None, *, n_train: int | None = None,
         n_test: int | None = None, seed: int = 0) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; use one of {DATASETS}")
    if name == "digits":
        if path is not None:
            raise DataError("the digits dataset is bundled with scikit-learn and takes no --data path")
        ds = _digits(seed)
    else:
        if path is None:
            default = FASHION_DEBIAN_DIR if name == "fashion-mnist" else None
            if default is None or not default.exists():
                raise DataError(f"{name} needs --data PATH: an .npz with x_train/y_train/x_test/y_test or a "
                                "directory of IDX files (train-images-idx3-ubyte[.gz], ...); nothing is downloaded")
            path = str(default)
        arrays = load_arrays(path)
        ds = Dataset(name, _flatten(arrays["x_train"]) / 255.0, arrays["y_train"].astype(int),
                     _flatten(arrays["x_test"]) / 255.0, arrays["y_test"].astype(int), 10)
    if n_train is not None:
        ds.x_train, ds.y_train = ds.x_train[:n_train], ds.y_train[:n_train]
    if n_test is not None:
        ds.x_test, ds.y_test = ds.x_test[:n_test], ds.y_test[:n_test]
    return ds


def _digits(seed) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data / 16.0
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=seed, stratify=d.target)
    return Dataset("digits", xtr, ytr, xte, yte, 10)


def _flatten(x):
    return x.reshape(len(x), -1).astype(float)


def load_arrays(path) -> dict:
    """The four arrays from an .npz file or an IDX directory, checked for consistency."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data path {p} does not exist; give an .npz file or a directory of IDX files")
    if p.is_file():
        try:
            with np.load(p) as z:
                missing = [k for k in IDX_NAMES if k not in z.files]
                if missing:
                    raise DataError(f"{p} lacks arrays {missing}; expected x_train, y_train, x_test, y_test")
                arrays = {k: z[k] for k in IDX_NAMES}
        except DataError:
            raise
        except Exception as e:  # zipfile/pickle errors from a truncated or foreign file
            raise DataError(f"{p} is not a readable .npz archive ({type(e).__name__}: {e})") from None
    else:
        arrays = {k: read_idx(_find_idx(p, names)) for k, names in IDX_NAMES.items()}
    for split in ("train", "test"):
        xs, ys = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if xs.ndim < 2 or ys.ndim != 1 or len(xs) != len(ys):
            raise DataError(f"{p}: x_{split} {xs.shape} and y_{split} {ys.shape} do not match "
                            "(expected images (N, H, W) or (N, D) and labels (N,))")
        if not np.issubdtype(xs.dtype, np.number) or not np.issubdtype(ys.dtype, np.integer):
            raise DataError(f"{p}: x_{split} must hold numbers and y_{split} integer labels, got {xs.dtype} and "
                            f"{ys.dtype}")
        if xs.size and (not np.isfinite(xs).all() or xs.min() < 0 or xs.max() > 255):
            bad = int(np.argwhere(~np.isfinite(xs) | (xs < 0) | (xs > 255))[0][0])
            raise DataError(f"{p}: x_{split} must hold pixel intensities 0..255 (they are divided by 255); "
                            f"image {bad} holds NaN/inf or values out of range")
        if len(ys) and (ys.min() < 0 or ys.max() > 9):
            raise DataError(f"{p}: y_{split} labels must lie in 0..9, found {ys.min()}..{ys.max()}")
    return arrays


def _find_idx(directory: Path, names) -> Path:
    for n in names:
        for cand in (directory / n, directory / (n + ".gz")):
            if cand.exists():
                return cand
    raise DataError(f"no {names[0]}[.gz] in {directory}; expected the four standard IDX files")


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e}); is the file truncated?") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic 0x0000 08 nn expected)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)  # exact: np.prod wraps around for the sizes a corrupt header can claim
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header says {shape} ({expected} bytes) but the file holds "
                        f"{len(raw) - header} bytes; the file is truncated or corrupt")
    try:
        return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    except ValueError as e:  # e.g. an empty axis beside axes numpy cannot index (the header is corrupt)
        raise DataError(f"{path}: IDX header shape {shape} cannot be read ({e}); the file is corrupt") from None


def targets(labels, n_classes: int, amplitude: float) -> np.ndarray:
    """+amplitude for the true class's output pair, -amplitude for the others."""
    t = np.full((len(labels), n_classes), -amplitude)
    t[np.arange(len(labels)), labels] = amplitude
    return t
