"""hscl: supervised contrastive learning with hard negative samples.

The loss family of Jiang, Nguyen, Ishwar and Aeron (UCL, H-UCL, SCL, H-SCL) and the SupCon baseline:

* :mod:`hscl.functional`: the math, as functions (:func:`~hscl.functional.contrastive_loss`,
  :func:`~hscl.functional.supcon_loss`).
* :class:`hscl.ContrastiveLoss` and the presets in :mod:`hscl.losses` (``UCL``, ``HUCL``, ``SCL``, ``HSCL``,
  ``SupConLoss``): modules with a memory queue, multi-process gathering and chunked computation.
* :mod:`hscl.hardening`: :class:`ExponentialTilt`, :class:`Threshold`, and the contract for your own.
"""

from . import functional, losses
from .functional import LossStats
from .hardening import ExponentialTilt, Hardening, Threshold
from .losses import HSCL, HUCL, SCL, UCL, ContrastiveLoss, SupConLoss
from .queue import EmbeddingQueue

__version__ = "0.1.0"

__all__ = [
    "HSCL",
    "HUCL",
    "SCL",
    "UCL",
    "ContrastiveLoss",
    "EmbeddingQueue",
    "ExponentialTilt",
    "Hardening",
    "LossStats",
    "SupConLoss",
    "Threshold",
    "__version__",
    "functional",
    "losses",
]
