"""Modules loaded on first use: every stage runs in its own process, and importing numba costs
a quarter of a second that only the stages calling compiled code should pay."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _Lazy(ModuleType):
    """Stands for a module; the first attribute read imports it (``importlib.import_module``
    holds the import lock, so threads reading at once all see the whole module;
    ``importlib.util.LazyLoader`` does not guarantee that before Python 3.13)."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_module(name: str) -> ModuleType:
    """A stand-in for module ``name`` that imports it when one of its attributes is read."""
    return _Lazy(name)
