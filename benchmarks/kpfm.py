"""Benchmark: KPFM processing against the targets of issue 13. Prints one JSON object.

Run (the OpenBLAS core-type override of the machine env slows numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/kpfm.py [--quick] [--twin-only]

(a)-(c): the small synthetic KPFM frames of ``tests/kpfm_frames.py`` (the readers' data model:
forward/backward channels, row times, drift, a PSF with a Gaussian core and a tail, line offsets,
10 mV white noise; active particles that follow the cell voltage). (d)-(i), the JSON's ``twin``:
the ``composite_cathode`` twin. Results and their reading: benchmarks/RESULTS.md, KPFM.

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

``twin``: the same targets on the ``composite_cathode`` twin, from its real ``.sxm`` files and
``cycler.csv`` (:func:`ionscope.simulate.composite_cathode_files.write_scan_files`), with the twin's
frames alternating up/down starting with an up-scan (``first_scan_up``) and starting with a
down-scan, over seeds; the deconvolution uses the twin's PSF as given (a calibration), and
``psf="auto"`` is reported beside it.

(d) Noise estimate (reference region; forward - backward) against the twin's ``noise_V``.
(e) ``dV = V(t) - V(t0)`` of the registered, referenced maps before deconvolution against the
    truth as the instrument sees it: the same twin (same seed: microstructure, drift, particle
    properties) simulated without noise, line offsets and tip offset (``bias_on_tip=True``: the
    recorded value is the blurred sample potential), each frame shifted back by the twin's true
    drift and referenced like the data (reference box median 0); RMS over the pixels both cover,
    in units of ``sqrt(2) noise_V``. The twin's collector lies along the bottom edge, parallel to
    the fast scan axis: the lines above it keep their offsets (``line_offset_V``), which adds
    ``sqrt(1 + f (line_offset_V / noise_V)^2)`` to the ratio (f the share of those rows;
    ``line_offset_floor``).
(f) Deconvolution: RMS error against the unblurred ``potential_true`` over the covered pixels,
    ``1 - error(deconvolved) / error(raw)`` per frame (the worst frame); beside it, for the first
    frame away from the borders (24 px), the same with an oracle Wiener filter that knows the
    true signal spectrum, the PSF and the noise (white and line offsets) - the most any linear
    deconvolution can gain on that frame. The sharp step: the 10-90 % width of the mean profile
    across the particles' edges along the scan lines in the first frame
    (``find_particles``: ``edge_width_raw_nm`` -> ``edge_width_nm``, +-2 tail SDs), and for
    reference the truth's width with the same labels and the collector edge's width from
    ``process_frames`` (measured across the scan lines there: line offsets, unreliable).
(g) The active-particle mask of ``find_particles`` against the twin's ``active_true``: IoU.
(h) Registration of the twin's frames (levelled topography and referenced potential, read from
    the ``.sxm`` files): ours and ``phase_cross_correlation(upsample_factor=100)`` against the
    twin's drift (the shift is ``-drift``), in px.
(i) Speed: a 20-frame 512 x 512 twin series (5 nm pixels: the default field sampled twice as
    finely) as ``.sxm`` files: read + ``process_frames`` with the given PSF (level, reference,
    register, deconvolve) and with ``psf="auto"``, best of ``--repeat``; the accuracy of (d)-(h)
    on that series too.
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
from ionscope.register.stack import frame_shifts_kernel  # noqa: E402
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


# --------------------------------------------------------------------------- the composite_cathode twin

def _twin_psf(ds) -> dict:
    """The twin's PSF as a ``process_frames`` spec (nm)."""
    p = json.loads(ds.attrs["parameters"])
    return {"core_sigma_nm": p["psf_sigma_nm"], "tail_weight": p["psf_tail_fraction"],
            "tail_sigma_nm": p["psf_tail_sigma_nm"]}


def twin_truth_as_seen(ds, params: dict, seed: int) -> np.ndarray:
    """The twin's potential as the instrument sees it on the first frame's grid: the same twin
    without noise, line offsets and tip offset, recorded as the blurred sample potential, each
    frame shifted back by the true drift (NaN where a frame does not cover)."""
    from ionscope.register.stack import shift_frame_kernel
    from ionscope.simulate import simulate

    clean = simulate("composite_cathode", seed=seed, **{**params, "noise_V": 0.0, "line_offset_V": 0.0,
                                                        "tip_offset_V": 0.0, "bias_on_tip": True})
    h = float(json.loads(ds.attrs["parameters"])["pixel_nm"])
    drift = np.stack([ds["drift_y_nm"].values, ds["drift_x_nm"].values], 1) / h
    return np.stack([shift_frame_kernel(clean["potential_measured"].values[k].astype(np.float64), -drift[k])
                     for k in range(ds.sizes["time"])])


def oracle_wiener_gain(raw0: np.ndarray, truth0: np.ndarray, ours0: np.ndarray, psf_px, noise_V: float,
                       line_offset_V: float, margin: int) -> dict:
    """First frame: RMS error against the unblurred truth of the raw map, of ours and of a Wiener
    filter that knows the truth's spectrum (periodic FFT), over the pixels ``margin`` from the
    borders."""
    import scipy.fft

    from ionscope.kpfm.psf import otf_kernel

    ny, nx = raw0.shape
    H = otf_kernel(psf_px, (ny, nx))
    T = scipy.fft.rfft2(truth0 - truth0.mean())
    S = (T.real**2 + T.imag**2)
    N = np.full(H.shape, noise_V**2 * ny * nx)
    N[:, 0] += line_offset_V**2 * ny * nx**2
    G = H * S / (H * H * S + N)
    G[0, 0] = 1.0
    oracle = scipy.fft.irfft2(scipy.fft.rfft2(raw0) * G, s=(ny, nx))
    inner = (slice(margin, ny - margin), slice(margin, nx - margin))
    e_raw, e_ours, e_oracle = (rms((a - truth0)[inner]) for a in (raw0, ours0, oracle))
    return {"raw_mV": 1e3 * e_raw, "ours_mV": 1e3 * e_ours, "oracle_mV": 1e3 * e_oracle,
            "gain_ours": 1 - e_ours / e_raw, "gain_oracle": 1 - e_oracle / e_raw}


def bench_twin_case(params: dict, seed: int, *, auto: bool = True) -> dict:
    """All twin measurements (d)-(h) for one twin series."""
    from skimage.registration import phase_cross_correlation

    from ionscope.kpfm.particles import edge_profile_kernel as particle_edges
    from ionscope.kpfm.psf import PSF as _PSF
    from ionscope.simulate import simulate
    from ionscope.simulate.composite_cathode_files import write_scan_files

    ds = simulate("composite_cathode", seed=seed, **params)
    p = json.loads(ds.attrs["parameters"])
    h, sigma = float(p["pixel_nm"]), float(p["noise_V"])
    n = ds.sizes["time"]
    seen = twin_truth_as_seen(ds, params, seed)
    truth = ds["potential_true"].values.astype(np.float64)
    psf = _twin_psf(ds)
    out: dict = {"seed": seed, "frames": n, "shape": [ds.sizes["y"], ds.sizes["x"]], "pixel_nm": h,
                 "scan_directions": [str(d) for d in ds["scan_direction"].values]}
    with tempfile.TemporaryDirectory() as tmp:
        scans = [f for f in write_scan_files(ds, tmp) if f.suffix == ".sxm"]
        cycler = Path(tmp) / "cycler.csv"
        res, summ = process_frames(scans, psf=psf, cycler=cycler)
        res_none, _ = process_frames(scans, cycler=cycler)
        res_auto = auto_error = None
        if auto:
            import warnings

            from ionscope.errors import IonscopeError

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    res_auto, summ_auto = process_frames(scans, psf="auto", cycler=cycler)
                except IonscopeError as exc:  # no step at the band's edge to fit
                    auto_error = str(exc)
        frames = [open_dataset(f) for f in scans]
        z = np.stack([level_topography_kernel(f["Z_forward"].values) for f in frames])
    pot, raw = (np.asarray(res[v].values, dtype=np.float64) for v in ("potential", "potential_raw"))
    y0, y1, x0, x1 = summ["reference_box"]

    # (d) noise
    truth_mV = 1e3 * sigma
    out["noise"] = {"truth_mV": truth_mV, "reference_mV": summ["noise_mV"], "trace_mV": summ["noise_trace_mV"],
                    "error_max": max(abs(summ["noise_mV"] / truth_mV - 1), abs(summ["noise_trace_mV"] / truth_mV - 1))}
    # (e) dV against the truth as seen
    dv = raw - raw[0]
    dvt = seen - seen[0]
    dvt = dvt - np.nanmedian(dvt[:, y0:y1, x0:x1], axis=(1, 2))[:, None, None]
    ratio = []
    for k in range(1, n):
        ok = np.isfinite(dv[k]) & np.isfinite(dvt[k])
        ratio.append(rms((dv[k] - dvt[k])[ok]) / (np.sqrt(2) * sigma))
    outside = 1 - (y1 - y0) / ds.sizes["y"] if (x1 - x0) == ds.sizes["x"] else 0.0
    directions = out["scan_directions"][1:]
    out["dV"] = {"rms_over_sqrt2_sigma_max": max(ratio), "rms_over_sqrt2_sigma_mean": float(np.mean(ratio)),
                 "max_up_frames": max([r for r, d in zip(ratio, directions) if d == "up"], default=None),
                 "max_down_frames": max([r for r, d in zip(ratio, directions) if d == "down"], default=None),
                 "per_frame": ratio,
                 "line_offset_floor": float(np.sqrt(1 + outside * (p["line_offset_V"] / sigma) ** 2)),
                 "compared_with": "the noise-free twin (same seed), shifted back by the true drift, referenced like the data"}

    # (f) deconvolution: error against the unblurred truth, the oracle bound, the step widths
    def gains(deconvolved):
        g = []
        for k in range(n):
            ok = np.isfinite(deconvolved[k]) & np.isfinite(raw[k])
            g.append(1 - rms((deconvolved[k] - truth[k])[ok]) / rms((raw[k] - truth[k])[ok]))
        return g

    g_given = gains(pot)
    decon = {"psf_given_nm": psf, "gain_min": min(g_given), "gain_per_frame": g_given,
             "oracle_frame0": oracle_wiener_gain(raw[0], truth[0], pot[0], _PSF.from_nm(psf, h), sigma,
                                                 float(p["line_offset_V"]), margin=int(np.ceil(3 * psf["tail_sigma_nm"] / h)))}
    parts, _ = find_particles(res)
    labels = parts["labels"].values
    m = int(parts.attrs["edge_half_width_px"])
    prof, _ = particle_edges(truth[0], labels, half_width_px=m)
    truth_width = step_width_kernel(np.arange(prof.size, dtype=np.float64), prof)["width"] * h
    decon["step"] = {"where": f"particle edges along the scan lines, first frame, +-{m} px",
                     "profiles": parts.attrs["edge_profiles"], "width_raw_nm": parts.attrs["edge_width_raw_nm"],
                     "width_nm": parts.attrs["edge_width_nm"], "width_truth_nm": truth_width,
                     "narrowing": 1 - parts.attrs["edge_width_nm"] / parts.attrs["edge_width_raw_nm"],
                     "collector_edge_raw_nm": summ["resolution_raw_nm"], "collector_edge_nm": summ["resolution_nm"],
                     "collector_edge_note": summ.get("resolution_note", "")}
    # (g) active particles
    true_active = ds["active_true"].values.astype(bool)

    def iou(result) -> float:
        act = find_particles(result)[0]["active"].values
        return float((act & true_active).sum() / max((act | true_active).sum(), 1))

    out["active"] = {"iou": float((parts["active"].values & true_active).sum()
                                  / max((parts["active"].values | true_active).sum(), 1)),
                     "iou_no_deconvolution": iou(res_none), "active": parts.attrs["active_particles"],
                     "active_true": int(ds["particle_active"].values.sum()), "particles": parts.attrs["particles"],
                     "particles_true": int(ds.sizes["label"])}
    if auto_error is not None:
        decon["auto"] = {"error": auto_error}
    elif auto:
        pa = np.asarray(res_auto["potential"].values, dtype=np.float64)
        decon["auto"] = {"psf_nm": {k: summ_auto["psf"][k] for k in ("core_sigma_nm", "tail_weight", "tail_sigma_nm")},
                         "chi2_reduced": summ_auto["psf"]["chi2_reduced"], "gain_min": min(gains(pa))}
        out["active"]["iou_psf_auto"] = iou(res_auto)
    out["deconvolution"] = decon
    # (h) registration against the true drift
    shift_true = -np.stack([ds["drift_y_nm"].values, ds["drift_x_nm"].values], 1) / h
    ours = np.stack([summ["shift_y_nm"], summ["shift_x_nm"]], 1) / h
    sk_z = np.array([phase_cross_correlation(z[0], z[k], upsample_factor=100)[0] for k in range(1, n)])
    # the referenced potential (bias on the sample: the sample's potential is minus the recorded one)
    refd = np.stack([reference_kernel(-np.asarray(f["KPFM_forward"].values, dtype=np.float64), (y0, y1, x0, x1))[0]
                     for f in frames])
    ours_v, _ = frame_shifts_kernel(refd)
    sk_v = np.array([phase_cross_correlation(refd[0], refd[k], upsample_factor=100)[0] for k in range(1, n)])
    err = {"ours_topography (process_frames)": ours[1:] - shift_true[1:],
           "skimage_topography": sk_z - shift_true[1:],
           "ours_potential": ours_v[1:] - shift_true[1:], "skimage_potential": sk_v - shift_true[1:]}
    out["registration_px"] = {k: {"rms": rms(v), "max": float(np.max(np.abs(v)))} for k, v in err.items()}
    out["registration_px"]["drift_max_px"] = float(np.max(np.abs(shift_true)))
    return out


def _worst(rows: list[dict]) -> dict:
    return {
        "noise_error_max": max(r["noise"]["error_max"] for r in rows),
        "dV_rms_over_sqrt2_sigma_max": max(r["dV"]["rms_over_sqrt2_sigma_max"] for r in rows),
        "decon_gain_min": min(r["deconvolution"]["gain_min"] for r in rows),
        "decon_gain_oracle_frame0_min": min(r["deconvolution"]["oracle_frame0"]["gain_oracle"] for r in rows),
        "decon_gain_ours_frame0_min": min(r["deconvolution"]["oracle_frame0"]["gain_ours"] for r in rows),
        "step_narrowing_min": min(r["deconvolution"]["step"]["narrowing"] for r in rows),
        "iou_active_min": min(r["active"]["iou"] for r in rows),
        "registration_ours_max_px": max(r["registration_px"]["ours_topography (process_frames)"]["max"] for r in rows),
        "registration_skimage_max_px": max(r["registration_px"]["skimage_topography"]["max"] for r in rows),
    }


def bench_twin(seeds: list[int], params: dict | None = None, *, auto: bool = True) -> dict:
    """(d)-(h) over seeds, for series starting with an up-scan and with a down-scan."""
    params = dict(params or {})
    out: dict = {"params": params, "psf": "the twin's, given"}
    for first_up in (True, False):
        rows = [bench_twin_case({**params, "first_scan_up": first_up}, seed, auto=auto) for seed in seeds]
        out["first_scan_up" if first_up else "first_scan_down"] = {"worst": _worst(rows), "per_seed": rows}
    return out


def bench_twin_speed(n_frames: int, size: int, pixel_nm: float, repeat: int) -> dict:
    """(i): read the twin's .sxm files and process them (given PSF; auto), best of ``repeat``."""
    from ionscope.simulate import simulate
    from ionscope.simulate.composite_cathode_files import write_scan_files

    params = {"ny": size, "nx": size, "pixel_nm": pixel_nm, "charge_frames": n_frames - 3}
    ds = simulate("composite_cathode", seed=0, **params)
    psf = _twin_psf(ds)
    with tempfile.TemporaryDirectory() as tmp:
        scans = [f for f in write_scan_files(ds, tmp) if f.suffix == ".sxm"]

        def chain(spec):
            return process_frames([open_dataset(f) for f in scans], psf=spec)

        t_read, _ = timed_best(lambda: [open_dataset(f).load() for f in scans], repeat)
        t_given, (_, summary) = timed_best(lambda: chain(psf), repeat)
        t_cpu, _ = timed_best(lambda: chain(psf), 1, clock=time.process_time)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_auto, _ = timed_best(lambda: chain("auto"), repeat)
    return {"frames": int(ds.sizes["time"]), "size": size, "pixel_nm": pixel_nm, "read_s": t_read,
            "read_process_s": t_given, "read_process_cpu_s": t_cpu, "read_process_psf_auto_s": t_auto,
            "target_s": 5.0, "holds": t_given < 5.0, "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, 8 frames of 256 x 256 for the speed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--twin-only", action="store_true", help="only the composite_cathode twin's section")
    args = parser.parse_args()
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4, 5]
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}}
    if not args.twin_only:
        report.update({
            "speed": bench_speed(8 if args.quick else 20, 256 if args.quick else 512, args.repeat),
            "accuracy": bench_accuracy(seeds, 4),
            "registration": bench_registration(seeds, 5, 192),
            "registration_512": bench_registration([0], 8 if args.quick else 20, 512),
        })
    twin_seeds = [0] if args.quick else [0, 1, 2]
    report["twin"] = {
        "default": bench_twin(twin_seeds),
        "speed": bench_twin_speed(8 if args.quick else 20, 256 if args.quick else 512, 10.0 if args.quick else 5.0,
                                  args.repeat),
    }
    if not args.quick:
        # the earlier default: 256 x 256 at 10 nm, coarser than the ~7 nm resolution it images
        report["twin"]["coarse_10nm"] = bench_twin([0], {"ny": 256, "nx": 256, "pixel_nm": 10.0}, auto=False)
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
