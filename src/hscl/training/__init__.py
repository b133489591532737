"""Training loops. ``graphs``: contrastive pre-training of graph encoders (a plain loop: the graph protocol runs
hundreds of short fits on a CPU, where a Trainer's start-up would cost more than the fits);
:func:`train_graph_encoder` by method name, with the GIN or your own encoder. ``images``: the Lightning job of
``hscl train`` (:func:`hscl.training.images.train_images`). ``images`` needs the ``images`` extra, ``graphs``
the ``graphs`` extra (this package: either one); the names below are imported from ``graphs`` on first use."""

from .._extras import require

require(__name__, "images", "graphs")

__all__ = ["embed_graphs", "pretrain_graphs", "train_graph_encoder"]


def __getattr__(name: str):
    if name in __all__:
        from . import graphs

        return getattr(graphs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
