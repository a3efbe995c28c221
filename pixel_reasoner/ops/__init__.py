"""Registry of visual operations. Built-ins register on import; others load by module path from config."""
from __future__ import annotations

from typing import Iterable

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ops.base import (EpisodeImage, OperationContext, OperationResult, ProducedImage,
                                     VisualOperation)
from pixel_reasoner.plugins import import_extension

_REGISTRY: dict[str, VisualOperation] = {}


def register_operation(cls: type[VisualOperation]) -> type[VisualOperation]:
    """Class decorator: make an operation available to profiles by its `name`."""
    if not getattr(cls, "name", None):
        raise ConfigError(f"{cls.__name__} needs a class attribute `name`")
    existing = _REGISTRY.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ConfigError(f"operation name {cls.name!r} is registered twice ({type(existing).__name__}, {cls.__name__})")
    _REGISTRY[cls.name] = cls()
    return cls


def get_operation(name: str) -> VisualOperation:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown visual operation {name!r}; registered: {sorted(_REGISTRY)}. "
                          "Import its module first (config `operation_modules`).") from None


def registered_operations() -> list[str]:
    return sorted(_REGISTRY)


def load_operation_modules(modules: Iterable[str]) -> list[str]:
    """Import modules that define operations, so they register themselves; returns the operations they define.

    Each entry is a module name (`my_pkg.rotate`) or the path of a Python file (`examples/ops/rotate_image.py`),
    so a new operation can live in one file outside any package.
    """
    names: list[str] = []
    for module in modules:
        loaded = import_extension(module, "operation module")
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, VisualOperation) and value.__module__ == loaded.__name__ \
                    and _REGISTRY.get(getattr(value, "name", None)) is not None and value.name not in names:
                names.append(value.name)
    return names


from pixel_reasoner.ops import crop, select_frames  # noqa: E402,F401  (built-ins register themselves)

__all__ = ["EpisodeImage", "OperationContext", "OperationResult", "ProducedImage", "VisualOperation",
           "get_operation", "load_operation_modules", "register_operation", "registered_operations"]
