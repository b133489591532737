"""The supervised reference: early stopping on a validation split inside the training graphs only."""

import pytest
import torch

from hscl.datasets.tu import load_tu
from hscl.models import GINEncoder
from hscl.training.graph_classifier import fit_graph_classifier


def test_test_labels_never_influence_training_or_the_chosen_epoch(tmp_path):
    data = load_tu("MUTAG", cache=tmp_path)
    graphs, labels = list(data), data.labels
    train, test = graphs[:150], graphs[150:]

    def fit(test_labels):
        torch.manual_seed(0)
        encoder = GINEncoder(data.num_features, hidden=16, layers=2)
        return fit_graph_classifier(
            encoder, train, labels[:150], test, test_labels, max_steps=40, batch_size=32, seed=1
        )

    a, b = fit(labels[150:]), fit(1 - labels[150:])
    assert (a["best_epoch"], a["val_accuracy"], a["steps"]) == (b["best_epoch"], b["val_accuracy"], b["steps"])
    assert a["accuracy"] == pytest.approx(1 - b["accuracy"])
    assert (
        a["accuracy"] > 0.7 and a["steps"] == 40 and 1 <= a["best_epoch"] <= a["epochs"] == 8
    )  # 135 fitting graphs: 5 steps per epoch
    with pytest.raises(ValueError, match="max_steps must be an int >= 1"):
        fit_graph_classifier(GINEncoder(7), train, labels[:150], test, labels[150:], max_steps=0)
    with pytest.raises(ValueError, match="one entry per graph"):
        fit_graph_classifier(GINEncoder(7), train, labels[:10], test, labels[150:], max_steps=5)
