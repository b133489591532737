"""What every run shares, whatever it trains: the results CSV (read here; written by ``hscl._io.write_csv_atomic``),
the settings fingerprint that binds an output folder to one configuration, the ``run.json`` manifest (commands,
machine, wall time summed over resumes), and the frozen pass that embeds a data set with a trained (or untrained)
encoder. The figures' style and charts are in ``hscl._plot``."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from .._eval import eval_mode
from .._io import atomic_write_text
from .records import provenance

__all__ = [
    "Manifest",
    "bind_settings",
    "check_fingerprints",
    "embed_frozen",
    "fingerprint",
    "load_results",
    "read_rows",
    "read_settings",
    "settings_diff",
]


def read_rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a results CSV, or ``[]`` when it does not exist; a CSV with other columns is refused."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            return []
        if tuple(reader.fieldnames) != tuple(columns):
            raise ValueError(f"{path} exists but is not a results CSV of this experiment (columns {list(columns)})")
        return list(reader)


def load_results(path: Path, columns: Sequence[str], methods: Sequence[str]) -> tuple[list[dict], list[str], list[str]]:
    """A results CSV for a report: its rows, its data sets in order of appearance, and the ``methods`` it holds
    (in the given order). An empty or missing file is an error."""
    rows = read_rows(path, columns)
    if not rows:
        raise ValueError(f"{path} holds no results")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    present = [m for m in methods if any(r["method"] == m for r in rows)]
    return rows, datasets, present


def _canonical(settings: Mapping) -> str:
    """The JSON text that is hashed: sorted keys, no spaces, anything not JSON-able as its ``str``."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(settings: Mapping) -> str:
    """A short content hash of a resolved configuration (a JSON-able mapping): equal settings, equal print."""
    return hashlib.sha256(_canonical(settings).encode()).hexdigest()[:16]


def _flatten(settings: Mapping, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_diff(old: Mapping, new: Mapping) -> list[str]:
    """``["epochs: 2 there, 3 here", ...]`` for every (dotted) setting that differs."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    return [
        f"{k}: {a.get(k, 'unset')!r} there, {b.get(k, 'unset')!r} here"
        for k in sorted(set(a) | set(b))
        if _canonical({"v": a.get(k, missing)}) != _canonical({"v": b.get(k, missing)})
    ]


def read_settings(out: Path) -> dict:
    """``out/settings.json`` as ``{"fingerprint", "settings"}``; a clear error when it is missing or broken."""
    path = Path(out) / "settings.json"
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved.get("fingerprint"), str) or not isinstance(saved.get("settings"), dict):
            raise KeyError("fingerprint/settings")
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: the results beside it cannot be tied to their settings") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a settings file of hscl ({err})") from None
    return saved


def bind_settings(out: Path, settings: Mapping) -> str:
    """Bind the folder ``out`` to ``settings`` and return their fingerprint.

    The first run writes ``out/settings.json`` (the resolved settings and their fingerprint); a later run with
    the same settings resumes; one with other settings is refused with a ``ValueError`` that names every
    setting that differs, so that results of two configurations are never mixed in one folder."""
    out = Path(out)
    fp = fingerprint(settings)
    path = out / "settings.json"
    if path.exists():
        saved = read_settings(out)
        old_fp, old = saved["fingerprint"], saved["settings"]
        if old_fp != fp:
            diff = settings_diff(old, json.loads(_canonical(settings)))
            raise ValueError(
                f"{out} holds results of other settings (fingerprint {old_fp}, here {fp}): "
                + ("; ".join(diff) or "the saved settings were edited by hand")
                + ". Use another --out, or the same settings to resume."
            )
        return fp
    atomic_write_text(path, json.dumps({"fingerprint": fp, "settings": settings}, indent=1, default=str) + "\n")
    return fp


def check_fingerprints(rows: Sequence[Mapping], fp: str, path: Path) -> None:
    """Refuse results rows written under another configuration (their ``fingerprint`` column differs)."""
    other = sorted({r.get("fingerprint", "") for r in rows} - {fp})
    if other:
        raise ValueError(
            f"{path} holds rows of another configuration (fingerprint {', '.join(other)}, here {fp}); use another --out"
        )


class Manifest:
    """``run.json``: the commands that wrote the results, the code that ran each (the hscl version and git commit:
    a resume may run other code), the machine, and the wall time summed over resumes. Provenance only: nothing
    here feeds the settings fingerprint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {"invocations": [], "wall_seconds": 0.0}
        self.data["invocations"].append(
            {
                "argv": sys.argv,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **provenance(),
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__,
            }
        )
        self.base = self.data["wall_seconds"]
        self.start = time.perf_counter()

    def tick(self, done: int, total: int) -> None:
        """Record ``done`` of ``total`` cells finished and the wall time so far; rewrite ``run.json``."""
        self.data["wall_seconds"] = round(self.base + time.perf_counter() - self.start, 1)
        self.data["cells_done"], self.data["cells_total"] = done, total
        atomic_write_text(self.path, json.dumps(self.data, indent=1) + "\n")


def embed_frozen(model: nn.Module, batches: Iterable, *, embed: Callable[..., Tensor] | None = None) -> Tensor:
    """The representations of every batch of ``batches``, in order, concatenated on the CPU: ``embed(batch)``
    (default ``model.features``) with ``model`` in eval mode and without gradients, its training mode restored
    afterwards. The frozen pass of every loop; what a batch is differs by data type (the caller makes them):
    :func:`hscl.training.graphs.embed_graphs` (collated graphs), the probe and kNN features of
    :mod:`hscl.training.images` (image arrays, moved to the module's device) and of :mod:`hscl.training.vectors`
    (the whole feature matrix as one batch). Nothing is cast: the dtype is ``embed``'s."""
    features = model.features if embed is None else embed
    with eval_mode(model):
        out = [features(batch).cpu() for batch in batches]
    if not out:
        raise ValueError("batches is empty: nothing to embed")
    return torch.cat(out)
