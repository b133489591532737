"""Two augmented views of a data set through a model (:mod:`hscl.diagnostics.embed`): the shapes, one
augmentation per view, the model's mode restored, tensors and loaders alike."""

import pytest
import torch

from hscl.diagnostics import (
    embed_views,
)


def test_embed_views_restores_mode_and_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
    model.train()
    x, y = torch.randn(23, 5), torch.randint(2, (23,))
    calls = []

    def augment(t):
        calls.append(t.shape[0])
        return t + 0.1 * torch.randn_like(t)

    z, labels = embed_views(model, (x, y), augment=augment, batch_size=10, progress=False)
    assert z.shape == (23, 2, 3) and torch.equal(labels, y)
    assert calls == [10, 10, 10, 10, 3, 3]
    assert model.training
    assert not torch.equal(z[:, 0], z[:, 1]), "each view gets its own augmentation"
    loader = [(x[:12], y[:12]), (x[12:], y[12:])]
    z2, _ = embed_views(model, loader, augment=lambda t: t, progress=False)
    torch.testing.assert_close(z2[:, 0], z2[:, 1])
    with pytest.raises(ValueError, match="data is empty"):
        embed_views(model, [], augment=lambda t: t, progress=False)
