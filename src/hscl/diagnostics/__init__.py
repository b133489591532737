"""The paper's theory, made measurable (docs/math.md section 4): the four asymptotic losses, Assumption 1, and a
per-epoch recorder with figures. ``DiagnosticsCallback`` (Lightning) is imported on first use."""

from .asymptotic import (
    LOSS_NAMES,
    PAPER_SETTINGS,
    AssumptionReport,
    assumption_fraction,
    assumption_report,
    asymptotic_losses,
    default_chunk_size,
)
from .embed import embed_views
from .recorder import DiagnosticsRecorder

__all__ = [
    "LOSS_NAMES",
    "PAPER_SETTINGS",
    "AssumptionReport",
    "DiagnosticsCallback",
    "DiagnosticsRecorder",
    "assumption_fraction",
    "assumption_report",
    "asymptotic_losses",
    "default_chunk_size",
    "embed_views",
]


def __getattr__(name):
    if name == "DiagnosticsCallback":
        from .callback import DiagnosticsCallback

        return DiagnosticsCallback
    raise AttributeError(name)
