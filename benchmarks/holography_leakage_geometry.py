"""Diagnosis: why two off-axis leakage rows of ``holography_leakage.py`` moved with issue 17.

Prints one JSON object. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/holography_leakage_geometry.py

(``--seeds A:B`` for seeds A..B-1, default 0:8.) Two rows of the leakage benchmark at 2000 e/px -
``true_phase_plus_noise`` (the model alone) and ``offaxis_reference_stack:biased`` (8 vacuum
references at shifted fringes) - are scored, with the same scores as there
(:func:`ionscope.holography.leakage.twin_leakage_scores`), on four twins that differ only in the
hologram's geometry and the detector:

- ``current``: the twin as it is (carrier at -80 degrees, towards the vacuum; the reference wave
  at +D q_c; the default 'upper' sideband);
- ``pre_issue_17``: the geometry before issue 17 - carrier at +80 degrees (into the lamella)
  while the reference wave passes at -D q_c (in the vacuum above), reconstructed from the
  'lower' sideband (which carries +phi there). Physically inconsistent: the biprism tilts the
  object wave towards the side the reference wave comes from, so q_c points to the vacuum;
- ``mirrored_current``: the current geometry mirrored in x (carrier at -100 degrees, reference
  wave up and to the left as before issue 17): the true stray phase of ``pre_issue_17`` with the
  current carrier direction relative to the lamella edge;
- each of those again with an ideal detector (``mtf_cutoff=None``).

Per row: the specimen change over the noise within 15 nm of the edge (median, max), its two
parts - the rms change (the model error continued into the specimen) and the per-pixel phase
noise there - and the removed fraction. The lamella edge's mean-inner-potential ramp (~1 rad/nm)
shifts its part of the sideband by about the aperture radius, against q_c: with q_c towards the
vacuum that part moves towards the centre band, where the detector MTF is higher, so the edge
is reconstructed with less noise (the denominator falls) and its aperture ringing into the
fitted vacuum is weighted up (the numerator rises); with an ideal detector the two geometries
agree within the seed scatter.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import ionscope.simulate.holography as twin_module
from ionscope.holography import reconstruct_offaxis
from ionscope.holography.leakage import twin_leakage_scores
from ionscope.simulate import simulate

DOSE = 2000.0
BIAS_V = 4.0
REFERENCE_FRAMES = 8
GEOMETRIES = {
    "current": ({}, 1.0, "auto"),
    "pre_issue_17": ({"fringe_angle_deg": 80.0}, -1.0, "lower"),
    "mirrored_current": ({"fringe_angle_deg": -100.0}, 1.0, "auto"),
}
_TRUTH = twin_module._truth


def _truth_with_reference_at(sign: float):
    """The twin's truth with the reference wave at ``sign * D q_c`` (the twin: +1)."""
    def truth(p, table, yy, xx, shift=(0.0, 0.0)):
        spec = twin_module._specimen(p, table, yy - shift[0], xx - shift[1])
        qy, qx = twin_module._carrier(p)
        qn = math.hypot(qy, qx)
        ref = twin_module._stray(p, yy + sign * p.overlap_nm * qy / qn - shift[0],
                                 xx + sign * p.overlap_nm * qx / qn - shift[1])
        spec["phase"] = spec["phase_object"] - ref
        spec["phase_stray"] = spec["stray"] - ref
        return spec
    return truth


def row(kind: str, params: dict, sideband: str, seeds: list[int]) -> dict:
    out = []
    for seed in seeds:
        twin = {"dose": DOSE, "bias_V": BIAS_V, **params}
        if kind == "reference_stack":
            twin["reference_frames"] = REFERENCE_FRAMES
        ds = simulate("holography", seed=seed, **twin)
        clean = simulate("holography", seed=seed, noise=False, **twin)
        ref = "reference_stack" if kind == "reference_stack" else "reference"
        rec = reconstruct_offaxis(ds["hologram"], ds[ref], sideband=sideband)
        rec0 = reconstruct_offaxis(clean["hologram"], clean[ref], sideband=sideband)
        noise = rec["phase"].values.astype(float) - rec0["phase"].values
        erode = int(round(1.0 / (rec.attrs["aperture_per_nm"] * float(ds.attrs["pixel_size_nm"]))))
        phase = ds["phase_true"].values + noise if kind == "model_alone" else rec["phase"].values
        s = twin_leakage_scores(phase, ds, erode_px=erode, noise=noise)[0]
        out.append((s["change_over_noise"]["edge_15nm"], s["specimen_change_rms_rad"]["edge_15nm"],
                    s["phase_noise_rad"]["edge_15nm"], s["removed_fraction_fit"]))
    a = np.array(out)
    return {"change_over_noise_edge_15nm": {"median": float(np.median(a[:, 0])), "max": float(a[:, 0].max())},
            "change_rms_edge_rad_median": float(np.median(a[:, 1])),
            "noise_edge_rad_median": float(np.median(a[:, 2])),
            "removed_fraction_fit_min": float(a[:, 3].min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:8", help="A:B, seeds A..B-1")
    args = parser.parse_args()
    lo, hi = (int(v) for v in args.seeds.split(":"))
    seeds = list(range(lo, hi))
    t0 = time.perf_counter()
    result: dict = {"seeds": [lo, hi], "dose_e_per_px": DOSE, "bias_V": BIAS_V, "rows": {}}
    try:
        for name, (params, ref_sign, sideband) in GEOMETRIES.items():
            twin_module._truth = _truth_with_reference_at(ref_sign)
            for detector, extra in (("twin_mtf", {}), ("ideal_detector", {"mtf_cutoff": None})):
                for kind in ("model_alone", "reference_stack"):
                    result["rows"][f"{name}:{detector}:{kind}"] = row(kind, {**params, **extra}, sideband, seeds)
    finally:
        twin_module._truth = _TRUTH
    result["run_time_s"] = time.perf_counter() - t0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
