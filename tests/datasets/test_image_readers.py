"""Image readers on files the tests write in each format, and on the shared CIFAR-10 JPEG copy."""

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hscl.datasets.image_readers import (
    ImageArrays,
    balanced_split,
    balanced_subset,
    cached,
    read_cifar,
    read_digits,
    read_image_folder,
    read_stl10,
    read_tiny_imagenet,
)
from tests.datasets.conftest import save_image as _save

RNG = np.random.default_rng(0)
SHARED_CIFAR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_images(n):
    return RNG.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def test_cifar10_pickle_format(tmp_path):
    names = [f"class{i}".encode() for i in range(10)]
    _dump(tmp_path / "batches.meta", {b"label_names": names})
    expected = []
    for i in range(1, 6):
        imgs, labels = _cifar_images(4), list(RNG.integers(0, 10, 4))
        expected.append((imgs, labels))
        _dump(tmp_path / f"data_batch_{i}", {b"data": imgs.transpose(0, 3, 1, 2).reshape(4, -1), b"labels": labels})
    test_imgs = _cifar_images(3)
    _dump(tmp_path / "test_batch", {b"data": test_imgs.transpose(0, 3, 1, 2).reshape(3, -1), b"labels": [0, 1, 9]})
    train = read_cifar(tmp_path, train=True)
    assert train.images.shape == (20, 32, 32, 3) and train.classes[3] == "class3"
    np.testing.assert_array_equal(train.images, np.concatenate([e[0] for e in expected]))
    assert train.labels.tolist() == [int(x) for e in expected for x in e[1]]
    test = read_cifar(tmp_path, train=False)
    np.testing.assert_array_equal(test.images, test_imgs)


def test_cifar100_pickle_format(tmp_path):
    _dump(tmp_path / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    imgs = _cifar_images(5)
    _dump(tmp_path / "train", {b"data": imgs.transpose(0, 3, 1, 2).reshape(5, -1), b"fine_labels": [0, 99, 5, 5, 7]})
    ds = read_cifar(tmp_path, train=True, cifar100=True)
    np.testing.assert_array_equal(ds.images, imgs)
    assert ds.labels.tolist() == [0, 99, 5, 5, 7] and len(ds.classes) == 100


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_cifar_pickle_cannot_run_code(tmp_path):
    _dump(tmp_path / "batches.meta", {b"label_names": _Evil()})
    with pytest.raises(ValueError, match=r"refusing to load .*system"):
        read_cifar(tmp_path)


def test_cifar_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_cifar(tmp_path)
    (tmp_path / "batches.meta").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a CIFAR python batch"):
        read_cifar(tmp_path)
    _dump(tmp_path / "batches.meta", {b"label_names": [b"a", b"b"]})
    for i in range(1, 6):
        _dump(tmp_path / f"data_batch_{i}", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 5]})
    with pytest.raises(ValueError, match=r"label 5 of image 1 is outside 0\.\.1"):
        read_cifar(tmp_path)


def test_stl10_binary_format(tmp_path):
    imgs = RNG.integers(0, 256, size=(3, 96, 96, 3), dtype=np.uint8)
    imgs.transpose(0, 3, 2, 1).tofile(tmp_path / "train_X.bin")  # STL-10 stores images column-major
    np.array([1, 10, 4], dtype=np.uint8).tofile(tmp_path / "train_y.bin")
    imgs[:2].transpose(0, 3, 2, 1).tofile(tmp_path / "unlabeled_X.bin")
    (tmp_path / "class_names.txt").write_text("\n".join(f"n{i}" for i in range(10)))
    train = read_stl10(tmp_path, "train")
    np.testing.assert_array_equal(train.images, imgs)
    assert train.labels.tolist() == [0, 9, 3]
    unl = read_stl10(tmp_path, "unlabeled")
    assert unl.labels.tolist() == [-1, -1] and unl.images.shape == (2, 96, 96, 3)
    (tmp_path / "test_X.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a multiple of 3 x 96 x 96"):
        read_stl10(tmp_path, "test")
    with pytest.raises(ValueError, match="split must be"):
        read_stl10(tmp_path, "extra")


def test_tiny_imagenet_format(tmp_path):
    wnids = ["n01", "n02"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids))
    for w in wnids:
        for k in range(2):
            _save(
                tmp_path / "train" / w / "images" / f"{w}_{k}.JPEG", np.full((64, 64, 3), 10 * k, np.uint8), fmt="PNG"
            )
    _save(tmp_path / "val" / "images" / "val_0.JPEG", np.zeros((64, 64, 3), np.uint8), fmt="PNG")
    _save(tmp_path / "val" / "images" / "val_1.JPEG", np.zeros((64, 64, 3), np.uint8), fmt="PNG")
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t5\t5\nval_1.JPEG\tn01\t1\t1\t9\t9\n")
    train = read_tiny_imagenet(tmp_path, "train")
    assert train.images.shape == (4, 64, 64, 3) and train.labels.tolist() == [0, 0, 1, 1]
    val = read_tiny_imagenet(tmp_path, "val")
    assert val.labels.tolist() == [1, 0] and val.classes == wnids
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(ValueError, match=r"wnid 'n99' is not in wnids\.txt"):
        read_tiny_imagenet(tmp_path, "val")


def test_image_folder_modes_sizes_and_errors(tmp_path):
    root = tmp_path / "imgs"
    _save(root / "cat" / "a.png", np.full((8, 8, 3), 200, np.uint8))
    _save(root / "cat" / "b.png", np.full((8, 8, 3), 50, np.uint8), mode="L")  # grayscale: converted to RGB
    _save(root / "dog" / "c.jpg", np.zeros((8, 8, 3), np.uint8))
    ds = read_image_folder(root)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1]
    assert ds.images.shape == (3, 8, 8, 3) and ds.images[1, 0, 0].tolist() == [50, 50, 50]
    _save(root / "dog" / "d.png", np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="pass size"):
        read_image_folder(root)
    assert read_image_folder(root, size=(8, 8)).images.shape == (4, 8, 8, 3)
    _save(root / "dog" / "e.tif", np.zeros((8, 8, 3), np.uint8), mode="CMYK")
    with pytest.raises(ValueError, match="image mode 'CMYK' is not supported"):
        read_image_folder(root, size=(8, 8))
    (root / "dog" / "e.tif").unlink()
    (root / "dog" / "f.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="is not a readable image"):
        read_image_folder(root, size=(8, 8))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no images"):
        read_image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        read_image_folder(tmp_path / "missing")


def test_digits_as_images():
    ds = read_digits()
    assert ds.images.shape == (1797, 8, 8, 1) and ds.images.dtype == np.uint8 and int(ds.images.max()) == 255
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_cache_decodes_once_and_memory_maps(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return ImageArrays(np.zeros((5, 4, 4, 3), np.uint8), np.arange(5) % 2, ["a", "b"], "toy")

    a = cached("toy", build, tmp_path)
    b = cached("toy", build, tmp_path)
    assert len(calls) == 1 and isinstance(b.images, np.memmap) and b.classes == ["a", "b"] and b.name == "toy"
    np.testing.assert_array_equal(a.images, b.images)
    assert not list(tmp_path.glob(".*"))


def test_balanced_split():
    labels = np.repeat(np.arange(4), [10, 20, 30, 1])
    train, val = balanced_split(labels, 0.1, seed=0)
    assert np.bincount(labels[val], minlength=4).tolist() == [1, 2, 3, 0]
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == len(labels)
    assert np.array_equal(balanced_split(labels, 0.1, seed=0)[1], val)
    with pytest.raises(ValueError, match="fraction must be in"):
        balanced_split(labels, 1.5)


def test_balanced_subset_takes_exactly_n_class_balanced():
    labels = np.concatenate([np.repeat(np.arange(4), [10, 20, 30, 1]), [-1, -1]])
    for n in (4, 5, 10, 15, 30, 61):  # largest remainder, at least one of each class; never an unlabeled one
        idx = balanced_subset(labels, n, seed=0)
        assert len(idx) == n == len(set(idx)) and (labels[idx] >= 0).all()
        counts = np.bincount(labels[idx], minlength=4)
        assert (counts >= 1).all() and (counts <= [10, 20, 30, 1]).all()
    assert np.bincount(labels[balanced_subset(labels, 10, seed=0)]).tolist() == [1, 3, 5, 1]
    assert np.array_equal(balanced_subset(labels, 15, seed=3), balanced_subset(labels, 15, seed=3))
    even = np.repeat(np.arange(10), 50)  # 15 of 10 equal classes: 5 classes get 2, drawn with the seed
    counts = [np.bincount(even[balanced_subset(even, 15, seed=s)]) for s in range(4)]
    assert all(sorted(c.tolist()) == [1] * 5 + [2] * 5 for c in counts)
    assert len({tuple(c) for c in counts}) > 1
    for n in (3, 62):
        with pytest.raises(ValueError, match=f"train_subset {n}: .* 4 classes .* 61 labeled images"):
            balanced_subset(labels, n, seed=0, name="train_subset")


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10-jpeg is not beside this checkout")
def test_shared_cifar10_jpeg_test_split(tmp_path):
    with tarfile.open(SHARED_CIFAR) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("cifar10-jpeg/test/")]
        tar.extractall(tmp_path, members=members, filter="data")
    ds = read_image_folder(tmp_path / "cifar10-jpeg" / "test")
    assert ds.images.shape == (10000, 32, 32, 3)
    assert ds.classes[0] == "airplane" and np.bincount(ds.labels).tolist() == [1000] * 10


def test_empty_class_folder_is_refused(tmp_path):
    root = tmp_path / "imgs"
    _save(root / "cat" / "a.png", np.zeros((4, 4, 3), np.uint8))
    (root / "dog").mkdir()
    (root / "dog" / "notes.txt").write_text("no image here")
    with pytest.raises(ValueError, match=r"class folder .*imgs/dog holds no images"):
        read_image_folder(root)


def test_tiny_imagenet_class_without_training_images_is_refused(tmp_path):
    (tmp_path / "wnids.txt").write_text("n01\nn02\n")
    _save(tmp_path / "train" / "n01" / "images" / "a.JPEG", np.zeros((8, 8, 3), np.uint8), fmt="PNG")
    (tmp_path / "train" / "n02" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"train/n02/images holds no images"):
        read_tiny_imagenet(tmp_path, "train")


def test_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    _save(root / "cat" / "ok.png", np.zeros((4, 4, 3), np.uint8))
    _save(root / "cat" / "bomb.png", np.zeros((4, 4, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 7)  # 16 pixels > 2 x 7: what PIL refuses as a bomb
    with pytest.raises(ValueError, match=r"cat/bomb\.png: image too large to decode safely"):
        read_image_folder(root)


def _cifar10_folder(tmp_path, data, protocol=2):
    with open(tmp_path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"a", b"b"]}, f, protocol=protocol)
    for i in range(1, 6):
        with open(tmp_path / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 1]}, f, protocol=protocol)
    return tmp_path


def test_cifar_batch_pickled_with_protocol_5(tmp_path):
    imgs = _cifar_images(2)
    folder = _cifar10_folder(tmp_path, imgs.transpose(0, 3, 1, 2).reshape(2, -1), protocol=5)
    ds = read_cifar(folder)
    assert ds.images.shape == (10, 32, 32, 3) and ds.labels.tolist() == [0, 1] * 5
    np.testing.assert_array_equal(ds.images[:2], imgs)


@pytest.mark.parametrize(
    "value,dtype", [(256, np.int64), (-1, np.int16), (300.0, np.float64), (1.5, np.float32), (np.nan, np.float64)]
)
def test_cifar_pixels_outside_0_255_are_refused(tmp_path, value, dtype):
    data = np.zeros((2, 3072), dtype=dtype)
    data[1, 7] = value
    folder = _cifar10_folder(tmp_path, data)
    with pytest.raises(ValueError, match=r"data_batch_1: pixel values must be integers in 0\.\.255"):
        read_cifar(folder)


def test_cifar_pixels_in_range_of_another_dtype_are_read(tmp_path):
    data = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072) % 256
    ds = read_cifar(_cifar10_folder(tmp_path, data.astype(np.float64)))
    assert ds.images.dtype == np.uint8 and int(ds.images.max()) == 255
