"""pytorch-metric-learning as an independent oracle."""

import pytest
import torch

from tests.conftest import make_batch

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

from hscl.functional import contrastive_loss, supcon_loss  # noqa: E402


@pytest.mark.parametrize("temperature", [0.07, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_ucl_two_views_equals_pml_ntxent(temperature, seed):
    b = 16
    z, _ = make_batch(b=b, v=2, d=12, seed=seed)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    ours = contrastive_loss(z1, temperature=temperature)
    oracle = pml_losses.NTXentLoss(temperature=temperature)(z2.reshape(2 * b, -1), torch.arange(b).repeat_interleave(2))
    torch.testing.assert_close(ours, oracle, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(
        torch.autograd.grad(ours, z1)[0], torch.autograd.grad(oracle, z2)[0], rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("views", [1, 2, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_equals_pml_supcon(views, temperature):
    b = 12
    z, y = make_batch(b=b, v=views, d=10, classes=4, seed=views)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    ours = supcon_loss(z1, y, temperature=temperature)
    oracle = pml_losses.SupConLoss(temperature=temperature)(z2.reshape(b * views, -1), y.repeat_interleave(views))
    torch.testing.assert_close(ours, oracle, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(
        torch.autograd.grad(ours, z1)[0], torch.autograd.grad(oracle, z2)[0], rtol=1e-7, atol=1e-9
    )
