"""Your own encoder: any ``nn.Module`` that maps a batch to representations ``h`` of shape ``[N, D]``, with hscl's
projection head built on top (:class:`ProjectedEncoder`).

An encoder given as a factory string ``"package.module:function"`` (``hscl train --encoder``) is resolved with
:func:`importlib.import_module` and ``getattr`` (never evaluated) and called without arguments; the string is
recorded in the model's ``spec`` so that :func:`hscl.checkpoint.load_model` rebuilds it the same way. (The graph
benchmarks, ``hscl reproduce graphs --encoder``, call a graph factory with the keyword ``in_features``, the node
feature size of each data set.)

The loops that take your encoder (``train_images``, ``train_graph_encoder``) check the argument with
:func:`encoder_argument` (as :class:`ProjectedEncoder` checks its ``backbone``) and build the model with
:func:`projected_encoder`; the head is :func:`projection_head`, the one :class:`~hscl.models.ResNetEncoder` has.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Callable

from torch import Tensor, nn

from .._eval import eval_mode
from .._validation import check_int

__all__ = [
    "ProjectedEncoder",
    "build_encoder",
    "encoder_argument",
    "feature_dim_of",
    "projected_encoder",
    "projection_head",
    "qualified_name",
    "resolve_factory",
]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FACTORY = re.compile(rf"({_NAME}(?:\.{_NAME})*):({_NAME}(?:\.{_NAME})*)")


def resolve_factory(text: str) -> Callable[[], nn.Module]:
    """The callable named by ``"package.module:attribute"`` (the attribute may be dotted: ``module:Class.make``),
    imported with :mod:`importlib`; a ``ValueError`` that says what is missing otherwise."""
    if not isinstance(text, str) or not _FACTORY.fullmatch(text.strip()):
        raise ValueError(f"an encoder factory is written 'package.module:function', got {text!r}")
    module_name, attribute = _FACTORY.fullmatch(text.strip()).groups()
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"encoder factory {text!r}: cannot import module {module_name!r} ({err})") from err
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"encoder factory {text!r}: module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"encoder factory {text!r}: {attribute!r} is a {type(obj).__name__}, not a callable")
    return obj


def build_encoder(factory: str, **kwargs) -> nn.Module:
    """``resolve_factory(factory)(**kwargs)`` (no arguments by default), checked to be an ``nn.Module``."""
    module = resolve_factory(factory)(**kwargs)
    if not isinstance(module, nn.Module):
        raise ValueError(f"encoder factory {factory!r} returned a {qualified_name(module)}, not a torch.nn.Module")
    return module


def encoder_argument(encoder, name: str = "encoder", *, optional: bool = True) -> tuple[nn.Module | None, str | None]:
    """Check a user's encoder argument ``name``: an ``nn.Module``, a factory string ``"package.module:function"``,
    or (when ``optional``) ``None`` for the package's own network. Returns ``(module, factory)``: the module given
    (else ``None``) and the factory string stripped (else ``None``). A factory is resolved here but not called, so
    that a missing module or attribute is reported (a ``ValueError``, see :func:`resolve_factory`) before any
    work; anything else is a ``ValueError`` naming the argument."""
    if encoder is None and optional:
        return None, None
    if isinstance(encoder, str):
        resolve_factory(encoder)
        return None, encoder.strip()
    if not isinstance(encoder, nn.Module):
        raise ValueError(f"{name} must be a torch.nn.Module or 'package.module:factory', got {type(encoder).__name__}")
    return encoder, None


def _flat(h, who: str) -> Tensor:
    if not isinstance(h, Tensor):
        raise ValueError(f"{who} returned a {type(h).__name__}; an encoder returns a tensor [N, D]")
    if h.dim() < 2:
        raise ValueError(f"{who} returned shape {tuple(h.shape)}; an encoder returns [N, D] (one row per sample)")
    return h.reshape(h.shape[0], -1)


def feature_dim_of(backbone: nn.Module, example) -> int:
    """The representation size ``D`` of ``backbone``: one forward of ``example`` (a small batch) in eval mode, no
    gradients; the module's training mode is restored (BatchNorm statistics are not updated)."""
    first = next(itertools.chain(backbone.parameters(), backbone.buffers()), None)
    if first is not None and hasattr(example, "to"):
        example = example.to(first.device)
    with eval_mode(backbone):
        h = _flat(backbone(example), f"encoder {type(backbone).__qualname__}")
    return int(h.shape[1])


def qualified_name(obj) -> str:
    """``"module.QualifiedName"`` of the class of ``obj``: how records and errors name an encoder."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def projection_head(in_features: int, hidden: int, projection: int) -> nn.Sequential:
    """The projection head ``Linear(in_features, hidden, bias=False)`` - ``BatchNorm1d(hidden)`` - ReLU -
    ``Linear(hidden, projection)`` (docs/math.md section 6), as one ``nn.Sequential``: its state-dict keys are
    ``0.weight``, ``1.*`` (the BatchNorm) and ``3.weight``, ``3.bias``, initialised in that order."""
    return nn.Sequential(
        nn.Linear(in_features, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, projection),
    )


class ProjectedEncoder(nn.Module):
    """``h = backbone(x)`` (flattened to ``[N, D]``), ``z = head(h)`` with the head ``Linear(D, hidden)`` -
    BatchNorm - ReLU - ``Linear(hidden, projection)`` (:func:`projection_head`, as in
    :class:`~hscl.models.ResNetEncoder`).

    ``backbone`` is an ``nn.Module`` or a factory string ``"package.module:function"`` (built by
    :func:`build_encoder`); ``factory`` names the factory a given module was built by. Only with a factory does
    the model have a ``spec``, from which :func:`hscl.models.build_model` (and so
    :func:`hscl.checkpoint.load_model`) rebuilds it. ``feature_dim`` is ``D`` (see :func:`feature_dim_of`);
    ``hidden`` and ``projection`` default to ``D``.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        feature_dim: int,
        hidden: int | None = None,
        projection: int | None = None,
        *,
        factory: str | None = None,
    ) -> None:
        super().__init__()
        _, built_by = encoder_argument(backbone, "backbone", optional=False)
        if built_by is not None:
            factory, backbone = built_by, build_encoder(built_by)
        hidden = feature_dim if hidden is None else hidden
        projection = feature_dim if projection is None else projection
        for name, value in dict(feature_dim=feature_dim, hidden=hidden, projection=projection).items():
            check_int(name, value, 1)
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = projection_head(feature_dim, hidden, projection)
        self.encoder_class = qualified_name(backbone)
        self.factory = factory
        if factory is not None:  # rebuildable: build_model(spec) resolves the same factory
            kwargs = dict(backbone=factory, feature_dim=feature_dim, hidden=hidden, projection=projection)
            self.spec = {"name": "custom", "kwargs": kwargs}

    def features(self, x) -> Tensor:
        h = _flat(self.backbone(x), f"encoder {self.encoder_class}")
        if h.shape[1] != self.feature_dim:
            raise ValueError(
                f"encoder {self.encoder_class} returned {h.shape[1]} features, the head was built for "
                f"{self.feature_dim}"
            )
        return h

    def forward(self, x) -> Tensor:
        return self.head(self.features(x))

    def description(self) -> dict:
        """What a record says about the encoder: ``{"factory", "class", "feature_dim"}`` (JSON-able)."""
        return {"factory": self.factory, "class": self.encoder_class, "feature_dim": self.feature_dim}


def projected_encoder(
    encoder: nn.Module | str,
    example=None,
    *,
    feature_dim: int | None = None,
    hidden: int | None = None,
    projection: int | None = None,
) -> ProjectedEncoder:
    """Your ``encoder`` (a module, or a factory string built now: seed before calling) under the projection head:
    a :class:`ProjectedEncoder` that records the factory. ``feature_dim`` defaults to the representation size
    read from one forward of ``example`` (:func:`feature_dim_of`); ``hidden`` and ``projection`` default to it."""
    module, factory = encoder_argument(encoder, optional=False)
    if factory is not None:
        module = build_encoder(factory)
    if feature_dim is None:
        feature_dim = feature_dim_of(module, example)
    return ProjectedEncoder(module, feature_dim, hidden, projection, factory=factory)
