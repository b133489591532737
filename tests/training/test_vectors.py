"""The digits loop (:mod:`hscl.training.vectors`): one seed gives two methods the same initialisation, views
and batches, and the untrained control is that initialisation."""

import torch

from hscl.training import vectors


def test_digits_runs_are_paired_across_methods(tmp_path, monkeypatch):
    """Same seed, two methods: the same initial parameters, the same augmented views in the same order, the same
    batches; the untrained control is that initialisation."""
    from hscl.transforms import VectorAugment

    split = vectors.digits_split(0)
    seen = {"views": [], "params": []}
    encoder = vectors._digits_encoder

    def recording_encoder(seed, d):
        model = encoder(seed, d)
        seen["params"].append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    call = VectorAugment.__call__

    def recording_call(self, x):
        out = call(self, x)
        if self.generator is not None and self.generator.initial_seed() != 12345:  # the training views
            seen["views"].append(out.clone())
        return out

    monkeypatch.setattr(vectors, "_digits_encoder", recording_encoder)
    monkeypatch.setattr(VectorAugment, "__call__", recording_call)
    for m in ("ucl", "scl-labels"):
        vectors.train_digits(m, tmp_path / m, split, epochs=1, seed=0, temperature=0.5, diagnostics=False)
    first, second = seen["params"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    views = seen["views"]
    assert len(views) >= 4 and len(views) % 2 == 0
    half = len(views) // 2
    assert all(torch.equal(a, b) for a, b in zip(views[:half], views[half:], strict=True))
    controls = vectors.digits_controls(split, 0)
    assert len(seen["params"]) == 3 and all(torch.equal(seen["params"][2][k], first[k]) for k in first)
    assert set(controls) == {"untrained", "raw-pixels"}
    assert all(0.5 < c["linear_top1"] <= 1 and c["epochs"] == 0 for c in controls.values())
