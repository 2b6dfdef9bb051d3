"""ionscope.blocks: row blocks on threads with single-threaded BLAS."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from ionscope.blocks import Scratch, run_blocks, single_threaded_blas


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("workers", [1, 2, 5])
@pytest.mark.parametrize("n_rows, block_rows", [(0, 4), (1, 4), (10, 3), (64, 8)])
def test_every_row_is_processed_exactly_once(workers, n_rows, block_rows):
    hits = np.zeros(n_rows, dtype=int)
    lock = threading.Lock()

    def func(sl: slice) -> None:
        assert 0 < sl.stop - sl.start <= block_rows
        with lock:
            hits[sl] += 1

    run_blocks(func, n_rows, block_rows, workers)
    assert np.all(hits == 1)


def test_blas_is_single_threaded_inside_and_restored_after_nesting():
    before = _blas_threads()
    seen = []
    with single_threaded_blas():
        with single_threaded_blas():
            seen.append(_blas_threads())
        seen.append(_blas_threads())
    run_blocks(lambda sl: seen.append(_blas_threads()), 4, 1, 2)
    assert all(all(n == 1 for n in s) for s in seen)
    assert _blas_threads() == before


def test_decorator_form_and_errors_restore_limits():
    before = _blas_threads()

    @single_threaded_blas()
    def fails():
        assert all(n == 1 for n in _blas_threads())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    assert _blas_threads() == before


def test_scratch_buffers_are_per_thread_and_reused():
    scratch = Scratch(8, 3, np.float32)
    a = scratch.get(0, 5)
    assert a.shape == (5, 3) and a.dtype == np.float32
    assert np.shares_memory(a, scratch.get(0, 8))
    other = []
    t = threading.Thread(target=lambda: other.append(scratch.get(0, 8)))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], a)


def test_a_blas_loaded_while_inside_is_limited_too():
    """scipy's own OpenBLAS, loaded (by an import) while a caller is inside, is limited by the next
    entry and restored at the last exit: a fresh process, so that scipy is really loaded late."""
    import subprocess
    import sys

    code = """
from threadpoolctl import threadpool_info
from ionscope.blocks import single_threaded_blas
def blas():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
with single_threaded_blas():
    import scipy.linalg  # loads libscipy_openblas
    with single_threaded_blas():
        inside = blas()
after = blas()
print(len(inside) >= 1, all(n == 1 for n in inside.values()), max(after.values()) > 1 or len(after) == 0)
"""
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("NUM_THREADS")}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert shown.stdout.split() == ["True", "True", "True"], shown.stdout + shown.stderr
