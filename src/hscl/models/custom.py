"""Your own encoder: any ``nn.Module`` that maps a batch to representations ``h`` of shape ``[N, D]``, with hscl's
projection head built on top (:class:`ProjectedEncoder`).

An encoder given as a factory string ``"package.module:function"`` (``hscl train --encoder``) is resolved with
:func:`importlib.import_module` and ``getattr`` (never evaluated) and called without arguments; the string is
recorded in the model's ``spec`` so that :func:`hscl.checkpoint.load_model` rebuilds it the same way. (The graph
benchmarks, ``hscl reproduce graphs --encoder``, call a graph factory with the keyword ``in_features``, the node
feature size of each data set.)
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Callable

from torch import Tensor, nn

from .._eval import eval_mode
from .._validation import check_int

__all__ = ["ProjectedEncoder", "build_encoder", "feature_dim_of", "resolve_factory"]

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


def build_encoder(factory: str) -> nn.Module:
    """``resolve_factory(factory)()``, checked to be an ``nn.Module``."""
    module = resolve_factory(factory)()
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"encoder factory {factory!r} returned a {type(module).__module__}.{type(module).__qualname__}, "
            "not a torch.nn.Module"
        )
    return module


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


def _describe(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


class ProjectedEncoder(nn.Module):
    """``h = backbone(x)`` (flattened to ``[N, D]``), ``z = head(h)`` with the head ``Linear(D, hidden)`` -
    BatchNorm - ReLU - ``Linear(hidden, projection)`` (the head of :class:`~hscl.models.ResNetEncoder`).

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
        if isinstance(backbone, str):
            factory = backbone.strip()
            backbone = build_encoder(factory)
        if not isinstance(backbone, nn.Module):
            raise ValueError(
                f"encoder must be a torch.nn.Module or 'package.module:factory', got {type(backbone).__name__}"
            )
        hidden = feature_dim if hidden is None else hidden
        projection = feature_dim if projection is None else projection
        for name, value in dict(feature_dim=feature_dim, hidden=hidden, projection=projection).items():
            check_int(name, value, 1)
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.head = nn.Sequential(
            nn.Linear(feature_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, projection),
        )
        self.encoder_class = _describe(backbone)
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
