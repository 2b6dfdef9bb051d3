"""Scoring a motion analysis against a twin's recorded motion (``licoo2``'s ``flux_y_true``,
``flux_x_true``, ``front_position_true``): used by ``benchmarks/transport.py`` and the demo."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from ionscope.transport.continuity import rate_of_change
from ionscope.transport.series import state_codes

__all__ = ["twin_motion_by_state", "direction_error_deg"]


def twin_motion_by_state(twin: xr.Dataset, window: int = 5) -> dict[str, dict[str, Any]]:
    """Per cell state of a twin with recorded motion: the in-plane fraction of sum ``|J_true|``
    (x component; the electrolyte at the top), the mean front velocity (the slope of the true
    mean front depth over ``window`` frames within each state, as :func:`li_motion` measures it) and
    the mean ``|J_true|`` (nm/s)."""
    codes, names = state_codes(twin["li_fraction_true"], twin["state"])
    runs = np.concatenate([[0], np.cumsum(np.diff(codes) != 0)])
    depth = twin["front_position_true"].values
    with warnings.catch_warnings():  # frames where no column crosses the level
        warnings.simplefilter("ignore", RuntimeWarning)
        v = rate_of_change(np.nanmean(depth, axis=1), twin["time"].values, runs, window)
    ty, tx = twin["flux_y_true"].values.astype(np.float64), twin["flux_x_true"].values.astype(np.float64)
    out = {}
    for code, name in names.items():
        sel = codes == code
        a, b = np.abs(tx[sel]).sum(), np.abs(ty[sel]).sum()
        with np.errstate(invalid="ignore"):
            front = float(np.nanmean(v[sel])) if np.isfinite(v[sel]).any() else float("nan")
        out[name] = {"in_plane_fraction": float(a / (a + b)) if a + b > 0 else float("nan"),
                     "front_velocity_nm_per_s": front,
                     "mean_flux_nm_per_s": float(np.hypot(ty[sel], tx[sel]).mean())}
    return out


def direction_error_deg(true_y, true_x, est_y, est_x) -> np.ndarray:
    """Angle (degrees) between the true and the estimated flux where ``|J_true|`` is in the top half
    of its frame (frames along the first axis), flattened."""
    ty, tx = np.asarray(true_y, dtype=np.float64), np.asarray(true_x, dtype=np.float64)
    jy, jx = np.asarray(est_y, dtype=np.float64), np.asarray(est_x, dtype=np.float64)
    mag = np.hypot(ty, tx)
    strong = mag >= np.median(mag, axis=(-2, -1), keepdims=True)
    cosine = (ty * jy + tx * jx) / (mag * np.hypot(jy, jx) + 1e-300)
    return np.degrees(np.arccos(np.clip(cosine[strong], -1.0, 1.0)))
