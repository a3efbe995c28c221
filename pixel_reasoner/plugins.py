"""Importing user extensions named in config: a module name (`my_pkg.rewards`) or the path of a `.py` file.

Operations, benchmarks and reward terms register themselves when their module is imported; the registries call
`import_extension` for the modules a config lists, so a new one can live in one file outside any package.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType

from pixel_reasoner.errors import ConfigError


def import_extension(module: str, what: str) -> ModuleType:
    """Import `module` (a module name or a `.py` path) once per process; `what` names it in errors ("operation
    module", "benchmark module", ...)."""
    if module.endswith(".py") or os.sep in module:
        return _import_path(module, what)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"cannot import {what} {module!r}: {e}. Give an importable module name or the path of a "
                          ".py file.") from e


def _import_path(path: str, what: str) -> ModuleType:
    """Import a file under a name derived from its absolute path (importing it twice would register twice)."""
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise ConfigError(f"{what} file not found: {path} (resolved to {full})")
    name = "pixel_reasoner_extensions." + hashlib.sha1(full.encode()).hexdigest()[:12] + "_" + \
        os.path.splitext(os.path.basename(full))[0]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, full)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {what} file {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
