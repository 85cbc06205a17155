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
