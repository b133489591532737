"""The vector augmentation (:mod:`hscl.transforms.vector`): seeded, drawn per sample, its bad argument."""

import pytest
import torch

from hscl.transforms import VectorAugment


def test_vector_augment_is_seeded_and_per_sample():
    x = torch.ones(5, 40)
    a = VectorAugment(0.1, 0.3, generator=torch.Generator().manual_seed(1))(x)
    b = VectorAugment(0.1, 0.3, generator=torch.Generator().manual_seed(1))(x)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert 0.1 < float((a == 0).float().mean()) < 0.5
    with pytest.raises(ValueError, match="drop must be in"):
        VectorAugment(drop=1.0)
