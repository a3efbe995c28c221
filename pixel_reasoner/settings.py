"""One way to configure every stage: a dataclass tree is the schema, a YAML recipe the values, flags override.

TRL's `TrlParser` is the model. Every field of a stage's config dataclass is declared once, with its default and
help text (`option`), and is then a YAML key of the stage's recipe and a command-line flag of the same name:

    python -m data_synthesis run --config recipes/synth.yaml --expert.sampling.temperature 0.2
    python -m eval run --config recipes/eval_7b.yaml --model ckpt/ --budget_preset paper_eval

- Flags are the field's dotted path (`--budget_preset`, `--expert.sampling.temperature`), with `-` accepted for
  `_` in the last part (`--budget-preset`); a bool field takes `--flag`, `--flag false` and `--no_flag`.
- `--set KEY=VALUE` (repeatable, a YAML value) reaches every key, also inside mappings and lists of sections that
  have no flag of their own (`--set endpoints.expert.model=gpt-4o-mini`).
- Precedence: the dataclass defaults < the recipe (`--config`; several files are merged in order) < `--set` <
  flags.
- Loading is strict: an unknown key, a wrong type, a value outside the field's `choices` or a missing required
  field raises `ConfigError` naming the key's full path (`expert.sampling.temprature: unknown key; did you mean
  temperature?`).
- Renamed fields keep working for one release: a config class lists `RENAMED = {"old_name": "new_name"}`, and
  the old name (as a YAML key or a flag) is read as the new one with a `FutureWarning` naming the new one.

Flat dataclasses declared with `option` also work in TRL's own parser (`TrlParser`, used by SFT), because the
field metadata holds only what `HfArgumentParser` passes to argparse (`help`, `choices`, `metavar`, `nargs`).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
import warnings
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from pixel_reasoner.errors import ConfigError

CONFIG_FLAG = "config"
SET_FLAG = "set"


def option(default: Any = dataclasses.MISSING, *, help: str, factory: Callable[[], Any] | None = None,
           choices: Sequence[Any] | None = None, metavar: str | tuple[str, ...] | None = None,
           nargs: str | int | None = None) -> Any:
    """A config field: its default (or `factory` for mutable defaults) and the help text its flag shows.

    `choices` are checked when the config is built (and shown in `--help`); `nargs` lets a scalar field take
    several values on the command line, for commands that split them (eval's `--benchmark A B`).
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = list(choices)
    if metavar is not None:
        metadata["metavar"] = metavar
    if nargs is not None:
        metadata["nargs"] = nargs
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# ------------------------------------------------------------------------------------------- building from data

def build(cls: type, data: Any, where: str = "") -> Any:
    """Construct dataclass `cls` from plain data (a recipe's mapping), checking keys, types and choices; every
    error names the key's path. Old names listed in `cls.RENAMED` are read as the new ones, with a warning."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    data = upgrade_names(cls, data, where)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"{_join(where, key)}: unknown key of {where or 'the config'}; {hint}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = convert(hints[name], value, _join(where, name))
        _check_choices(known[name], kwargs[name], _join(where, name))
    missing = [n for n, f in known.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        flag = _join(where, missing[0])
        raise ConfigError(f"{flag}: required key is missing (give `{flag}:` in the recipe or --{flag})")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None


def upgrade_names(cls: type, data: Mapping, where: str = "") -> dict:
    """`data` with the old names of `cls.RENAMED` replaced by the new ones (a FutureWarning for each)."""
    renamed: Mapping[str, str] = getattr(cls, "RENAMED", {})
    out = dict(data)
    for old, new in renamed.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(f"{_join(where, old)} and {_join(where, new)} are both given; `{old}` is the old name "
                              f"of `{new}`: keep only `{new}`")
        warnings.warn(f"{_join(where, old)} is deprecated, use {_join(where, new)} (the old name is removed in the "
                      "next release)", FutureWarning, stacklevel=3)
        out[new] = out.pop(old)
    return out


def check_choices(config: Any, where: str = "") -> None:
    """Every field of `config` is one of its `choices` (for configs built by another parser, e.g. TrlParser)."""
    for f in dataclasses.fields(config):
        _check_choices(f, getattr(config, f.name), _join(where, f.name))


def upgrade_flags(argv: Sequence[str], renamed: Mapping[str, str]) -> list[str]:
    """A command line with the old flag names of `renamed` (`--old`, `--old-name`, `--old=value`) replaced by the
    new ones, with a FutureWarning for each (for parsers other than `add_arguments`, e.g. TRL's)."""
    spellings = {name: new for old, new in renamed.items() for name in _flag_names(old)}
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        if flag in spellings:
            new = spellings[flag]
            warnings.warn(f"{flag} is deprecated, use --{new} (the old name is removed in the next release)",
                          FutureWarning, stacklevel=2)
            arg = f"--{new}{sep}{value}"
        out.append(arg)
    return out


def _check_choices(f: dataclasses.Field, value: Any, where: str) -> None:
    choices = f.metadata.get("choices")
    if choices is None or value is None:
        return
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if item not in choices:
            raise ConfigError(f"{where}: {item!r} is not one of {', '.join(map(str, choices))}")


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, allows None) of `X | None`."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def convert(tp: Any, value: Any, where: str) -> Any:
    """`value` (plain YAML/JSON data) as type `tp`: nested dataclasses, lists, tuples, dicts and scalars."""
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: a value is required here, got null")
    tp = inner
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} ({value!r})")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
            return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} ({value!r})")
        args = typing.get_args(tp)
        return {str(k): convert(args[1], v, _join(where, k)) for k, v in value.items()} if args else dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp!r}")


# ------------------------------------------------------------------------------------------------ YAML recipes

def load_yaml(path: str) -> dict:
    """A recipe file's mapping (empty file: no settings)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings, got {type(data).__name__}")
    return data


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set a nested key of a recipe mapping, creating the sections on the way."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part!r} is not a section (it holds {child!r})")
        node = child
    node[leaf] = value


def merge(base: dict, update: Mapping) -> dict:
    """`update`'s keys set in `base` (in place), mappings merged key by key: a later recipe file changes only what
    it names."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def flat(data: Mapping, prefix: str = "") -> dict:
    """A nested recipe mapping as {dotted key: leaf value}."""
    out = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def apply_override(data: dict, item: str) -> None:
    """`a.b.c=value` (`--set`): set a nested key; the value is read as YAML (numbers, booleans, lists)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like dotted.key=value")
    set_path(data, key.strip(), yaml.safe_load(raw))


def load(cls: type, path: str | None = None, overrides: Sequence[str] = ()) -> Any:
    """`cls` from a YAML recipe (optional) and `a.b=value` overrides."""
    data = load_yaml(path) if path else {}
    for item in overrides:
        apply_override(data, item)
    return build(cls, data)


# ---------------------------------------------------------------------------------------------- command lines

def leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """(dotted path, field, type) of every flag of a dataclass tree: nested dataclass fields are walked into,
    everything else (scalars, lists, mappings) is one flag."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        inner, _ = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            yield from leaves(inner, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, hints[f.name]


def _renamed_flags(cls: type, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(old dotted path, new dotted path) of every renamed field of a dataclass tree."""
    for old, new in getattr(cls, "RENAMED", {}).items():
        yield f"{prefix}{old}", f"{prefix}{new}"
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        inner, _ = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            yield from _renamed_flags(inner, f"{prefix}{f.name}.")


def _flag_names(path: str) -> list[str]:
    names = [f"--{path}"]
    dashed = path.rsplit(".", 1)
    dashed[-1] = dashed[-1].replace("_", "-")
    if ".".join(dashed) != path:
        names.append(f"--{'.'.join(dashed)}")
    return names


def _nargs(f: dataclasses.Field, tp: Any) -> str | int | None:
    if "nargs" in f.metadata:
        return f.metadata["nargs"]
    inner, _ = _unwrap_optional(tp)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return len(args)
    if origin in (list, tuple) or inner in (list, tuple):
        return "*"
    return None


def _metavar(tp: Any) -> str:
    """What a flag's value looks like in `--help`."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        tp = args[0] if args else Any
    return {int: "INT", float: "FLOAT", str: "TEXT"}.get(tp, "YAML")


def _describe_default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return " (required)"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    text = repr(value)
    return f" (default: {text})" if len(text) <= 60 else ""


def _dotted(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """`--config`, `--set` and one flag per field of `cls` (see the module docstring); with a `prefix` ("pr"),
    `--pr.config`, `--pr.set` and `--pr.<path>`, for settings that share a command line with another program's.
    Given flags land in the namespace under their dotted name; absent ones are absent (`values` overlays only what
    was given)."""
    parser.add_argument(f"--{_dotted(prefix, CONFIG_FLAG)}", dest=_dotted(prefix, CONFIG_FLAG), action="append",
                        default=[], metavar="YAML",
                        help="recipe file (YAML) of these settings; several are merged, later ones winning")
    parser.add_argument(f"--{_dotted(prefix, SET_FLAG)}", dest=_dotted(prefix, SET_FLAG), action="append",
                        default=[], metavar="KEY=VALUE",
                        help="set any key of the recipe, e.g. --set a.b=1 (a YAML value; repeatable)")
    group = parser.add_argument_group(f"settings ({cls.__name__}): recipe keys and flags")
    for path, f, tp in leaves(cls, _dotted(prefix, "") if prefix else ""):
        kwargs: dict[str, Any] = {"dest": path, "default": argparse.SUPPRESS,
                                  "help": f.metadata.get("help", "") + _describe_default(f)}
        if f.metadata.get("choices") is not None:
            kwargs["help"] += f" [choices: {', '.join(map(str, f.metadata['choices']))}]"
        inner, _ = _unwrap_optional(tp)
        kwargs["metavar"] = f.metadata.get("metavar") or ("true|false" if inner is bool else _metavar(inner))
        if inner is bool:
            group.add_argument(*_flag_names(path), nargs="?", const="true", **kwargs)
            negated = path.rsplit(".", 1)
            negated[-1] = "no_" + negated[-1]
            group.add_argument(*_flag_names(".".join(negated)), dest=path, action="store_const", const="false",
                               default=argparse.SUPPRESS, help=f"same as --{path} false")
            continue
        nargs = _nargs(f, tp)
        if nargs is not None:
            kwargs["nargs"] = nargs
        group.add_argument(*_flag_names(path), **kwargs)
    by_path = {path: (f, tp) for path, f, tp in leaves(cls)}
    for old, new in _renamed_flags(cls):
        if new not in by_path:
            continue
        f, tp = by_path[new]
        kwargs = {"dest": _dotted(prefix, old), "default": argparse.SUPPRESS,
                  "help": f"deprecated: use --{_dotted(prefix, new)}"}
        if _unwrap_optional(tp)[0] is bool:
            kwargs.update(nargs="?", const="true")
        elif _nargs(f, tp) is not None:
            kwargs["nargs"] = _nargs(f, tp)
        group.add_argument(*_flag_names(_dotted(prefix, old)), **kwargs)


def values(cls: type, namespace: argparse.Namespace, prefix: str = "", section: str | None = None) -> dict:
    """The recipe mapping a command line describes: the YAML file (its `section` when given), then `--set`, then
    the given flags."""
    given = vars(namespace)
    data: dict = {}
    for path in given.get(_dotted(prefix, CONFIG_FLAG)) or []:
        recipe = load_yaml(path)
        if section is not None:
            recipe = recipe.get(section) or {}
            if not isinstance(recipe, dict):
                raise ConfigError(f"{path}: `{section}` must be a mapping of settings")
        merge(data, recipe)
    for item in given.get(_dotted(prefix, SET_FLAG)) or []:
        apply_override(data, item)
    types_by_path = {path: tp for path, _, tp in leaves(cls)}
    types_by_path.update({old: types_by_path[new] for old, new in _renamed_flags(cls) if new in types_by_path})
    for path, tp in types_by_path.items():
        if _dotted(prefix, path) in given:
            set_path(data, path, from_text(tp, given[_dotted(prefix, path)], _dotted(prefix, path)))
    return data


def from_text(tp: Any, raw: Any, where: str) -> Any:
    """A command-line value (a string, or a list of strings for list flags) as plain data of type `tp`, to be
    checked by `convert`: strings stay strings, numbers and booleans are parsed, other values are read as YAML."""
    import yaml

    inner, optional = _unwrap_optional(tp)
    if isinstance(raw, list):
        args = typing.get_args(inner)
        if typing.get_origin(inner) is tuple and args and args[-1] is not Ellipsis:
            return [from_text(a, r, f"{where}[{i}]") for i, (a, r) in enumerate(zip(args, raw))]
        item = args[0] if args else Any
        return [from_text(item, r, f"{where}[{i}]") for i, r in enumerate(raw)]
    if optional and raw.strip().lower() in ("none", "null"):
        return None
    if inner is str:
        return raw
    if inner in (int, float):
        try:
            return inner(raw)
        except ValueError:
            if inner is float:
                raise ConfigError(f"--{where}: expected a number, got {raw!r}") from None
            raise ConfigError(f"--{where}: expected an integer, got {raw!r}") from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--{where}: not a valid value ({e})") from None


def parse(cls: type, argv: Sequence[str] | None = None, prog: str | None = None,
          description: str | None = None) -> Any:
    """`cls` from a command line: `--config recipe.yaml`, `--set a.b=c` and one flag per field."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser, cls)
    return build(cls, values(cls, parser.parse_args(argv)))


def to_dict(config: Any) -> dict:
    """A config as plain JSON-ready data, for the run's records."""
    return dataclasses.asdict(config)
