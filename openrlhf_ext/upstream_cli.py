"""Upstream's `train_ppo_ray` command line, parsed and validated exactly as upstream does, without training.

OpenRLHF 0.11.2 builds its parser inline under `if __name__ == "__main__":` and then post-processes the
arguments (asserts, and silent rewrites such as `--train.dynamic_batch_enable` turning packing on *after* the
VLM asserts) before calling `train(args)`. To validate a command in `--dry-run` without importing Ray, vLLM or
DeepSpeed, we read that block from upstream's source and execute it with `train(args)` left out:
- `build_parser()`: the statements before `args = parser.parse_args()`: the real parser, every flag and default.
- `parse_and_validate(argv)`: parse, `hierarchize`, then upstream's own post-processing statements, giving the
  namespace `train(args)` would receive (or the assertion upstream would raise).
Tied to the layout of OpenRLHF 0.11.2's `cli/train_ppo_ray.py` (pinned); a layout change fails loudly here.
A checkout patched by `python -m patches` (patches/openrlhf) imports our hooks at its top; those imports of our
own packages (cheap, no Ray/vLLM) run first in both blocks so the patched statements find their names.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
from dataclasses import dataclass
from types import SimpleNamespace

UPSTREAM_MODULE = "openrlhf.cli.train_ppo_ray"


class UpstreamLayoutError(RuntimeError):
    """The installed OpenRLHF's train_ppo_ray no longer has the layout this module reads (pinned: 0.11.2)."""


OUR_PACKAGES = ("openrlhf_ext", "pixel_reasoner")


@dataclass(frozen=True)
class _MainBlock:
    filename: str
    before_parse: list[ast.stmt]
    after_parse: list[ast.stmt]


def _imports_our_packages(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.ImportFrom):
        names = [stmt.module or ""]
    elif isinstance(stmt, ast.Import):
        names = [alias.name for alias in stmt.names]
    else:
        return False
    return all(name.split(".")[0] in OUR_PACKAGES for name in names)


def _main_block() -> _MainBlock:
    spec = importlib.util.find_spec(UPSTREAM_MODULE)
    if spec is None or not spec.origin:
        raise UpstreamLayoutError(f"{UPSTREAM_MODULE} is not installed (pip install --no-deps openrlhf==0.11.2)")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=spec.origin)
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
            body = node.body
            break
    else:
        raise UpstreamLayoutError(f"no `if __name__ == '__main__':` block in {spec.origin}")
    for i, stmt in enumerate(body):
        if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "parse_args"):
            parse_index = i
            break
    else:
        raise UpstreamLayoutError(f"no `args = parser.parse_args()` in the main block of {spec.origin}")
    after = [s for s in body[parse_index + 1:] if not _is_train_call(s)]
    if len(after) != len(body) - parse_index - 2:
        raise UpstreamLayoutError(f"expected exactly one `train(args)` call at the end of {spec.origin}")
    ours = [s for s in tree.body if _imports_our_packages(s)]
    return _MainBlock(spec.origin, ours + body[:parse_index], ours + after)


def _is_train_call(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "train")


def _run(statements: list[ast.stmt], filename: str, namespace: dict) -> None:
    exec(compile(ast.Module(body=statements, type_ignores=[]), filename, "exec"), namespace)


def build_parser() -> argparse.ArgumentParser:
    """Upstream's real argument parser (all flags and defaults of the installed version)."""
    block = _main_block()
    from datetime import datetime

    namespace: dict = {"argparse": argparse, "datetime": datetime, "__name__": "__pixel_reasoner_dry_run__"}
    _run(block.before_parse, block.filename, namespace)
    parser = namespace.get("parser")
    if not isinstance(parser, argparse.ArgumentParser):
        raise UpstreamLayoutError(f"the main block of {block.filename} does not define `parser`")
    return parser


@dataclass(frozen=True)
class UpstreamParse:
    args: SimpleNamespace  # hierarchical, as `train(args)` receives it
    flat: dict  # dotted name -> value, as parsed (before upstream's rewrites)
    messages: str  # what upstream printed while post-processing (its warnings)


def parse_and_validate(argv: list[str]) -> UpstreamParse:
    """Parse `argv` with upstream's parser and run upstream's own post-processing on it.

    Raises SystemExit (argparse) for unknown/malformed flags and AssertionError with upstream's message when
    upstream would refuse the combination.
    """
    block = _main_block()
    parser = build_parser()
    flat = parser.parse_args(argv)
    # upstream's own statements start with `args = hierarchize(args)`
    namespace: dict = {"args": argparse.Namespace(**vars(flat)), "parser": parser,
                       "__name__": "__pixel_reasoner_dry_run__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _run(block.after_parse, block.filename, namespace)
    return UpstreamParse(args=namespace["args"], flat=dict(vars(flat)), messages=printed.getvalue())


def to_plain(obj):
    """A hierarchical namespace as JSON-ready nested dicts (for printing and the run's config.json)."""
    if isinstance(obj, SimpleNamespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return str(obj)
    return obj
