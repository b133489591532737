"""Loss modules, one per file: the general :class:`ContrastiveLoss` and the named presets."""

from .contrastive import ContrastiveLoss
from .hscl import HSCL
from .hucl import HUCL
from .scl import SCL
from .supcon import SupConLoss
from .ucl import UCL

__all__ = ["HSCL", "HUCL", "SCL", "UCL", "ContrastiveLoss", "SupConLoss"]
