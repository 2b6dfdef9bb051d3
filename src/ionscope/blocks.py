"""Block-parallel execution of numpy kernels on a few cores.

Kernels that stream over many rows (spectra, patches) run fastest when a block of rows stays in
a core's cache between the passes over it, the blocks run on a thread per CPU (numpy's GEMMs
and ufuncs release the GIL), and BLAS itself runs single-threaded (a multi-threaded BLAS on top
of our threads, or on tiny GEMMs, only oversubscribes the cores and spin-waits).

* :func:`single_threaded_blas` - context manager (and decorator) limiting BLAS to one thread,
  safe to nest and to enter from several threads.
* :func:`run_blocks` - call a function on consecutive row slices, on a persistent thread pool.
* :class:`Scratch` - per-thread work buffers reused across blocks.
* :func:`map_blocks_with_total` - a dask array's blocks mapped to output blocks and a number
  each (e.g. a count or a squared error), summed lazily: both come from the same tasks.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController


def n_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _loaded_objects() -> int:
    """How many shared objects the process has loaded (``dl_iterate_phdr``; ~50 us), or - where
    that call does not exist - how many Python modules it has imported."""
    global _DL_COUNT
    if _DL_COUNT is None:
        try:
            libc = ctypes.CDLL(None)
            iterate = libc.dl_iterate_phdr
            callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

            def count() -> int:
                seen = [0]

                def one(info, size, data) -> int:
                    seen[0] += 1
                    return 0

                iterate(callback_type(one), None)
                return seen[0]

            _DL_COUNT = count
        except (OSError, AttributeError):
            _DL_COUNT = lambda: len(sys.modules)  # noqa: E731
    return _DL_COUNT()


_DL_COUNT: Callable[[], int] | None = None


class _SingleThreadedBLAS:
    """BLAS runs single-threaded while any caller is inside.

    threadpoolctl limits are process-wide, so nested and concurrent entries are
    reference-counted: the first entry sets the limit and the last exit restores the original.
    A BLAS library loaded while callers are inside (another thread importing scipy, say) is
    limited by the next entry, and restored with the others.
    """

    _lock = threading.Lock()
    _depth = 0
    _limiters: list[Any] = []
    _controller: ThreadpoolController | None = None
    _modules_seen = -1

    def __enter__(self) -> None:
        cls = type(self)
        with cls._lock:
            # finding the BLAS libraries costs ~2 ms: look again only when the process has
            # loaded another shared object (e.g. scipy's or scikit-learn's OpenBLAS)
            loaded = _loaded_objects()
            fresh = cls._controller is None or cls._modules_seen != loaded
            if fresh:
                cls._controller = ThreadpoolController()
                cls._modules_seen = loaded
            if cls._depth == 0 or fresh:
                cls._limiters.append(cls._controller.limit(limits=1, user_api="blas"))
            cls._depth += 1

    def __exit__(self, *exc: Any) -> None:
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                while cls._limiters:  # newest first: the oldest holds the original limits
                    cls._limiters.pop().restore_original_limits()

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper


def single_threaded_blas() -> _SingleThreadedBLAS:
    """Context manager or decorator: BLAS/LAPACK run on one thread inside it.

    Examples
    --------
    >>> with single_threaded_blas():
    ...     _ = np.ones((4, 4)) @ np.ones((4, 4))
    """
    return _SingleThreadedBLAS()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def thread_pool(workers: int) -> ThreadPoolExecutor:
    """A persistent thread pool with at least ``workers`` threads (creating one per call costs
    more than a small kernel)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max(workers, n_cpus()), thread_name_prefix="ionscope-blocks")
        return _POOL


def run_blocks(func: Callable[[slice], None], n_rows: int, block_rows: int, workers: int = 1) -> None:
    """Call ``func`` on consecutive row slices of ``block_rows`` rows.

    Parameters
    ----------
    func : callable
        ``func(slice)``; writes its results itself (e.g. into preallocated outputs).
    n_rows, block_rows : int
        Rows in all and per block.
    workers : int
        Threads (capped at the number of blocks). BLAS runs single-threaded throughout.
    """
    slices = [slice(i, min(i + block_rows, n_rows)) for i in range(0, n_rows, block_rows)]
    workers = max(1, min(int(workers), len(slices)))
    with single_threaded_blas():
        if workers == 1:
            for sl in slices:
                func(sl)
            return
        # runs of consecutive blocks handed out dynamically: few tasks (the executor costs
        # ~20 us per task), yet balanced when another process takes a core
        group = max(1, min(16, len(slices) // (4 * workers)))
        runs = [slices[i:i + group] for i in range(0, len(slices), group)]

        def run(part: list[slice]) -> None:
            for sl in part:
                func(sl)

        for _ in thread_pool(workers).map(run, runs):
            pass


class Scratch(threading.local):
    """Per-thread ``(rows, columns)`` work buffers, reused across blocks (no page faults per
    block). ``get(slot, rows)`` returns the first ``rows`` rows of buffer ``slot``."""

    def __init__(self, rows: int, columns: int, dtype: Any):
        self.shape, self.dtype, self.buffers = (rows, columns), np.dtype(dtype), {}

    def get(self, slot: int, rows: int) -> np.ndarray:
        buf = self.buffers.get(slot)
        if buf is None:
            buf = self.buffers[slot] = np.empty(self.shape, self.dtype)
        return buf[:rows]


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any], ndim: int) -> np.ndarray:
    return np.full((1,) * ndim, pair[1], dtype=np.float64)


def map_blocks_with_total(func: Callable[..., tuple[np.ndarray, float]], array: Any, *,
                          chunks: tuple[tuple[int, ...], ...], dtype: Any) -> tuple[Any, Any]:
    """Map every block of a dask array to an output block and a number; the outputs as a dask
    array and the sum of the numbers as a dask scalar, both from the same tasks.

    ``func(block, block_info)`` returns ``(out_block, number)``; ``block_info`` is dask's
    description of the input block (``"chunk-location"``, ``"num-chunks"``,
    ``"array-location"``). Each block is processed once however the two results are computed:
    computed together (``dask.compute(out, total)``, or a store with ``compute_with``), the tasks
    they share run once; the output alone never waits for the sum.

    Parameters
    ----------
    func : callable
    array : dask.array.Array
    chunks : tuple of tuple of int
        The output's chunks (one block per input block, same number of dims).
    dtype : numpy dtype
        The output's dtype.

    Returns
    -------
    out : dask.array.Array
    total : dask.array.Array
        0-d float64.
    """
    ndim = array.ndim

    def run(block: np.ndarray, block_info: dict | None = None) -> tuple[np.ndarray, float]:
        return func(block, block_info[0])

    pairs = array.map_blocks(run, dtype=object, meta=np.empty((0,) * ndim, dtype=object))
    out = pairs.map_blocks(_first, chunks=chunks, dtype=dtype, meta=np.empty((0,) * ndim, dtype=dtype))
    ones = tuple((1,) * len(c) for c in array.chunks)
    numbers = pairs.map_blocks(_second, ndim, chunks=ones, dtype=np.float64,
                               meta=np.empty((0,) * ndim, dtype=np.float64))
    return out, numbers.sum()


def overlap_blocks(n_frames: int, depth: int, chunks: Any, *, target: int, split_above: float = 2.0) -> tuple[int, ...]:
    """Time chunks for a block-wise computation whose blocks need ``depth`` frames of each
    neighbour (``dask.array.map_overlap``): the input's ``chunks``, cut into blocks of about
    ``target`` frames where a chunk is longer than ``split_above * target`` (so that a series
    held in one or a few long chunks still runs in parallel on threads or a cluster's workers),
    and merged where shorter than ``depth`` (as dask's overlap would, but before the output's
    chunks are set).

    Examples
    --------
    >>> overlap_blocks(157, 6, (157,), target=48)
    (40, 40, 40, 37)
    >>> overlap_blocks(9, 2, (3, 3, 3), target=16)
    (3, 3, 3)
    """
    import math

    from dask.array.overlap import ensure_minimum_chunksize

    chunks = tuple(int(c) for c in chunks)
    if max(chunks) > split_above * target:
        n_blocks = math.ceil(n_frames / target)
        size = math.ceil(n_frames / n_blocks)
        chunks = (size,) * (n_frames // size) + ((n_frames % size,) if n_frames % size else ())
    if depth and min(chunks) < depth:
        chunks = (n_frames,) if n_frames <= depth else ensure_minimum_chunksize(depth, chunks)
    return tuple(chunks)


__all__ = ["Scratch", "map_blocks_with_total", "n_cpus", "overlap_blocks", "run_blocks", "single_threaded_blas",
           "thread_pool"]
