"""Intersphinx inventories written from the installed packages, not downloaded.

The machines that build these docs reach package registries only, so the ``objects.inv`` files
that docs.python.org, numpy.org, scipy.org, xarray, dask and HyperSpy publish cannot be fetched at build time, and
no package on the index ships them. Instead this module walks the public names of the running Python
and the installed numpy, scipy, xarray, dask and HyperSpy (the versions pinned in ``constraints.txt``) and writes an
inventory per project whose entries point at the page layout each project's published API
reference uses (e.g. ``reference/generated/numpy.fft.rfft.html``). Links therefore resolve to the
projects' stable online documentation, as a downloaded inventory would; a name that a project's
site lays out differently may give a dead link, never a build error. The inventories are written
into the build folder (``docs/_build/inventories``) and rebuilt when a package version changes.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

#: project -> (base URL of its stable documentation, distribution whose version stamps the file)
PROJECTS = {
    "python": ("https://docs.python.org/3/", None),
    "numpy": ("https://numpy.org/doc/stable/", "numpy"),
    "scipy": ("https://docs.scipy.org/doc/scipy/", "scipy"),
    "xarray": ("https://docs.xarray.dev/en/stable/", "xarray"),
    "dask": ("https://docs.dask.org/en/stable/", "dask"),
    "hyperspy": ("https://hyperspy.org/hyperspy-doc/current/", "hyperspy"),
}

SCIPY_SUBPACKAGES = ("fft", "ndimage", "optimize", "signal", "linalg", "sparse", "special", "stats", "interpolate",
                     "integrate", "spatial")


def _public(module, names=None) -> Iterator[tuple[str, object]]:
    for name in sorted(names if names is not None else getattr(module, "__all__", dir(module))):
        if name.startswith("_"):
            continue
        try:
            obj = getattr(module, name)
        except AttributeError:
            continue
        yield name, obj


def _role(obj) -> str | None:
    if inspect.isclass(obj):
        return "py:class"
    if callable(obj):
        return "py:function"
    return None


def _members(prefix: str, cls, page: str) -> Iterator[tuple[str, str, str]]:
    """Methods and properties of a class, each on ``page.format(name=...)``."""
    for name, obj in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        role = "py:method" if callable(obj) else "py:attribute"
        full = f"{prefix}.{name}"
        yield full, role, page.format(name=full)


def numpy_entries() -> Iterator[tuple[str, str, str]]:
    import numpy as np

    for name, obj in _public(np):
        role = _role(obj)
        if role is None:
            continue
        if isinstance(obj, type) and issubclass(obj, np.generic):  # scalar types live on one page
            yield f"numpy.{name}", "py:class", f"reference/arrays.scalars.html#numpy.{name}"
            continue
        yield f"numpy.{name}", role, f"reference/generated/numpy.{name}.html"
    yield from _members("numpy.ndarray", np.ndarray, "reference/generated/{name}.html")
    for sub in ("fft", "linalg"):
        module = importlib.import_module(f"numpy.{sub}")
        for name, obj in _public(module):
            if _role(obj):
                yield f"numpy.{sub}.{name}", _role(obj), f"reference/generated/numpy.{sub}.{name}.html"
    yield "numpy.random.default_rng", "py:function", "reference/random/generator.html#numpy.random.default_rng"
    yield "numpy.random.Generator", "py:class", "reference/random/generator.html#numpy.random.Generator"
    for name, obj in inspect.getmembers(np.random.Generator):
        if not name.startswith("_") and callable(obj):
            full = f"numpy.random.Generator.{name}"
            yield full, "py:method", f"reference/random/generated/{full}.html"
    yield "array_like", "std:term", "glossary.html#term-array_like"
    yield "arrays.scalars", "std:label", "reference/arrays.scalars.html#arrays-scalars"
    yield "numpy.typing.ArrayLike", "py:data", "reference/typing.html#numpy.typing.ArrayLike"
    yield "numpy.typing.DTypeLike", "py:data", "reference/typing.html#numpy.typing.DTypeLike"


def scipy_entries() -> Iterator[tuple[str, str, str]]:
    for sub in SCIPY_SUBPACKAGES:
        module = importlib.import_module(f"scipy.{sub}")
        yield f"scipy.{sub}", "py:module", f"reference/{sub}.html#module-scipy.{sub}"
        for name, obj in _public(module):
            role = _role(obj)
            if role:
                yield f"scipy.{sub}.{name}", role, f"reference/generated/scipy.{sub}.{name}.html"


def xarray_entries() -> Iterator[tuple[str, str, str]]:
    import xarray as xr

    for name, obj in _public(xr):
        role = _role(obj)
        if role:
            yield f"xarray.{name}", role, f"generated/xarray.{name}.html"
    for cls in ("DataArray", "Dataset"):
        yield from _members(f"xarray.{cls}", getattr(xr, cls), "generated/{name}.html")


def dask_entries() -> Iterator[tuple[str, str, str]]:
    import dask.array as da

    for name, obj in _public(da):
        role = _role(obj)
        if role:
            yield f"dask.array.{name}", role, f"generated/dask.array.{name}.html"
    yield from _members("dask.array.Array", da.Array, "generated/{name}.html")
    for name in ("compute", "persist", "delayed", "config.set"):
        yield f"dask.{name}", "py:function", f"api.html#dask.{name}"


def hyperspy_entries() -> Iterator[tuple[str, str, str]]:
    api = importlib.import_module("hyperspy.api")
    signals = api.signals
    for name in ("load", "stack", "transpose"):
        if hasattr(api, name):
            yield f"hyperspy.api.{name}", "py:function", f"reference/api.html#hyperspy.api.{name}"
    for name, obj in _public(signals, [n for n in dir(signals) if n[:1].isupper()]):
        if inspect.isclass(obj):
            page = f"reference/api.signals/{name}.html"
            yield f"hyperspy.api.signals.{name}", "py:class", f"{page}#hyperspy.api.signals.{name}"
            for full, role, _ in _members(f"hyperspy.api.signals.{name}", obj, ""):
                yield full, role, f"{page}#{full}"


def python_entries() -> Iterator[tuple[str, str, str]]:
    """The built-in types and functions, the glossary terms numpydoc links type names to, and the
    standard-library classes ionscope's signatures name."""
    import builtins

    for name, obj in _public(builtins, dir(builtins)):
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            yield name, "py:exception", f"library/exceptions.html#{name}"
        elif inspect.isclass(obj):
            yield name, "py:class", f"library/functions.html#{name}"
        elif callable(obj):
            yield name, "py:function", f"library/functions.html#{name}"
    for term in ("sequence", "iterable", "mapping", "callable", "path-like object", "file object"):
        yield term, "std:term", f"glossary.html#term-{term.replace(' ', '-')}"
    yield "bltin-boolean-values", "std:label", "library/stdtypes.html#boolean-type"
    for full, page in (("pathlib.Path", "library/pathlib.html"), ("datetime.datetime", "library/datetime.html"),
                       ("datetime.timedelta", "library/datetime.html"), ("datetime.tzinfo", "library/datetime.html"),
                       ("collections.abc.Sequence", "library/collections.abc.html"),
                       ("collections.abc.Mapping", "library/collections.abc.html"),
                       ("collections.abc.Callable", "library/collections.abc.html"),
                       ("collections.abc.Iterable", "library/collections.abc.html"),
                       ("typing.Any", "library/typing.html"), ("typing.NamedTuple", "library/typing.html"),
                       ("dataclasses.dataclass", "library/dataclasses.html")):
        yield full, "py:class", f"{page}#{full}"


ENTRIES = {"python": python_entries, "numpy": numpy_entries, "scipy": scipy_entries, "xarray": xarray_entries, "dask": dask_entries,
           "hyperspy": hyperspy_entries}


def inventory_bytes(project: str, version: str, entries) -> bytes:
    """An ``objects.inv`` (format version 2) holding ``entries`` of ``(name, role, uri)``."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    seen, lines = set(), []
    for name, role, uri in entries:
        if (name, role) in seen:
            continue
        seen.add((name, role))
        lines.append(f"{name} {role} 1 {uri} -\n")
    return header + zlib.compress("".join(sorted(lines)).encode())


#: Part of every file name: a changed generator writes new inventories.
_SOURCE_DIGEST = __import__("hashlib").sha256(Path(__file__).read_bytes()).hexdigest()[:10]


def write_inventories(folder: Path) -> dict[str, tuple[str, str]]:
    """Write one inventory per project into ``folder`` (skipped when the one for this version is
    there) and return the ``intersphinx_mapping`` that uses them."""
    from importlib.metadata import version

    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for project, (url, dist) in PROJECTS.items():
        ver = version(dist) if dist else "{}.{}".format(*sys.version_info[:2])
        path = folder / f"{project}-{ver}-{_SOURCE_DIGEST}.inv"
        if not path.exists():
            part = path.with_suffix(".part")
            part.write_bytes(inventory_bytes(project, ver, ENTRIES[project]()))
            part.replace(path)
        mapping[project] = (url, str(path))
    return mapping
