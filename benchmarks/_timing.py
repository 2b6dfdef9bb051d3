"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def timed_best(func: Callable[[], Any], repeat: int = 3, clock: Callable[[], float] = time.perf_counter):
    """Run ``func`` ``repeat`` times; return the least elapsed ``clock`` time and that run's result.

    Use ``clock=time.process_time`` for CPU time (all threads), which other processes on a
    shared machine disturb less than wall time.
    """
    best, result = float("inf"), None
    for _ in range(repeat):
        start = clock()
        out = func()
        elapsed = clock() - start
        if elapsed < best:
            best, result = elapsed, out
    return best, result


def best_of(func: Callable[[], Any], repeat: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """The least elapsed time of ``repeat`` runs of ``func`` (s)."""
    return timed_best(func, repeat, clock)[0]
