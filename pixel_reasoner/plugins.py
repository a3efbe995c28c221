"""Extensions by name: the registries of operations, reward terms and benchmarks, and importing the modules config
names (a module name, `my_pkg.rewards`, or the path of a `.py` file).

Operations, benchmarks and reward terms register themselves in their `Registry` when their module is imported;
the registries call `import_extension` for the modules a config lists, so a new one can live in one file outside
any package.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Generic, Iterable, TypeVar

from pixel_reasoner.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """The extensions of one kind by name, in registration order (the built-ins first).

    Registering the same definition again is harmless (a module imported both by name and by path); another
    definition under a taken name is an error naming both, so two extensions never shadow each other silently."""

    def __init__(self, what: str, hint: str, unknown_error: type[Exception] = ConfigError):
        self.what = what  # "visual operation", "reward term", ... in messages
        self.hint = hint  # how to make a missing one known, appended to the unknown-name error
        self.unknown_error = unknown_error
        self._items: dict[str, T] = {}
        self._definitions: dict[str, tuple[str, str]] = {}  # name -> (module, qualified name) of its code

    def add(self, name: str, item: T, code: type | object) -> T:
        """Register `item` under `name`; `code` is what defines it (its class, or a benchmark's loader), compared by
        qualified name: the same file imported by path has another module name."""
        definition = (code.__module__, code.__qualname__)
        known = self._definitions.get(name)
        if known is not None and known[1] != definition[1]:
            raise ConfigError(f"{self.what} name {name!r} is registered twice ({'.'.join(known)} and "
                              f"{'.'.join(definition)}); give one another name")
        self._items[name] = item
        self._definitions[name] = definition
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.unknown_error(f"unknown {self.what} {name!r}; registered: {', '.join(self._items)}. "
                                     f"{self.hint}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def load(self, modules: Iterable[str]) -> list[ModuleType]:
        """Import the modules (names or `.py` paths) that register more of them."""
        return [import_extension(module, f"{self.what} module") for module in modules]


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
