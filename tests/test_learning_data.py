import gzip

import numpy as np
import pytest

from eqprop.backends import ResistiveBackend
from eqprop.learning.data import DataError, load, load_arrays, read_idx, shifted

targets = ResistiveBackend.targets


def write_idx(path, arr, gz=False):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5)}
    for i, (name, a) in enumerate(arrays.items()):
        gz = i % 2 == 0
        write_idx(tmp_path / (name + (".gz" if gz else "")), a, gz)
    return tmp_path, arrays


def test_idx_directory_roundtrip(idx_dir):
    path, arrays = idx_dir
    ds = load("mnist", str(path))
    np.testing.assert_allclose(ds.x_train * 255, arrays["train-images-idx3-ubyte"].reshape(12, -1))
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.n_features == 784


def test_npz(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, x_train=np.zeros((3, 4, 4), np.uint8), y_train=np.array([0, 1, 2]),
             x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.array([3, 4]))
    ds = load("fashion-mnist", str(p))
    assert ds.x_train.shape == (3, 16)


def test_truncated_idx(tmp_path):
    p = tmp_path / "x"
    write_idx(p, np.zeros((4, 3, 3)))
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(p)


def test_not_idx(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        read_idx(p)


def test_npz_missing_arrays(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, x_train=np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"lacks arrays \['y_train', 'x_test', 'y_test'\]"):
        load_arrays(p)


def test_garbage_npz(tmp_path):
    p = tmp_path / "m.npz"
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_arrays(p)


def test_missing_path_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        load("mnist", str(tmp_path))
    with pytest.raises(DataError, match="needs --data PATH"):
        load("mnist")
    with pytest.raises(DataError, match="unknown dataset"):
        load("cifar")


def test_digits_default_and_targets():
    ds = load("digits")
    assert ds.x_train.shape[1] == 64 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    t = targets(np.array([2, 0]), 3, 0.1)
    np.testing.assert_array_equal(t, [[-0.1, -0.1, 0.1], [0.1, -0.1, -0.1]])


def test_fashion_mnist_from_debians_package_or_a_message_saying_where(monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from eqprop.learning.data import DATASETS

    spec = DATASETS["fashion-mnist"]
    if Path(spec.default_path).exists():  # Debian's dataset-fashion-mnist is installed: no --data needed
        ds = load("fashion-mnist", n_train=100, n_test=50)
        assert ds.x_train.shape == (100, 784) and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    monkeypatch.setitem(DATASETS, "fashion-mnist", replace(spec, default_path="/nonexistent"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist")


def test_shifted_moves_each_image_by_its_own_offset_and_fills_the_border_with_zero():
    rng = np.random.default_rng(0)
    images = rng.random((5, 6, 7)) + 1.0  # no zeros of their own: a zero below is the filled border
    x = images.reshape(5, -1)
    before = x.copy()
    moves = np.array([[0, 0], [1, 0], [0, -2], [-1, 3], [2, 2]])
    out = shifted(x, (6, 7), moves).reshape(5, 6, 7)
    np.testing.assert_array_equal(x, before)  # the dataset is never written
    for img, moved, (dy, dx) in zip(images, out, moves):
        expect = np.zeros_like(img)
        expect[max(dy, 0):6 + min(dy, 0), max(dx, 0):7 + min(dx, 0)] = img[max(-dy, 0):6 - max(dy, 0),
                                                                           max(-dx, 0):7 - max(dx, 0)]
        np.testing.assert_array_equal(moved, expect)
    assert out[1][0].sum() == 0 and out[1][1:].tolist() == images[1][:-1].tolist()  # down by one row


def test_image_shape_from_stored_images_or_a_square_side(tmp_path):
    assert load("digits").image_shape == (8, 8)
    p = tmp_path / "m.npz"
    np.savez(p, x_train=np.zeros((3, 4, 5), np.uint8), y_train=np.array([0, 1, 2]),
             x_test=np.zeros((2, 4, 5), np.uint8), y_test=np.array([3, 4]))
    assert load("mnist", str(p)).image_shape == (4, 5)
    np.savez(p, x_train=np.zeros((3, 20), np.uint8), y_train=np.array([0, 1, 2]),
             x_test=np.zeros((2, 20), np.uint8), y_test=np.array([3, 4]))
    assert load("mnist", str(p)).image_shape is None  # 20 features: no square; --shift refuses it


def _own(path, x_train, y_train, x_test, y_test):
    np.savez(path, x_train=x_train, y_train=np.asarray(y_train), x_test=x_test, y_test=np.asarray(y_test))
    return str(path)


def test_a_data_set_of_your_own_takes_its_classes_and_features_from_the_file(tmp_path):
    """--dataset npz: K classes from the labels (K output pairs), features of any sign as floats, integer
    features as pixel intensities, stored images keep their shape; what it cannot use is refused in one line."""
    from eqprop.learning.runs import build_network
    from eqprop.learning.trainer import TrainConfig

    rng = np.random.default_rng(0)
    p = _own(tmp_path / "own.npz", rng.normal(0, 2, (30, 5)), rng.integers(0, 3, 30), rng.normal(0, 2, (9, 5)),
             [0, 1, 2, 0, 1, 2, 0, 1, 2])
    ds = load("npz", p)
    assert ds.n_classes == 3 and ds.n_features == 5 and ds.image_shape is None
    assert ds.x_train.min() < 0 and np.array_equal(ds.x_train, np.load(p)["x_train"])  # floats as they are
    net = build_network(TrainConfig(dataset="npz", hidden=[4]).resolve(), ds.n_features, ds.n_classes)
    assert list(net.sizes) == [10, 4, 6]  # +x/-x sources, 3 output pairs
    q = _own(tmp_path / "img.npz", np.full((4, 3, 2), 255, np.uint8), [0, 1, 3, 2], np.zeros((2, 3, 2), np.uint8),
             [1, 0])
    img = load("npz", q)
    assert img.n_classes == 4 and img.image_shape == (3, 2) and img.x_train.max() == 1.0  # 8-bit intensities
    assert load("npz", p, pixel_max=4.0).x_test.max() <= 2.0 / 4.0 * np.abs(np.load(p)["x_test"]).max()
    for arrays, match in (
            ((np.zeros((3, 2)), [0, 0, 0], np.zeros((1, 2)), [0]), "at least two classes"),
            ((np.array([[0.0, np.nan]] * 3), [0, 1, 0], np.zeros((1, 2)), [1]), "sample 0 holds NaN/inf"),
            ((np.zeros((3, 2)), [0, -1, 1], np.zeros((1, 2)), [1]), "class numbers 0..K-1"),
            ((np.zeros((3, 2)), [0.0, 1.0, 1.0], np.zeros((1, 2)), [1]), "integer labels"),
            ((np.zeros((3, 2), np.int64) - 1, [0, 1, 1], np.zeros((1, 2), np.int64), [1]), "negative integers"),
            ((np.zeros((3, 2)), [0, 1, 1], np.zeros((1, 3)), [1]), "3 features per sample but x_train has 2"),
            ((np.zeros((3, 2)), [0, 1, 1], np.zeros((1, 2), np.uint8), [1]), "store both splits the same way")):
        with pytest.raises(DataError, match=match):
            load("npz", _own(tmp_path / "bad.npz", *arrays))
    with pytest.raises(DataError, match="is a directory"):
        load("npz", str(tmp_path))


def test_training_on_a_data_set_of_your_own_from_the_command_line(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (3, 6))
    y_train, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 60)
    p = _own(tmp_path / "blobs.npz", centres[y_train] + 0.1 * rng.normal(size=(300, 6)), y_train,
             centres[y_test] + 0.1 * rng.normal(size=(60, 6)), y_test)
    run = subprocess.run([sys.executable, "-m", "eqprop.experiments.cli", "train", "--dataset", "npz", "--data", p,
                          "--hidden", "8", "--epochs", "6", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import json
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics[-1]["test_accuracy"] > 0.6  # three well separated blobs: far above chance (1/3)
    assert "warning" not in run.stdout + run.stderr


def test_test_labels_no_training_sample_has_are_warned_of(tmp_path):
    """A test class that no training sample has cannot be learned: the run says which, in one line, and trains."""
    from eqprop.learning.runs import train
    from eqprop.learning.trainer import TrainConfig

    rng = np.random.default_rng(2)
    p = _own(tmp_path / "split.npz", rng.normal(0, 1, (40, 4)), rng.integers(0, 3, 40), rng.normal(0, 1, (8, 4)),
             [0, 1, 2, 3, 4, 0, 1, 4])
    lines = []
    train(TrainConfig(dataset="npz", data=p, hidden=[4], epochs=1), tmp_path / "run", log=lines.append)
    warned = [line for line in lines if line.startswith("warning")]
    assert len(warned) == 1 and "test labels 3, 4 never appear among the 40 training samples" in warned[0]
