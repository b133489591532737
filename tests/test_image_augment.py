"""The batched SimCLR augmentation: shapes, range, per-sample parameters, seeding, input layouts."""

import pytest
import torch

from hscl.transforms import SimCLRAugment
from hscl.transforms.image import to_float_images


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
    aug = SimCLRAugment(32, scale=(1.0, 1.0), p_jitter=0.0, p_gray=0.0, p_blur=0.0)
    aug.pipeline[1].p = 0.0  # no flip
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
