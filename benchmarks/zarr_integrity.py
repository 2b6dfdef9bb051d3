"""Benchmark: what the chunk manifest of ionscope's Zarr stores costs (issue 12).

Writes a ~200 MB float32 series with :func:`ionscope.io.save` and measures, best of 5:

- the manifest (size + XXH3-64 digest of every chunk file) against the whole save;
- a lazy open (every listed chunk file ``stat``-ed, nothing read) against plain xarray's;
- :func:`ionscope.io._integrity.verify_store` (every chunk file read and hashed, nothing
  decoded; what ``info`` and ``convert`` run through ``check_complete``), with the files in the
  page cache and evicted from it (``posix_fadvise(DONTNEED)`` on the store's files only);
- an eager load and a lazy ``sum().compute()`` (each chunk checked as it is read) against plain
  ``xarray.open_zarr``.

Each is given as [CPU s, wall s] (CPU: ``process_time``, every thread of this process, which
other processes on a shared machine disturb less than wall time); "fresh" runs forget which
chunk files the process has already hashed, as a new process would.

Prints one JSON object. Run: ``.venv/bin/python benchmarks/zarr_integrity.py [--frames 50
--size 1024 --chunk 0]`` (``--chunk N``: N x N chunks of one frame; 0: Zarr's own chunking).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from _timing import best_of

from ionscope import io
from ionscope.data import signal
from ionscope.io import _integrity
from ionscope.io._integrity import build_manifest, read_manifest, verify_store


def _evict(store: Path) -> None:
    """Drop the store's files from the page cache (only these files)."""
    for path in store.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _fresh(func):
    """``func`` as a new process runs it: no chunk file hashed yet."""
    def run():
        _integrity._HASHED.clear()
        return func()
    return run


def _cold(func, store: Path) -> float:
    def run():
        _evict(store)
        return func()
    evict_s = best_of(lambda: _evict(store))
    return best_of(run) - evict_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
    data = np.random.default_rng(0).random((args.frames, args.size, args.size), dtype=np.float32)
    da = signal(data, ("time", "y", "x"), name="li_fraction", units="1", coords={"time": 60.0, "y": 2.5, "x": 2.5})
    if args.chunk:
        da = da.chunk({"time": 1, "y": args.chunk, "x": args.chunk})
    cpu = time.process_time  # all threads of this process: steadier than wall time on a shared machine

    def both(func):
        return best_of(func, 5, clock=cpu), best_of(func, 5)

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "s.zarr"
        save = both(lambda: io.save(da, path, overwrite=True))
        manifest = both(lambda: build_manifest(path))
        entries = read_manifest(path)["arrays"]["li_fraction"]
        stored = sum(size for size, _ in entries.values())
        lazy_open = both(_fresh(lambda: io.load(path, lazy=True)))
        plain_lazy_open = both(lambda: xr.open_zarr(path, chunks={}, consolidated=False))
        verify = both(_fresh(lambda: verify_store(path)))
        verify_cold_s = _cold(_fresh(lambda: verify_store(path)), path)
        eager = both(_fresh(lambda: io.load(path)))
        plain_eager = both(lambda: xr.open_zarr(path, chunks=None, consolidated=False).load())
        lazy_sum = both(_fresh(lambda: io.load(path, lazy=True).sum().compute()))
        plain_lazy_sum = both(lambda: xr.open_zarr(path, chunks={}, consolidated=False)["li_fraction"].sum().compute())
    result = {
        "benchmark": "zarr_integrity",
        "shape": list(data.shape),
        "chunks": len(entries),
        "data_MB": data.nbytes / 1e6,
        "stored_MB": stored / 1e6,
        "note": "[cpu s, wall s], best of 5; cpu = process_time of all threads",
        "save": save,
        "manifest_in_save": manifest,
        "manifest_vs_rest_of_save_cpu": manifest[0] / (save[0] - manifest[0]),
        "lazy_open": lazy_open,
        "plain_xarray_lazy_open": plain_lazy_open,
        "verify_store_warm": verify,
        "verify_warm_wall_s_per_GB_stored": verify[1] / (stored / 1e9),
        "verify_store_cold_wall_s": verify_cold_s,
        "verify_cold_wall_s_per_GB_stored": verify_cold_s / (stored / 1e9),
        "eager_load": eager,
        "plain_xarray_eager_load": plain_eager,
        "eager_vs_plain_cpu": eager[0] / plain_eager[0],
        "lazy_sum": lazy_sum,
        "plain_xarray_lazy_sum": plain_lazy_sum,
        "lazy_sum_vs_plain_cpu": lazy_sum[0] / plain_lazy_sum[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
