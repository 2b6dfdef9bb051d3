"""Codecs and chunks of the Zarr stores :func:`ionscope.io.save` writes, chosen by measurement.

Measured with ``benchmarks/scale.py --codecs`` (2 shared cores; RESULTS.md, "Data larger than
memory"): zarr-python 3's default (Zstandard level 0) writes 0.16-0.3 GB/s and reads 0.2-0.5
GB/s, whatever the data; chunks under ~1 MB cost more in per-chunk overhead than in bytes
(157 chunks of 256 KB: 0.19 GB/s even uncompressed). So:

- **chunks**: an in-memory variable is cut along its first dim into chunks of about
  :data:`TARGET_CHUNK_BYTES` (whole trailing dims); a lazy one keeps its dask chunks, merged along
  the first dim when they are smaller than :data:`MIN_CHUNK_BYTES` (tiny chunks, e.g. one small
  map per frame, are the slow case);
- **codec**: none for data that do not compress (float maps and series: their mantissas are
  noise; uncompressed writes 1.1-1.8 GB/s and reads 0.5-1.4 GB/s), Blosc LZ4 level 1 with bit
  shuffle for data that do (count spectra: 4-5x smaller, write 0.65 and read 1.0 GB/s), decided by
  compressing one chunk (:data:`COMPRESS_BELOW` of its size or less) for in-memory variables and
  by dtype for lazy ones (integers compress; floats are not sampled, which would compute a chunk).

Every chunk file still gets its XXH3 digest in the store's manifest (``_integrity``): the codec
changes what is in a chunk file, never whether it is checked. Uncompressed chunks also have an
exact size, checked at open.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

#: Bytes per chunk the writer aims at for in-memory variables.
TARGET_CHUNK_BYTES = 16 * 2**20
#: Lazy variables with smaller dask chunks are merged along their first dim up to TARGET_CHUNK_BYTES.
MIN_CHUNK_BYTES = 2**20
#: A sampled chunk compressed to at most this fraction of its size is stored compressed.
COMPRESS_BELOW = 0.6
#: Largest sample compressed to decide (bytes).
SAMPLE_BYTES = 4 * 2**20


def _zarr3() -> bool:
    import zarr

    return int(zarr.__version__.split(".")[0]) >= 3


def blosc_lz4():
    """Blosc LZ4 level 1 with bit shuffle, as the installed zarr-python spells it."""
    if _zarr3():
        from zarr.codecs import BloscCodec

        return BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")
    from numcodecs import Blosc

    return Blosc(cname="lz4", clevel=1, shuffle=Blosc.BITSHUFFLE)


def _codec_encoding(compress: bool) -> dict[str, Any]:
    if _zarr3():
        return {"compressors": [blosc_lz4()] if compress else []}
    return {"compressor": blosc_lz4() if compress else None}


def _leading_chunk(shape: tuple[int, ...], itemsize: int, target: int = TARGET_CHUNK_BYTES) -> int:
    """Elements along the first dim for chunks of about ``target`` bytes (whole trailing dims)."""
    row = max(math.prod(shape[1:]) * itemsize, 1)
    return int(min(shape[0], max(1, target // row)))


def _compresses(values: np.ndarray) -> bool:
    from numcodecs import Blosc

    flat = np.ascontiguousarray(values).reshape(-1)
    sample = flat[: max(1, SAMPLE_BYTES // max(flat.itemsize, 1))]
    if sample.nbytes < 1024:
        return False
    packed = Blosc(cname="lz4", clevel=1, shuffle=Blosc.BITSHUFFLE).encode(sample)
    return len(packed) <= COMPRESS_BELOW * sample.nbytes


def storage_plan(ds: xr.Dataset) -> tuple[xr.Dataset, dict[str, dict[str, Any]]]:
    """``ds`` with small dask chunks merged, and the ``to_zarr`` encoding (codec, chunks) of each
    numeric variable of at least one chunk's worth (others keep zarr's defaults)."""
    encoding: dict[str, dict[str, Any]] = {}
    merged = {}
    for name, var in ds.variables.items():
        if var.dtype.kind not in "biufc" or var.ndim == 0 or var.nbytes < MIN_CHUNK_BYTES:
            continue
        if var.chunks is not None:  # lazy: keep the dask chunks, merge tiny ones along the first dim
            first = var.chunks[0]
            per_row = var.nbytes / max(var.shape[0], 1)
            if max(first) * per_row < MIN_CHUNK_BYTES and all(len(c) == 1 for c in var.chunks[1:]):
                merged[name] = var.chunk({var.dims[0]: _leading_chunk(var.shape, var.dtype.itemsize)})
            encoding[name] = _codec_encoding(var.dtype.kind in "biu")
        else:
            lead = _leading_chunk(var.shape, var.dtype.itemsize)
            sample = np.asarray(var.values[:lead])
            encoding[name] = {**_codec_encoding(_compresses(sample)), "chunks": (lead, *var.shape[1:])}
    if merged:
        coords = {k: v for k, v in merged.items() if k in ds.coords}
        ds = ds.assign_coords(coords).assign({k: v for k, v in merged.items() if k not in ds.coords})
    return ds, encoding
