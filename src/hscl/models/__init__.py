"""Encoders. Each returns the projection z used by the losses from ``forward`` and the representation h used
for evaluation from ``features``. ``build_model({"name": ..., "kwargs": {...}})`` rebuilds one from its spec;
:class:`ProjectedEncoder` puts the projection head on your own encoder."""

from .custom import (
    ProjectedEncoder,
    build_encoder,
    encoder_argument,
    feature_dim_of,
    projected_encoder,
    projection_head,
    qualified_name,
    resolve_factory,
)
from .gin import GINEncoder
from .mlp import MLPEncoder
from .resnet import ResNetEncoder

MODELS = {"mlp": MLPEncoder, "gin": GINEncoder, "resnet": ResNetEncoder, "custom": ProjectedEncoder}

__all__ = [
    "MODELS",
    "GINEncoder",
    "MLPEncoder",
    "ProjectedEncoder",
    "ResNetEncoder",
    "build_encoder",
    "build_model",
    "encoder_argument",
    "feature_dim_of",
    "projected_encoder",
    "projection_head",
    "qualified_name",
    "resolve_factory",
]


def build_model(spec: dict):
    """The model named by ``spec["name"]`` with ``spec["kwargs"]`` (``"custom"``: a :class:`ProjectedEncoder`
    whose ``kwargs["backbone"]`` factory string is imported and called, see :func:`resolve_factory`)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a model spec is a dict with 'name' and 'kwargs', got {spec!r}")
    if spec["name"] not in MODELS:
        raise ValueError(f"unknown model {spec['name']!r}; known: {', '.join(sorted(MODELS))}")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"a model spec's kwargs is a dict, got {kwargs!r}")
    return MODELS[spec["name"]](**kwargs)
