"""Names that moved between modules stay importable from where they were.

A module whose public names moved elsewhere (usually because the new module imports the old
one, so a plain re-export would be an import circle) sets ``__getattr__ = moved_names(...)``
(PEP 562): each moved name is imported from its new module on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["moved_names", "compute", "apply_ufunc"]


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
    """:func:`dask.compute` with every result in the place of its object, and the tasks the
    objects share run once.

    dask 2026.8 groups the collections of one ``compute`` by their low-level optimizer (dask
    arrays and xarray objects in one group, Delayed objects in another...) - nested ones in lists
    and dicts included - optimizes each group's merged graph and hands the results back in the
    grouped order: ``compute(delayed_a, array_b, delayed_c)`` gives ``(a, c, b)``. Here the
    collections are put in that grouped order before the one ``dask.compute`` (first appearance of
    each group, then the order within it: what dask does, so the results come back in a known
    order also once dask keeps the order) and put back in place. Collections of one group are
    optimized together, so the tasks they share run once (wrapping each object in its own
    :func:`dask.delayed` instead, as before, gave every object a private copy of the graph: a
    result and a statistic of it took two passes). Collections of different groups are optimized
    apart and may each run tasks they share; build statistics that are computed with a result
    as dask arrays of it (e.g. :func:`ionscope.blocks.map_blocks_with_total`), not as Delayed.
    """
    import dask
    from dask.base import unpack_collections

    collections, repack = unpack_collections(*objs)
    if not collections:
        return tuple(objs)
    groups: dict[Any, int] = {}
    for c in collections:
        groups.setdefault(_optimizer(c), len(groups))
    order = sorted(range(len(collections)), key=lambda i: groups[_optimizer(collections[i])])  # stable
    results = dask.compute(*[collections[i] for i in order], **kwargs)
    placed: list[Any] = [None] * len(collections)
    for position, i in enumerate(order):
        placed[i] = results[position]
    return tuple(repack(placed))


def _optimizer(collection: Any) -> Any:
    """What dask groups a collection by when several are computed at once (its low-level
    optimizer); collections without a hashable one form one group."""
    key = getattr(collection, "__dask_optimize__", None)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def apply_ufunc(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """:func:`xarray.apply_ufunc` whose outputs carry no attrs of their own, and which leaves the
    inputs' attrs as they were.

    ``keep_attrs=False`` does the first, but with xarray 2024.6 (ionscope's floor) and pandas 3 it
    also clears the attrs (units) of the index coordinates the outputs share with the inputs -
    the caller's own arrays included. Here the attrs are kept through the call and the outputs'
    own dropped after it.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.ones(3), dims="x", coords={"x": ("x", [0.0, 1.0, 2.0], {"units": "nm"})},
    ...                  attrs={"units": "V"})
    >>> b = apply_ufunc(np.negative, a)
    >>> b.attrs, b.x.attrs, a.x.attrs
    ({}, {'units': 'nm'}, {'units': 'nm'})
    """
    import xarray as xr

    if "keep_attrs" in kwargs:
        raise TypeError("ionscope.compat.apply_ufunc drops the outputs' attrs itself; do not pass keep_attrs")
    result = xr.apply_ufunc(func, *args, keep_attrs=True, **kwargs)
    for out in result if isinstance(result, tuple) else (result,):
        out.attrs = {}
    return result
