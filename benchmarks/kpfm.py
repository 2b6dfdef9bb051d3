"""Benchmark: KPFM processing against the targets of issue 13. Prints one JSON object.

Run (the OpenBLAS core-type override of the machine env slows numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/kpfm.py [--quick]

The frames are the small synthetic KPFM frames of ``tests/kpfm_frames.py`` (the readers' data
model: forward/backward channels, row times, drift, a PSF with a Gaussian core and a tail, line
offsets, 10 mV white noise; active particles that follow the cell voltage) - not the
``composite_cathode`` twin, which is built elsewhere.

(a) Speed: a 20-frame 512 x 512 series written as NetCDF files; timed (best of ``--repeat``, wall
    and process CPU): reading the files (``ionscope.io.open_dataset``) plus
    ``process_frames(psf="auto")`` (level, reference, register, deconvolve, per-row times).
    Target < 5 s on this 2-core machine.
(b) Accuracy on 192 x 192 series (4 frames) over several seeds, for down-, up- and alternating scans:
    noise estimate against the true 10 mV (target within 20 %); registered, referenced
    ``dV = V(t) - V(t0)`` against the PSF-blurred truth referenced the same way (its reference
    region's median 0), RMS over the covered pixels in units of ``sqrt(2) sigma`` (target
    <= 1.2); deconvolution: RMS error against the *unblurred* truth
    lowered (target >= 30 %) and the 10-90 % width of the collector's step narrowed (target
    >= 40 %), with the PSF estimated from that edge and with the true PSF; the active-particle
    mask against the truth, IoU (target >= 0.9 for up- and down-scans).
(c) Registration: sub-pixel error of ``frame_shifts_kernel`` (edge maps) against the true drift
    at 10 mV noise, on the levelled topography and on the referenced potential, and of
    ``skimage.registration.phase_cross_correlation(upsample_factor=100)`` on the same inputs
    (target <= 0.1 px): 192 x 192 series over the seeds, and the 20-frame 512 x 512 series.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _timing import timed_best

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kpfm_frames import make_frames  # noqa: E402

from ionscope.io import open_dataset  # noqa: E402
from ionscope.kpfm import PSF, find_particles, process_frames  # noqa: E402
from ionscope.kpfm.drift import frame_shifts_kernel  # noqa: E402
from ionscope.kpfm.level import (  # noqa: E402
    edge_profile_kernel, find_reference_kernel, level_topography_kernel, reference_kernel, step_width_kernel,
)


def rms(a) -> float:
    return float(np.sqrt(np.nanmean(np.square(a))))


def bench_speed(n_frames: int, size: int, repeat: int) -> dict:
    frames, _ = make_frames(n_frames, shape=(size, size), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, f in enumerate(frames):
            p = Path(tmp) / f"frame{k:03d}.nc"
            f.to_netcdf(p)
            paths.append(p)

        def read_only():
            return [open_dataset(p).load() for p in paths]

        def chain():
            return process_frames([open_dataset(p) for p in paths], psf="auto")

        t_read, _ = timed_best(read_only, repeat)
        t_wall, (result, summary) = timed_best(chain, repeat)
        t_cpu, _ = timed_best(chain, 1, clock=time.process_time)
        loaded = read_only()
        t_mem, _ = timed_best(lambda: process_frames(loaded, psf="auto"), repeat)
    return {"frames": n_frames, "size": size, "read_s": t_read, "read_process_s": t_wall,
            "read_process_cpu_s": t_cpu, "process_in_memory_s": t_mem, "target_s": 5.0,
            "holds": t_wall < 5.0, "psf_nm": summary.get("psf"), "noise_mV": summary["noise_mV"]}


def bench_accuracy(seeds: list[int], n_frames: int, size: int = 192) -> dict:
    out: dict = {"size": size, "frames": n_frames}
    for scan in ("down", "up", "alternate"):
        rows = []
        for seed in seeds:
            frames, truth = make_frames(n_frames, seed=seed, scan=scan, shuffle=True, shape=(size, size))
            res, summ = process_frames(frames, psf="auto", cycler=truth.cycler)
            res_true, _ = process_frames(frames, psf=PSF(*truth.psf))
            pot, raw, pot_true = (np.asarray(r.values, dtype=np.float64) for r in
                                  (res["potential"], res["potential_raw"], res_true["potential"]))
            sig = truth.noise_V
            y0, y1, x0, x1 = summ["reference_box"]
            dv = raw - raw[0]
            # the truth referenced like the data: its reference region's median 0 in every frame
            dvt = truth.blurred - truth.blurred[0]
            dvt = dvt - np.median(dvt[:, y0:y1, x0:x1], axis=(1, 2))[:, None, None]
            dv_ratio = [rms((dv[k] - dvt[k])[np.isfinite(dv[k])]) / (np.sqrt(2) * sig) for k in range(1, n_frames)]
            gain = [1 - rms(pot[k] - truth.potential[k]) / rms(raw[k] - truth.potential[k]) for k in range(n_frames)]
            gain_true = [1 - rms(pot_true[k] - truth.potential[k]) / rms(raw[k] - truth.potential[k])
                         for k in range(n_frames)]
            box = summ["reference_box"]
            widths = []
            for img in (raw[0], pot[0], pot_true[0]):
                d, prof = edge_profile_kernel(img, box, "left", 3 * (box[3] - box[2]))
                widths.append(step_width_kernel(d, prof)["width"])
            parts, _ = find_particles(res)
            act = parts["active"].values
            iou = float((act & truth.active).sum() / max((act | truth.active).sum(), 1))
            rows.append({"seed": seed, "noise_mV": summ["noise_mV"], "noise_trace_mV": summ["noise_trace_mV"],
                         "dV_rms_over_sqrt2_sigma_max": float(max(dv_ratio)), "decon_gain_min": float(min(gain)),
                         "decon_gain_true_psf_min": float(min(gain_true)),
                         "step_narrowing": 1 - widths[1] / widths[0], "step_narrowing_true_psf": 1 - widths[2] / widths[0],
                         "width_10_90_px": widths, "iou_active": iou,
                         "active": parts.attrs["active_particles"], "active_true": len(truth.active_labels)})
        keys = [k for k in rows[0] if k not in ("seed", "width_10_90_px")]
        out[scan] = {"per_seed": rows,
                     "worst": {k: (max if k.startswith("dV") else min)(r[k] for r in rows) for k in keys
                               if not k.startswith("noise")},
                     "noise_error_max": max(max(abs(r["noise_mV"] / 10 - 1), abs(r["noise_trace_mV"] / 10 - 1))
                                            for r in rows)}
    return out


def bench_registration(seeds: list[int], n_frames: int, size: int) -> dict:
    from skimage.registration import phase_cross_correlation

    errs = {"ours_topography": [], "skimage_topography": [], "ours_potential": [], "skimage_potential": []}
    for seed in seeds:
        frames, truth = make_frames(n_frames, seed=seed, noise_V=0.01, shape=(size, size))
        z = np.stack([level_topography_kernel(f["Z_forward"].values) for f in frames])
        raw0 = frames[0]["Potential_forward"].values.astype(np.float64)
        box, _ = find_reference_kernel(raw0)
        pot = np.stack([reference_kernel(f["Potential_forward"].values.astype(np.float64), box)[0] for f in frames])
        for name, stack in (("topography", z), ("potential", pot)):
            ours, _ = frame_shifts_kernel(stack)
            errs[f"ours_{name}"] += list((ours[1:] - truth.shifts_px[1:]).ravel())
            sk = np.array([phase_cross_correlation(stack[0], stack[k], upsample_factor=100)[0]
                           for k in range(1, n_frames)])
            errs[f"skimage_{name}"] += list((sk - truth.shifts_px[1:]).ravel())
    return {k: {"rms_px": rms(v), "max_px": float(np.max(np.abs(v)))} for k, v in errs.items()} | {
        "target_px": 0.1, "noise_mV": 10.0, "size": size, "pairs": len(seeds) * (n_frames - 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, 8 frames of 256 x 256 for the speed")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4, 5]
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "speed": bench_speed(8 if args.quick else 20, 256 if args.quick else 512, args.repeat),
        "accuracy": bench_accuracy(seeds, 4),
        "registration": bench_registration(seeds, 5, 192),
        "registration_512": bench_registration([0], 8 if args.quick else 20, 512),
    }
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
