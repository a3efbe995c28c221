"""Registry of visual operations. Built-ins register on import; others load by module path from config."""
from __future__ import annotations

from typing import Iterable

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ops.base import (EpisodeImage, OperationContext, OperationResult, ProducedImage,
                                     VisualOperation)
from pixel_reasoner.plugins import Registry

_REGISTRY: Registry[VisualOperation] = Registry(
    "visual operation", "Import its module first (config `operation_modules`).")


def register_operation(cls: type[VisualOperation]) -> type[VisualOperation]:
    """Class decorator: make an operation available to profiles by its `name`."""
    if not getattr(cls, "name", None):
        raise ConfigError(f"{cls.__name__} needs a class attribute `name`")
    _REGISTRY.add(cls.name, cls(), cls)
    return cls


def get_operation(name: str) -> VisualOperation:
    return _REGISTRY.get(name)


def registered_operations() -> list[str]:
    return sorted(_REGISTRY.names())


def load_operation_modules(modules: Iterable[str]) -> list[str]:
    """Import modules that define operations, so they register themselves; returns the operations they define.

    Each entry is a module name (`my_pkg.rotate`) or the path of a Python file (`examples/ops/rotate_image.py`),
    so a new operation can live in one file outside any package.
    """
    names: list[str] = []
    for loaded in _REGISTRY.load(modules):
        for value in vars(loaded).values():
            if isinstance(value, type) and issubclass(value, VisualOperation) and value.__module__ == loaded.__name__ \
                    and getattr(value, "name", None) in _REGISTRY.names() and value.name not in names:
                names.append(value.name)
    return names


from pixel_reasoner.ops import crop, select_frames  # noqa: E402,F401  (built-ins register themselves)

__all__ = ["EpisodeImage", "OperationContext", "OperationResult", "ProducedImage", "VisualOperation",
           "get_operation", "load_operation_modules", "register_operation", "registered_operations"]
