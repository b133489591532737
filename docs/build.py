"""Build the API reference (``docs/api.md``) from hscl's docstrings, and check it.

    python docs/build.py            # (re)write docs/api.md
    python docs/build.py --check    # fail if a cross-reference is broken or docs/api.md is stale (CI runs this)

Every public module of ``hscl`` (no leading underscore) is documented with its docstring and, for each public name
in its ``__all__`` that it defines, the signature and docstring (classes with their public methods); underscore
modules and names are internals and left out. The page is ordered public-first (:data:`GROUPS`): the losses,
hardening, the functional core and the diagnostics, then the pipelines (data sets, models, training, evaluation,
experiments). Sphinx-style roles in docstrings (``:class:`X```, ``:func:``, ``:meth:``, ``:mod:``, ``:attr:``)
must resolve: as a dotted path, or relative to the documented module, its package, or ``hscl``. The formulas
the docstrings carry are gathered, with their notation, in ``docs/math.md``. No dependency beyond hscl itself.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"
ROLE = re.compile(r":(class|func|meth|mod|attr|data|obj):`~?([A-Za-z_][\w.]*)`")


def public_modules() -> list[str]:
    """Every public module of hscl (no part of its name starts with an underscore), sorted by name."""
    import hscl

    names = ["hscl"]
    for info in pkgutil.walk_packages(hscl.__path__, prefix="hscl."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


#: The page's sections, public-first: (title, modules). A module belongs to the entry equal to its name or to the
#: first entry that is a package above it (``hscl`` itself only to its own). Within a package: the package, then
#: the modules it lists, in order, then the others by name.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Overview", ("hscl",)),
    (
        "Losses",
        (
            "hscl.losses",
            "hscl.losses.ucl",
            "hscl.losses.hard_ucl",
            "hscl.losses.scl",
            "hscl.losses.hard_scl",
            "hscl.losses.supcon",
            "hscl.losses.contrastive",
            "hscl.losses.registry",
        ),
    ),
    ("Hardening", ("hscl.hardening",)),
    ("Functional", ("hscl.functional",)),
    ("More negatives: the queue and several processes", ("hscl.queue", "hscl.distributed")),
    ("Diagnostics", ("hscl.diagnostics", "hscl.diagnostics.asymptotic", "hscl.diagnostics.recorder")),
    ("Pipelines: data sets and augmentations", ("hscl.datasets", "hscl.transforms")),
    ("Pipelines: models", ("hscl.models", "hscl.checkpoint")),
    ("Pipelines: training", ("hscl.training",)),
    ("Pipelines: evaluation", ("hscl.evaluation",)),
    ("Pipelines: configuration, the commands and the command line", ("hscl.config", "hscl.experiments", "hscl.cli")),
)
OTHER = "Other modules"


def placement(name: str) -> tuple:
    """The sort key of module ``name`` on the page (modules of no group last, by name)."""
    for g, (_, entries) in enumerate(GROUPS):
        for e, entry in enumerate(entries):
            if name == entry or (entry != "hscl" and name.startswith(entry + ".")):
                listed = entries.index(name) if name in entries else len(entries)
                return (g, e, name != entry, listed, name)
    return (len(GROUPS), 0, True, 0, name)


def ordered_modules() -> list[tuple[str, list[str]]]:
    """The public modules grouped and ordered as on the page: ``[(group title, [module, ...]), ...]``."""
    groups: dict[int, list[str]] = {}
    for name in sorted(public_modules(), key=placement):
        groups.setdefault(placement(name)[0], []).append(name)
    return [(GROUPS[g][0] if g < len(GROUPS) else OTHER, names) for g, names in sorted(groups.items())]


def _resolve_dotted(path: str):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def resolves(target: str, module: str, owner: str | None) -> bool:
    """Whether ``target`` names an object, as given or relative to ``owner`` (a class path), ``module``, its
    package or ``hscl``."""
    package = module.rsplit(".", 1)[0]
    bases = [""] + [f"{b}." for b in (owner, module, package, "hscl") if b]
    return any(_resolve_dotted(base + target) is not None for base in bases)


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _block(doc: str) -> str:
    """A docstring as Markdown: indented text as a fenced block so formulas and examples keep their layout."""
    return f"```text\n{doc}\n```\n" if doc else "*(no docstring)*\n"


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _public(name: str) -> bool:
    return not name.startswith("_")


def build() -> tuple[str, list[str]]:
    """The reference page and the list of broken cross-references (``module: role target``)."""
    groups = ordered_modules()
    lines = [
        "# hscl API reference",
        "",
        "Generated from the docstrings by `python docs/build.py` (`make docs`); CI checks that it is current and "
        "that every cross-reference resolves. The formulas and their notation: [math.md](math.md). Public first: "
        "the losses, hardening, the functional core and the diagnostics, then the pipelines; internals "
        "(underscore modules and names) are left out.",
        "",
    ]
    for title, names in groups:
        links = ", ".join(f"[`{m}`](#{_anchor(m)})" for m in names)
        lines.append(f"* [{title}](#{_anchor(title)}): {links}")
    lines.append("")
    broken: list[str] = []
    for title, names in groups:
        lines += [f"## {title}", ""]
        for name in names:
            module = importlib.import_module(name)
            lines += [f"### `{name}`", "", _block(_doc(module))]
            checks: list[tuple[str, str | None]] = [(_doc(module), None)]
            for attr in filter(_public, getattr(module, "__all__", [])):
                obj = getattr(module, attr, None)
                if obj is None or getattr(obj, "__module__", name) != name or inspect.ismodule(obj):
                    continue  # re-exports are documented where they are defined
                if inspect.isclass(obj):
                    lines += [f"#### class `{name}.{attr}{_signature(obj)}`", "", _block(_doc(obj))]
                    checks.append((_doc(obj), f"{name}.{attr}"))
                    for meth_name, meth in vars(obj).items():
                        if not _public(meth_name) or not (inspect.isfunction(meth) or isinstance(meth, property)):
                            continue
                        target = meth.fget if isinstance(meth, property) else meth
                        if not target.__doc__:
                            continue
                        sig = "" if isinstance(meth, property) else _signature(meth)
                        lines += [f"##### `{attr}.{meth_name}{sig}`", "", _block(_doc(target))]
                        checks.append((_doc(target), f"{name}.{attr}"))
                elif callable(obj):
                    lines += [f"#### `{name}.{attr}{_signature(obj)}`", "", _block(_doc(obj))]
                    checks.append((_doc(obj), None))
            for text, owner in checks:
                for role, target in ROLE.findall(text):
                    if not resolves(target, name, owner):
                        broken.append(f"{name}: :{role}:`{target}`")
    return "\n".join(lines).rstrip() + "\n", sorted(set(broken))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    args = ap.parse_args(argv)
    text, broken = build()
    for b in broken:
        print(f"broken reference: {b}", file=sys.stderr)
    if args.check:
        stale = not OUT.is_file() or OUT.read_text() != text
        if stale:
            print(f"{OUT.relative_to(ROOT)} is not current: run `make docs` and commit it", file=sys.stderr)
        return 1 if (broken or stale) else 0
    OUT.write_text(text)
    print(f"written {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
