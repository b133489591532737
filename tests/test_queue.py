"""The memory queue (:mod:`hscl.queue`): first in, first out, wrapping around; a state is checked on load (an
error naming the key, nothing loaded) and every state a queue writes is accepted."""

import math

import pytest
import torch

import hscl
from tests.conftest import make_batch


def test_queue_is_fifo_and_wraps():
    q = hscl.EmbeddingQueue(5)
    for step in range(4):  # 3 embeddings per push
        q.push(torch.full((3, 2), float(step)), torch.tensor([step] * 3), torch.arange(3) + 10 * step)
    emb, labels, ids = q.entries()
    assert len(q) == 5
    assert emb[:, 0].tolist() == [2.0, 2.0, 3.0, 3.0, 3.0]  # oldest first
    assert ids.tolist() == [21, 22, 30, 31, 32]
    assert labels.tolist() == [2, 2, 3, 3, 3]
    big = hscl.EmbeddingQueue(4)
    big.push(torch.arange(7.0)[:, None], None, torch.arange(7))
    assert big.entries()[0][:, 0].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert big.entries()[1] is None


# Issue 12, item 7: a queue state is checked on load, with an error naming the key, and a bad one loads nothing.


def _filled_queue_state(size=6, pushes=1):
    loss = hscl.losses.HSCL(beta=1.0, queue_size=size)
    for seed in range(pushes):
        loss(make_batch(b=2, v=2, seed=seed)[0], torch.tensor([0, 1]))  # 4 embeddings per call
    return {k: v.clone() for k, v in loss.state_dict().items()}


def _nan_row(state):
    state["queue.embeddings"][1, 0] = math.nan


BAD_QUEUE_STATES = [
    ("count beyond capacity", lambda s: s["queue.count"].fill_(10), r"queue\.count must be in \[0, 6\].*got 10"),
    ("count negative", lambda s: s["queue.count"].fill_(-1), r"queue\.count must be in \[0, 6\]"),
    ("count float", lambda s: s.update({"queue.count": torch.tensor(4.0)}), r"queue\.count must be a 0-d integer"),
    ("count 1-d", lambda s: s.update({"queue.count": torch.tensor([4])}), r"queue\.count must be a 0-d integer"),
    ("head beyond capacity", lambda s: s["queue.head"].fill_(6), r"queue\.head must be in \[0, 5\]"),
    ("head != count", lambda s: s["queue.head"].fill_(1), r"queue\.head must equal count \(4\)"),
    ("NaN row", _nan_row, r"queue\.embeddings contains NaN or inf"),
    ("inf row", lambda s: s["queue.embeddings"][0].fill_(math.inf), r"queue\.embeddings contains NaN or inf"),
    ("embeddings 1-d", lambda s: s.update({"queue.embeddings": torch.zeros(6)}), r"queue\.embeddings must be a float"),
    ("embeddings int", lambda s: s.update({"queue.embeddings": torch.zeros(6, 5, dtype=torch.long)}), r"floating"),
    ("embeddings [0, 5]", lambda s: s.update({"queue.embeddings": torch.zeros(0, 5)}), r"must have shape \[0, 0\]"),
    ("labels float", lambda s: s.update({"queue.labels": s["queue.labels"].double()}), r"labels must have an int"),
    ("ids short", lambda s: s.update({"queue.ids": s["queue.ids"][:3]}), r"queue\.ids must have shape \[6\]"),
    ("has_labels int", lambda s: s.update({"queue.has_labels": torch.tensor(1)}), r"has_labels must be a 0-d"),
    ("not a tensor", lambda s: s.update({"queue.count": 4}), r"queue\.count must be a tensor, got int"),
    ("next_auto_id < 0", lambda s: s["next_auto_id"].fill_(-5), r"next_auto_id must be a 0-d integer >= 0"),
]


@pytest.mark.parametrize("name,corrupt,match", BAD_QUEUE_STATES, ids=[c[0] for c in BAD_QUEUE_STATES])
def test_queue_state_is_checked_on_load(name, corrupt, match):
    """count beyond the capacity used to inflate K silently and a NaN row to make every anchor invalid."""
    state = _filled_queue_state()
    corrupt(state)
    target = hscl.losses.HSCL(beta=1.0, queue_size=6)
    target(make_batch(b=2, v=2, seed=5)[0], torch.tensor([1, 0]))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    after = target.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), "nothing loads"


def test_queue_state_check_accepts_every_state_a_queue_writes():
    for pushes in (0, 1, 2, 3):  # empty, partly filled, full and wrapped around
        state = _filled_queue_state(pushes=pushes)
        target = hscl.losses.HSCL(beta=1.0, queue_size=6)
        target.load_state_dict(state)
        assert len(target.queue) == min(4 * pushes, 6)
    q = hscl.EmbeddingQueue(3)
    q.push(torch.randn(5, 2), None, torch.arange(5))
    q.reset()
    fresh = hscl.EmbeddingQueue(3)
    fresh.load_state_dict(q.state_dict())
    assert len(fresh) == 0
    standalone = hscl.EmbeddingQueue(3)
    state = q.state_dict()
    state["count"] = torch.tensor(7)
    with pytest.raises(ValueError, match=r"invalid queue state in the checkpoint: count must be in \[0, 3\]"):
        standalone.load_state_dict(state)
