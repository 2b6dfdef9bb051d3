"""``ionscope run`` and ``ionscope watch`` on an operando EELS experiment (issue 18): the run's
overhead over calling the same commands directly, resume after SIGKILL at random moments, and
the live latency from a frame's file closing to the report showing it.

The experiment: ``eels lithium`` (MLLS, references from the twin) on every frame of a series of
64 x 64 x 1024 spectrum images (the ``eels_licoo2`` twin at 0.1 eV, one file per frame, one
minute apart in their headers), then ``denoise --method gaussian`` of the Li-fraction series.

- overhead: step ``li`` alone, its per-frame command lines called in this process one after the
  other with no record, checksums or stacking (what a user's loop would do), against
  ``run_experiment`` (frame order from the headers, checksums, checkpoints, record, stacking);
  alternated ``--repeats`` times, the best wall time and the process CPU time of each; and, robust
  to other load on the machine, the run's wall time against the same command calls timed inside it
  (``run_time_s`` of every frame in ``run.json``): ``overhead_inside``.
- resume: ``ionscope run`` in a subprocess killed with SIGKILL at a uniformly random moment of an
  uninterrupted run's duration, then ``--resume``; every variable and coordinate of both steps'
  results compared bit for bit with the uninterrupted run.
- latency: ``ionscope watch --serve 0`` in a subprocess; a writer writes one frame file at a time
  (closed at t0); the latency is the time ``OUT/report.version`` first counts that frame, minus t0.

Prints JSON. ``--frames 157 --kills 10 --live 10`` are the defaults (issue 18's targets).
"""

from __future__ import annotations

import argparse
import contextlib
import io as io_module
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from ionscope import io

EXPERIMENT = """
[experiment]
name = "operando-eels"
out = "{out}"

[[inputs]]
name = "si"
path = "{frames}/*.hspy"

[[steps]]
name = "li"
command = "eels lithium"
input = "si"
[steps.options]
li-rich = "refs.zarr:ref_licoo2"
li-poor = "refs.zarr:ref_coo2"
co-extra = "refs.zarr:ref_co3o4"
background = "40:52"
fit-window = "52:120"
"""

SMOOTH = """
[[steps]]
name = "li_smooth"
command = "denoise"
input = "li"
[steps.options]
method = "gaussian"
"""

DISTINCT = 8  # distinct twin frames, cycled over the series (the overhead does not depend on them)


def make_frames(folder: Path, n: int) -> tuple[Path, list[bytes]]:
    """``n`` frame files (hspy, one minute apart) and the references; returns the frames' folder
    and the distinct frames' bytes (for the live writer)."""
    import hyperspy.api as hs

    from ionscope.simulate import simulate

    ds = simulate("eels_licoo2", seed=0, channels=1024, dispersion_eV=0.1, dose=1e6,
                  li_params={"ny": 64, "nx": 64}, frames=list(range(0, 157, 157 // DISTINCT))[:DISTINCT])
    io.save(ds[["ref_licoo2", "ref_coo2", "ref_co3o4"]], folder / "refs.zarr")
    si = ds["spectra"]
    frames = folder / "frames"
    frames.mkdir()
    blobs = []
    for k in range(DISTINCT):
        s = hs.signals.Signal1D(np.asarray(si.isel(time=k).transpose("y", "x", "energy").values, dtype="float32"))
        s.axes_manager[-1].scale, s.axes_manager[-1].offset, s.axes_manager[-1].units = 0.1, 30.0, "eV"
        for ax in s.axes_manager.navigation_axes:
            ax.scale, ax.units = float(ds["x"][1] - ds["x"][0]), "nm"
        s.metadata.General.date, s.metadata.General.time = "2026-03-01", "10:00:00"
        path = folder / f"frame{k}.hspy"
        s.save(path)
        blobs.append(path.read_bytes())
    for k in range(n):
        stamp = time.gmtime(36000 + 60 * k)
        s = hs.load(folder / f"frame{k % DISTINCT}.hspy")
        s.metadata.General.time = time.strftime("%H:%M:%S", stamp)
        s.metadata.General.date = f"2026-03-{1 + (36000 + 60 * k) // 86400:02d}"
        s.save(frames / f"si_{k:04d}.hspy")
    return frames, blobs


def experiment(folder: Path, frames: str, out: str, *, smooth: bool = True) -> Path:
    path = folder / f"{out}.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.format(frames=frames, out=out)) + (textwrap.dedent(SMOOTH) if smooth
                                                                                     else ""))
    return path


def direct(folder: Path, frames: Path) -> float:
    """The per-frame command lines of step ``li``, called in this process without the run: a
    user's loop."""
    from ionscope.pipeline.experiment import load_experiment
    from ionscope.pipeline.run import _run_step

    exp = load_experiment(experiment(folder, frames.name, "direct"))
    step = exp.steps[0]
    (folder / "direct").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    for k, path in enumerate(sorted(frames.glob("*.hspy"))):
        with contextlib.redirect_stdout(io_module.StringIO()):  # as the run: the JSON alone on stdout
            error = _run_step(exp.argv(step, paths=[path], out=folder / "direct" / f"{k:04d}", frame=True))
        assert error is None, error
    return time.perf_counter() - t0


def cpu_s() -> float:
    """CPU time of this process (all its threads), s: less sensitive than wall time to what
    else runs on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def data(path: Path) -> dict[str, np.ndarray]:
    ds = io.open_dataset(path).load()
    return {name: ds[name].values for name in [*ds.data_vars, *ds.coords]}


def identical(a: Path, b: Path) -> bool:
    for step in ("li", "li_smooth"):
        x, y = data(a / step / "result.zarr"), data(b / step / "result.zarr")
        if x.keys() != y.keys() or not all(x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x):
            return False
    return True


def ionscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "ionscope", *map(str, args)]


def kills(folder: Path, frames: Path, reference: Path, n: int, duration: float, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        out = f"killed{k}"
        exp = experiment(folder, frames.name, out)
        moment = rng.uniform(0.0, duration)
        proc = subprocess.Popen(ionscope("run", exp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(moment)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        record = folder / out / "run.json"
        done = 0
        if record.exists():
            try:
                steps = json.loads(record.read_text())["steps"]
                done = sum(f["status"] == "done" for f in steps["li"].get("frames", []))
            except (ValueError, KeyError):
                done = -1
        t0 = time.perf_counter()
        if (folder / out).exists():
            res = subprocess.run(ionscope("run", exp, "--resume"), capture_output=True, text=True)
        else:  # killed before the run made its folder
            res = subprocess.run(ionscope("run", exp), capture_output=True, text=True)
        ok = res.returncode == 0 and identical(folder / out, reference)
        rows.append({"kill_at_s": round(moment, 2), "killed": killed, "frames_done_before": done,
                     "resume_s": round(time.perf_counter() - t0, 2), "identical": ok})
        shutil.rmtree(folder / out, ignore_errors=True)
    return rows


def latency(folder: Path, blobs: list[bytes], n: int, interval: float) -> list[float]:
    incoming = folder / "incoming"
    incoming.mkdir()
    exp = experiment(folder, "incoming", "live")
    proc = subprocess.Popen(ionscope("watch", incoming, "--config", exp, "--serve", "0", "--idle-exit", "6"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    version = folder / "live" / "report.version"
    times = []
    try:
        time.sleep(3.0)  # the session's start (imports)
        for k in range(n):
            target = incoming / f"si_{k:04d}.hspy"
            with open(target, "wb") as fh:
                fh.write(blobs[k % len(blobs)])
                fh.flush()
                os.fsync(fh.fileno())
            t0 = time.time()
            deadline = t0 + 30
            seen = None
            while time.time() < deadline:
                try:
                    v = json.loads(version.read_text())
                    if v.get("frames", 0) >= k + 1:
                        seen = time.time()
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.005)
            times.append(round(seen - t0, 3) if seen else float("nan"))
            time.sleep(max(0.0, interval - (time.time() - t0)))
    finally:
        out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"watch failed: {err}")
    print(out, file=sys.stderr)  # the session's own lines (per frame: time in the session)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=157)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-frames", type=int, default=40, help="frames of the experiment killed and resumed")
    parser.add_argument("--live", type=int, default=10, help="frames written during the live session")
    parser.add_argument("--interval", type=float, default=3.0, help="s between live frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="alternated direct / run timings (the best counts)")
    args = parser.parse_args()
    result: dict = {"frames": args.frames, "frame_shape": [64, 64, 1024]}
    with tempfile.TemporaryDirectory(prefix="ionscope-run-bench-") as tmp:
        folder = Path(tmp)
        frames, blobs = make_frames(folder, args.frames)
        from ionscope.pipeline.run import run_experiment

        walls: dict[str, list[float]] = {"direct": [], "run": []}
        if not args.repeats:
            walls = {}
        cpus: dict[str, list[float]] = {"direct": [], "run": []}
        inside: list[float] = []
        for k in range(args.repeats):  # alternated, so that a load from elsewhere hits both alike
            for mode in ("direct", "run"):
                shutil.rmtree(folder / mode, ignore_errors=True)
                c0, t0 = cpu_s(), time.perf_counter()
                if mode == "direct":
                    direct(folder, frames)
                else:
                    with contextlib.redirect_stdout(io_module.StringIO()):
                        record = run_experiment(experiment(folder, frames.name, "run", smooth=False))
                    # the same command calls, timed inside the run: what is left is the run's own work
                    inside.append(sum(f["run_time_s"] for f in record["steps"]["li"]["frames"]))
                walls[mode].append(time.perf_counter() - t0)
                cpus[mode].append(cpu_s() - c0)
        best = {m: min(v) for m, v in walls.items()}
        cpu = {m: min(v) for m, v in cpus.items() if v}
        result["overhead"] = {} if not walls else {"direct_s": [round(v, 2) for v in walls["direct"]],
                              "run_s": [round(v, 2) for v in walls["run"]],
                              "overhead_wall": round(best["run"] / best["direct"] - 1.0, 4),
                              "direct_cpu_s": round(cpu["direct"], 2), "run_cpu_s": round(cpu["run"], 2),
                              "overhead_cpu": round(cpu["run"] / cpu["direct"] - 1.0, 4),
                              "commands_inside_run_s": [round(v, 2) for v in inside],
                              "overhead_inside": round(min(w / c - 1.0 for w, c in zip(walls["run"], inside)), 4),
                              "target": "< 0.10"}
        if args.kills:
            few = folder / "few"
            few.mkdir()
            for path in sorted(frames.glob("*.hspy"))[: args.kill_frames]:
                os.link(path, few / path.name)
            reference = folder / "reference"
            t0 = time.perf_counter()
            subprocess.run(ionscope("run", experiment(folder, "few", "reference")), check=True,
                           capture_output=True)
            duration = time.perf_counter() - t0
            rows = kills(folder, few, reference, args.kills, duration, args.seed)
            result["resume"] = {"frames": args.kill_frames, "uninterrupted_s": round(duration, 2), "runs": rows,
                                "identical": sum(r["identical"] for r in rows), "of": len(rows)}
        if args.live:
            times = latency(folder, blobs, args.live, args.interval)
            result["latency_s"] = {"each": times, "median": float(np.median(times)), "max": float(np.max(times)),
                                   "target": "< 2"}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
