"""Batched colour jitter: each adjustment against a float64 per-pixel reference (colorsys for hue), the random
order and probability, seeding, and bad arguments."""

import colorsys

import numpy as np
import pytest
import torch

from hscl.transforms.color import ColorJitter, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 5, 4, generator=g, dtype=torch.float64)
    x[0] = 0.5  # grey image: hue undefined
    x[1, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])  # pure colours and ties
    x[1, :, 0, 1] = torch.tensor([0.2, 0.2, 0.7])
    x[1, :, 0, 2] = torch.tensor([0.9, 0.9, 0.1])
    return x


def _ref(x, fn):
    a = x.numpy()
    return torch.from_numpy(np.stack([fn(a[i], i) for i in range(a.shape[0])]))


FACTORS = torch.tensor([0.6, 1.4, 1.0, 0.0, 2.0, 0.8], dtype=torch.float64)
SHIFTS = torch.tensor([0.1, -0.1, 0.5, -0.5, 0.0, 0.37], dtype=torch.float64)


def test_brightness(images):
    ref = _ref(images, lambda im, i: np.clip(im * FACTORS[i].item(), 0, 1))
    assert torch.allclose(adjust_brightness(images, FACTORS), ref, atol=1e-12)


def test_contrast(images):
    def f(im, i):
        m = np.tensordot(LUMA, im, axes=1).mean()
        return np.clip((im - m) * FACTORS[i].item() + m, 0, 1)

    assert torch.allclose(adjust_contrast(images, FACTORS), _ref(images, f), atol=1e-12)


def test_saturation(images):
    def f(im, i):
        g = np.tensordot(LUMA, im, axes=1)[None]
        return np.clip((im - g) * FACTORS[i].item() + g, 0, 1)

    assert torch.allclose(adjust_saturation(images, FACTORS), _ref(images, f), atol=1e-12)


def test_hue_against_colorsys(images):
    def f(im, i):
        out = np.empty_like(im)
        for y in range(im.shape[1]):
            for x in range(im.shape[2]):
                h, s, v = colorsys.rgb_to_hsv(*im[:, y, x])
                out[:, y, x] = colorsys.hsv_to_rgb((h + SHIFTS[i].item()) % 1.0, s, v)
        return out

    assert torch.allclose(adjust_hue(images, SHIFTS), _ref(images, f), atol=1e-9)


def test_hue_zero_and_full_turn_are_identity(images):
    assert torch.allclose(adjust_hue(images, torch.zeros(6, dtype=torch.float64)), images, atol=1e-12)
    twice = adjust_hue(adjust_hue(images, SHIFTS), -SHIFTS)
    assert torch.allclose(twice, images, atol=1e-9)


def test_jitter_p_zero_is_identity_and_p_one_changes_every_image(images):
    x = images.float()
    assert torch.equal(ColorJitter(p=0.0)(x), x)
    torch.manual_seed(0)
    out = ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0)(x[2:])
    assert out.shape == x[2:].shape and out.dtype == x.dtype
    assert bool(((out - x[2:]).abs().flatten(1).amax(1) > 1e-3).all())
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_jitter_single_operation_matches_its_function():
    x = 0.1 + 0.5 * torch.rand(64, 3, 4, 4, generator=torch.Generator().manual_seed(1))  # x * 1.4 < 1: no clamp
    torch.manual_seed(3)
    out = ColorJitter(0.4, 0.0, 0.0, 0.0, p=1.0)(x)
    per_image = (out / x).flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5), "one factor per image"
    assert bool(((per_image >= 0.6 - 1e-6) & (per_image <= 1.4 + 1e-6)).all())
    assert per_image[:, 0].std() > 0.1, "every image must draw its own factor"


def test_each_image_gets_each_operation_once_in_its_own_order(monkeypatch):
    import hscl.transforms.color as color

    calls = []

    def spy(index, fn):
        def wrapped(x, factor):
            calls.append((index, rows_of(x)))
            return fn(x, factor)

        return wrapped

    x = torch.rand(300, 3, 2, 2, generator=torch.Generator().manual_seed(4))
    x[:, 0, 0, 0] = torch.arange(300) / 1000  # identifies each image by its first pixel, kept by tiny factors
    rows_of = lambda t: tuple(round(float(v) * 1000) for v in t[:, 0, 0, 0])  # noqa: E731
    monkeypatch.setattr(color, "_OPS", tuple(spy(i, lambda t, f: t) for i in range(4)))
    torch.manual_seed(0)
    ColorJitter(p=0.5)(x)
    positions = {}
    for op, rows in calls:
        for r in rows:
            positions.setdefault(r, []).append(op)
    applied = len(positions)
    assert 100 < applied < 200, "p = 0.5 must apply the jitter to about half of the images"
    assert all(sorted(ops) == [0, 1, 2, 3] for ops in positions.values()), "each operation exactly once"
    assert len({tuple(ops) for ops in positions.values()}) > 12, "the order must vary between images"


def test_seeded(images):
    x = images.float()
    torch.manual_seed(5)
    a = ColorJitter()(x)
    torch.manual_seed(5)
    b = ColorJitter()(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"brightness": -0.1}, "brightness must be >= 0"),
        ({"hue": 0.6}, r"hue must be in \[0, 0.5\]"),
        ({"p": 1.5}, r"p must be in \[0, 1\]"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ColorJitter(**kwargs)
    with pytest.raises(ValueError, match="x must be float"):
        ColorJitter()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
