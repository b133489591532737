"""Loss modules, one per file: the general :class:`ContrastiveLoss` and the named presets."""

from .contrastive import ContrastiveLoss
from .hard_scl import HSCL
from .hard_ucl import HUCL
from .scl import SCL
from .supcon import SupConLoss
from .ucl import UCL

__all__ = ["HSCL", "HUCL", "SCL", "UCL", "ContrastiveLoss", "SupConLoss"]
