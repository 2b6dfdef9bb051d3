"""Issue 19: series commands on a dask.distributed cluster (--scheduler ADDRESS, --workers N), a
scheduler that does not answer, chunks that cannot fit memory, a worker that dies mid-run."""

from __future__ import annotations

import json
import os
import socket
import time
import warnings

import dask
import numpy as np
import pytest

from ionscope import io
from ionscope.cluster import check_chunk_memory, parse_scheduler, task_counts, use_scheduler
from ionscope.errors import ChunkMemoryError, ClusterError, ConfigError
from ionscope.simulate import simulate

SMALL = {"li_params": {"ny": 24, "nx": 16}, "frames": [0, 30, 60, 90], "dose": 1e8, "channels": 320}


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster for the module: 2 worker processes (1 thread each) on the loopback."""
    from distributed import LocalCluster

    # a task that kills its worker fails at once (distributed's default reruns it 3 times first)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, silence_logs=50,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local:
        yield local


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """A small EELS series (4 frames) stored as Zarr in chunks of 3 and 1 frames, references as variables."""
    path = tmp_path_factory.mktemp("cluster") / "twin.zarr"
    ds = simulate("eels_licoo2", seed=3, **SMALL)
    io.save(ds.chunk({"time": 3}), path)
    return path


def _lithium(run_cli, twin, out, *scheduler):
    result = run_cli("eels", "lithium", twin, "--li-rich", f"{twin}:ref_licoo2", "--li-poor", f"{twin}:ref_coo2",
                     "--background", "40:52", "--fit-window", "52:90", "--out", out, *scheduler)
    assert result.returncode == 0, result.stderr
    return io.open_dataset(out / "result.zarr")


EXPERIMENT = """
[experiment]
name = "on-a-cluster"
out = "results"

[[inputs]]
name = "si"
path = "{twin}"

[[steps]]
name = "li"
command = "eels lithium"
input = "si"
[steps.options]
li-rich = "{twin}:ref_licoo2"
li-poor = "{twin}:ref_coo2"
background = "40:52"
fit-window = "52:90"

[[steps]]
name = "li_denoised"
command = "denoise"
input = "li"
[steps.options]
{denoise}
"""
DENOISE = {"method": "sparse3d", "patch": 4, "atoms": 32, "sparsity": 2, "temporal": 2, "noise": "gaussian"}


def test_mapping_and_denoising_on_a_local_cluster_equal_the_threaded_run(run_cli, cluster, twin, tmp_path):
    """The commands on threads; then `ionscope run --scheduler tcp://...` runs the same two steps
    on the cluster's 2 worker processes: the same numbers."""
    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    threads = _lithium(run_cli, twin, tmp_path / "li", "--scheduler", "threads")
    assert np.isfinite(threads.li_fraction.values).all()
    maps = tmp_path / "li" / "result.zarr"
    options = [a for k, v in DENOISE.items() for a in (f"--{k}", str(v))]
    result = run_cli("denoise", f"{maps}:li_fraction", *options, "--out", tmp_path / "den", "--scheduler", "threads")
    assert result.returncode == 0, result.stderr
    denoised = io.open_dataset(tmp_path / "den" / "result.zarr").denoised.values
    assert np.abs(denoised - threads.li_fraction.values).max() > 0  # it did denoise

    text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in DENOISE.items())
    (tmp_path / "exp.toml").write_text(EXPERIMENT.format(twin=twin, denoise=text))
    result = run_cli("run", tmp_path / "exp.toml", "--scheduler", address)
    assert result.returncode == 0, result.stderr
    remote = io.open_dataset(tmp_path / "results" / "li" / "result.zarr")
    np.testing.assert_array_equal(remote.li_fraction.values, threads.li_fraction.values)
    np.testing.assert_array_equal(remote.chi2.values, threads.chi2.values)
    remote_denoised = io.open_dataset(tmp_path / "results" / "li_denoised" / "result.zarr").denoised.values
    np.testing.assert_array_equal(remote_denoised, denoised)


def test_the_cluster_ran_the_tasks(cluster, twin):
    """The work goes to the cluster's workers (their task counter moves), and the progress
    bar's counts are those tasks."""
    from distributed import Client

    data = io.load(f"{twin}:spectra", lazy=True)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        before = task_counts(client)
        with use_scheduler(cluster.scheduler_address):
            total = float(data.sum().compute())
        after = task_counts(client)
    assert total == pytest.approx(float(io.load(f"{twin}:spectra").sum()), rel=1e-6)
    n_tasks = len(dict(data.sum().data.__dask_graph__()))
    assert after[1] - before[1] >= 2 and after[0] - before[0] <= n_tasks + 2


def test_workers_start_a_local_cluster_whose_workers_keep_numpy_temporaries_off_mmap(twin):
    """``--workers 2``: a LocalCluster of 2 processes, each with the glibc mmap threshold of
    WORKER_ENVIRON next to distributed's trim threshold; the same sum as in this process; no
    warning when distributed's default port 8787 is taken."""
    from ionscope.cluster import WORKER_ENVIRON

    data = io.load(f"{twin}:spectra", lazy=True)
    with socket.socket() as taken, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:  # distributed's default HTTP port held by someone else (a Jupyter dashboard, say)
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass  # held already
        with use_scheduler(None, workers=2) as client:
            environ = client.run(lambda: {k: os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_",
                                                                         "MALLOC_TRIM_THRESHOLD_")})
            threads = client.nthreads()
            total = float(data.sum().compute())
    assert not [w for w in caught if "8787" in str(w.message)]  # no port warning on the command's stderr
    assert len(environ) == 2 and max(threads.values()) == max(1, (os.cpu_count() or 1) // 2)
    for values in environ.values():
        assert values["MALLOC_MMAP_THRESHOLD_"] == str(WORKER_ENVIRON["MALLOC_MMAP_THRESHOLD_"])
        assert values["MALLOC_TRIM_THRESHOLD_"] is not None
    assert total == pytest.approx(float(io.load(f"{twin}:spectra").sum()), rel=1e-6)


def test_an_address_that_does_not_answer_fails_in_one_line_within_seconds(run_cli, twin, tmp_path):
    started = time.perf_counter()
    with dask.config.set({"ionscope.connect-timeout": 1}):
        result = run_cli("eels", "lithium", twin, "--li-rich", f"{twin}:ref_licoo2", "--li-poor", f"{twin}:ref_coo2",
                         "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    elapsed = time.perf_counter() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --scheduler tcp://127.0.0.1:9: no dask scheduler answered")
    assert "within 1 s" in lines[0] and elapsed < 5
    assert not (tmp_path / "out").exists()


def test_bad_scheduler_options_are_refused():
    assert parse_scheduler("Processes") == "processes"
    with pytest.raises(ConfigError, match="threads, processes, synchronous or a scheduler address"):
        parse_scheduler("slurm")
    with pytest.raises(ConfigError, match="has its own workers"):
        with use_scheduler("tcp://127.0.0.1:9", workers=2):
            pass


def test_threads_and_processes_schedulers_set_the_pool():
    with use_scheduler("processes", workers=3):
        assert dask.config.get("scheduler") == "processes" and dask.config.get("num_workers") == 3
    with use_scheduler("synchronous"):
        assert dask.config.get("scheduler") == "synchronous"


def test_chunks_that_cannot_fit_memory_are_refused_with_the_chunk_size_that_would(run_cli, twin, tmp_path):
    data = io.load(f"{twin}:spectra", lazy=True)  # chunks of 3 (and 1) frames x 24 x 16 x 320 float
    assert data.chunks[0] == (3, 1)
    chunk_mb = 3 * 24 * 16 * 320 * data.dtype.itemsize / 1e6
    with dask.config.set({"ionscope.memory-limit": int(chunk_mb * 1e6 * 6 * 1.5), "num_workers": 1}):
        check_chunk_memory(data, "spectra")  # fits
    with dask.config.set({"ionscope.memory-limit": int(chunk_mb * 1e6 * 6 * 0.9), "num_workers": 1}):
        with pytest.raises(ChunkMemoryError, match=r"chunks of at most 2 along time"):
            check_chunk_memory(data, "spectra")
        result = run_cli("eels", "lithium", twin, "--li-rich", f"{twin}:ref_licoo2", "--li-poor",
                         f"{twin}:ref_coo2", "--out", tmp_path / "out", "--scheduler", "synchronous")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "chunks of 3 x 24 x 16 x 320" in line and "chunks of at most 2 along time" in line
    assert "ionscope convert INPUT --out SMALLER.zarr --chunks time=2" in line
    assert not (tmp_path / "out").exists()


def _die_on_the_second_chunk(block, block_info=None):
    if block_info[0]["chunk-location"][0] == 1:
        os._exit(3)  # the worker process dies
    return block


def test_a_worker_that_keeps_dying_fails_the_run_cleanly_and_writes_nothing(cluster, twin, tmp_path):
    data = io.load(f"{twin}:spectra", lazy=True)
    doomed = data.copy(data=data.data.map_blocks(_die_on_the_second_chunk, dtype=data.dtype))
    out = tmp_path / "doomed.zarr"
    with pytest.raises(ClusterError, match="lost its workers.*nothing was written"):
        with use_scheduler(cluster.scheduler_address):
            io.save(doomed, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "doomed" in p.name]
    summary = json.dumps({"ok": True})  # the cluster still serves the next run
    with use_scheduler(cluster.scheduler_address):
        assert float(data.isel(time=0).sum().compute()) > 0 and summary


def test_the_suggested_convert_rewrites_the_input_in_chunks_that_fit(run_cli, twin, tmp_path):
    smaller = tmp_path / "smaller.zarr"
    result = run_cli("convert", f"{twin}:spectra", "--out", smaller, "--chunks", "time=1")
    assert result.returncode == 0, result.stderr
    data = io.load(smaller, lazy=True)
    assert data.chunks[0] == (4,)  # 0.5 MB chunks are merged (io._codecs.MIN_CHUNK_BYTES): they always fit
    result = run_cli("convert", f"{twin}:spectra", "--out", tmp_path / "three.zarr", "--chunks", "time=3")
    assert result.returncode == 0, result.stderr
    assert io.load(tmp_path / "three.zarr", lazy=True).chunks[0] == (3, 1)
    np.testing.assert_array_equal(data.values, io.load(f"{twin}:spectra").values)
    line = run_cli("convert", twin, "--out", tmp_path / "x.zarr", "--chunks", "frames=2").stderr.strip()
    assert line.startswith("error: --chunks 'frames=2': give DIM=N")
