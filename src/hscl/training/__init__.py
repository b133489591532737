"""Training loops. ``graphs``: contrastive pre-training of graph encoders (a plain loop: the graph protocol runs
hundreds of short fits on a CPU, where a Trainer's start-up would cost more than the fits);
:func:`train_graph_encoder` by method name, with the GIN or your own encoder. ``images``: the Lightning job of
``hscl train`` (:func:`hscl.training.images.train_images`). ``vectors``: the digits loop of ``hscl reproduce
figures --preset cpu`` and ``hscl demo`` (:func:`hscl.training.vectors.train_digits`). ``runs``: what every run
shares (the results CSV, the settings fingerprint, the ``run.json`` manifest, the frozen embedding
:func:`hscl.training.runs.embed_frozen`). ``images`` and ``vectors`` need the ``images`` extra, ``graphs`` the
``graphs`` extra (this package and ``runs``: either one); the names below are imported from ``graphs`` on first
use."""

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
