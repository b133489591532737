"""One configuration system for every command: named presets, dotted overrides, and the resolved dataclass that a
run fingerprints and saves.

A command's configuration is a dataclass owned by its module (``ImageConfig`` for ``hscl train``, ``GraphRun`` for
``hscl reproduce graphs``, ...). A field whose default is a dataclass is a *section*: a nested mapping in YAML,
reached by a dotted key (``graph.min_steps``). :func:`resolve` builds the dataclass from, lowest first:

1. the dataclass defaults;
2. a preset: a YAML file ``hscl/configs/<command>/<name>.yaml`` named by :func:`preset_names`, or a YAML file of
   your own (the same keys);
3. overrides, ``{dotted key: value}``: the command line's flags and ``--set KEY=VALUE`` become this mapping, and a
   Python caller passes the same one (``resolve(GraphRun, "reproduce-graphs", "cpu", {"graph.hidden": 64})``).

An unknown key is a ``ValueError`` that names the key, where it came from (the file, the flag or ``--set``) and
the keys known there. YAML is read with ``yaml.safe_load``'s rules (PyYAML is imported on first use), where
``1e-3`` is a number too: a tag such as ``!!python/object`` is refused, never run. :func:`as_dict` gives the
resolved configuration as plain data, what :func:`save` writes to ``OUT/config.json`` beside a run's results.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "COMMANDS",
    "PRESET_FOLDER",
    "as_dict",
    "parse_assignment",
    "preset_names",
    "preset_path",
    "read_preset",
    "resolve",
    "save",
]

#: The commands with named presets (a folder of ``PRESET_FOLDER`` each); ``hscl demo`` and ``hscl diagnose`` are
#: configured by their dataclass defaults and flags alone.
COMMANDS = ("train", "reproduce-graphs", "reproduce-images", "reproduce-figures")
#: Where the built-in presets live: ``PRESET_FOLDER / command / f"{name}.yaml"``.
PRESET_FOLDER = Path(__file__).resolve().parent / "configs"

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: A number in exponent notation without a dot (``1e-3``): a string to YAML 1.1, a float here as in YAML 1.2.
_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


def _check_command(command: str) -> None:
    if command not in COMMANDS:
        raise ValueError(f"no presets for command {command!r}; commands with presets: {', '.join(COMMANDS)}")


def preset_names(command: str) -> tuple[str, ...]:
    """The names of the built-in presets of ``command`` (one of :data:`COMMANDS`), sorted."""
    _check_command(command)
    return tuple(sorted(p.stem for p in (PRESET_FOLDER / command).glob("*.yaml")))


def preset_path(command: str, name_or_file: str | os.PathLike) -> Path:
    """The file of a preset: the built-in one of that name, else ``name_or_file`` as a path; a
    ``FileNotFoundError`` naming the built-in presets when it is neither."""
    names = preset_names(command)
    if str(name_or_file) in names:
        return PRESET_FOLDER / command / f"{name_or_file}.yaml"
    path = Path(name_or_file)
    if not path.is_file():
        raise FileNotFoundError(f"no preset {str(name_or_file)!r} (built in: {', '.join(names)}) and no such file")
    return path


@functools.cache
def _loader():
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float (YAML 1.2's rule; YAML 1.1 wants ``1.0e-3``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789."))
    return Loader


def _load(text: str):
    import yaml

    return yaml.load(text, Loader=_loader())  # a SafeLoader: no tag constructs an object


def _yaml_reason(err: Exception) -> str:
    """The problem of a YAML error and where: ``... at line L, column C``."""
    mark = getattr(err, "problem_mark", None)
    reason = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is not None:
        reason += f" at line {mark.line + 1}, column {mark.column + 1}"
    return reason


def read_preset(command: str, name_or_file: str | os.PathLike, *, source: str = "preset") -> dict:
    """A preset of ``command`` as a (nested) dict: a built-in name (:func:`preset_names`) or a YAML file.

    ``source`` names where ``name_or_file`` was given in the messages (``--config``, ``--preset``): a file that is
    not plain YAML is a ``ValueError`` with the problem, its line and column (a tag such as ``!!python/object`` is
    refused, never run); one that holds no mapping is a ``ValueError`` too; an empty file is ``{}``."""
    import yaml

    path = preset_path(command, name_or_file)
    label = f"{source} {name_or_file}" + ("" if str(path) == str(name_or_file) else f" ({path})")
    try:
        data = _load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(
            f"{label}: not a plain YAML file of settings ({_yaml_reason(err)}); tags such as !!python/object are "
            "refused, never run"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: a preset must be a YAML mapping of settings (name: value, one a line), got {type(data).__name__}"
        )
    return data


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE)``: KEY a setting's name, dotted into a section (``graph.hidden``), VALUE
    read as YAML (``16``, ``1e-3``, ``[0, 1]``, ``null``, ``cpu``; a tag is refused). A ``ValueError`` otherwise."""
    import yaml

    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not _KEY.fullmatch(key):
        raise ValueError(f"{text!r}: write KEY=VALUE, KEY a setting's name, dotted into a section (graph.hidden=64)")
    try:
        return key, _load(value)
    except yaml.YAMLError as err:
        raise ValueError(f"{text!r}: VALUE is not plain YAML ({_yaml_reason(err)})") from None


def _leaves(values: Mapping, prefix: str = "") -> list[str]:
    """The dotted keys of a nested mapping's values (a mapping's own key too)."""
    keys = []
    for key, value in values.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            keys += _leaves(value, f"{prefix}{key}.")
    return keys


def _merge(base: Mapping, top: Mapping) -> dict:
    """``base`` updated by ``top``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _assign(values: dict, key: str, value, source: str) -> None:
    """Set the dotted ``key`` in the nested dict ``values`` (a mapping ``value`` is merged into a section)."""
    *sections, last = key.split(".")
    here = values
    for i, part in enumerate(sections):
        inner = here.get(part)
        if inner is None:
            inner = here[part] = {}
        elif not isinstance(inner, Mapping):
            raise ValueError(f"{source}: {'.'.join(sections[: i + 1])} is a setting, not a section; no key {key!r}")
        else:
            inner = here[part] = dict(inner)
        here = inner
    if isinstance(value, Mapping) and isinstance(here.get(last), Mapping):
        value = _merge(here[last], value)
    here[last] = value


def _section(field: dataclasses.Field):
    """The dataclass of a section field (one whose default, or what its default factory makes, is a dataclass
    instance), else None. A factory may import the section's class on first use."""
    if field.default_factory is not dataclasses.MISSING:
        factory = field.default_factory
        default = factory if isinstance(factory, type) else factory()
    else:
        default = field.default
    if isinstance(default, type):
        return default if dataclasses.is_dataclass(default) else None
    return type(default) if dataclasses.is_dataclass(default) else None


def _is_tuple(field: dataclasses.Field) -> bool:
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    return isinstance(field.default, tuple) or annotation.replace(" ", "").startswith(("tuple", "Tuple"))


def _build(cls, values: Mapping, origins: Mapping[str, str], prefix: str = ""):
    """``cls(**values)``, sections built recursively, a YAML list given to a tuple field as a tuple."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in values:
        if str(key) not in fields:
            full = f"{prefix}{key}"
            where = origins.get(full) or next((v for k, v in origins.items() if k.startswith(full + ".")), "preset")
            known = ", ".join(f"{prefix}{name}" for name in sorted(fields))
            raise ValueError(f"{where}: unknown key {full!r}; known{' in ' + prefix[:-1] if prefix else ''}: {known}")
    kwargs = {}
    for name, value in values.items():
        field, section = fields[name], _section(fields[name])
        if section is not None and not isinstance(value, section):
            if not isinstance(value, Mapping):
                where = origins.get(f"{prefix}{name}", "preset")
                raise ValueError(
                    f"{where}: {prefix}{name} is a section of settings (a mapping, or dotted keys such as "
                    f"{prefix}{name}.{next(iter(f.name for f in dataclasses.fields(section)))}), got {value!r}"
                )
            value = _build(section, value, origins, f"{prefix}{name}.")
        elif isinstance(value, list) and _is_tuple(field):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def resolve(
    cls,
    command: str | None = None,
    preset: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
):
    """The dataclass ``cls`` resolved from its defaults, the ``preset`` of ``command`` (a name or a YAML file;
    None: none) and ``overrides`` (``{dotted key: value}``), in that order (module doc).

    ``cls.PRESET_SECTIONS`` (optional, ``{section: (command, field)}``) fills a section from another command's
    preset first, the one named by ``field`` (``reproduce images``: the ``image`` section from the ``train``
    preset named by ``config``). ``sources`` says how the command line names each key in messages (``{"graph.hidden":
    "--hidden"}``; ``"preset"``: the flag of the preset); without it, an override is named ``override KEY``."""
    sources = dict(sources or {})
    values: dict = {}
    origins: dict[str, str] = {}
    if preset is not None:
        if command is None:
            raise ValueError(f"a preset ({preset!r}) needs the command it belongs to")
        values = read_preset(command, preset, source=sources.get("preset", "preset"))
        where = str(preset_path(command, preset))
        origins.update(dict.fromkeys(_leaves(values), where))
    for key, value in (overrides or {}).items():
        source = sources.get(key, f"override {key}")
        _assign(values, key, value, source)
        keys = [key, *(f"{key}.{k}" for k in _leaves(value))] if isinstance(value, Mapping) else [key]
        origins.update(dict.fromkeys(keys, source))
    for section, (other, field) in getattr(cls, "PRESET_SECTIONS", {}).items():
        name = values.get(field, next(f.default for f in dataclasses.fields(cls) if f.name == field))
        if name is None:
            continue
        base = read_preset(other, name, source=sources.get(field, field))
        where = str(preset_path(other, name))
        for key in _leaves(base):
            origins.setdefault(f"{section}.{key}", where)
        own = values.get(section) or {}
        if not isinstance(own, Mapping):
            raise ValueError(f"{origins.get(section, section)}: {section} is a section of settings, got {own!r}")
        values[section] = _merge(base, own)
    return _build(cls, values, origins)


def as_dict(config) -> dict:
    """A resolved configuration (a dataclass, sections nested) as plain data: a section a dict, a tuple a list."""

    def plain(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return plain(config)


def save(config, folder: str | os.PathLike) -> Path:
    """Write ``folder/config.json``: :func:`as_dict` of ``config`` (atomically); return its path."""
    from ._io import atomic_write_text

    text = json.dumps(as_dict(config), indent=1, default=str) + "\n"
    return atomic_write_text(Path(folder) / "config.json", text)
