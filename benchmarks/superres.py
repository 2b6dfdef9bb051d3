"""Benchmark: coupled-dictionary super-resolution (x2, x3) on the LiCoO2 twin vs cubic-spline
up-sampling.

Prints one JSON object (progress goes to stderr). Run:

    .venv/bin/python benchmarks/superres.py

Data: the twin's noiseless ``li_fraction_true`` (``--size`` x ``--size`` px of 2.5 nm, charge ->
rest -> discharge -> rest). Training maps: every ``--stride``-th frame of the twin with seed 1;
test maps: every ``--stride``-th frame of the twin with seed 2 (other domains and interfacial
layer), block-averaged by the factor (the degradation model of
:mod:`ionscope.denoise.superres`).

(a) Accuracy against the true HR maps (PSNR with data range 1, SSIM): nearest neighbour
    (block replication), cubic-spline up-sampling (``scipy.ndimage.zoom(order=3)``, the peer),
    cubic + back-projection, the sparse estimate before back-projection, and the full method
    with the default Gaussian back-projection and with the orthogonal projection only
    (``iterations=0``).
(b) Run time of ``super_resolve`` (training + reconstruction + back-projection) and of the
    reconstruction alone with trained dictionaries, as ratios to ``scipy.ndimage.zoom`` (cubic)
    on the same LR maps, measured in the same run (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import numpy as np
import scipy.ndimage as ndi

from _timing import best_of, timed_best

from ionscope.denoise.metrics import psnr, ssim
from ionscope.denoise.superres import (
    DEFAULT_PATCH,
    back_project,
    bicubic_upsample,
    coupled_reconstruct,
    downsample,
    nearest_upsample,
    super_resolve,
)
from ionscope.simulate import simulate

DATA_RANGE = 1.0   # Li fraction x in [0, 1]


def _twin(seed: int, size: int):
    return simulate("licoo2", seed=seed, ny=size, nx=size, charge_frames=30, rest1_frames=10,
                    discharge_frames=30, rest2_frames=10, dose=None).li_fraction_true


def _scores(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"psnr_db": round(psnr(estimate, truth, data_range=DATA_RANGE), 3),
            "ssim": round(ssim(estimate, truth, data_range=DATA_RANGE), 4)}


def run_factor(factor: int, train, truth, args) -> dict:
    lr = downsample(truth, factor)
    y = lr.values.astype(np.float64)
    ref = truth.values.astype(np.float64)
    print(f"x{factor}: training and super-resolving {y.shape}", file=sys.stderr, flush=True)
    kw = {"atoms": args.atoms, "sparsity": args.sparsity, "seed": args.seed}
    t_full, (out, info) = timed_best(lambda: super_resolve(lr, train, factor, **kw), args.repeat)
    dicts = info["dictionaries"]
    t_apply, _ = timed_best(lambda: super_resolve(lr, None, factor, dictionaries=dicts), args.repeat)
    t_zoom = best_of(lambda: [ndi.zoom(f, factor, order=3, grid_mode=True, mode="reflect")
                              for f in y], max(args.repeat, 5))
    bicubic = bicubic_upsample(y, factor)
    sparse, _, _ = coupled_reconstruct(y, dicts)
    ortho, _ = super_resolve(lr, None, factor, dictionaries=dicts, iterations=0)
    methods = {
        "nearest": nearest_upsample(y, factor),
        "bicubic": bicubic,
        "bicubic_back_projected": back_project(bicubic, y, factor),
        "superres_before_back_projection": sparse,
        "superres": out.values,
        "superres_orthogonal_projection": ortho.values,
    }
    accuracy = {name: _scores(est, ref) for name, est in methods.items()}
    return {
        "factor": factor,
        "patch": DEFAULT_PATCH[factor],
        "lr_shape": list(y.shape),
        "accuracy": accuracy,
        "gain_over_bicubic_db": round(accuracy["superres"]["psnr_db"]
                                      - accuracy["bicubic"]["psnr_db"], 3),
        "training": {k: info["training"][k] for k in ("n_maps", "n_candidates", "n_informative",
                                                      "n_train", "n_atoms", "n_dropped_atoms")},
        "consistency_result_max_abs": info["consistency"]["result"]["max_abs"],
        "time_s": {"super_resolve_with_training": round(t_full, 4),
                   "super_resolve_given_dictionaries": round(t_apply, 4),
                   "scipy_zoom_cubic": round(t_zoom, 5),
                   "stages_of_best_full_run": {k: round(v, 4)
                                               for k, v in info["timings_s"].items()}},
        "ratio_vs_scipy_zoom": {"with_training": round(t_full / t_zoom, 1),
                                "given_dictionaries": round(t_apply / t_zoom, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=72, help="map side (px), multiple of 6")
    parser.add_argument("--stride", type=int, default=8, help="use every n-th frame")
    parser.add_argument("--atoms", type=int, default=256)
    parser.add_argument("--sparsity", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("simulating the twins", file=sys.stderr, flush=True)
    train = _twin(1, args.size).isel(time=slice(0, None, args.stride))
    truth = _twin(2, args.size).isel(time=slice(args.stride // 2, None, args.stride))
    results = {
        "benchmark": "superres",
        "command": "python benchmarks/superres.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "numpy": np.__version__},
        "data": {"twin": "licoo2 li_fraction_true (noiseless)", "size_px": args.size,
                 "pixel_nm": 2.5, "train_seed": 1, "train_frames": int(train.sizes["time"]),
                 "test_seed": 2, "test_frames": int(truth.sizes["time"])},
        "parameters": {"atoms": args.atoms, "sparsity": args.sparsity, "seed": args.seed,
                       "defaults": "patch 5 (x2) / 7 (x3), 10 K-SVD iterations, 20 back-"
                                   "projection iterations, bp_sigma 1 px"},
        "factors": [run_factor(f, train, truth, args) for f in (2, 3)],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
