"""The loss engine (:mod:`hscl._engine`): statistics on the generic layout (a repeated instance id), beside the
block layout's. Both layouts' values and gradients are checked against the reference in
``tests/losses/test_reference_match.py``."""

import torch

from tests.conftest import saved_storages


def test_stats_on_the_generic_layout():
    """Stats with a repeated instance id (the generic layout, not the block one) are returned, and asking for them
    does not change the loss (it raised UnboundLocalError before)."""
    from hscl.losses import HSCL

    torch.manual_seed(0)
    z = torch.randn(6, 2, 8)
    y = torch.tensor([0, 1, 0, 1, 2, 2])
    ids = torch.tensor([0, 1, 2, 0, 3, 4])  # instance 0 twice: its four views are one another's positives
    value, stats = HSCL(queue_size=16)(z, y, instance_ids=ids, return_stats=True)
    assert torch.isfinite(value) and stats.num_valid > 0 and torch.isfinite(stats.effective_negatives)
    assert torch.equal(value, HSCL(queue_size=16)(z, y, instance_ids=ids))


def test_l2_normalize_keeps_only_its_input_and_output():
    """The backward of :func:`hscl._engine.l2_normalize` keeps x and its output, not y = x / 2^k as well (one
    [N, D] copy fewer than autograd's composite)."""
    from hscl._engine import l2_normalize

    x = torch.randn(64, 8, requires_grad=True)
    out = []
    kept = saved_storages(lambda t: out.append(l2_normalize(t)), x)
    assert kept == {x.untyped_storage().data_ptr(), out[0].untyped_storage().data_ptr()}


def test_l2_normalize_second_derivative_is_the_composites():
    """Under ``create_graph`` the lean backward hands over to the composite's: gradgradcheck passes."""
    from hscl._engine import l2_normalize

    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True) * torch.tensor([[1e-3], [1.0], [1e3], [7.0], [2.0]])
    x = x.detach().requires_grad_(True)
    assert torch.autograd.gradgradcheck(l2_normalize, (x,))
