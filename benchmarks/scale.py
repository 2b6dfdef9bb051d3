"""Benchmark: data larger than memory (issue 19) - a 10.5 GB operando EELS series end to end.

1. ``ionscope simulate eels_licoo2`` streams the twin (157 x 128 x 128 x 1024 float32, 10.5 GB)
   to Zarr frame by frame;
2. ``ionscope eels lithium`` (MLLS) maps it lazily (threads), then on a ``--workers 2``
   LocalCluster;
3. ``ionscope denoise --method sparse3d`` denoises the Li maps with its default, data-chosen
   parameters (threads, then the cluster; the cluster's start and close are timed on their
   own);
4. the in-memory paths on a ~1 GB slice of the same series (loaded first, then timed):
   ``li_fraction_map`` and ``denoise`` on numpy arrays, for throughput per byte;
5. Zarr write and read of a ~1 GB float32 result with ``io.save`` / ``io.load`` against
   zarr-python's default codec and chunking (``--codecs``: that part alone).

Every command runs in a subprocess under ``/usr/bin/time -v`` (peak RSS of the process) while
this script samples the RSS of the whole process tree (a LocalCluster's workers are
grandchildren, which ``time`` does not sum). The twin lives in ``--data`` (one copy) and is
deleted at the end unless ``--keep``; the script checks the free disk space first and, when the
series does not fit, uses the most frames that do (reported). Prints one JSON object.

``--only denoise`` runs step 3 alone on the ``licoo2`` twin's noisy Li maps (157 x ``--size`` x
``--size``, Poisson at the twin's dose; no 10.5 GB series), with the in-memory ``denoise`` of the
same maps for the time per byte.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/scale.py [--data /work/scale-data] [--frames 157
--size 128 --channels 1024] [--slice-gb 1] [--keep] [--codecs] [--only denoise]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
WINDOWS = ["--background", "40:52", "--fit-window", "52:90"]
#: Frames of the licoo2 twin (its charge / discharge / rest cycle), the most the EELS twin renders.
LICOO2_FRAMES = 157
#: Space-time sparse coding with its defaults: temporal, atoms and sparsity chosen from the data.
DENOISE = ["--method", "sparse3d"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measured(args: list[str], label: str) -> dict:
    """Run ``args`` under /usr/bin/time -v; wall time, peak RSS (time's, of the main process) and
    the peak RSS summed over the process tree (sampled every 0.1 s)."""
    command = ["/usr/bin/time", "-v", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{out}\n{err[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return {"command": " ".join(args), "wall_s": round(wall, 2),
            "peak_rss_GB": round(int(rss[1]) * 1024 / 1e9, 3) if rss else None,
            "peak_tree_rss_GB": round(peak[0] / 1e9, 3), "stdout": out.strip().splitlines()[-1:] }


def ionscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "ionscope", *map(str, args)]


def in_memory(twin: Path, frames: int, maps: Path, out: Path) -> dict:
    """The in-memory paths on the first ``frames`` frames (numpy, loaded before the clock starts)."""
    code = f"""
import json, time, numpy as np
from ionscope import io
from ionscope.eels.lithium import li_fraction_map
twin = {str(twin)!r}
spectra = io.load(twin + ":spectra", lazy=True).isel(time=slice(0, {frames})).load()
refs = [io.load(twin + ":" + n) for n in ("ref_licoo2", "ref_coo2")]
t = time.perf_counter()
result = li_fraction_map(spectra, *refs, background=(40, 52), fit_window=(52, 90))
result = result.compute()
map_s = time.perf_counter() - t
print(json.dumps({{"frames": {frames}, "bytes": int(spectra.nbytes), "map_s": map_s}}))
"""
    run = measured([sys.executable, "-c", code], "in-memory")
    values = json.loads(run["stdout"][-1])
    return {**run, **values, "denoise": denoise_in_memory(f"{maps}:li_fraction", frames)}


def cluster_start(workers: int = 2) -> dict:
    """Start and close the ``--workers`` LocalCluster alone (``ionscope.cluster.use_scheduler``),
    in a fresh process as the commands do: the fixed cost a command pays on the cluster."""
    code = f"""
import contextlib, json, time
t = time.perf_counter()
from ionscope.cluster import use_scheduler
stack = contextlib.ExitStack()
t0 = time.perf_counter()
client = stack.enter_context(use_scheduler(None, {workers}))
client.wait_for_workers({workers})
t1 = time.perf_counter()
stack.close()
t2 = time.perf_counter()
print(json.dumps({{"import_s": t0 - t, "start_s": t1 - t0, "close_s": t2 - t1}}))
"""
    run = measured([sys.executable, "-c", code], "cluster start")
    return {**run, **json.loads(run["stdout"][-1])}


def denoise_in_memory(maps: str, frames: int | None = None) -> dict:
    """``denoise(..., "sparse3d")`` with the data-chosen parameters on numpy maps (loaded before
    the clock starts); NaN (masked pixels) filled with the mean first."""
    sel = "" if frames is None else f".isel(time=slice(0, {max(frames, 3)}))"
    code = f"""
import json, time, numpy as np
from ionscope import io
from ionscope.denoise.methods import denoise
li = io.load({maps!r}){sel}
li = li.fillna(float(np.nanmean(li.values))).load()
t = time.perf_counter()
den, info = denoise(li, "sparse3d")
den_s = time.perf_counter() - t
print(json.dumps({{"maps_bytes": int(li.nbytes), "denoise_s": den_s, "chosen": {{k: info["parameters"][k]
                  for k in ("temporal", "atoms", "sparsity")}}, "mean_atoms": info["mean_atoms"]}}))
"""
    run = measured([sys.executable, "-c", code], "in-memory denoise")
    return {**run, **json.loads(run["stdout"][-1])}


def denoise_rows(maps: str, root: Path) -> dict:
    """``ionscope denoise MAPS --method sparse3d`` on threads and on a 2-worker LocalCluster, the
    cluster's start measured alone, and the summaries' choices (they must agree)."""
    den: dict = {}
    for name, sched in (("threads", ["--scheduler", "threads"]), ("cluster", ["--workers", "2"])):
        out = root / f"den_{name}"
        den[name] = measured(ionscope("denoise", maps, *DENOISE, "--out", out, *sched), f"denoise ({name})")
        summary = json.loads((out / "summary.json").read_text())
        den[name].update(chosen=summary.get("chosen"), mean_atoms=summary["info"].get("mean_atoms"),
                         summary_run_time_s=summary["run_time_s"])
    den["cluster_start"] = cluster_start(2)
    start = den["cluster_start"]["start_s"] + den["cluster_start"]["close_s"]
    den["cluster_over_threads"] = den["cluster"]["wall_s"] / den["threads"]["wall_s"]
    den["cluster_without_start_over_threads"] = (den["cluster"]["wall_s"] - start) / den["threads"]["wall_s"]
    return den


def codecs(root: Path, gigabytes: float) -> dict:
    """io.save / io.load of a float32 (time, y, x) result of ``gigabytes`` against zarr's defaults."""
    import warnings

    import xarray as xr

    from ionscope import io
    from ionscope.data import signal

    n = max(1, int(gigabytes * 1e9 / (1024 * 1024 * 4)))
    rng = np.random.default_rng(0)
    data = rng.random((n, 1024, 1024), dtype=np.float32)
    da = signal(data, ("time", "y", "x"), name="li_fraction", units="1")
    out: dict = {"shape": list(data.shape), "GB": data.nbytes / 1e9}

    def best(func, repeat=3):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            func()
            times.append(time.perf_counter() - t)
        return min(times)

    store = root / "codec.zarr"

    def save():
        io.save(da, store, overwrite=True)

    out["io_save_GB_per_s"] = data.nbytes / best(save) / 1e9
    out["io_load_GB_per_s"] = data.nbytes / best(lambda: io.load(store)) / 1e9
    chunks = io.open_dataset(store, lazy=True)["li_fraction"].encoding.get("chunks")
    out["io_chunks"] = list(chunks) if chunks else None
    shutil.rmtree(store)
    plain = root / "plain.zarr"

    def save_default():
        if plain.exists():
            shutil.rmtree(plain)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            da.to_dataset().to_zarr(plain, mode="w-", consolidated=True)

    out["zarr_default_save_GB_per_s"] = data.nbytes / best(save_default) / 1e9
    out["zarr_default_load_GB_per_s"] = data.nbytes / best(
        lambda: xr.open_zarr(plain, consolidated=True).load()) / 1e9
    shutil.rmtree(plain)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data"))
    parser.add_argument("--frames", type=int, default=157)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--slice-gb", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the twin and results in --data")
    parser.add_argument("--codecs", action="store_true", help="only the Zarr codec measurement")
    parser.add_argument("--only", choices=["denoise"],
                        help="denoise: only the space-time denoising row, on the licoo2 twin's Li maps")
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))

    report: dict = {"benchmark": "scale", "load_average_start": os.getloadavg()}
    if args.only == "denoise":
        with tempfile.TemporaryDirectory(dir=args.data.parent) as tmp:
            root = Path(tmp)
            twin = root / "maps.zarr"
            report["simulate"] = measured(ionscope("simulate", "licoo2", "--seed", "0", "--param", f"ny={args.size}",
                                                   "--param", f"nx={args.size}", "--out", twin), "simulate licoo2")
            report["denoise"] = den = denoise_rows(f"{twin}:li_fraction", root)
            mem = report["in_memory"] = denoise_in_memory(f"{twin}:li_fraction")
            maps_bytes = mem["maps_bytes"]
            report["ratios"] = {
                "denoise_time_per_byte_lazy_over_in_memory": den["threads"]["wall_s"] / mem["denoise_s"],
                "denoise_cluster_over_threads": den["cluster_over_threads"],
                "denoise_cluster_without_start_over_threads": den["cluster_without_start_over_threads"],
            }
            report["maps_MB"] = maps_bytes / 1e6
            report["same_choice"] = den["threads"]["chosen"] == den["cluster"]["chosen"] == mem["chosen"]
            report["targets"] = {"cluster_within_1.5x_threads": den["cluster_over_threads"] <= 1.5}
        report["load_average_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
        return
    if args.codecs:
        with tempfile.TemporaryDirectory(dir=args.data.parent) as tmp:
            report["zarr"] = codecs(Path(tmp), args.slice_gb)
        print(json.dumps(report, indent=2))
        return
    if args.data.exists():
        raise SystemExit(f"{args.data} exists: remove it (one copy of the twin only)")
    frame_bytes = args.size * args.size * args.channels * 4
    free = shutil.disk_usage(args.data.parent).free
    margin = 1.5e9  # results, metadata, other users of the disk
    frames = min(args.frames, LICOO2_FRAMES, int((free - margin) // frame_bytes))
    if frames < 8:
        raise SystemExit(f"only {free / 1e9:.1f} GB free on {args.data.parent}: not enough for the twin")
    report["disk_free_GB"] = round(free / 1e9, 2)
    report["frames"] = frames
    report["frames_requested"] = args.frames
    report["series_GB"] = round(frames * frame_bytes / 1e9, 3)
    args.data.mkdir(parents=True)
    twin = args.data / "twin.zarr"
    try:
        li_params = json.dumps({"ny": args.size, "nx": args.size})
        selection = json.dumps(list(range(frames))) if frames < LICOO2_FRAMES else '"all"'
        report["simulate"] = measured(ionscope(
            "simulate", "eels_licoo2", "--seed", "0", "--param", f"li_params={li_params}",
            "--param", f"channels={args.channels}", "--param", "dispersion_eV=0.1", "--param", "stream=true",
            "--param", f"frames={selection}", "--out", twin), "simulate")
        report["simulate"]["write_GB_per_s"] = report["series_GB"] / report["simulate"]["wall_s"]
        refs = ["--li-rich", f"{twin}:ref_licoo2", "--li-poor", f"{twin}:ref_coo2"]
        runs = {}
        for name, sched in (("threads", ["--scheduler", "threads"]), ("cluster", ["--workers", "2"])):
            runs[name] = measured(ionscope("eels", "lithium", twin, *refs, *WINDOWS, "--out",
                                           args.data / f"li_{name}", *sched), f"eels lithium ({name})")
            runs[name]["GB_per_s"] = report["series_GB"] / runs[name]["wall_s"]
        report["mapping"] = runs
        maps = args.data / "li_threads" / "result.zarr"
        # the maps hold NaN where a pixel was masked: fill them for the denoiser (a step of its own)
        fill = (f"from ionscope import io; import numpy as np; li = io.load('{maps}:li_fraction'); "
                f"io.save(li.fillna(float(np.nanmean(li.values))), '{args.data / 'maps.zarr'}')")
        subprocess.run([sys.executable, "-c", fill], check=True, env=_env())
        den = report["denoise"] = denoise_rows(f"{args.data / 'maps.zarr'}:li_fraction", args.data)
        slice_frames = max(1, min(frames, int(args.slice_gb * 1e9 // frame_bytes)))
        mem = in_memory(twin, slice_frames, args.data / "maps.zarr", args.data)
        report["in_memory_slice"] = mem
        per_byte_mem = mem["map_s"] / mem["bytes"]
        per_byte_lazy = runs["threads"]["wall_s"] / (report["series_GB"] * 1e9)
        maps_bytes_full = frames * args.size * args.size * 4
        report["ratios"] = {
            "mapping_time_per_byte_lazy_over_in_memory": per_byte_lazy / per_byte_mem,
            "mapping_cluster_over_threads": runs["cluster"]["wall_s"] / runs["threads"]["wall_s"],
            "denoise_time_per_byte_lazy_over_in_memory":
                (den["threads"]["wall_s"] / maps_bytes_full) / (mem["denoise"]["denoise_s"] / mem["denoise"]["maps_bytes"]),
            "denoise_cluster_over_threads": den["cluster_over_threads"],
            "denoise_cluster_without_start_over_threads": den["cluster_without_start_over_threads"],
        }
        report["targets"] = {
            "peak_rss_below_3GB": max(runs["threads"]["peak_tree_rss_GB"], report["simulate"]["peak_tree_rss_GB"],
                                      den["threads"]["peak_tree_rss_GB"]) < 3.0,
            "mapping_within_2x_in_memory": report["ratios"]["mapping_time_per_byte_lazy_over_in_memory"] <= 2.0,
            "cluster_within_1.5x_threads": max(report["ratios"]["mapping_cluster_over_threads"],
                                               report["ratios"]["denoise_cluster_over_threads"]) <= 1.5,
        }
        report["zarr"] = codecs(args.data, args.slice_gb)
    finally:
        if not args.keep:
            shutil.rmtree(args.data, ignore_errors=True)
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
