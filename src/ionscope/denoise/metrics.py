r"""Quality measures of denoised maps (:doc:`/guide/denoising`, "Quality").

* :func:`psnr` - peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` against a reference, with
  the data range ``R`` stated (default: the reference's peak-to-peak; for Li fractions pass
  ``data_range=1``);
* :func:`ssim` - :func:`skimage.metrics.structural_similarity` of every frame (same
  ``data_range``), averaged over frames;
* :func:`li_conservation` - relative change of every frame's sum (total Li) between two series,
  e.g. raw and denoised;
* :func:`residual_whiteness` - normalised autocorrelation of a residual (raw - denoised) at
  lags ``1..max_lag`` along ``y`` and ``x``, and a Box-Pierce / Ljung-Box-like portmanteau
  statistic ``Q = sum n_k rho_k^2``, chi-square with ``2 max_lag`` degrees of freedom for white
  noise. A residual that is pure noise has ``rho ~ 0``; a denoiser that removed structure
  leaves correlated residuals (``rho > 0``);
* :func:`denoise_metrics` - all of them in one JSON-able dict; :func:`frame_metrics` - the
  per-frame values as a small :class:`xarray.Dataset`.

Arrays may be numpy arrays (``(..., ny, nx)``: leading axes are frames) or DataArrays with
``y`` and ``x`` dims (a second DataArray is transposed to the first one's dims).

References
----------
Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, IEEE Trans. Image Process. 13, 600
(2004) (SSIM).
G. E. P. Box and D. A. Pierce, J. Am. Stat. Assoc. 65, 1509 (1970); G. M. Ljung and
G. E. P. Box, Biometrika 65, 297 (1978) (portmanteau tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError, DimensionError


def _frames(a: Any, like: Any = None) -> np.ndarray:
    """``a`` as float64 frames ``(n_frames, ny, nx)``."""
    if isinstance(a, xr.DataArray):
        if isinstance(like, xr.DataArray) and set(like.dims) == set(a.dims):
            a = a.transpose(*like.dims)
        dims = list(a.dims)
        if "y" in dims and "x" in dims:
            a = a.transpose(*[d for d in dims if d not in ("y", "x")], "y", "x")
        a = a.values
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim < 2:
        raise DimensionError(f"need maps with at least 2 dims (y, x), got shape {arr.shape}")
    return arr.reshape((-1,) + arr.shape[-2:])


def _pair(estimate: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    est = _frames(estimate)
    ref = _frames(reference, like=estimate)
    if est.shape != ref.shape:
        raise DimensionError(
            f"estimate {est.shape} and reference {ref.shape} differ in shape (frames, y, x)"
        )
    return est, ref


def _range(reference: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(np.max(reference) - np.min(reference))
        if not data_range > 0:
            raise ConfigError("the reference is constant: pass data_range explicitly")
    elif not (np.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"data_range must be a finite number > 0, got {data_range!r}")
    return float(data_range)


def mse(estimate: Any, reference: Any) -> float:
    """Mean squared error."""
    est, ref = _pair(estimate, reference)
    return float(np.mean((est - ref) ** 2))


def mae(estimate: Any, reference: Any) -> float:
    """Mean absolute error."""
    est, ref = _pair(estimate, reference)
    return float(np.mean(np.abs(est - ref)))


def psnr(estimate: Any, reference: Any, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio (dB): ``10 log10(data_range^2 / MSE)``.

    Parameters
    ----------
    estimate, reference : array_like or DataArray
    data_range : float, optional
        Peak-to-peak range ``R`` of the signal (e.g. 1 for Li fractions in [0, 1]); default
        the reference's ``max - min``. ``inf`` when the MSE is 0.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.zeros((4, 8, 8))
    >>> round(psnr(truth + 0.1, truth, data_range=1.0), 9)   # MSE 0.01 -> 20 dB
    20.0
    """
    est, ref = _pair(estimate, reference)
    r = _range(ref, data_range)
    err = float(np.mean((est - ref) ** 2))
    if err == 0:
        return float("inf")
    return float(10.0 * np.log10(r * r / err))


def ssim_frames(estimate: Any, reference: Any, *, data_range: float | None = None,
                win_size: int | None = None) -> np.ndarray:
    """SSIM of every frame (:func:`skimage.metrics.structural_similarity`, 7 x 7 uniform
    window by default, ``data_range`` as in :func:`psnr`)."""
    from skimage.metrics import structural_similarity

    est, ref = _pair(estimate, reference)
    r = _range(ref, data_range)
    ny, nx = est.shape[-2:]
    if win_size is None:
        win_size = min(7, ny, nx)
        win_size -= (win_size + 1) % 2   # odd
    if win_size < 3:
        raise DimensionError(f"maps of {ny} x {nx} pixels are too small for SSIM (>= 3 x 3)")
    return np.array([structural_similarity(e, f, data_range=r, win_size=win_size)
                     for e, f in zip(est, ref)])


def ssim(estimate: Any, reference: Any, *, data_range: float | None = None,
         win_size: int | None = None) -> float:
    """Mean SSIM over frames (see :func:`ssim_frames`); 1 for identical maps.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((2, 16, 16))
    >>> ssim(img, img, data_range=1.0)
    1.0
    """
    return float(np.mean(ssim_frames(estimate, reference, data_range=data_range,
                                     win_size=win_size)))


def li_conservation(reference: Any, denoised: Any) -> dict[str, Any]:
    """Relative change of the frame sums (total Li per frame), ``(sum den - sum ref) / sum ref``.

    Returns
    -------
    dict
        ``relative_change`` (per frame, ndarray), ``mean``, ``max_abs`` and ``total`` (of the
        whole series).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.ones((3, 4, 4))
    >>> round(li_conservation(ref, 1.02 * ref)["total"], 12)
    0.02
    """
    den, ref = _pair(denoised, reference)
    s_ref = ref.sum(axis=(1, 2))
    s_den = den.sum(axis=(1, 2))
    if np.any(s_ref == 0):
        raise ConfigError("a reference frame sums to 0: the relative change is undefined")
    rel = (s_den - s_ref) / s_ref
    return {
        "relative_change": rel,
        "mean": float(rel.mean()),
        "max_abs": float(np.abs(rel).max()),
        "total": float((s_den.sum() - s_ref.sum()) / s_ref.sum()),
    }


def residual_whiteness(residual: Any, *, max_lag: int = 3) -> dict[str, Any]:
    """How white a residual is: normalised autocorrelations along ``y`` and ``x`` and a
    portmanteau statistic.

    Each frame's mean is removed; ``rho_d(k) = mean(r_i r_{i+k}) / mean(r_i^2)`` along axis
    ``d`` (pairs pooled over frames). For white noise ``sqrt(n_d(k)) rho_d(k)`` is about
    N(0, 1), so ``Q = sum_{d, k} n_d(k) rho_d(k)^2`` is about chi-square with ``2 max_lag``
    degrees of freedom (Box-Pierce; the Ljung-Box factor ``(n + 2)/(n - k)`` is 1 for maps of
    thousands of pixels). ``p_value`` is the chi-square tail probability; ``q_per_dof`` is a
    size-independent effect measure (about 1 for white noise).

    Returns
    -------
    dict
        ``rho_y``, ``rho_x`` (lists over lags 1..max_lag), ``lag1_y``, ``lag1_x``,
        ``lag1_max_abs``, ``q``, ``dof``, ``q_per_dof``, ``p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> white = np.random.default_rng(0).normal(size=(8, 64, 64))
    >>> abs(residual_whiteness(white)["lag1_x"]) < 0.02
    True
    """
    from scipy.stats import chi2

    r = _frames(residual)
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 1:
        raise ConfigError(f"max_lag must be an integer >= 1, got {max_lag!r}")
    n_t, ny, nx = r.shape
    if max_lag >= min(ny, nx):
        raise ConfigError(f"max_lag {max_lag} must be smaller than the map ({ny} x {nx})")
    r = r - r.mean(axis=(1, 2), keepdims=True)
    c0 = float(np.mean(r * r))
    if c0 == 0:
        raise ConfigError("the residual is identically zero (after removing frame means)")
    rho_y, rho_x, q = [], [], 0.0
    for k in range(1, max_lag + 1):
        py = r[:, k:, :] * r[:, :-k, :]
        px = r[:, :, k:] * r[:, :, :-k]
        ry, rx = float(py.mean()) / c0, float(px.mean()) / c0
        rho_y.append(ry)
        rho_x.append(rx)
        q += py.size * ry * ry + px.size * rx * rx
    dof = 2 * max_lag
    return {
        "rho_y": rho_y,
        "rho_x": rho_x,
        "lag1_y": rho_y[0],
        "lag1_x": rho_x[0],
        "lag1_max_abs": max(abs(rho_y[0]), abs(rho_x[0])),
        "q": float(q),
        "dof": dof,
        "q_per_dof": float(q) / dof,
        "p_value": float(chi2.sf(q, dof)),
    }


def denoise_metrics(
    denoised: Any,
    *,
    truth: Any = None,
    raw: Any = None,
    data_range: float | None = None,
    max_lag: int = 3,
) -> dict[str, Any]:
    """All quality measures of a denoised series, as a JSON-able dict.

    Parameters
    ----------
    denoised : array_like or DataArray
    truth : optional
        Ground truth (simulation, long exposure): ``psnr``, ``ssim``, ``mae``, ``rmse``, and
        the same for ``raw`` when given (``raw_psnr``...).
    raw : optional
        The noisy input: ``li_conservation`` (denoised vs raw frame sums; per-frame values
        dropped) and ``whiteness`` of ``raw - denoised``.
    data_range : float, optional
        For PSNR and SSIM (default: the truth's peak-to-peak); recorded as ``data_range``.
    """
    out: dict[str, Any] = {}
    if truth is not None:
        est, ref = _pair(denoised, truth)
        r = _range(ref, data_range)
        out["data_range"] = r
        out["psnr"] = psnr(est, ref, data_range=r)
        out["ssim"] = ssim(est, ref, data_range=r)
        out["mae"] = mae(est, ref)
        out["rmse"] = float(np.sqrt(mse(est, ref)))
        if raw is not None:
            raw_f, _ = _pair(raw, truth)
            out["raw_psnr"] = psnr(raw_f, ref, data_range=r)
            out["raw_ssim"] = ssim(raw_f, ref, data_range=r)
            out["raw_mae"] = mae(raw_f, ref)
    if raw is not None:
        den, raw_f = _pair(denoised, raw)
        cons = li_conservation(raw_f, den)
        out["li_conservation"] = {k: v for k, v in cons.items() if k != "relative_change"}
        out["whiteness"] = residual_whiteness(raw_f - den, max_lag=max_lag)
    if not out:
        raise ConfigError("denoise_metrics needs truth and/or raw to compare with")
    return out


def frame_metrics(
    denoised: Any,
    *,
    truth: Any = None,
    raw: Any = None,
    data_range: float | None = None,
) -> xr.Dataset:
    """Per-frame PSNR, SSIM and MAE (against ``truth``) and Li change (against ``raw``) as a
    Dataset with a ``time`` dim (frame index unless ``denoised`` has a ``time`` coordinate)."""
    den = _frames(denoised)
    n_t = den.shape[0]
    coords = {"time": np.arange(n_t, dtype=np.float64)}
    time_units = "frame"
    if isinstance(denoised, xr.DataArray) and "time" in denoised.dims and \
            denoised.sizes["time"] == n_t:
        coords = {"time": np.asarray(denoised["time"].values)}
        time_units = str(denoised["time"].attrs.get("units", "s"))
    data: dict[str, Any] = {}
    if truth is not None:
        est, ref = _pair(denoised, truth)
        r = _range(ref, data_range)
        err = ((est - ref) ** 2).mean(axis=(1, 2))
        with np.errstate(divide="ignore"):
            data["psnr"] = ("time", 10 * np.log10(r * r / err), {"units": "dB",
                                                                  "data_range": r})
        data["ssim"] = ("time", ssim_frames(est, ref, data_range=r), {"units": "1"})
        data["mae"] = ("time", np.abs(est - ref).mean(axis=(1, 2)), {"units": "1"})
    if raw is not None:
        rel = li_conservation(raw, denoised)["relative_change"]
        data["li_change"] = ("time", rel, {"units": "1",
                                           "long_name": "relative change of the frame sum"})
    if not data:
        raise ConfigError("frame_metrics needs truth and/or raw to compare with")
    ds = xr.Dataset(data, coords=coords)
    ds["time"].attrs["units"] = time_units
    return ds


__all__ = [
    "mse",
    "mae",
    "psnr",
    "ssim",
    "ssim_frames",
    "li_conservation",
    "residual_whiteness",
    "denoise_metrics",
    "frame_metrics",
]
