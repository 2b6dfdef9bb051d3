"""Integrity of Zarr stores: a chunk manifest for ionscope's own stores, a completeness check
for foreign ones.

A Zarr reader takes a missing chunk file for "every value is the fill value" and a short one
for whatever its decompressor makes of it, so a store that lost or truncated a file reads as
zeros (or NaN) without a word. This module closes that gap with what it can see on disk alone
(the store's files and its JSON metadata), so it works the same on Zarr format 2 and 3 and on
zarr-python 2 and 3.

ionscope's stores
    :func:`write_manifest` runs after ``to_zarr`` into the temporary store and before it is
    renamed into place (:func:`ionscope.io.save`), so the manifest is atomic with the data. It
    lists every chunk file of every array: its key, size in bytes and XXH3-64 digest. It lives
    in a Zarr group of its own, ``ionscope-manifest`` at the store root, in that group's
    attributes (``ionscope_manifest``): a valid node of the hierarchy, so zarr and xarray skip
    it without a warning (a loose file at the root makes zarr-python 3 warn "Object at ... is
    not recognized as a component of a Zarr hierarchy" whenever the root is listed).

Verification on load (:class:`StoreCheck`)
    - at open, always: every listed chunk file exists with its listed size, and every listed
      array is there (a ``stat`` per chunk; no chunk is read);
    - digests: every chunk is checked as it is read. An eager load reads everything, so it
      checks every digest first; a lazy load checks each chunk's digest when dask reads it
      (the dask arrays come from :class:`GuardedArray`), so a lazy open reads no chunk;
      :func:`verify_store` checks every digest without decoding anything (``ionscope info``
      and ``convert`` call it through :func:`ionscope.io.check_complete`). A file hashed once
      is not hashed again by the same process while its size, mtime, ctime and inode are
      unchanged (so ``convert`` reads each chunk for its check once).

    Why digests on every read: measured with ``benchmarks/zarr_integrity.py`` (187 MB stored,
    2 cores), the manifest costs 2-4 % of a save; the lazy open's ``stat`` calls 3 ms for 128
    chunks, 30 ms for 3200; hashing runs at ~19 GB/s, so checking every chunk file costs
    0.1 s/GB (1.5 MB chunks) to 0.7 s/GB (64 KB chunks) from the page cache and 1.1-3.5 s/GB
    from disk - a few percent to ~20 % of decoding the same chunks, which a read does anyway.
    Too small to leave a corrupt chunk to chance.

    The manifest group is also what :func:`xarray.open_datatree` shows as a child node named
    ``ionscope-manifest``; ``xarray.open_zarr`` and ionscope read only the root's arrays.

Foreign stores (no manifest)
    Every chunk that an array's shape and chunk grid imply must exist as a file
    (:func:`missing_chunks`), and an uncompressed chunk must have its exact size. Zarr
    metadata has no field that says the writer left out chunks holding only the fill value
    (zarr-python 3's default ``write_empty_chunks=False``), so such a chunk cannot be told from
    a lost one: it is refused, and the error says how to rewrite the store. Chunk keys follow
    the array's metadata: ``.zarray`` ``dimension_separator`` (both separators are accepted
    when it is absent, as older nested stores did not record it), ``zarr.json``
    ``chunk_key_encoding`` (``default``: ``c/0/1``, ``v2``: ``0.1``). A sharded array is
    checked shard by shard (its files); inner chunks left out of a shard are recorded in the
    shard's own index, so they are not a loss. Truncation: an uncompressed chunk must have its
    exact size (checked at open); a Blosc chunk (zarr-python 2's default compressor) must have
    the size its frame header records, checked when it is read, because Blosc decompresses a
    truncated frame into garbage without an error; any other chunk that cannot be decoded
    (zstd, zlib, ... fail on a cut frame) is a :class:`~ionscope.errors.FormatError` naming the
    variable and the chunk, raised when it is read.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import FormatError, InputError, IonscopeError

#: The Zarr group, at the store root, that holds the manifest in its attributes.
MANIFEST_GROUP = "ionscope-manifest"
#: The attribute of that group that holds the manifest.
MANIFEST_KEY = "ionscope_manifest"
#: The digest of each chunk file (xxhash's XXH3, 64 bits, as hex).
DIGEST = "xxh3_64"

_AGAIN = "copy the store again from its source, or rerun the command that wrote it"

#: Chunk files this process has hashed and found as written (path, size, mtime, ctime, inode, digest).
_HASHED: set[tuple] = set()
_HASHED_MAX = 1_000_000


# --------------------------------------------------------------------------- layout on disk


@dataclass(frozen=True)
class ArrayLayout:
    """Where the chunk files of one Zarr array are, read from its metadata.

    Attributes
    ----------
    name : str
        The array's name in the store (its folder).
    shape, chunks : tuple of int
        Array shape and the shape of one stored unit (a chunk, or a shard of a sharded array).
    encoding : str
        ``"default"`` (Zarr 3 ``c/0/1`` keys) or ``"v2"`` (``0.1`` keys).
    separators : tuple of str
        The separator(s) between chunk indices that the metadata allows.
    dims : tuple of str or None
        Dimension names (``_ARRAY_DIMENSIONS`` or ``dimension_names``).
    fill_value : object
        What a missing chunk reads as.
    raw_nbytes : int or None
        The exact size of a chunk file when chunks are stored uncompressed, else None.
    framing : str or None
        ``"blosc"`` when each chunk file is one Blosc frame, whose header records its size
        (Blosc decompresses a truncated frame without an error: the size is checked instead).
    """

    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    encoding: str
    separators: tuple[str, ...]
    dims: tuple[str, ...] | None = None
    fill_value: Any = None
    raw_nbytes: int | None = None
    framing: str | None = None

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of chunks along each dimension."""
        return tuple(math.ceil(s / c) if c else 0 for s, c in zip(self.shape, self.chunks))

    def indices(self) -> Iterator[tuple[int, ...]]:
        """Every chunk index of the grid (one, ``()``, for a 0-d array)."""
        return itertools.product(*(range(n) for n in self.grid))

    def keys(self, index: tuple[int, ...]) -> list[str]:
        """The store keys (paths relative to the array's folder) chunk ``index`` may have."""
        keys = []
        for sep in self.separators:
            if self.encoding == "default":
                keys.append("c" + "".join(sep + str(i) for i in index))
            else:
                keys.append(sep.join(map(str, index)) if index else "0")
        return keys

    def slices(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """The part of the array that chunk ``index`` holds."""
        return tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, self.chunks, self.shape))

    def touched(self, key: Any) -> list[tuple[int, ...]]:
        """The chunk indices that reading ``array[key]`` needs (ints, slices, integer arrays)."""
        key = key if isinstance(key, tuple) else (key,)
        ranges = []
        for dim, (size, chunk) in enumerate(zip(self.shape, self.chunks)):
            k = key[dim] if dim < len(key) else slice(None)
            if isinstance(k, slice):
                picked = range(*k.indices(size))
                if not picked:
                    return []
                lo, hi = min(picked[0], picked[-1]), max(picked[0], picked[-1])
            else:
                arr = np.asarray(k)
                arr = np.flatnonzero(arr) if arr.dtype == bool else arr.ravel() % max(size, 1)
                if arr.size == 0:
                    return []
                lo, hi = int(arr.min()), int(arr.max())
            ranges.append(range(lo // chunk, hi // chunk + 1))
        return list(itertools.product(*ranges))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def store_format(store: Path) -> int | None:
    """The Zarr format (2 or 3) of the group at ``store``, or None when it has no group metadata."""
    if (store / "zarr.json").is_file():
        return 3
    if (store / ".zgroup").is_file():
        return 2
    return None


def _dtype_nbytes(dtype: Any) -> int | None:
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        return None
    return dt.itemsize if dt.kind in "biufcmM" else None


def _layout_v2(name: str, meta: dict, attrs: Any) -> ArrayLayout:
    sep = meta.get("dimension_separator")
    uncompressed = meta.get("compressor") is None and not meta.get("filters")
    itemsize = _dtype_nbytes(meta.get("dtype")) if uncompressed else None
    chunks = tuple(int(c) for c in meta["chunks"])
    dims = attrs.get("_ARRAY_DIMENSIONS") if isinstance(attrs, dict) else None
    return ArrayLayout(
        name, tuple(int(s) for s in meta["shape"]), chunks, "v2", (sep,) if sep else (".", "/"),
        tuple(dims) if dims else None, meta.get("fill_value"),
        itemsize * math.prod(chunks) if itemsize else None,
        "blosc" if (meta.get("compressor") or {}).get("id") == "blosc" else None,
    )


def _layout_v3(name: str, meta: dict) -> ArrayLayout | None:
    grid = meta.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        return None  # an extension grid: its chunk keys are not known here
    encoding = meta.get("chunk_key_encoding") or {"name": "default"}
    kind = encoding.get("name")
    if kind not in ("default", "v2"):
        return None
    sep = (encoding.get("configuration") or {}).get("separator", "/" if kind == "default" else ".")
    chunks = tuple(int(c) for c in grid["configuration"]["chunk_shape"])
    names = [c.get("name") if isinstance(c, dict) else c for c in meta.get("codecs") or []]
    itemsize = _dtype_nbytes(meta.get("data_type")) if set(names) <= {"bytes", "transpose"} else None
    dims = meta.get("dimension_names")
    return ArrayLayout(
        name, tuple(int(s) for s in meta["shape"]), chunks, kind, (sep,),
        tuple(dims) if dims and all(dims) else None, meta.get("fill_value"),
        itemsize * math.prod(chunks) if itemsize else None,
        "blosc" if names and names[-1] in ("blosc", "numcodecs.blosc") else None,
    )


def array_layouts(store: Path) -> dict[str, ArrayLayout]:
    """The arrays directly under the root group of ``store``, by name.

    Metadata that cannot be read is skipped: opening the store then fails with the reader's
    own message.
    """
    layouts: dict[str, ArrayLayout] = {}
    try:
        children = sorted(p for p in store.iterdir() if p.is_dir())
    except OSError:
        return layouts
    for child in children:
        try:
            meta = _read_json(child / "zarr.json")
            if isinstance(meta, dict) and meta.get("node_type") == "array":
                layout = _layout_v3(child.name, meta)
            elif isinstance(meta := _read_json(child / ".zarray"), dict):
                layout = _layout_v2(child.name, meta, _read_json(child / ".zattrs"))
            else:
                continue
        except (KeyError, TypeError, ValueError):
            continue
        if layout is not None:
            layouts[child.name] = layout
    return layouts


def chunk_file(store: Path, layout: ArrayLayout, index: tuple[int, ...]) -> str | None:
    """The key (``NAME/c/0/1``) of the file holding chunk ``index``, or None if it has none."""
    for key in layout.keys(index):
        if (store / layout.name / key).is_file():
            return f"{layout.name}/{key}"
    return None


# --------------------------------------------------------------------------- manifest


def file_digest(path: Path, *, block: int = 1 << 22) -> tuple[int, str]:
    """Size in bytes and XXH3-64 hex digest of the file at ``path``."""
    import xxhash

    h, size = xxhash.xxh3_64(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def build_manifest(store: Path, layouts: Mapping[str, ArrayLayout] | None = None) -> dict:
    """The manifest of ``store``: for every array, chunk key -> ``[size, digest]``.

    Only chunks that exist as files are listed (a writer may leave out empty ones); every
    array is listed, so a lost array folder is found too.
    """
    layouts = array_layouts(store) if layouts is None else layouts
    arrays: dict[str, dict[str, list]] = {}
    for name, layout in layouts.items():
        entries = arrays[name] = {}
        for index in layout.indices():
            key = chunk_file(store, layout, index)
            if key is not None:
                size, digest = file_digest(store / key)
                entries[key.split("/", 1)[1]] = [size, digest]
    return {"version": 1, "digest": DIGEST, "arrays": arrays}


def write_manifest(store: Path) -> dict:
    """Write the manifest of ``store`` into its ``ionscope-manifest`` group (same Zarr format as
    the store's root) and return it. Call it once the arrays are written, before the store is
    renamed into place."""
    fmt = store_format(store)
    if fmt is None:
        raise FormatError(f"{store}: no Zarr group metadata to describe")
    group = store / MANIFEST_GROUP
    if group.exists():
        raise InputError(f"{store}: a variable named {MANIFEST_GROUP!r} would hide the store's chunk manifest; "
                         "rename it")
    manifest = build_manifest(store)
    group.mkdir()
    if fmt == 3:
        meta = {"zarr_format": 3, "node_type": "group", "attributes": {MANIFEST_KEY: manifest}}
        (group / "zarr.json").write_text(json.dumps(meta, separators=(",", ":")))
    else:
        (group / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        (group / ".zattrs").write_text(json.dumps({MANIFEST_KEY: manifest}, separators=(",", ":")))
    return manifest


def read_manifest(store: Path) -> dict | None:
    """The manifest of an ionscope store, or None for a store that has none (a foreign one).

    Raises
    ------
    FormatError
        The manifest group exists but cannot be read.
    """
    group = store / MANIFEST_GROUP
    if not group.is_dir() or store_format(store) is None:  # no root metadata: not a store xarray opens
        return None
    meta = _read_json(group / "zarr.json")
    attrs = meta.get("attributes") if isinstance(meta, dict) else _read_json(group / ".zattrs")
    manifest = attrs.get(MANIFEST_KEY) if isinstance(attrs, dict) else None
    if not (isinstance(manifest, dict) and manifest.get("digest") == DIGEST
            and isinstance(manifest.get("arrays"), dict)):
        raise FormatError(f"{store}: the Zarr store's chunk manifest ({MANIFEST_GROUP}) is unreadable, so the data cannot "
                          f"be checked; {_AGAIN}")
    return manifest


# --------------------------------------------------------------------------- checks


def _damaged(store: Path, name: str, key: str, what: str) -> FormatError:
    return FormatError(f"{store}: variable {name!r}, chunk {name}/{key} {what}; the store is damaged - {_AGAIN}")


def check_entry(store: Path, name: str, key: str, entry: list, *, digest: bool) -> None:
    """Check one chunk file against its manifest entry ``[size, digest]``.

    Parameters
    ----------
    store : Path
        The store.
    name, key : str
        Array name and the chunk's key inside the array's folder.
    entry : list
        ``[size, digest]`` as written.
    digest : bool
        Also read the file and compare its digest (else only its size).

    Raises
    ------
    FormatError
        The file is missing, has another size, or (``digest``) other content.
    """
    path = store / name / key
    size, expected = entry
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _damaged(store, name, key, "is missing (a lost file reads as fill values)") from None
    if st.st_size != size:
        what = "is truncated" if st.st_size < size else "is longer than written"
        raise _damaged(store, name, key, f"{what} ({st.st_size} bytes; {size} were written)")
    if not digest:
        return
    # a file this process has hashed, unchanged since (a write changes its ctime), is not read again:
    # check_complete and the reading that follows it check each chunk once
    seen = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, expected)
    if seen in _HASHED:
        return
    actual, found = file_digest(path)
    if (actual, found) != (size, expected):
        raise _damaged(store, name, key, "is corrupt (its bytes differ from what was written: "
                                         f"{DIGEST} digest {found}, expected {expected})")
    if len(_HASHED) >= _HASHED_MAX:
        _HASHED.clear()
    _HASHED.add(seen)


def check_sizes(store: Path, manifest: dict, layouts: Mapping[str, ArrayLayout]) -> None:
    """Check that every array of the manifest is in the store and every chunk file it lists
    exists with its size (one ``stat`` per chunk; nothing is read).

    Raises
    ------
    FormatError
        Naming the store, the variable, the chunk and what to do.
    """
    for name, entries in manifest["arrays"].items():
        if name not in layouts:
            raise FormatError(f"{store}: variable {name!r} is missing (its folder or metadata is gone); "
                              f"the store is damaged - {_AGAIN}")
        for key, entry in entries.items():
            check_entry(store, name, key, entry, digest=False)


def check_digests(store: Path, manifest: dict, names: Iterable[str] | None = None) -> None:
    """Read every chunk file of the arrays ``names`` (default: all) and compare size and digest
    with the manifest.

    Raises
    ------
    FormatError
        A chunk is missing, truncated or corrupt.
    """
    arrays = manifest["arrays"]
    for name in arrays if names is None else names:
        for key, entry in arrays.get(name, {}).items():
            check_entry(store, name, key, entry, digest=True)


def missing_chunks(store: Path, layout: ArrayLayout) -> tuple[list[str], int]:
    """The chunk files the array's shape and chunk grid imply but the store lacks, and the
    number of chunks it should have."""
    missing = [layout.keys(index)[0] for index in layout.indices() if chunk_file(store, layout, index) is None]
    return missing, math.prod(layout.grid)


def check_framing(store: Path, layout: ArrayLayout, key: str) -> None:
    """Check that the chunk file ``key`` (``NAME/...``) has the size its own frame header records
    (Blosc: bytes 12-16, the compressed size); other framings are not checked.

    Raises
    ------
    FormatError
        The file is shorter (or longer) than its header says.
    """
    if layout.framing != "blosc":
        return
    with open(store / key, "rb") as fh:
        header = fh.read(16)
        size = os.fstat(fh.fileno()).st_size
    recorded = int.from_bytes(header[12:16], "little") if len(header) == 16 else None
    if recorded != size:
        what = "is truncated" if recorded is None or size < recorded else "has the wrong size"
        said = f"its Blosc header says {recorded}" if recorded is not None else "too short for its Blosc header"
        raise FormatError(f"{store}: variable {layout.name!r}, chunk {key} {what} ({size} bytes; {said}); "
                          "the store is damaged - copy it again")


def check_foreign(store: Path, layouts: Mapping[str, ArrayLayout]) -> None:
    """Completeness check of a store without a manifest: every chunk the metadata implies
    exists, and an uncompressed chunk has its exact size.

    Raises
    ------
    FormatError
        A chunk is missing (whether its writer left it out as empty cannot be known), or an
        uncompressed chunk has the wrong size.
    """
    for name, layout in layouts.items():
        missing, total = missing_chunks(store, layout)
        if missing:
            raise FormatError(
                f"{store}: variable {name!r} lacks {len(missing)} of its {total} chunk files (first: "
                f"{name}/{missing[0]}), which would read as the fill value {layout.fill_value!r}; the store is "
                "incomplete - copy it again; if its writer left out chunks holding only the fill value "
                "(zarr-python 3's write_empty_chunks=False), rewrite it with "
                "to_zarr(..., write_empty_chunks=True)"
            )
        if layout.raw_nbytes is None:
            continue
        for index in layout.indices():
            key = chunk_file(store, layout, index)
            size = (store / key).stat().st_size
            if size != layout.raw_nbytes:
                what = "is truncated" if size < layout.raw_nbytes else "has the wrong size"
                raise FormatError(
                    f"{store}: variable {name!r}, chunk {key} {what} ({size} bytes; an uncompressed chunk "
                    f"has {layout.raw_nbytes}); the store is damaged - copy it again"
                )


# --------------------------------------------------------------------------- reading


class GuardedArray:
    """A lazily read Zarr variable as dask reads it, chunk by chunk: each chunk is checked
    against the manifest (size and digest) just before it is decoded, and a chunk that cannot
    be decoded is a :class:`~ionscope.errors.FormatError` naming the store, variable and chunk
    (not the decompressor's error from deep inside a computation).

    Parameters
    ----------
    check : StoreCheck
        The store's layouts and manifest.
    name : str
        The variable (array) name.
    variable : xarray.Variable
        The variable as xarray opened it without dask (lazily indexed, decoded).
    """

    def __init__(self, check: StoreCheck, name: str, variable: xr.Variable):
        self.check, self.name, self.variable = check, name, variable
        self.shape, self.dtype, self.ndim = variable.shape, variable.dtype, variable.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        layout = self.check.layouts.get(self.name)
        if layout is not None:
            self.check.verify(self.name, layout.touched(key))
        try:
            return np.asarray(self.variable[key].values)
        except IonscopeError:
            raise
        except Exception as exc:
            raise self.check.unreadable(self.name, self.variable, exc, key) from None


class StoreCheck:
    """The integrity checks of one store, from opening to the last chunk read.

    Build it with :meth:`open` (before xarray opens the store): it checks what is cheap at
    once - sizes against the manifest, or completeness of a foreign store - and then
    :meth:`finish` makes the opened Dataset check every chunk it reads.

    Attributes
    ----------
    store : Path
    layouts : dict of str to ArrayLayout
    manifest : dict or None
        None for a foreign store.
    """

    def __init__(self, store: Path, layouts: dict[str, ArrayLayout], manifest: dict | None):
        self.store, self.layouts, self.manifest = store, layouts, manifest
        self._verified: set[tuple[str, tuple[int, ...]]] = set()

    @classmethod
    def open(cls, store: Path) -> StoreCheck:
        """Read the store's layouts and manifest and run the cheap checks.

        Raises
        ------
        FormatError
            A missing, truncated or resized chunk, a lost array, or (foreign store) a chunk
            file the metadata implies that is not there.
        """
        layouts = array_layouts(store)
        manifest = read_manifest(store)
        if manifest is None:
            check_foreign(store, layouts)
        else:
            check_sizes(store, manifest, layouts)
        check = cls(store, layouts, manifest)
        for name, layout in layouts.items():  # index coordinates: xarray reads them at open
            if layout.dims == (name,):
                check.verify(name, layout.indices())
        return check

    def verify(self, name: str, indices: Iterable[tuple[int, ...]]) -> None:
        """Check the chunks ``indices`` of array ``name``, each once: size and digest against
        the manifest, or (foreign store) size against the chunk's own frame header."""
        layout = self.layouts.get(name)
        if layout is None or self.manifest is None and layout.framing is None:
            return
        entries = self.manifest["arrays"].get(name, {}) if self.manifest is not None else None
        for index in indices:
            if (name, index) in self._verified:
                continue
            if entries is None:
                key = chunk_file(self.store, layout, index)
                if key is not None:
                    check_framing(self.store, layout, key)
            else:
                key = next((k for k in layout.keys(index) if k in entries), None)
                if key is not None:
                    check_entry(self.store, name, key, entries[key], digest=True)
            self._verified.add((name, index))

    def unreadable(self, name: str, variable: xr.Variable, exc: BaseException, key: Any = None) -> FormatError:
        """The error for a chunk of ``name`` that failed to decode; finds which chunk it is."""
        layout = self.layouts.get(name)
        where = ""
        if layout is not None:
            for index in layout.touched(key) if key is not None else layout.indices():
                try:
                    np.asarray(variable[layout.slices(index)].values)
                except Exception:
                    where = f", chunk {chunk_file(self.store, layout, index) or layout.keys(index)[0]}"
                    break
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return FormatError(f"{self.store}: variable {name!r}{where} cannot be decoded ({type(exc).__name__}: "
                           f"{reason}); the chunk is truncated or corrupt - copy the store again")

    def finish(self, ds: xr.Dataset, *, lazy: bool) -> xr.Dataset:
        """The opened Dataset (opened without dask), checked.

        Index coordinates (read by xarray at open) and label variables are verified and read
        now. Eager: every digest is checked and every variable loaded. Lazy: numeric variables
        become dask arrays over :class:`GuardedArray`, so each chunk is checked when read.
        """
        deferred = {n for n, v in ds.variables.items()
                    if lazy and n not in ds.indexes and v.dtype.kind in "biufcmM"}
        now = [n for n in ds.variables if n not in deferred]
        for name in now:
            variable = ds.variables[name]
            if name in self.layouts:
                self.verify(name, self.layouts[name].indices())
            try:
                variable.load()
            except IonscopeError:
                raise
            except Exception as exc:
                raise self.unreadable(name, variable, exc) from None
        if not deferred:
            return ds
        import dask.array
        import xxhash
        from dask.base import tokenize

        replaced = {}
        for name in sorted(deferred):
            variable = ds.variables[name]
            layout = self.layouts.get(name)
            chunks = layout.chunks if layout is not None else "auto"
            entries = (self.manifest or {}).get("arrays", {}).get(name)
            if entries is not None:  # named by content: the digests
                content = xxhash.xxh3_64_hexdigest(json.dumps(entries, sort_keys=True).encode())
            else:
                content = [p.stat().st_mtime_ns for p in (self.store / name / "zarr.json", self.store / name / ".zarray")
                           if p.is_file()]
            token = tokenize(os.fspath(self.store.resolve()), name, content)
            data = dask.array.from_array(
                GuardedArray(self, name, variable), chunks=chunks, name=f"ionscope-zarr-{name}-{token}",
                lock=False, asarray=False, fancy=False, meta=np.empty((0,) * variable.ndim, variable.dtype),
            )
            replaced[name] = variable.copy(deep=False, data=data)
        return ds.assign_coords({k: v for k, v in replaced.items() if k in ds.coords}).assign(
            {k: v for k, v in replaced.items() if k not in ds.coords})


def verify_store(store: Path) -> None:
    """Read every chunk file of an ionscope store and compare it with the manifest (size and
    digest; nothing is decoded). A store without a manifest gets its completeness check, and
    each Blosc-compressed chunk's size is compared with its frame header.

    Raises
    ------
    FormatError
        A lost, truncated or corrupt chunk.
    """
    check = StoreCheck.open(store)
    for name, layout in check.layouts.items():
        check.verify(name, layout.indices())
