"""The commands, one module each, each owning its configuration dataclass and its named presets
(``hscl/configs/<command>/``, read by :mod:`hscl.config`): ``demo``, ``train``, ``diagnose``, and the paper's
experiments, each one resumable command (``hscl reproduce ...``): ``graphs`` (the ``graphs`` extra), ``images`` and
``figures`` (the ``images`` extra). A module's ``configure(preset, overrides)`` resolves its configuration (the
command line's flags and ``--set KEY=VALUE`` are the ``overrides``) and its ``main(config, out)`` runs it."""

from __future__ import annotations

import os
import sys

__all__ = ["import_from_current_folder"]


def import_from_current_folder() -> None:
    """Let an encoder factory ``package.module:function`` live in the current folder, as under ``python -m``:
    append the folder to ``sys.path`` (once). The factory is then imported with importlib, never evaluated."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
