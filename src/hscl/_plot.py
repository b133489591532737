"""The figures' shared style, one function per idea, and figures written atomically as PNG (a run killed while
saving leaves the previous file, never half of one).

* :func:`dataset_name`: a data set as a reader knows it ("CIFAR-10", never ``cifar10-jpeg.tar.gz``);
  :func:`readable`: the same for every file name inside a title, then :func:`math_text`.
* :func:`math_text`: beta, tau, eta and e^x as math text (``$\\beta$``, ``$\\tau$``, ``$e^{-0.5}$``).
* :func:`legend_outside`: the legend beside the axes, never over the data.
* :func:`epoch_axis`: an "epoch" axis with integer ticks.
* :func:`bar_chart`: accuracy bars that start at 0, controls hatched grey; :func:`paired_chart`: paired
  differences as dots with their interval (whiskers) around a zero line.
* :func:`save_png`: every figure saved with ``bbox_inches="tight"``, so a legend outside the axes is kept.

matplotlib is imported on first use, so that importing hscl never pulls it in.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from ._io import atomic_write

__all__ = [
    "ASYMPTOTIC_LABEL",
    "bar_chart",
    "dataset_name",
    "epoch_axis",
    "legend_outside",
    "math_text",
    "paired_chart",
    "pyplot",
    "readable",
    "save_png",
]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (unless one was already chosen), imported on first use so that
    importing hscl never pulls in matplotlib."""
    from ._extras import require

    require("drawing a figure", "images", "graphs", modules=("matplotlib",))
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Write ``fig`` to ``path`` as a 120-dpi PNG, atomically, then close it. The saved area is the figure's
    tight bounding box (``bbox_inches="tight"`` unless given), so legends and titles outside the axes are kept."""
    savefig_kwargs.setdefault("bbox_inches", "tight")
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png", **savefig_kwargs))
    pyplot().close(fig)
    return path


# ---------------------------------------------------------------------------------------------------- names

#: Data-set files and archives: the extension is not part of the name.
_EXTENSION = re.compile(r"\.(?:tar\.gz|tar\.bz2|tar\.xz|tgz|tar|zip|npz|npy|pkl|pt)$", re.IGNORECASE)
#: Known data sets by their letters and digits, and the name a reader knows.
_KNOWN = {
    "cifar100": "CIFAR-100",
    "cifar10": "CIFAR-10",
    "stl10": "STL-10",
    "tinyimagenet": "Tiny-ImageNet",
    "digits": "digits",
}
#: What the publishers' folders and archives append to a known name (``cifar-10-batches-py``, ``stl10_binary``).
_PACKAGING = ("", "jpeg", "jpg", "png", "python", "py", "batchespy", "binary", "200", "images")
#: A file or folder path inside free text: an absolute or relative path, or a name with a data-set extension.
_PATH_IN_TEXT = re.compile(
    r"(?<![^\s(\[])(?:(?:~|\.{1,2})?/[^\s(),;:]+|[^\s(),;:]+\.(?:tar\.gz|tar\.bz2|tar\.xz|tgz|tar|zip|npz|npy|pkl|pt)\b)",
    re.IGNORECASE,
)


def dataset_name(name: str | os.PathLike) -> str:
    """The name of a data set given by name or path, as a reader knows it: the file or folder name without its
    extensions, the publishers' packaging dropped for the known sets (``../data/cifar10-jpeg.tar.gz`` ->
    ``CIFAR-10``, ``cifar-100-python`` -> ``CIFAR-100``, ``stl10_binary`` -> ``STL-10``); other names as they
    are (``MUTAG``, ``PTC_MR``)."""
    stem = Path(str(name).rstrip("/\\")).name or str(name)
    while (shorter := _EXTENSION.sub("", stem)) != stem and shorter:
        stem = shorter
    key = re.sub(r"[^a-z0-9]", "", stem.lower())
    for known, title in _KNOWN.items():  # longest first where one name extends another (cifar100, cifar10)
        if key.startswith(known) and key[len(known) :] in _PACKAGING:
            return title
    return stem


_POWER = re.compile(r"(?<![\w$])e\^\{?(-?\d+(?:\.\d+)?)\}?")
_GREEK = re.compile(r"(?<![\\\w$-])(beta|tau|eta)(?![\w$-])")  # not in a method name (hscl-beta)


def math_text(text: str) -> str:
    """``text`` with beta, tau, eta and e^x written as matplotlib math text: ``H-SCL (beta=1)`` ->
    ``H-SCL ($\\beta$=1)``, ``tau=e^-0.5`` -> ``$\\tau$=$e^{-0.5}$``. Text that already holds math (a ``$``) is
    returned as it is."""
    if "$" in text:
        return text
    text = _POWER.sub(lambda m: f"$e^{{{m[1]}}}$", text)
    return _GREEK.sub(lambda m: f"$\\{m[1]}$", text)


def readable(text: str) -> str:
    """A title or label for a reader: every path or data-set file name inside ``text`` replaced by
    :func:`dataset_name`, then :func:`math_text`."""
    return math_text(_PATH_IN_TEXT.sub(lambda m: dataset_name(m[0]), text))


# ---------------------------------------------------------------------------------------------------- axes

#: The y label of the asymptotic pair loss (docs/math.md section 4).
ASYMPTOTIC_LABEL = r"asymptotic loss $-s_{ip} + \log E_i$"


def legend_outside(ax, handles=None, labels=None, **kwargs):
    """A legend to the right of ``ax``, outside its data area, so that it never covers a bar, point or line
    (the figure is saved with ``bbox_inches="tight"``, which keeps it). Labels go through :func:`math_text`.
    ``handles``/``labels`` default to those of ``ax``; ``kwargs`` override the placement or style. Returns the
    legend, or ``None`` when there is nothing to show."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    options = dict(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8, frameon=False)
    options.update(kwargs)
    return ax.legend(handles, [math_text(str(label)) for label in labels], **options)


def epoch_axis(ax) -> None:
    """Label the x axis "epoch" and give it integer ticks only (no epoch 2.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _group_ticks(ax, groups: Sequence[str]) -> None:
    labels = [textwrap.fill(readable(str(g)), 20) for g in groups]  # math text holds no space: never split
    ax.set_xticks(range(len(groups)), labels, rotation=20 if len(groups) > 3 else 0)


def _offsets(n_series: int) -> tuple[float, list[float]]:
    width = 0.8 / max(1, n_series)
    return width, [(k - (n_series - 1) / 2) * width for k in range(n_series)]


# ---------------------------------------------------------------------------------------------------- charts


def bar_chart(
    path: str | os.PathLike,
    groups: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    ylabel: str = "accuracy (%)",
    controls: Collection[str] = (),
    top: float = 100.0,
) -> Path:
    """A grouped bar chart with error bars: one group per entry of ``groups``, one bar per series (label ->
    (means, stds), NaN for a missing bar). The bars start at 0 and the axis runs from 0 to ``top`` (or the
    highest bar), so bar heights compare honestly; the series named in ``controls`` are hatched grey. The legend
    sits outside the axes. Written atomically as PNG; returns ``path``."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups)), 4))
    width, offsets = _offsets(len(series))
    greys = iter(["0.55", "0.75", "0.35", "0.85"] * len(series))
    highest = top
    for offset, (label, (means, stds)) in zip(offsets, series.items(), strict=True):
        xs = [i + offset for i in range(len(groups))]
        style = dict(color=next(greys), hatch="//", edgecolor="0.3") if label in controls else {}
        shown = f"{label} (control)" if label in controls and "control" not in label else label
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=shown, **style)
        tops = np.asarray(means, dtype=float) + np.nan_to_num(np.asarray(stds, dtype=float))
        highest = max(highest, float(np.nanmax(tops, initial=0.0)))
    _group_ticks(ax, groups)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, highest)
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax)
    ax.set_title(readable(title), fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def paired_chart(
    path: str | os.PathLike,
    groups: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    title: str,
    ylabel: str,
    empty: str = "no paired rows",
    controls: Collection[str] = (),
) -> Path:
    """Paired differences as dot-and-whisker plots: one group per entry of ``groups``, one dot per series
    (label -> (means, lows, highs): the mean difference and its interval; NaN where there is none), a line at
    zero (no difference). The series named in ``controls`` are grey, labelled "(control)", and the others take
    the colour cycle in order, as in :func:`bar_chart`, so that a method has the same colour in both charts.
    ``empty`` is written on the axes when no series has a point. The legend sits outside the axes. Written
    atomically as PNG; returns ``path``."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(groups)), 4.2))
    _, offsets = _offsets(len(series))
    greys = iter(["0.45", "0.65", "0.3", "0.8"] * len(series))
    colours = iter(f"C{k}" for k in range(len(series)))
    for offset, (label, (means, lows, highs)) in zip(offsets, series.items(), strict=True):
        m, lo, hi = (np.asarray(v, dtype=float) for v in (means, lows, highs))
        keep = np.isfinite(m) & np.isfinite(lo) & np.isfinite(hi)
        colour = next(greys) if label in controls else next(colours)
        shown = f"{label} (control)" if label in controls and "control" not in label else label
        if keep.any():
            xs = np.arange(len(groups))[keep] + offset
            yerr = [m[keep] - lo[keep], hi[keep] - m[keep]]
            ax.errorbar(xs, m[keep], yerr=yerr, fmt="o", ms=3, capsize=2, label=shown, color=colour)
    ax.axhline(0, color="black", lw=0.8)
    _group_ticks(ax, groups)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if legend_outside(ax) is None:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    ax.set_title(readable(title), fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
