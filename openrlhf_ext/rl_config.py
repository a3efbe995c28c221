"""Typed configuration of our RL additions (curiosity reward, SSR, run logs) and its `--pr.*` command line.

One dataclass tree, the paper's values as defaults. Every leaf becomes a flag named by its path, e.g.
`--pr.curiosity.alpha 0.5`, `--pr.ssr.capacity 4096`, `--pr.ssr.enabled false`. The resolved tree is part of the
run's `RunConfig` (`openrlhf_ext.run_config`), which travels to the Ray actors inside upstream's arguments, is
printed at start and saved as `config.json` in the run directory.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass

from pixel_reasoner.curiosity import CuriosityConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ssr import SSRConfig

FLAG_PREFIX = "pr"


@dataclass(frozen=True)
class SampleLogKeys:
    """Names of the per-sample `extra_logs` the agent reports (OpenRLHF copies them into `Experience.info`)."""

    num_operations: str = "num_operations"  # n_vo(y): requested operations, failed ones included
    num_images: str = "num_images"  # images operations produced: > 0 iff an operation executed
    is_video: str = "is_video"  # optional; only the reference-code curiosity variant uses it


@dataclass(frozen=True)
class RunLogConfig:
    """Where the run's own records go: config.json, metrics.jsonl (one line per step), groups.jsonl, summary.md.

    `run_dir=None` resolves to `<ckpt.output_dir>/pixel_reasoner`. On a multi-node cluster it must be on a
    filesystem every node sees (the RL controller may be scheduled on any node).
    """

    run_dir: str | None = None
    group_records: bool = True  # one JSON line per query group: rewards, n_vo, RaPR, bonus, penalty, advantages


@dataclass(frozen=True)
class RLConfig:
    curiosity: CuriosityConfig = field(default_factory=CuriosityConfig)
    ssr: SSRConfig = field(default_factory=SSRConfig)
    sample_keys: SampleLogKeys = field(default_factory=SampleLogKeys)
    log: RunLogConfig = field(default_factory=RunLogConfig)


# ---------------------------------------------------------------- dataclass <-> dict / JSON / argparse

def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp):
    """(inner type, allows None) for `X | None` / `Optional[X]`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, path: str = ""):
    """Build dataclass `cls` from nested dicts; unknown keys are errors naming their path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{path or cls.__name__}: unknown field(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp, _ = _unwrap_optional(hints[name])
        if is_dataclass(tp) and value is not None:
            value = from_dict(tp, value, f"{path}{name}.")
        kwargs[name] = value
    return cls(**kwargs)


def to_json(config: RLConfig) -> str:
    return json.dumps(to_dict(config), sort_keys=True)


def from_json(text: str) -> RLConfig:
    return from_dict(RLConfig, json.loads(text))


def _parse_bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _optional(parse):
    def parse_optional(text: str):
        return None if str(text).strip().lower() in ("none", "null", "") else parse(text)
    return parse_optional


def _leaves(cls, prefix: str):
    """(dotted path, field, type, allows None) for every leaf of a dataclass tree."""
    hints = _hints(cls)
    for f in fields(cls):
        tp, optional = _unwrap_optional(hints[f.name])
        path = f"{prefix}{f.name}"
        if is_dataclass(tp):
            yield from _leaves(tp, path + ".")
        else:
            yield path, f, tp, optional


def add_arguments(parser: argparse.ArgumentParser, cls=RLConfig, prefix: str = FLAG_PREFIX,
                  skip: tuple[str, ...] = ()) -> None:
    """One flag per leaf, `--<prefix>.<path>`; defaults are left unset so only given flags override. Leaves named
    in `skip` (structured values that only a config file can hold) get no flag."""
    group = parser.add_argument_group(f"Pixel Reasoner ({cls.__name__})")
    defaults = cls()
    for path, f, tp, optional in _leaves(cls, prefix + "."):
        if path[len(prefix) + 1:] in skip:
            continue
        if tp is bool:
            kwargs = dict(type=_parse_bool, nargs="?", const=True, metavar="true|false")
        elif tp in (int, float, str):
            kwargs = dict(type=_optional(tp) if optional else tp)
        elif typing.get_origin(tp) is tuple and typing.get_args(tp) in ((str, Ellipsis), (str, ...)):
            kwargs = dict(type=str, nargs="*")
        else:
            raise TypeError(f"{path}: unsupported config field type {tp!r}")
        current = _get(defaults, path[len(prefix) + 1:])
        group.add_argument(f"--{path}", dest=path, default=None, help=f"(default: {current})", **kwargs)


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def given_flags(ns: argparse.Namespace, prefix: str) -> dict:
    """{dotted path below `prefix`: value} for the flags under `--<prefix>.` that were given."""
    return {k[len(prefix) + 1:]: v for k, v in vars(ns).items() if k.startswith(prefix + ".") and v is not None}


def apply_overrides(data: dict, overrides: dict) -> dict:
    """Set dotted paths in a nested dict (in place; returns it)."""
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return data


def from_namespace(ns: argparse.Namespace, cls=RLConfig, prefix: str = FLAG_PREFIX, base=None):
    """Apply the flags that were given on top of `base` (defaults when None)."""
    data = to_dict(base if base is not None else cls())
    names = {f.name for f in fields(cls)}  # other trees may share the prefix (--pr.rollout.*)
    given = {k: v for k, v in given_flags(ns, prefix).items() if k.split(".")[0] in names}
    return from_dict(cls, apply_overrides(data, given))


def replace_path(config, dotted: str, value):
    """A copy of a frozen dataclass tree with one leaf replaced."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: replace_path(getattr(config, head), rest, value)})
