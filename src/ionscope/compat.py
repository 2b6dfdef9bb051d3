"""Names that moved between modules stay importable from where they were.

A module whose public names moved elsewhere (usually because the new module imports the old
one, so a plain re-export would be an import circle) sets ``__getattr__ = moved_names(...)``
(PEP 562): each moved name is imported from its new module on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["moved_names", "compute"]


def moved_names(module: str, moved: Mapping[str, str], *,
                fallback: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module`` that resolves the names in ``moved``
    (name -> the module that holds it now), then asks ``fallback`` (e.g. for a deprecated
    name), else raises ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        if name in moved:
            return getattr(importlib.import_module(moved[name]), name)
        if fallback is not None:
            return fallback(name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def compute(*objs: Any, **kwargs: Any) -> tuple[Any, ...]:
    """:func:`dask.compute` with every result in the place of its object.

    dask 2026.8 groups the collections of one ``compute`` by kind - nested ones in lists
    included - and can hand the results back in the grouped order: ``compute(delayed_a,
    array_b, delayed_c)`` gives ``(a, c, b)``. Each object is wrapped in one
    :func:`dask.delayed` (a single kind, whose order is kept); tasks the objects share still run
    once.
    """
    import dask

    return tuple(dask.compute(*[dask.delayed(obj) for obj in objs], **kwargs))
