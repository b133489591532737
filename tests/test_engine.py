"""The loss engine (:mod:`hscl._engine`): statistics on the generic layout (a repeated instance id), beside the
block layout's. Both layouts' values and gradients are checked against the reference in
``tests/losses/test_reference_match.py``."""

import torch


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
