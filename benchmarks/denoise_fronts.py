"""Benchmark: tuning-free space-time denoising on fast and slow scenes against oracle-tuned baselines
(issue 17). Prints one JSON object (progress to stderr).

Run (the OpenBLAS core-type override of the machine env slows numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/denoise_fronts.py [--seeds N]

(a) The ``li_fronts`` twin (64 x 64 px, 50 frames, Poisson at 12 counts per pixel at x = 1, about
    8 on average): fast fronts (2.5 px per frame) and slow ones (0.25), ``--seeds`` seeds each.
    ``denoise --method sparse3d`` with its defaults (temporal extent, dictionary size and
    sparsity chosen from the data: ``ionscope.denoise.select``; then the collaborative Wiener
    stage, ``ionscope.denoise.collaborative``), the same without the Wiener stage, the fixed
    defaults it had before issue 17 (3 x 8 x 8 patches, 256 atoms, sparsity 4, no Wiener
    stage), and every baseline tuned on the truth (the
    best PSNR over a grid of its strength parameter - an oracle no user has): gaussian3d (width x
    time width), tv (per frame) and tv3d (weight), nlmeans (h factor) and bm4d (sigma_psd, the
    ``bm4d`` package) - all through ``ionscope.denoise.denoise`` in the same Anscombe domain.
(b) The slow licoo2 twin (157 frames, dose 20): sparse3d with its defaults against the same
    without the Wiener stage and the fixed defaults it had before (no loss on slow scenes).

PSNR against the noiseless truth, data range 1 (the Li fraction).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

from ionscope import __version__
from ionscope.denoise import denoise
from ionscope.denoise.metrics import psnr
from ionscope.simulate import simulate

OLD_DEFAULTS = {"temporal": 3, "atoms": 256, "sparsity": 4}
#: The oracle's grids (the strength parameter of each baseline).
GRIDS = {
    "gaussian3d": [{"width": w, "time_width": t} for w in (0.5, 0.75, 1.0, 1.5, 2.0) for t in (0.5, 1.0, 1.5, 2.0, 3.0)],
    "tv": [{"weight": w} for w in (0.2, 0.4, 0.6, 0.8, 1.0, 1.3)],
    "tv3d": [{"weight": w} for w in (0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0)],
    "nlmeans": [{"h_factor": h} for h in (0.4, 0.6, 0.8, 1.0, 1.3)],
    "bm4d": [{"sigma": s} for s in (1.0, 1.3, 1.6, 2.0)],
}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def score(da, truth, method: str, **kw) -> tuple[float, float, dict]:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = denoise(da, method, **kw)
    return psnr(out.values, truth, data_range=1.0), time.perf_counter() - t, info


def oracle(da, truth, method: str) -> dict:
    best = {"psnr": -np.inf}
    for kw in GRIDS[method]:
        p, _, _ = score(da, truth, method, **kw)
        if p > best["psnr"]:
            best = {"psnr": p, "parameters": kw}
    return best


def scene(speed: float, seed: int, baselines: list[str]) -> dict:
    ds = simulate("li_fronts", seed=seed, front_speed_px=speed)
    da, truth = ds["li_fraction"], ds["li_fraction_true"].values
    out = {"raw_psnr": psnr(da.values, truth, data_range=1.0)}
    p, t, info = score(da, truth, "sparse3d", seed=seed)
    out["sparse3d_defaults"] = {"psnr": p, "run_time_s": t, "chosen": info["criterion"]["chosen"]}
    p, t, info = score(da, truth, "sparse3d", seed=seed, wiener=False)
    out["sparse3d_defaults_without_wiener"] = {"psnr": p, "run_time_s": t, "chosen": info["criterion"]["chosen"]}
    p, t, _ = score(da, truth, "sparse3d", seed=seed, wiener=False, **OLD_DEFAULTS)
    out["sparse3d_old_defaults"] = {"psnr": p, "run_time_s": t}
    for method in baselines:
        log(f"  oracle {method}")
        out[f"{method}_oracle"] = oracle(da, truth, method)
    best = max((k for k in out if k.endswith("_oracle")), key=lambda k: out[k]["psnr"])
    best_no_bm4d = max((k for k in out if k.endswith("_oracle") and not k.startswith("bm4d")),
                       key=lambda k: out[k]["psnr"])
    out["best_oracle"] = best
    out["margin_over_best_oracle_dB"] = out["sparse3d_defaults"]["psnr"] - out[best]["psnr"]
    out["best_oracle_without_bm4d"] = best_no_bm4d
    out["margin_over_best_oracle_without_bm4d_dB"] = out["sparse3d_defaults"]["psnr"] - out[best_no_bm4d]["psnr"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-bm4d", action="store_true", help="leave the (slow) BM4D oracle out")
    args = parser.parse_args()
    t0 = time.perf_counter()
    baselines = ["gaussian3d", "tv", "tv3d", "nlmeans"]
    try:
        import bm4d  # noqa: F401
        if not args.no_bm4d:
            baselines.append("bm4d")
    except ImportError:
        log("bm4d is not installed: its oracle is left out")
    scenes = {}
    for speed, name in ((2.5, "fast"), (0.25, "slow")):
        scenes[name] = []
        for seed in range(args.seeds):
            log(f"(a) {name} fronts, seed {seed}")
            scenes[name].append(scene(speed, seed, baselines))
    log("(b) licoo2, dose 20")
    ds = simulate("licoo2", seed=0, dose=20.0)
    da, truth = ds["li_fraction"], ds["li_fraction_true"].values
    p_auto, t_auto, info = score(da, truth, "sparse3d")
    p_plain, t_plain, _ = score(da, truth, "sparse3d", wiener=False)
    p_old, t_old, _ = score(da, truth, "sparse3d", wiener=False, **OLD_DEFAULTS)
    summary = {name: {"sparse3d_defaults_psnr": [r["sparse3d_defaults"]["psnr"] for r in runs],
                      "sparse3d_defaults_without_wiener_psnr": [r["sparse3d_defaults_without_wiener"]["psnr"]
                                                                for r in runs],
                      "sparse3d_old_defaults_psnr": [r["sparse3d_old_defaults"]["psnr"] for r in runs],
                      "best_oracle": [r["best_oracle"] for r in runs],
                      "margin_over_best_oracle_dB": [r["margin_over_best_oracle_dB"] for r in runs],
                      "margin_over_best_oracle_without_bm4d_dB": [r["margin_over_best_oracle_without_bm4d_dB"]
                                                                  for r in runs]}
               for name, runs in scenes.items()}
    print(json.dumps({
        "benchmark": "denoise_fronts", "command": "benchmarks/denoise_fronts.py " + " ".join(sys.argv[1:]),
        "ionscope_version": __version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "summary": summary, "scenes": scenes,
        "licoo2_dose20": {"sparse3d_defaults": {"psnr": p_auto, "run_time_s": t_auto,
                                                "chosen": info["criterion"]["chosen"], "wiener": info["wiener"]},
                          "sparse3d_defaults_without_wiener": {"psnr": p_plain, "run_time_s": t_plain},
                          "sparse3d_old_defaults": {"psnr": p_old, "run_time_s": t_old}},
        "wall_s": time.perf_counter() - t0,
    }, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
