"""Vector data (:mod:`hscl.datasets.vectors`): the embedded digits, the ``.npz`` reader and its errors."""

import numpy as np
import pytest
import torch

from hscl.datasets import load_digits, load_vector_dataset, load_vectors

RNG = np.random.default_rng(0)


def test_digits_counts():
    x, y = load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_npz_reader(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=RNG.random((10, 3)), y=np.arange(10) % 2)
    x, y = load_vectors(p)
    assert x.shape == (10, 3) and y.dtype == torch.int64
    assert load_vector_dataset(str(p))[0].shape == (10, 3)


@pytest.mark.parametrize(
    "arrays,match",
    [
        (dict(x=RNG.random((4, 3))), "must hold arrays named 'x' and 'y'"),
        (dict(x=RNG.random((4, 3)), y=np.zeros(5, dtype=int)), "x must be"),
        (dict(x=RNG.random((4, 3)), y=np.zeros(4)), "integer labels"),
        (dict(x=np.full((4, 3), np.nan), y=np.zeros(4, dtype=int)), "finite"),
    ],
)
def test_npz_bad_files(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(ValueError, match=match):
        load_vectors(p)


def test_npz_missing_or_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vectors(tmp_path / "none.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        load_vectors(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_vector_dataset("cifar")
