"""Benchmark: NMF of a dask-backed EELS series (passes over the chunks) against the in-memory NMF.

Prints one JSON object (not a test; ``tests/test_lazy_eels.py`` asserts the bounds on a smaller
twin). Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src .venv/bin/python \\
        benchmarks/eels_nmf_lazy.py [--size 64] [--frames 6] [--samples 2000,20000] [--passes 0,2,4]

The ``eels_licoo2`` twin (``--frames`` frames spread over its cycle, ``--size`` x ``--size``
pixels, the twin's default dose and channels) is prepared as ``ionscope eels nmf`` does (power
law 40-52 eV subtracted, unit sum in 52-90 eV) and factorised into 3 components, in memory
(:func:`ionscope.eels.nmf` on numpy, HALS to ``tol`` 1e-5) and lazily (the same on
``.chunk({"time": 1})``: HALS on a sample of spectra, then alternating non-negative least-squares
passes over the chunks, maps chunk by chunk). Against the noiseless twin rendered with the same
seed, for each run:

- ``model_error``: ``||C S^T - X_true||_F / ||X_true||_F`` (X_true: the noiseless spectra,
  prepared the same way) - how close the factorisation is to the truth, whatever the factors'
  non-uniqueness;
- ``phase_span_residual``: the largest relative residual of a true phase spectrum (the twin's
  LiCoO2, CoO2 and Co3O4 edges) fitted by a non-negative sum of the components;
- ``layer_correlation``: the best Pearson correlation of a component map with the twin's
  interfacial-layer mask;
- ``model_difference``: ``||C S^T - (C S^T)_in-memory|| / ||(C S^T)_in-memory||``;
- ``wall_s`` (best of 1, wall clock; the lazy run includes its ``1 + passes`` reads and the maps'
  compute) and ``wall_over_in_memory`` (ratio in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import scipy.optimize

WINDOW = (52.0, 90.0)
BACKGROUND = (40.0, 52.0)
PHASES = ("licoo2", "coo2", "co3o4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--samples", default="2000,20000")
    parser.add_argument("--passes", default="0,2,4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import warnings

    from ionscope.eels import nmf, prepare_for_nmf
    from ionscope.simulate import simulate

    frames = np.linspace(0, 156, args.frames).round().astype(int).tolist()
    kw = {"seed": args.seed, "li_params": {"ny": args.size, "nx": args.size}, "frames": frames}
    noisy = simulate("eels_licoo2", **kw)
    clean = simulate("eels_licoo2", noise=False, **kw)
    prepared = prepare_for_nmf(noisy.spectra, window=WINDOW, background=BACKGROUND).load()
    truth_da = prepare_for_nmf(clean.spectra, window=WINDOW, background=BACKGROUND)
    inside = (truth_da.energy >= WINDOW[0]) & (truth_da.energy <= WINDOW[1])
    truth = truth_da.sel(energy=inside).values.reshape(-1, int(inside.sum())).astype(np.float64)
    refs = np.stack([noisy[f"ref_{p}_edge"].sel(energy=inside).values for p in PHASES], axis=1)
    layer = np.broadcast_to(noisy.region.values == 1, prepared.shape[:-1]).ravel().astype(float)

    def measure(result, reference=None) -> dict:
        k = result.sizes["component"]
        c = np.asarray(result.maps.values, dtype=np.float64).reshape(k, -1).T
        s = np.asarray(result.spectra.values, dtype=np.float64).T
        model = c @ s.T
        out = {
            "model_error": float(np.linalg.norm(model - truth) / np.linalg.norm(truth)),
            "phase_span_residual": float(max(np.linalg.norm(r - s @ scipy.optimize.nnls(s, r)[0]) / np.linalg.norm(r)
                                             for r in refs.T)),
            "layer_correlation": float(max(np.corrcoef(m, layer)[0, 1] for m in c.T)),
            "reconstruction_error": float(result.reconstruction_error),
        }
        if reference is not None:
            out["model_difference"] = float(np.linalg.norm(model - reference) / np.linalg.norm(reference))
        return out, model

    report: dict = {"benchmark": "eels_nmf_lazy", "load_average_start": os.getloadavg(),
                    "shape": list(prepared.shape), "frames": frames, "window_eV": list(WINDOW)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = time.perf_counter()
        eager = nmf(prepared, 3, window=WINDOW, max_iter=2000, tol=1e-5)
        eager_s = time.perf_counter() - t
        quality, reference = measure(eager)
        report["in_memory"] = {**quality, "wall_s": eager_s, "n_iter": int(eager.attrs["n_iter"])}
        runs = []
        for sample in (int(v) for v in args.samples.split(",")):
            for passes in (int(v) for v in args.passes.split(",")):
                t = time.perf_counter()
                lazy = nmf(prepared.chunk({"time": 1}), 3, window=WINDOW, max_iter=2000, tol=1e-5, passes=passes,
                           max_sample=sample).compute()
                lazy_s = time.perf_counter() - t
                quality, _ = measure(lazy, reference)
                runs.append({"max_sample": sample, "passes": passes, **quality, "wall_s": lazy_s,
                             "wall_over_in_memory": lazy_s / eager_s,
                             "objective_passes": list(lazy.attrs["objective_passes"])})
        report["lazy"] = runs
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
