"""Where lazy (dask) work runs: the local thread or process pool, a ``dask.distributed.LocalCluster``,
or any running dask scheduler - the one place that chooses it.

Every series command takes ``--scheduler threads|processes|synchronous|tcp://HOST:PORT`` and
``--workers N`` (:func:`use_scheduler`; the CLI adds both options to each command through one
decorator, :func:`ionscope.cli._app.series_command`). Without either option the scheduler in
force around the command is kept (dask's threads by default, or the one ``ionscope run
--scheduler ...`` set for all its steps).

=================================  ================================================================
options                            where the tasks run
=================================  ================================================================
(neither)                          as around the command (dask's default: threads)
``--scheduler threads``            this process, dask's thread pool (``--workers N``: N threads)
``--scheduler processes``          a local process pool (``--workers N``: N processes)
``--scheduler synchronous``        this thread, one task at a time (debugging)
``--workers N``                    a new ``LocalCluster`` of N worker processes on 127.0.0.1
``--scheduler tcp://HOST:PORT``    the running scheduler at that address (a cluster started by
                                   ``dask-jobqueue`` on SLURM/PBS, ``dask scheduler`` + workers,
                                   a ``LocalCluster``...); its workers need ionscope installed
=================================  ================================================================

Careless input, handled here:

- a scheduler address that does not answer: :class:`~ionscope.errors.ClusterError` after
  :data:`CONNECT_TIMEOUT_S` seconds, one line;
- a worker lost during a computation: distributed reruns its tasks on the others (up to
  ``distributed.scheduler.allowed-failures`` times per task); when a task keeps killing its
  workers the command stops with a :class:`~ionscope.errors.ClusterError` - outputs are written
  to a temporary name and renamed only once complete (:func:`ionscope.io.save`), so nothing
  half-written is left or taken for a result;
- chunks that cannot fit memory: :func:`check_chunk_memory` refuses them before any work, and
  names the chunk size that would fit.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dask

from ionscope.errors import ChunkMemoryError, ClusterError, ConfigError

__all__ = [
    "LOCAL_SCHEDULERS", "CONNECT_TIMEOUT_S", "CHUNK_MEMORY_FACTOR", "WORKER_ENVIRON", "parse_scheduler",
    "use_scheduler", "current_client", "follow_tasks", "check_chunk_memory", "memory_per_task",
]

#: dask's local schedulers by the names ``--scheduler`` accepts.
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")

#: Seconds to wait for a scheduler address to answer before giving up (dask config
#: ``ionscope.connect-timeout`` replaces it).
CONNECT_TIMEOUT_S = 5

#: Working memory of one task as a multiple of its input chunk: the float64 copy of a float32
#: chunk (2x), the result and the intermediates of a block kernel (MLLS: the background-subtracted
#: spectra and the residual; sparse coding: patches and codes). Measured with benchmarks/scale.py
#: (peak RSS over the chunk bytes in flight).
CHUNK_MEMORY_FACTOR = 6.0

#: Environment of the worker processes of a ``--workers N`` LocalCluster, added to distributed's
#: ``distributed.nanny.pre-spawn-environ`` (a value the user configured or exported wins).
#: distributed sets ``MALLOC_TRIM_THRESHOLD_=65536`` so that workers give memory back; that also
#: freezes glibc's mmap threshold at 128 KiB, so every larger numpy temporary is a fresh mmap and
#: its pages fault in again: the space-time Wiener stage spent 3x the system time (one 157 x 56 x
#: 128 block: 49.5 s instead of 33.9 s on one core) and the 2-worker cluster ran 1.6x the threads.
#: A 32 MiB mmap threshold (glibc's largest dynamic value) keeps such temporaries on the heap
#: (34.2 s) and leaves the trimming on.
WORKER_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 32 * 1024 * 1024}


def parse_scheduler(text: str | None) -> str | None:
    """``--scheduler`` checked: one of :data:`LOCAL_SCHEDULERS`, a ``tcp://HOST:PORT`` (or
    ``tls://``, ``inproc://``) address, or None.

    Examples
    --------
    >>> parse_scheduler("Threads"), parse_scheduler("tcp://10.0.0.5:8786")
    ('threads', 'tcp://10.0.0.5:8786')
    """
    if text is None:
        return None
    value = str(text).strip()
    if value.lower() in LOCAL_SCHEDULERS:
        return value.lower()
    if "://" in value:
        protocol, _, rest = value.partition("://")
        host, _, port = rest.rpartition(":")
        if protocol in ("tcp", "tls", "ucx") and host and port.isdigit():
            return value
        if protocol == "inproc" and rest:
            return value
    raise ConfigError(f"--scheduler {text!r}: give threads, processes, synchronous or a scheduler address "
                      "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786, as 'dask scheduler' or dask-jobqueue prints it)")


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, CommClosedError)


@contextlib.contextmanager
def use_scheduler(scheduler: str | None = None, workers: int | None = None, *,
                  connect_timeout_s: float | None = None) -> Iterator[Any]:
    """Run the dask computations inside the block on the chosen scheduler.

    Parameters
    ----------
    scheduler : str, optional
        ``"threads"``, ``"processes"``, ``"synchronous"`` or a scheduler address
        (``tcp://HOST:PORT``); None keeps the scheduler in force (or, with ``workers``, starts a
        ``LocalCluster``).
    workers : int, optional
        With a local scheduler: its number of threads or processes. Alone: a
        ``dask.distributed.LocalCluster`` of that many worker processes on 127.0.0.1 (each with
        ``cpu_count // workers`` threads, an equal share of the memory and the environment
        :data:`WORKER_ENVIRON`), closed at the end.
    connect_timeout_s : float, optional
        Seconds to wait for a scheduler address (s); default dask config
        ``ionscope.connect-timeout``, else :data:`CONNECT_TIMEOUT_S`.

    Yields
    ------
    distributed.Client or None
        The client of a distributed scheduler, else None.

    Raises
    ------
    ConfigError
        A bad ``--scheduler``, ``workers < 1``, or ``workers`` with a scheduler address.
    ClusterError
        The address does not answer within ``connect_timeout_s``; a worker lost during the
        block (after distributed's retries).
    """
    kind = parse_scheduler(scheduler)
    if connect_timeout_s is None:
        connect_timeout_s = float(dask.config.get("ionscope.connect-timeout", CONNECT_TIMEOUT_S))
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ConfigError(f"--workers must be a whole number >= 1, got {workers!r}")
    if kind is None and workers is None:
        yield None
        return
    if kind in LOCAL_SCHEDULERS:
        settings = {"scheduler": kind, **({} if workers is None else {"num_workers": int(workers)})}
        with dask.config.set(settings):
            yield None
        return
    if kind is not None and workers is not None:
        raise ConfigError(f"--workers starts a local cluster; the scheduler at {kind} has its own workers - "
                          "give one of --scheduler ADDRESS or --workers N")
    from distributed import LocalCluster

    with contextlib.ExitStack() as stack:
        if kind is None:
            threads = max(1, (os.cpu_count() or 1) // int(workers))
            configured = dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}
            stack.enter_context(dask.config.set({f"distributed.nanny.pre-spawn-environ.{key}": value
                                                 for key, value in WORKER_ENVIRON.items() if key not in configured}))
            cluster = stack.enter_context(LocalCluster(
                n_workers=int(workers), threads_per_worker=threads, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=50,
                # no dashboard; the scheduler's own HTTP routes on a free port, not 8787 (a Jupyter
                # dashboard often holds it, and distributed then warns on stderr)
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}))
            address = cluster.scheduler_address
        else:
            address = kind
        client = stack.enter_context(_connect(address, connect_timeout_s))
        try:
            yield client
        except _lost_worker_errors() as exc:
            raise ClusterError(
                f"the computation lost its workers ({type(exc).__name__}: {_first_line(exc)}); nothing was written - "
                "a worker that runs out of memory is killed: give the workers more memory or the input smaller "
                "chunks, and run again") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _connect(address: str, timeout_s: float):
    """A Client of the scheduler at ``address`` (the default scheduler while it is open)."""
    from distributed import Client

    try:
        with dask.config.set({"distributed.comm.timeouts.connect": f"{float(timeout_s)}s"}):
            return Client(address, timeout=float(timeout_s), set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"--scheduler {address}: no dask scheduler answered within {timeout_s:g} s "
                           f"({_first_line(exc)}); check the address and that the scheduler is running "
                           "(dask-jobqueue: cluster.scheduler_address)") from None


def current_client():
    """The distributed Client the computations go to (the default one), or None."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    if dask.config.get("scheduler", None) not in (None, "dask.distributed"):
        return None
    try:
        return default_client()
    except ValueError:
        return None


def task_counts(client) -> tuple[int, int]:
    """``(accepted, finished)``: tasks the client's scheduler has accepted and finished since the
    counter was installed (installs it on first use)."""
    from ionscope import _cluster_plugin

    client.run_on_scheduler(_cluster_plugin.install)
    return tuple(client.run_on_scheduler(_cluster_plugin.counts))


@contextlib.contextmanager
def follow_tasks(client, update: Callable[[int, int], None], interval_s: float = 0.2) -> Iterator[None]:
    """Call ``update(done, total)`` every ``interval_s`` with the tasks the cluster finished and
    accepted since the block started (a progress bar that follows the cluster's tasks). A
    scheduler that cannot count (ionscope not installed there) shows no progress."""
    try:
        base = task_counts(client)
    except Exception:  # noqa: BLE001 - a remote scheduler without ionscope: no progress, the work goes on
        yield
        return
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval_s):
            try:
                added, finished = task_counts(client)
            except Exception:  # noqa: BLE001 - the client is closing
                return
            update(finished - base[1], added - base[0])

    thread = threading.Thread(target=poll, name="ionscope-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def memory_per_task() -> tuple[float, int, str]:
    """``(bytes, tasks, where)``: memory one task may use, how many run at once, and a phrase
    naming where (for messages). A distributed cluster: its smallest worker's memory limit
    over its threads; locally: the available memory over dask's workers; a ``dask.config``
    value ``ionscope.memory-limit`` (bytes or "2GB") replaces the memory of a local run."""
    from dask.utils import parse_bytes

    client = current_client()
    if client is not None:
        workers = client.scheduler_info().get("workers", {})
        limits = [(w.get("memory_limit") or 0, max(int(w.get("nthreads") or 1), 1)) for w in workers.values()]
        limits = [(m, n) for m, n in limits if m]
        if limits:
            memory, threads = min(limits, key=lambda mn: mn[0] / mn[1])
            total = sum(n for _, n in limits)
            return memory / threads, total, "per worker thread of the cluster"
    limit = dask.config.get("ionscope.memory-limit", None)
    if limit is not None:
        available = float(parse_bytes(limit) if isinstance(limit, str) else limit)
    else:
        import psutil

        available = float(psutil.virtual_memory().available)
    if dask.config.get("scheduler", "threads") in ("synchronous", "single-threaded", "sync"):
        tasks = 1
    else:
        tasks = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    return available / tasks, tasks, f"per task ({tasks} at once in {available / 1e9:.3g} GB available)"


def check_chunk_memory(data, what: str = "input", *, factor: float = CHUNK_MEMORY_FACTOR) -> None:
    """Refuse a lazy array whose largest chunk times ``factor`` exceeds the memory of one task.

    The message names the chunk along the first axis that would fit (e.g. frames per chunk).

    Parameters
    ----------
    data : dask.array.Array or xarray.DataArray
        The lazy input (numpy arrays are not checked: they are in memory already).
    what : str
        The input's name in the message.
    factor : float
        Working memory of a task over its input chunk (:data:`CHUNK_MEMORY_FACTOR`).

    Raises
    ------
    ChunkMemoryError
        The chunks cannot fit.
    """
    arr = getattr(data, "data", data)
    chunks = getattr(arr, "chunks", None)
    if chunks is None or not hasattr(arr, "dask"):
        return
    itemsize = arr.dtype.itemsize
    largest = [max(c) if c else 0 for c in chunks]
    chunk_bytes = math.prod(largest) * itemsize
    budget, tasks, where = memory_per_task()
    if chunk_bytes * factor <= budget:
        return
    dims = getattr(data, "dims", None) or [f"axis {i}" for i in range(arr.ndim)]
    per_row = chunk_bytes / max(largest[0], 1)
    fit = int(budget // (per_row * factor))
    if fit >= 1:
        hint = f"chunks of at most {fit} along {dims[0]} ({fit * per_row / 1e6:.3g} MB) would fit"
    else:
        hint = (f"even one {dims[0]} step per chunk ({per_row / 1e6:.3g} MB) would not fit: split the other "
                "dims too, or use machines with more memory")
    shape = " x ".join(str(n) for n in largest)
    raise ChunkMemoryError(
        f"{what}: chunks of {shape} ({chunk_bytes / 1e6:.3g} MB) need about {factor:g}x that while processed, "
        f"more than the {budget / 1e6:.3g} MB {where}; {hint} - rewrite the input with smaller chunks "
        f"(ionscope convert INPUT --out SMALLER.zarr --chunks {dims[0]}={max(fit, 1)}) or run on fewer workers")
