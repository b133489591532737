"""The k-NN monitor (:mod:`hscl.evaluation.knn`): the weighted vote by hand, chunks agree, bad input."""

import pytest
import torch

from hscl.evaluation import (
    knn_accuracy,
    knn_predict,
)


def test_knn_weighted_vote_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    test = torch.tensor([[1.0, 0.05], [0.6, 0.8]])
    # second test point: cosine 0.6 and 0.684 to class 0, 0.8 to class 1. With t = 0.1 the weights are
    # e^6 + e^6.84 = 1337 for class 0 against e^8 = 2981 for class 1; with t = 10 they are nearly equal, so the
    # two class-0 neighbours outvote the one of class 1.
    assert knn_predict(train, labels, test, k=3, temperature=0.1).tolist() == [0, 1]
    assert knn_predict(train, labels, test, k=3, temperature=10.0).tolist() == [0, 0]
    assert knn_predict(train, labels, test, k=1).tolist() == [0, 1]
    assert knn_accuracy(train, labels, test, torch.tensor([0, 1]), k=3) == 1.0


def test_knn_chunks_agree_and_bad_input():
    g = torch.Generator().manual_seed(0)
    tr, te = torch.randn(300, 8, generator=g), torch.randn(50, 8, generator=g)
    y = torch.randint(4, (300,), generator=g)
    assert torch.equal(knn_predict(tr, y, te, chunk_size=7), knn_predict(tr, y, te))
    with pytest.raises(ValueError, match="features must be"):
        knn_predict(tr, y, torch.randn(5, 3))
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_predict(tr, y, te, k=0)
