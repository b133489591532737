"""Image data sets as uint8 arrays: CIFAR-10/100 (python-pickle format), STL-10 (binary format, with its
unlabeled split), Tiny-ImageNet (folder format, validation annotations included), any ImageFolder tree, and
scikit-learn's digits (embedded). Images are decoded once into a uint8 ``[N, H, W, C]`` array that
:func:`cached` stores as a ``.npy`` file and memory-maps, so no epoch decodes an image again.

CIFAR's pickles (any protocol) are read with a restricted unpickler that only builds numpy arrays and plain
containers: a file that asks for anything else is refused instead of executed; pixel values outside 0..255 are
refused, not wrapped. An empty class folder is refused, and so is an image that PIL deems a decompression bomb.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._extras import require
from .._io import atomic_write

require(__name__, "images")

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageArrays",
    "balanced_split",
    "balanced_subset",
    "cached",
    "read_cifar",
    "read_digits",
    "read_image_folder",
    "read_stl10",
    "read_tiny_imagenet",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_CONVERTIBLE_MODES = ("RGB", "L", "P", "RGBA", "LA")


@dataclass
class ImageArrays:
    """``images`` uint8 ``[N, H, W, C]``; ``labels`` int64 ``[N]`` in 0..C-1 (-1: unlabeled); ``classes`` names."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"{self.name}: images must be uint8 [N, H, W, C], got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}: {self.images.shape[0]} images but labels of shape {self.labels.shape}")
        bad = (self.labels < -1) | (self.labels >= len(self.classes))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{self.name}: label {int(self.labels[i])} of image {i} is outside 0..{len(self.classes) - 1}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])


class _ArrayUnpickler(pickle.Unpickler):
    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),  # how protocol-5 pickles store arrays (numpy 1 / 2)
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
            ("numpy", "dtype"),
            ("copyreg", "_reconstructor"),
            ("__builtin__", "object"),
            ("builtins", "object"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR batch {path} does not exist")
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise ValueError(f"{path} is not a CIFAR python batch: {err}") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR python batch (a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _pixels(data: np.ndarray, path: Path) -> np.ndarray:
    """``data`` as uint8, refusing values a cast would wrap or truncate (outside 0..255, or not integers)."""
    if data.dtype == np.uint8:
        return data
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path}: pixel values must be integers in 0..255, got dtype {data.dtype}")
    if data.size:
        low, high = data.min(), data.max()
        if not (0 <= low and high <= 255) or (data.dtype.kind == "f" and not np.array_equal(data, np.round(data))):
            raise ValueError(f"{path}: pixel values must be integers in 0..255, found {low}..{high} ({data.dtype})")
    return data.astype(np.uint8)


def read_cifar(folder: str | os.PathLike, *, train: bool = True, cifar100: bool = False) -> ImageArrays:
    """CIFAR-10 (``cifar-10-batches-py``: data_batch_1..5, test_batch, batches.meta) or CIFAR-100
    (``cifar-100-python``: train, test, meta; fine labels)."""
    folder = Path(folder)
    if cifar100:
        files, key, meta_file, meta_key = ["train" if train else "test"], "fine_labels", "meta", "fine_label_names"
    else:
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        key, meta_file, meta_key = "labels", "batches.meta", "label_names"
    meta = _load_cifar_pickle(folder / meta_file)
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(meta_key, [])]
    if not classes:
        raise ValueError(f"{folder / meta_file} has no {meta_key!r}")
    images, labels = [], []
    for name in files:
        batch = _load_cifar_pickle(folder / name)
        data, y = batch.get("data"), batch.get(key)
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or y is None:
            raise ValueError(f"{folder / name}: expected 'data' [N, 3072] and {key!r}")
        images.append(_pixels(data, folder / name).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(y, dtype=np.int64))
    name = ("CIFAR-100" if cifar100 else "CIFAR-10") + ("-train" if train else "-test")
    return ImageArrays(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes, name)


def read_stl10(folder: str | os.PathLike, split: str = "train") -> ImageArrays:
    """STL-10 binary format (``stl10_binary``): ``{train,test,unlabeled}_X.bin`` (N x 3 x 96 x 96, column-major),
    ``{train,test}_y.bin`` (labels 1..10) and ``class_names.txt``. The unlabeled split gets labels -1."""
    if split not in ("train", "test", "unlabeled"):
        raise ValueError(f"split must be 'train', 'test' or 'unlabeled', got {split!r}")
    folder = Path(folder)
    x_path = folder / f"{split}_X.bin"
    if not x_path.is_file():
        raise FileNotFoundError(f"STL-10 file {x_path} does not exist")
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise ValueError(f"{x_path}: size {raw.size} is not a multiple of 3 x 96 x 96 (truncated or not STL-10)")
    images = np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1))
    names_file = folder / "class_names.txt"
    classes = names_file.read_text().split() if names_file.is_file() else [str(i) for i in range(10)]
    if split == "unlabeled":
        labels = np.full(len(images), -1, dtype=np.int64)
    else:
        y_path = folder / f"{split}_y.bin"
        if not y_path.is_file():
            raise FileNotFoundError(f"STL-10 file {y_path} does not exist")
        labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1
        if labels.size != len(images):
            raise ValueError(f"{y_path}: {labels.size} labels for {len(images)} images")
    return ImageArrays(images, labels, classes, f"STL-10-{split}")


def _decode(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # PIL refuses decompression bombs (Image.MAX_IMAGE_PIXELS) on opening
            if im.mode not in _CONVERTIBLE_MODES:
                raise ValueError(f"{path}: image mode {im.mode!r} is not supported (use RGB, L, P, RGBA or LA)")
            im = im.convert("RGB")
            if size is not None and im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path}: image too large to decode safely: {err}") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image: {err}") from err


def _stack(arrays: list[np.ndarray], paths: list[Path], name: str) -> np.ndarray:
    shape = arrays[0].shape
    for a, p in zip(arrays, paths, strict=True):
        if a.shape != shape:
            raise ValueError(
                f"{name}: {p} is {a.shape[1]}x{a.shape[0]} but the first image is {shape[1]}x{shape[0]}; "
                "pass size=(W, H) to resize"
            )
    return np.stack(arrays)


def _decode_all(items: list[tuple[Path, int]], classes: list[str], name: str, *, size, progress: bool) -> ImageArrays:
    """Decode ``(path, label)`` items into one :class:`ImageArrays` (with a progress bar if asked)."""
    paths = [p for p, _ in items]
    iterator = paths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(paths, desc=f"decoding {name}", unit="img")
    arrays = [_decode(p, size) for p in iterator]
    return ImageArrays(_stack(arrays, paths, name), np.array([k for _, k in items], dtype=np.int64), classes, name)


def read_image_folder(
    folder: str | os.PathLike, *, size: tuple[int, int] | None = None, progress: bool = False
) -> ImageArrays:
    """An ImageFolder tree: ``folder/<class>/<image>``; classes sorted by name. Grayscale, palette and alpha
    images are converted to RGB; other modes are refused. All images must share a size unless ``size``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"{folder} holds no images in class subfolders (<class>/<image>.{{jpg,png,...}})")
    items = []
    for k, c in enumerate(classes):
        found = [p for p in sorted((folder / c).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        if not found:
            raise ValueError(
                f"class folder {folder / c} holds no images ({', '.join(IMAGE_SUFFIXES)}): remove it or add images"
            )
        items += [(p, k) for p in found]
    return _decode_all(items, classes, folder.name, size=size, progress=progress)


def read_tiny_imagenet(folder: str | os.PathLike, split: str = "train", *, progress: bool = False) -> ImageArrays:
    """Tiny-ImageNet-200 folder format: ``wnids.txt``; ``train/<wnid>/images/*.JPEG``; ``val/images/*.JPEG`` with
    ``val/val_annotations.txt`` (file, wnid, box). Classes are the wnids in ``wnids.txt`` order."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    folder = Path(folder)
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise FileNotFoundError(f"{wnids_file} does not exist (not a Tiny-ImageNet folder)")
    wnids = wnids_file.read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    if split == "train":
        items = []
        for w in wnids:
            images = folder / "train" / w / "images"
            found = [p for p in sorted(images.glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise ValueError(f"{images} holds no images: every class of wnids.txt needs training images")
            items += [(p, index[w]) for p in found]
    else:
        ann = folder / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise FileNotFoundError(f"{ann} does not exist")
        items = []
        for n, line in enumerate(ann.read_text().splitlines(), 1):
            parts = line.split("\t")
            if len(parts) < 2:
                raise ValueError(f"{ann}:{n}: expected 'file<TAB>wnid...', got {line!r}")
            if parts[1] not in index:
                raise ValueError(f"{ann}:{n}: wnid {parts[1]!r} is not in wnids.txt")
            items.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    if not items:
        raise ValueError(f"{folder}: no {split} images found")
    return _decode_all(items, wnids, f"Tiny-ImageNet-{split}", size=None, progress=progress)


def read_digits() -> ImageArrays:
    """scikit-learn's 1,797 8x8 digits as uint8 grayscale images ``[1797, 8, 8, 1]`` (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    return ImageArrays(images, data.target.astype(np.int64), [str(d) for d in range(10)], "digits")


def cached(key: str, build: Callable[[], ImageArrays], cache_dir: str | os.PathLike) -> ImageArrays:
    """Decode once: store ``build()`` under ``cache_dir/key.{images,labels}.npy`` (atomically) and return the
    images memory-mapped. Later calls with the same key only map the files."""
    cache_dir = Path(cache_dir)
    img_path, lab_path, meta_path = (cache_dir / f"{key}.{part}" for part in ("images.npy", "labels.npy", "classes"))
    if not (img_path.is_file() and lab_path.is_file() and meta_path.is_file()):
        arrays = build()

        def save(array):
            def write(tmp):
                with open(tmp, "wb") as f:
                    np.save(f, np.ascontiguousarray(array))

            return write

        atomic_write(img_path, save(arrays.images))
        atomic_write(lab_path, save(arrays.labels))
        atomic_write(meta_path, lambda tmp: Path(tmp).write_text("\n".join([arrays.name, *arrays.classes])))
    name, *classes = meta_path.read_text().split("\n")
    images = np.load(img_path, mmap_mode="r", allow_pickle=False)
    labels = np.load(lab_path, allow_pickle=False)
    return ImageArrays(images, labels, classes, name)


def balanced_split(labels: np.ndarray, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of every class (at least one image of each class with two or more) as a validation
    split; returns ``(train_indices, val_indices)``, both sorted. Unlabeled entries (-1) stay in train."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        val.append(rng.choice(idx, size=k, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.array([], dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def balanced_subset(labels: np.ndarray, n: int, seed: int = 0, *, name: str = "n") -> np.ndarray:
    """Exactly ``n`` indices of the labeled entries (unlabeled, -1, are never chosen), class-balanced: every class
    gets one, and the rest is shared in proportion to the class sizes by largest remainder (ties broken at random
    with ``seed``); the images of each class are drawn with ``seed``. Returns the indices, sorted. ``n`` below the
    number of classes or above the labeled entries is refused with a ValueError naming ``name``."""
    labels = np.asarray(labels)
    classes, sizes = np.unique(labels[labels >= 0], return_counts=True)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {n!r}")
    n, total = int(n), int(sizes.sum())
    if n < len(classes) or n > total:
        raise ValueError(
            f"{name} {n}: a class-balanced subset takes at least one image of each of the {len(classes)} classes "
            f"and at most the {total} labeled images available; give {len(classes)}..{total}"
        )
    sizes = sizes.astype(np.int64)
    # quota of class c: n * size_c / total; compared exactly as n * size_c - take_c * total (integers)
    take = np.maximum(n * sizes // total, 1)
    tie = np.random.default_rng([seed, 1]).permutation(len(classes))  # seeded tie-break; [seed] alone draws below
    while (gap := n - int(take.sum())) != 0:
        behind = n * sizes - take * total  # how far each class is below its quota (negative: above)
        if gap > 0:  # give one to the class furthest below its quota that has images left
            open_ = np.flatnonzero(take < sizes)
            take[open_[np.lexsort((tie[open_], -behind[open_]))[0]]] += 1
        else:  # a class raised to one made the total too large: take one from the class furthest above its quota
            open_ = np.flatnonzero(take > 1)
            take[open_[np.lexsort((tie[open_], behind[open_]))[0]]] -= 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)
