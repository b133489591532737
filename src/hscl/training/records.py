"""What the records of a run say: the code that wrote them (the hscl version and, when hscl runs from a git
checkout, its commit: ``git rev-parse HEAD`` in the package's folder; ``None`` otherwise, never an error) and the
hardening a method actually used."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["git_commit", "git_dirty", "hardening_used", "provenance"]


def _git(*args: str) -> str | None:
    """stdout of ``git ARGS`` run in the package's folder, or ``None`` (no git, not a checkout, any failure)."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout if proc.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the git checkout hscl is imported from, or ``None`` (no git, not a checkout, any failure)."""
    commit = (_git("rev-parse", "HEAD") or "").strip()
    if len(commit) not in (40, 64) or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


@functools.lru_cache(maxsize=1)
def git_dirty() -> bool | None:
    """Whether the checkout has uncommitted changes to tracked files (then :func:`git_commit` is not all of the code
    that ran); ``None`` where :func:`git_commit` is ``None``."""
    if git_commit() is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())


def provenance() -> dict:
    """``{"hscl_version": ..., "git_commit": ..., "git_dirty": ...}`` for ``metrics.json`` and ``run.json``."""
    from .. import __version__

    return {"hscl_version": __version__, "git_commit": git_commit(), "git_dirty": git_dirty()}


def hardening_used(method: str, beta: float | None, tau: float | None) -> tuple[float | None, float | None]:
    """The ``(beta, tau)`` that ``make_loss(method, t, beta=beta, tau=tau)`` uses: the registry's defaults
    (``DEFAULT_BETA`` for the tilted methods, ``DEFAULT_TAU`` for the thresholded ones) when neither is given."""
    from ..losses.registry import DEFAULT_BETA, DEFAULT_TAU, METHODS

    hardening = METHODS[method].hardening if method in METHODS else None
    if hardening is None or beta is not None or tau is not None:
        return beta, tau
    return (None, DEFAULT_TAU) if hardening == "tau" else (DEFAULT_BETA, None)
