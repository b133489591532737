"""Encoders. Each returns the projection z used by the losses from ``forward`` and the representation h used
for evaluation from ``features``. ``build_model({"name": ..., "kwargs": {...}})`` rebuilds one from its spec."""

from .gin import GINEncoder
from .mlp import MLPEncoder
from .resnet import ResNetEncoder

MODELS = {"mlp": MLPEncoder, "gin": GINEncoder, "resnet": ResNetEncoder}

__all__ = ["MODELS", "GINEncoder", "MLPEncoder", "ResNetEncoder", "build_model"]


def build_model(spec: dict):
    """The model named by ``spec["name"]`` with ``spec["kwargs"]``."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a model spec is a dict with 'name' and 'kwargs', got {spec!r}")
    if spec["name"] not in MODELS:
        raise ValueError(f"unknown model {spec['name']!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[spec["name"]](**spec.get("kwargs", {}))
