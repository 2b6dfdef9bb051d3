"""Benchmark: Zarr write/read of an operando map series against the machine's memory bandwidth.

Prints one JSON object. Run: ``.venv/bin/python benchmarks/io.py [--frames 157 --size 256]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from _timing import best_of

from ionscope import io
from ionscope.data import signal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=157)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = rng.random((args.frames, args.size, args.size), dtype=np.float32)
    nbytes = data.nbytes
    scratch = np.empty_like(data)
    copy_s = best_of(lambda: np.copyto(scratch, data))
    da = signal(data, ("time", "y", "x"), name="li_fraction", units="1", coords={"time": 60.0, "y": 2.5, "x": 2.5})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.zarr"
        save_s = best_of(lambda: io.save(da, path, overwrite=True))
        load_s = best_of(lambda: io.load(path))
        lazy_s = best_of(lambda: io.load(path, lazy=True).sum().compute())
    result = {
        "benchmark": "io_zarr_series",
        "shape": list(data.shape),
        "megabytes": nbytes / 1e6,
        "memcpy_GB_per_s": nbytes / copy_s / 1e9,
        "save_s": save_s,
        "load_s": load_s,
        "lazy_sum_s": lazy_s,
        "save_vs_memcpy": save_s / copy_s,
        "load_vs_memcpy": load_s / copy_s,
        "save_GB_per_s": nbytes / save_s / 1e9,
        "load_GB_per_s": nbytes / load_s / 1e9,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
