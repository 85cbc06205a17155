"""Datasets: scikit-learn's bundled digits (embedded default), MNIST / Fashion-MNIST from a path, and any data
set of your own (``npz``).

Nothing is downloaded. A path may be an .npz with x_train/y_train/x_test/y_test, or a directory of
IDX files (gzipped or not) with the standard names. Pixels are scaled to [0, 1] (volts at the sources,
times ``input_scale``); labels become targets of +/- ``target_amplitude`` volts per output pair. ``npz`` takes
features of any shape and sign and K classes (labels 0..K-1, K from the labels), so the network gets K output
pairs.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


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
    image_shape: tuple | None = None  # (height, width) of a flattened sample, where it is an image
    x_valid: np.ndarray | None = None  # held out of the training samples (``load_for`` with a config's validation)
    y_valid: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: how to load it, its shape, and where its files come from."""

    name: str
    loader: object  # loader(path or None, seed, pixel_max) -> Dataset
    n_classes: int
    n_features: int  # of the standard files (a file of other-size images is accepted)
    source: str  # where the files come from (shown when --data is missing)
    default_path: str | None = None  # used when --data is not given and this exists
    takes_path: bool = True
    path_form: str = ("an .npz with x_train/y_train/x_test/y_test or a directory of IDX files "
                      "(train-images-idx3-ubyte[.gz], ...)")  # what --data must be


DATASETS: dict = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load(name: str = "digits", path: str | None = None, *, n_train: int | None = None,
         n_test: int | None = None, seed: int = 0, pixel_max: float | None = None) -> Dataset:
    """``pixel_max``: the stored value of full intensity (None: the rule of ``pixel_scale``)."""
    spec = dataset_spec(name)
    for what, v in (("n_train", n_train), ("n_test", n_test)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise DataError(f"{what} = {v!r}: give a positive whole number of samples, or leave it out for all")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise DataError(f"seed = {seed!r}: give a whole number from 0 to 2**32 - 1")
    if pixel_max is not None and (isinstance(pixel_max, bool) or not isinstance(pixel_max, (int, float, np.number))
                                  or not np.isfinite(pixel_max) or pixel_max <= 0):
        raise DataError(f"pixel_max = {pixel_max!r}: give the stored value of full intensity (> 0), e.g. 255")
    if not spec.takes_path:
        if path is not None:
            raise DataError(f"the {name} dataset is {spec.source} and takes no --data path")
        if pixel_max is not None:
            raise DataError(f"the {name} dataset is {spec.source}, scaled to [0, 1] already; drop --pixel-max")
    elif path is None:
        if spec.default_path is None or not Path(spec.default_path).exists():
            raise DataError(f"{name} needs --data PATH: {spec.path_form}; {spec.source}. Nothing is downloaded")
        path = spec.default_path
    ds = spec.loader(path, seed, pixel_max)
    ds.name = name
    for split, x in (("train", ds.x_train), ("test", ds.x_test)):
        if x.shape[1] != ds.n_features:
            raise DataError(f"{path}: x_{split} has {x.shape[1]} features per sample but x_train has "
                            f"{ds.n_features}; the two splits must have images of one size")
    if n_train is not None:
        ds.x_train, ds.y_train = ds.x_train[:n_train], ds.y_train[:n_train]
    if n_test is not None:
        ds.x_test, ds.y_test = ds.x_test[:n_test], ds.y_test[:n_test]
    return ds


def load_for(cfg, **override) -> Dataset:
    """The data a training config names (its dataset, path, sample counts, seed and pixel scale), with its
    validation samples held out of the training set (``hold_out``)."""
    kw = {"n_train": cfg.n_train, "n_test": cfg.n_test, "seed": cfg.seed, "pixel_max": getattr(cfg, "pixel_max", None)}
    return hold_out(load(cfg.dataset, cfg.data, **{**kw, **override}), getattr(cfg, "validation", None))


def hold_out(ds: Dataset, n: int | None) -> Dataset:
    """The last n training samples (after --n-train) as the validation set, the rest to train on: a search over
    recipes scores them there and never on the test set. n None: nothing held out."""
    if n is None:
        return ds
    if n >= len(ds.x_train):
        raise DataError(f"validation = {n} would hold out all {len(ds.x_train)} training samples of {ds.name}; give "
                        "fewer (a tenth is usual), or more --n-train")
    ds.x_valid, ds.y_valid = ds.x_train[-n:], ds.y_train[-n:]
    ds.x_train, ds.y_train = ds.x_train[:-n], ds.y_train[:-n]
    return ds


def _digits(path, seed, pixel_max=None) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data / 16.0
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=seed, stratify=d.target)
    return Dataset("digits", xtr, ytr, xte, yte, 10, (8, 8))


def _images(path, seed, pixel_max=None, n_classes: int = 10) -> Dataset:
    """Images from an .npz or an IDX directory, pixels scaled to [0, 1]."""
    arrays = load_arrays(path, n_classes)
    _check_not_empty(arrays, path, "images")
    scale = pixel_scale(arrays, path, pixel_max)
    x_train, x_test = _flatten(arrays["x_train"]), _flatten(arrays["x_test"])
    x_train /= scale  # in place: MNIST's training images are 376 MB as floats
    x_test /= scale
    return Dataset("", x_train, arrays["y_train"].astype(int), x_test, arrays["y_test"].astype(int), n_classes,
                   _image_shape(arrays["x_train"]))


def _check_not_empty(arrays, path, what: str) -> None:
    for split in ("train", "test"):
        if arrays[f"x_{split}"].size == 0:
            raise DataError(f"{path}: x_{split} holds no {what}; a dataset needs training and test samples")


def _arrays(path, seed, pixel_max=None) -> Dataset:
    """A data set of your own: an .npz of x_train, y_train, x_test, y_test. Each sample's features are flattened;
    integer features are pixel intensities (the rule of ``pixel_scale``), float features are volts per unit of
    ``input_scale`` as they are (any sign; divided by ``pixel_max`` where it is given). Labels are integers
    0..K-1; K, the number of output pairs, is the largest label plus one (at least 2)."""
    if Path(path).is_dir():
        raise DataError(f"{path} is a directory: the npz dataset reads one .npz file of x_train, y_train, x_test "
                        "and y_test (a directory of IDX files is --dataset mnist)")
    arrays = load_arrays(path, None, pixels=False)
    _check_not_empty(arrays, path, "samples")
    k = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    if k < 2:
        raise DataError(f"{path}: every label is 0; a classifier needs labels of at least two classes (0..K-1)")
    x_train, x_test = _flatten(arrays["x_train"]), _flatten(arrays["x_test"])
    ints = [np.issubdtype(arrays[f"x_{s}"].dtype, np.integer) for s in ("train", "test")]
    if ints[0] != ints[1]:
        raise DataError(f"{path}: x_train holds {arrays['x_train'].dtype} but x_test {arrays['x_test'].dtype}; store "
                        "both splits the same way (integers: pixel intensities; floats: volts as they are)")
    if ints[0]:
        for split in ("train", "test"):
            if arrays[f"x_{split}"].min(initial=0) < 0:
                raise DataError(f"{path}: x_{split} holds negative integers; integer features are pixel intensities "
                                "(>= 0): store signed features as floats, used as they are")
        scale = pixel_scale(arrays, path, pixel_max)
        x_train /= scale
        x_test /= scale
    elif pixel_max is not None:  # float features in units of pixel_max
        x_train /= pixel_max
        x_test /= pixel_max
    shape = tuple(int(n) for n in arrays["x_train"].shape[1:]) if arrays["x_train"].ndim == 3 else None
    return Dataset("", x_train, arrays["y_train"].astype(int), x_test, arrays["y_test"].astype(int), k, shape)


def _image_shape(x) -> tuple | None:
    """(height, width) of stored images: their own shape, or a square side for flattened ones; None otherwise."""
    if x.ndim == 3:
        return tuple(int(n) for n in x.shape[1:])
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1]:
            return side, side
    return None


def shifted(x: np.ndarray, image_shape, shifts: np.ndarray) -> np.ndarray:
    """Each flattened image of x moved by its (rows, columns) in ``shifts`` (integers, + down/right), the
    uncovered border filled with 0 (the background of MNIST-like images); a new array, x untouched."""
    h, w = image_shape
    n = len(x)
    pad = int(np.abs(shifts).max(initial=0))
    if pad == 0:
        return x.copy()
    framed = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    framed[:, pad:pad + h, pad:pad + w] = x.reshape(n, h, w)
    out = np.empty((n, h, w), dtype=x.dtype)
    for i, (dy, dx) in enumerate(np.asarray(shifts, dtype=int)):
        out[i] = framed[i, pad - dy:pad - dy + h, pad - dx:pad - dx + w]
    return out.reshape(n, h * w)


SMALL_INTEGER_RANGE = 128  # integer images whose largest value is below this are not 8-bit intensities


def pixel_scale(arrays: dict, path, pixel_max=None) -> float:
    """The stored value of full intensity, by a stated rule (or ``pixel_max``, --pixel-max, when given):

    - integer images are 8-bit intensities 0..255 (divided by 255); integer images whose largest value is below
      128 (e.g. scikit-learn's raw digits, 0..16) are refused as ambiguous;
    - float images in [0, 1] are used as they are; float images of whole numbers 0..255 reaching 128 or more
      are 8-bit intensities stored as floats (divided by 255); any other float image above 1 is refused;
    - both splits must follow the same rule.
    A refusal names the split, its range and --pixel-max, the flag that states the scale."""
    kinds, ranges = {}, {}
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        lo, hi = float(x.min(initial=0)), float(x.max(initial=0))
        ranges[split] = f"{'integer' if np.issubdtype(x.dtype, np.integer) else 'float'} pixels {lo:g}..{hi:g}"
        if pixel_max is not None:
            if hi > pixel_max:
                raise DataError(f"{path}: x_{split} reaches {hi:g}, above --pixel-max {pixel_max:g}; give the value "
                                "of full intensity (at least the largest pixel)")
            continue
        if np.issubdtype(x.dtype, np.integer):
            kinds[split] = "0..255" if hi >= SMALL_INTEGER_RANGE or hi == 0 else None
        elif hi <= 1.0:
            kinds[split] = "0..1"
        elif hi >= SMALL_INTEGER_RANGE and hi <= 255 and np.array_equal(x, np.rint(x)):
            kinds[split] = "0..255"
        else:
            kinds[split] = None
        if kinds[split] is None:
            raise DataError(f"{path}: x_{split} holds {ranges[split]}, neither 8-bit intensities (0..255) nor "
                            f"[0, 1]; state the value of full intensity with --pixel-max (e.g. --pixel-max {hi:g})")
    if pixel_max is not None:
        return float(pixel_max)
    if kinds["train"] != kinds["test"]:
        raise DataError(f"{path}: x_train holds {ranges['train']} (read as {kinds['train']}) but x_test "
                        f"{ranges['test']} (read as {kinds['test']}); store both splits the same way, or state the "
                        "scale with --pixel-max")
    return 1.0 if kinds["train"] == "0..1" else 255.0


register(DatasetSpec("digits", _digits, 10, 64, "bundled with scikit-learn (8x8 digits, 1,797 images)",
                     takes_path=False))
register(DatasetSpec("mnist", _images, 10, 784, "get it as an .npz of the four IDX arrays or the four IDX files "
                     "(e.g. ../shared/data/mnist/mnist.npz in this project's workspace)"))
register(DatasetSpec("npz", _arrays, 0, 0, "your own data: features of any shape (float: volts as they are; "
                     "integer: pixel intensities), integer labels 0..K-1 (K output pairs)",
                     path_form="one .npz of x_train, y_train, x_test, y_test"))
register(DatasetSpec("fashion-mnist", _images, 10, 784, "Debian's dataset-fashion-mnist package installs the IDX "
                     "files in /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)",
                     default_path="/usr/share/datasets/fashion-mnist"))


def _flatten(x):
    """The samples' features as rows of a new float array (the caller may scale it in place)."""
    return x.reshape(len(x), -1).astype(float)


def load_arrays(path, n_classes: int | None = 10, pixels: bool = True) -> dict:
    """The four arrays from an .npz file or an IDX directory, checked for consistency. ``pixels``: the features
    are intensities 0..255 (else any finite number); ``n_classes`` None: labels need only be >= 0."""
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
        if xs.size and not pixels and not np.isfinite(xs).all():
            bad = int(np.argwhere(~np.isfinite(xs))[0][0])
            raise DataError(f"{p}: x_{split} sample {bad} holds NaN/inf; clean the data first")
        if xs.size and pixels and (not np.isfinite(xs).all() or xs.min() < 0 or xs.max() > 255):
            bad = int(np.argwhere(~np.isfinite(xs) | (xs < 0) | (xs > 255))[0][0])
            raise DataError(f"{p}: x_{split} must hold pixel intensities 0..255 (they are divided by 255); "
                            f"image {bad} holds NaN/inf or values out of range")
        if len(ys) and n_classes is None and ys.min() < 0:
            raise DataError(f"{p}: y_{split} labels must be class numbers 0..K-1, found {ys.min()}")
        if len(ys) and n_classes is not None and (ys.min() < 0 or ys.max() >= n_classes):
            raise DataError(f"{p}: y_{split} labels must lie in 0..{n_classes - 1}, found {ys.min()}..{ys.max()}")
    return arrays


def content_hash(path) -> str:
    """sha256 of a data file (an .npz), or of the four IDX files of a directory, in a fixed order."""
    import hashlib

    p = Path(path)
    files = [p] if p.is_file() else [_find_idx(p, names) for names in IDX_NAMES.values()]
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


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
