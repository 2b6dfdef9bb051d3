"""Benchmark: Li motion (ionscope.transport.li_motion) against the licoo2 twin's recorded motion
(issue 21). Prints one JSON object (progress to stderr).

Run (the OpenBLAS core-type override of the machine env slows numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src .venv/bin/python benchmarks/transport.py

(a) Accuracy: the ``licoo2`` twin with the demo's parameters (64 x 64 px of 2.5 nm, 157 frames of
    60 s: charge, rest, discharge, rest) at the demo dose (200 counts per pixel per frame at
    x = 1), denoised with ``denoise --method sparse3d`` (defaults, Poisson noise at the dose), then
    ``li_motion`` (continuity, window 5, the twin's front level 0.7). Against the twin's truth
    (``flux_y_true``, ``flux_x_true``: the flux averaged over each frame's exposure;
    ``front_position_true``), per cell state: the mean front velocity (relative error; target
    10 %), the in-plane fraction of sum |J| (absolute error; target 0.05), the flux direction error
    where |J_true| is in the top half of its frame (median and mean angle; target 20 degrees), and
    the mean |J| (at rest the twin keeps moving: the analysis must report it). The same on the
    noiseless series (the method's own limit: what the maps can show), on the raw noisy series,
    and with ``method="both"`` (plus the divergence-free part of the optical flow's flux).
    Mobility-aware (Fickian) flux -D grad(phi), div(D grad phi) = dx/dt (issue 21 follow-up):
    ``denoised_boundaries``, with the twin's domain-boundary mask (its ``boundary`` variable: the
    structure a segmented HAADF image shows, not the flux) and the bulk / boundary mobilities
    fitted to the denoised maps (``li_motion(boundaries=...)``; the fit is reported); the same on
    the noiseless series; ``denoised_true_mobility``, the twin's own D map (d_layer in the
    interfacial layer, d_boundary on boundaries, d_bulk elsewhere) as the upper bound of what a
    mobility can give.
(b) Speed: ``li_motion`` on a 157 x 64 x 64 series (continuity; best of 3, wall and process CPU;
    target < 5 s), with a given mobility map and with the boundary mask (the fit included), and
    once with ``method="flow"`` / ``"both"`` (TV-L1 per frame pair).
(c) Optical flow choice: TV-L1 vs iterative Lucas-Kanade (scikit-image) on a textured front
    translating 0.7 px per frame with white noise 0.02: displacement bias and time per pair.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of, timed_best  # noqa: E402

from ionscope.simulate import simulate  # noqa: E402
from ionscope.transport import li_motion  # noqa: E402
from ionscope.transport.truth import direction_error_deg, twin_motion_by_state  # noqa: E402

STATES = ((1, "charge"), (0, "rest"), (2, "discharge"))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def score(ds, series, truth, **kw):
    t0 = time.perf_counter()
    res, summary = li_motion(series.assign_coords(state=ds["state"]), level=ds["front_position_true"].attrs["level"],
                             **kw)
    elapsed = time.perf_counter() - t0
    codes = ds["state"].values
    out = {"run_time_s": round(elapsed, 3), "noise_map_sd": summary["noise"]["map_sd"], "states": {}}
    mob = summary["mobility"]
    if mob["source"] != "none":
        out["mobility"] = {k: v for k, v in mob.items() if k != "model"}
    for code, name in STATES:
        sel = codes == code
        angle = direction_error_deg(ds["flux_y_true"].values[sel], ds["flux_x_true"].values[sel],
                                    res["flux_y"].values[sel], res["flux_x"].values[sel])
        s, t = summary["states"][name], truth[name]
        out["states"][name] = {
            "front_velocity_nm_per_s": s["front_velocity_nm_per_s"],
            "front_velocity_error_nm_per_s": s["front_velocity_nm_per_s_error"],
            "front_velocity_rel_error": abs(s["front_velocity_nm_per_s"] / t["front_velocity_nm_per_s"] - 1),
            "in_plane_fraction": s["in_plane_fraction"], "in_plane_fraction_error": s["in_plane_fraction_error"],
            "in_plane_abs_error": abs(s["in_plane_fraction"] - t["in_plane_fraction"]),
            "direction_error_deg_median": float(np.median(angle)), "direction_error_deg_mean": float(angle.mean()),
            "mean_flux_nm_per_s": s["mean_flux_nm_per_s"],
            "mean_flux_rel_error": abs(s["mean_flux_nm_per_s"] / t["mean_flux_nm_per_s"] - 1),
        }
    return out


def true_mobility(ds):
    """The twin's own diffusivity map (nm^2/s) from its parameters and structure variables."""
    p = json.loads(ds.attrs["parameters"])
    layer, boundary = ds["region"].values == 1, ds["boundary"].values.astype(bool)
    return np.where(layer, p["d_layer_nm2_s"], np.where(boundary, p["d_boundary_nm2_s"], p["d_bulk_nm2_s"]))


def flow_choice():
    from scipy import ndimage
    from skimage.registration import optical_flow_ilk, optical_flow_tvl1

    rng = np.random.default_rng(0)
    yy = np.mgrid[:64, :64][0].astype(float)
    tex = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 3)
    tex /= tex.std()

    def frame(shift):
        return 0.5 + 0.3 * np.tanh((yy - 20 - shift) / 4) + 0.05 * ndimage.shift(tex, (shift, 0), mode="nearest")

    a = (frame(0.0) + 0.02 * rng.standard_normal(yy.shape)).astype(np.float32)
    b = (frame(0.7) + 0.02 * rng.standard_normal(yy.shape)).astype(np.float32)
    front = np.abs(yy - 20) < 8
    out = {}
    for name, func in (("tvl1", lambda: optical_flow_tvl1(a, b)), ("ilk_radius7", lambda: optical_flow_ilk(a, b, radius=7))):
        seconds, u = timed_best(func, 3)
        out[name] = {"bias_rel": float(u[0][front].mean() / 0.7 - 1), "cross_motion_px": float(u[1][front].mean()),
                     "ms_per_pair": round(1e3 * seconds, 2)}
    return out


def main():
    from ionscope.denoise.methods import denoise

    log("twin ...")
    ds = simulate("licoo2", seed=0)
    truth = twin_motion_by_state(ds)
    dose = float(ds["li_fraction"].attrs["dose"])
    log("denoise sparse3d ...")
    t0 = time.perf_counter()
    denoised, info = denoise(ds["li_fraction"], "sparse3d", noise="poisson", dose=dose, seed=0)
    denoise_s = time.perf_counter() - t0
    result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
              "twin": {"name": "licoo2", "seed": 0, "shape": list(ds["li_fraction"].shape), "dose": dose},
              "truth": truth}
    log("accuracy ...")
    result["denoised"] = {**score(ds, denoised, truth), "denoise_run_time_s": round(denoise_s, 1),
                          "denoise_parameters": info.get("parameters")}
    result["noiseless"] = score(ds, ds["li_fraction_true"], truth)
    result["raw"] = score(ds, ds["li_fraction"], truth)
    result["denoised_both"] = score(ds, denoised, truth, method="both")
    log("mobility-aware flux ...")
    result["denoised_boundaries"] = score(ds, denoised, truth, boundaries=ds["boundary"])
    result["noiseless_boundaries"] = score(ds, ds["li_fraction_true"], truth, boundaries=ds["boundary"])
    true_d = true_mobility(ds)
    result["denoised_true_mobility"] = score(ds, denoised, truth, mobility=true_d)
    log("speed ...")
    series = denoised.assign_coords(state=ds["state"])
    wall = best_of(lambda: li_motion(series, level=0.7), 3)
    cpu = best_of(lambda: li_motion(series, level=0.7), 3, clock=time.process_time)
    result["speed"] = {"shape": list(series.shape), "continuity_wall_s": round(wall, 3),
                       "continuity_cpu_s": round(cpu, 3), "target_s": 5.0,
                       "mobility_map_wall_s": round(best_of(lambda: li_motion(series, level=0.7, mobility=true_d), 3), 3),
                       "boundaries_fit_wall_s": round(best_of(lambda: li_motion(series, level=0.7,
                                                                                boundaries=ds["boundary"]), 3), 3),
                       "flow_wall_s": round(best_of(lambda: li_motion(series, level=0.7, method="flow"), 1), 2),
                       "both_wall_s": round(best_of(lambda: li_motion(series, level=0.7, method="both"), 1), 2)}
    result["flow_choice"] = flow_choice()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
