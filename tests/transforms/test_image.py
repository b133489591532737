"""The batched SimCLR augmentation: shapes, range, per-sample parameters, seeding, input layouts."""

import math
import random

import pytest
import torch

from hscl.transforms import SimCLRAugment
from hscl.transforms.image import crop_boxes, gaussian_blur3, resized_crop, to_float_images


def _images(n=8, size=32, channels=3):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, size, size, channels), generator=g, dtype=torch.uint8)


def test_shapes_and_range():
    out = SimCLRAugment(32)(_images(), views=3)
    assert out.shape == (8, 3, 3, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_each_sample_and_view_gets_its_own_parameters():
    same = _images(1).expand(6, -1, -1, -1).contiguous()  # six copies of one image
    out = SimCLRAugment(32)(same, views=2, seed=0)
    flat = out.reshape(12, -1)
    assert len({tuple(row.tolist()[:50]) for row in flat}) == 12, "identical inputs must get different views"


def test_seed_reproduces_and_differs():
    aug = SimCLRAugment(32)
    a, b, c = aug(_images(), seed=1), aug(_images(), seed=1), aug(_images(), seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_when_every_random_op_is_off():
    aug = SimCLRAugment(32, scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.0, p_blur=0.0, p_flip=0.0)
    x = _images(4)
    out = aug(x, views=1, seed=0)[:, 0]
    torch.testing.assert_close(out, to_float_images(x), atol=1e-5, rtol=0)


def test_layouts_and_errors():
    gray = _images(2, 8, 1)
    assert SimCLRAugment(8)(gray).shape == (2, 2, 3, 8, 8)
    assert SimCLRAugment(16)(torch.rand(2, 3, 32, 32)).shape == (2, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_float_images(torch.zeros(2, 8, 8, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8 images must be"):
        to_float_images(torch.zeros(2, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="views must be an int >= 1"):
        SimCLRAugment(8)(gray, views=0)


def test_crop_boxes_fit_and_follow_scale_and_ratio():
    boxes = crop_boxes(4000, 32, 48, (0.08, 1.0), (3 / 4, 4 / 3), generator=torch.Generator().manual_seed(0))
    left, top, w, h = boxes.unbind(1)
    assert bool((boxes == boxes.round()).all()) and bool((w >= 1).all() & (h >= 1).all())
    assert bool((left >= 0).all() & (top >= 0).all() & (left + w <= 48).all() & (top + h <= 32).all())
    area = w * h / (32 * 48)
    assert 0.05 < float(area.min()) and float(area.max()) <= 1.0
    # the mean area of torchvision's rejection loop, drawn one box at a time in Python
    rng, ref = random.Random(0), []
    for _ in range(4000):
        for _attempt in range(10):
            a = 32 * 48 * rng.uniform(0.08, 1.0)
            r = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(a * r)), round(math.sqrt(a / r))
            if 0 < cw <= 48 and 0 < ch <= 32:
                ref.append(cw * ch / (32 * 48))
                break
        else:
            ref.append(32 * 32 / (32 * 48))
    assert abs(float(area.mean()) - sum(ref) / len(ref)) < 0.02
    aspect = w / h
    assert float(aspect.min()) > 0.6 and float(aspect.max()) < 1.6
    assert float(left.max()) > 20 and float(top.max()) > 10, "positions must spread over the image"


def test_crop_boxes_fallback_is_a_centre_crop():
    # an area fraction of 1 with a ratio that cannot fit a 10 x 40 image: every draw fails
    boxes = crop_boxes(5, 10, 40, (1.0, 1.0), (1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[15.0, 0.0, 10.0, 10.0]] * 5


def test_resized_crop_equals_slice_and_interpolate():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, 20, 24, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 24, 20], [3, 2, 7, 9], [10, 5, 14, 15], [23, 19, 1, 1], [4, 4, 16, 12]])
    flip = torch.tensor([False, True, False, False, True])
    out = resized_crop(x, boxes, 16, flip)
    for i, (left, top, w, h) in enumerate(boxes.tolist()):
        ref = F.interpolate(
            x[i : i + 1, :, top : top + h, left : left + w], size=(16, 16), mode="bilinear", align_corners=False
        )[0]
        if flip[i]:
            ref = ref.flip(-1)
        torch.testing.assert_close(out[i], ref, atol=1e-10, rtol=0)


def test_blur_against_kornia():
    from kornia.filters import gaussian_blur2d

    x = torch.rand(3, 3, 9, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.7, 2.0], dtype=torch.float64)
    ref = torch.cat(
        [gaussian_blur2d(x[i : i + 1], (3, 3), (s, s), border_type="reflect") for i, s in enumerate(sigma.tolist())]
    )
    torch.testing.assert_close(gaussian_blur3(x, sigma), ref, atol=1e-10, rtol=0)
    assert torch.equal(gaussian_blur3(x, torch.zeros(3, dtype=torch.float64)), x)


def test_probabilities_are_respected():
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)).expand(2000, -1, -1, -1).contiguous()
    out = SimCLRAugment(8, scale=(1.0, 1.0), p_jitter=0.0, p_blur=0.0, p_gray=0.0, p_flip=0.5)(x, views=1, seed=0)[:, 0]
    flipped = torch.isclose(out, x.flip(-1), atol=1e-6).flatten(1).all(1).float().mean()
    assert 0.45 < float(flipped) < 0.55
    out = SimCLRAugment(8, scale=(1.0, 1.0), p_jitter=0.0, p_blur=0.0, p_gray=0.2, p_flip=0.0)(x, views=1, seed=0)[:, 0]
    gray = (out.amax(1) - out.amin(1)).flatten(1).amax(1) < 1e-6
    assert 0.16 < float(gray.float().mean()) < 0.24


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "size must be an int >= 1"),
        ({"scale": (0.0, 1.0)}, "scale must satisfy"),
        ({"ratio": (2.0, 1.0)}, "ratio must satisfy"),
        ({"p_blur": 2.0}, r"p_blur must be in \[0, 1\]"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma must satisfy"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimCLRAugment(**kwargs)
