r"""Energy-window integrals, edge maps and the S_A/S_B ratio method for Li next to Co-M.

Window integrals
----------------
A spectrum is treated as a histogram: channel ``i`` (centre :math:`E_i`, width :math:`d`)
holds :math:`y_i` counts spread uniformly over :math:`[E_i - d/2, E_i + d/2]`. The integral
over :math:`[E_{lo}, E_{hi}]` is the exact integral of this piecewise-constant density,

.. math:: S = \sum_i f_i\, y_i, \qquad
          f_i = |[E_i - d/2, E_i + d/2] \cap [E_{lo}, E_{hi}]| / d \in [0, 1],

in counts, so windows may start and end inside a channel. With a power-law background
:math:`B_i = A E_i^{-r}` (:mod:`ionscope.eels.background`) the signal is
:math:`S = \sum_i f_i (y_i - B_i)` and its variance from Poisson statistics is

.. math:: \mathrm{Var}(S) = \sum_i f_i^2 y_i + g^T C g, \qquad
          g = \Big(\sum_i f_i B_i,\; -\sum_i f_i B_i \ln E_i\Big),

with :math:`C` the covariance of :math:`(\ln A, r)` from the background window (independent
of the signal channels, because the windows must not overlap). Two windows share the
background, so their covariance is :math:`\sum_i f_i f'_i y_i + g^T C g'`.

S_A/S_B ratio
-------------
Li-K (onset ~55 eV) overlaps Co-M2,3 (~60 eV). Kikkawa et al. separate them with two
background-subtracted windows: :math:`S_A` spans the Li-K onset (Li-K + Co-M) and :math:`S_B`
a higher-loss range dominated by the Co-M tail. Their ratio :math:`R = S_A/S_B` is calibrated
on a Li-free Co oxide (:math:`R_0`) and on LiCoO2 (:math:`R_1`), so that

.. math:: x = \frac{R - R_0}{R_1 - R_0}, \qquad
          \mathrm{Var}(R) = \frac{\mathrm{Var}(S_A) - 2 R\,\mathrm{Cov}(S_A, S_B)
          + R^2 \mathrm{Var}(S_B)}{S_B^2}.

Mask codes are those of :mod:`ionscope.eels.background` (0 ok, 1 non-positive counts in the
background window, 2 background fit failed, 3 :math:`S_B \le 0`).

References
----------
J. Kikkawa et al., J. Phys. Chem. C 119 (2015) 15823 (S_A/S_B separation of Li-K and Co-M).
R.F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), section 4.5 (window integrals and their statistical error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import provenance, units_of, with_provenance
from ionscope.eels.background import (
    MASK_OK,
    MASK_RATIO_UNDEFINED,
    METHODS,
    estimate_powerlaw,
    mask_flags,
    powerlaw_model,
)
from ionscope.eels.energy import check_window, energy_vector
from ionscope.eels.wrapping import finish, lift, spectra_array, spectrum_image
from ionscope.errors import ConfigError, InputError
from ionscope.validation import Options, validate_params

Window = Sequence[float]


# --------------------------------------------------------------------------- kernels


def window_weights(energy: Any, window: Window, *, what: str = "window") -> np.ndarray:
    """Fraction ``f_i`` of each channel that lies inside ``window`` (eV), shape (E,), float64."""
    e, d = energy_vector(energy)
    lo, hi = check_window(e, window, what=what)
    overlap = np.minimum(hi, e + d / 2) - np.maximum(lo, e - d / 2)
    return np.clip(overlap / d, 0.0, 1.0)


def window_integral(energy: Any, spectra: Any, window: Window) -> np.ndarray:
    r"""Counts in an energy window with fractional edge channels.

    Parameters
    ----------
    energy : array_like, shape (E,)
        Channel centres, eV (uniform).
    spectra : array_like, shape (..., E)
        Counts per channel.
    window : (float, float)
        Integration range, eV; inside the recorded range and at least 2 channels wide.

    Returns
    -------
    numpy.ndarray, shape (...)
        :math:`\sum_i f_i y_i` (counts, float64): the exact integral of the piecewise-constant
        (histogram) spectrum over the window.

    Examples
    --------
    >>> e = np.arange(10.0)          # channels cover [-0.5, 0.5], [0.5, 1.5], ...
    >>> float(window_integral(e, np.ones(10), (2.25, 5.0)))
    2.75
    """
    w = window_weights(energy, window)
    x = spectra_array(spectra, w.size)
    return x.astype(np.float64, copy=False) @ w


def _check_disjoint(
    background: Window | None, windows: Sequence[Window], names: Sequence[str]
) -> None:
    if background is None:
        return
    blo, bhi = (float(v) for v in background)
    for win, name in zip(windows, names):
        lo, hi = (float(v) for v in win)
        if lo < bhi and hi > blo:
            raise ConfigError(
                f"{name} {lo:g}-{hi:g} eV overlaps the background window {blo:g}-{bhi:g} eV; "
                "fit the background on pre-edge channels only and integrate above them"
            )


def edge_integrals(
    energy: Any,
    spectra: Any,
    windows: Sequence[Window],
    background: Window | None = None,
    method: str = "fit",
    *,
    weighted: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted integrals over several windows, with their Poisson covariance.

    Parameters
    ----------
    energy, spectra : array_like
        As for :func:`window_integral`.
    windows : sequence of (float, float)
        K integration windows, eV.
    background : (float, float), optional
        Pre-edge power-law window, eV; no subtraction if None. Must not overlap the windows.
    method : {"fit", "two-window"}
        Background estimator (see :mod:`ionscope.eels.background`).
    weighted : bool
        Poisson weights for the ``"fit"`` method.

    Returns
    -------
    S : numpy.ndarray, shape (..., K)
        Integrals, counts.
    cov : numpy.ndarray, shape (..., K, K)
        Their covariance, counts^2 (see the module docstring).
    mask : numpy.ndarray, shape (...)
        int8 codes of the background estimate (0, 1, 2); S and cov are NaN where != 0.
    chi2 : numpy.ndarray, shape (...)
        Reduced chi-squared of the background in its window (NaN without background or
        where masked).
    """
    e, _ = energy_vector(energy)
    x = spectra_array(spectra, e.size)
    names = [f"window {k + 1}" for k in range(len(windows))]
    f = np.stack([window_weights(e, w, what=n) for w, n in zip(windows, names)], axis=-1)  # (E, K)
    _check_disjoint(background, windows, names)
    lead = x.shape[:-1]
    flat = x.reshape(-1, e.size)
    cols = np.flatnonzero(f.any(axis=1))  # only the channels inside some window
    e, f = e[cols], f[cols]
    y = flat[:, cols].astype(np.float64)
    counts = np.maximum(y, 0.0)
    cov = np.einsum("ek,el,ne->nkl", f, f, counts)
    if background is None:
        k = f.shape[1]
        return ((y @ f).reshape(*lead, k), cov.reshape(*lead, k, k), np.zeros(lead, np.int8),
                np.full(lead, np.nan))
    law = estimate_powerlaw(np.asarray(energy, dtype=np.float64), flat, background, method,
                            weighted=weighted)
    model = powerlaw_model(e, law.A, law.r)  # (N, E)
    signal = (y - model) @ f
    g = np.stack([model @ f, -(model * np.log(np.where(e > 0, e, 1.0))) @ f], axis=-1)  # (N, K, 2)
    cov = cov + g @ law.cov @ np.swapaxes(g, -1, -2)
    bad = law.mask != MASK_OK
    signal[bad] = np.nan
    cov[bad] = np.nan
    k = f.shape[1]
    return (signal.reshape(*lead, k), cov.reshape(*lead, k, k), law.mask.reshape(lead),
            law.quality.reshape(lead))


def ratio_kernel(
    energy: Any,
    spectra: Any,
    window_a: Window,
    window_b: Window,
    background: Window | None = None,
    method: str = "fit",
    *,
    weighted: bool = True,
) -> tuple[np.ndarray, ...]:
    """S_A/S_B ratio of every spectrum with its propagated Poisson error.

    Returns
    -------
    ratio, ratio_error, s_a, s_a_error, s_b, s_b_error : numpy.ndarray, shape (...)
        Float64; counts for the integrals.
    chi2 : numpy.ndarray, shape (...)
        Reduced chi-squared of the power-law background in its window (NaN if none).
    mask : numpy.ndarray, shape (...)
        int8 codes (0 ok, 1/2 background failed, 3 S_B <= 0); everything is NaN where != 0.
    """
    s, cov, mask, chi2 = edge_integrals(energy, spectra, [window_a, window_b], background, method,
                                  weighted=weighted)
    sa, sb = s[..., 0], s[..., 1]
    va, vb, cab = cov[..., 0, 0], cov[..., 1, 1], cov[..., 0, 1]
    mask = np.where((mask == MASK_OK) & ~(sb > 0), MASK_RATIO_UNDEFINED, mask).astype(np.int8)
    ok = mask == MASK_OK
    sb_safe = np.where(ok, sb, 1.0)
    ratio = np.where(ok, sa / sb_safe, np.nan)
    var = (va - 2 * ratio * cab + ratio**2 * vb) / sb_safe**2
    ratio_error = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)
    sa, sb = np.where(ok, sa, np.nan), np.where(ok, sb, np.nan)
    sa_err = np.where(ok, np.sqrt(np.maximum(va, 0.0)), np.nan)
    sb_err = np.where(ok, np.sqrt(np.maximum(vb, 0.0)), np.nan)
    chi2 = np.where(ok, chi2, np.nan)
    return ratio, ratio_error, sa, sa_err, sb, sb_err, chi2, mask


def sasb_li_fraction(R: Any, R0: float, R1: float) -> Any:
    r"""Li fraction from the calibrated ratio, :math:`x = (R - R_0)/(R_1 - R_0)`.

    Lazy: stays lazy on dask-backed input.

    Parameters
    ----------
    R : float, numpy.ndarray, xarray.DataArray or xarray.Dataset
        Ratio :math:`S_A/S_B`. A Dataset from :func:`sasb_ratio` gets two variables added,
        ``li_fraction`` and ``li_fraction_error`` (:math:`\sigma_R/|R_1 - R_0|`, calibration
        uncertainty not included); a DataArray becomes the DataArray ``li_fraction``; plain
        numbers and arrays give the formula's value.
    R0, R1 : float
        Ratios of the Li-free reference (x = 0) and of LiCoO2 (x = 1), e.g. from
        :func:`sasb_calibration`.

    Returns
    -------
    Same kind as ``R``. Values are not clipped to [0, 1] (noise can push them outside).

    References
    ----------
    J. Kikkawa et al., J. Phys. Chem. C 119 (2015) 15823.

    Examples
    --------
    >>> sasb_li_fraction(np.array([1.2, 1.5, 1.8]), 1.2, 1.8).tolist()
    [0.0, 0.5, 1.0]
    """
    R0, R1 = float(R0), float(R1)
    if not (np.isfinite(R0) and np.isfinite(R1)) or R1 == R0:
        raise InputError(
            f"calibration ratios R0={R0:g} and R1={R1:g} must be finite and different; check the "
            "reference spectra and windows"
        )
    params = {"R0": R0, "R1": R1}
    if isinstance(R, xr.Dataset):
        x = (R["ratio"] - R0) / (R1 - R0)
        out = R.assign(
            li_fraction=x.assign_attrs(units="1", long_name="Li fraction x in LixCoO2 (S_A/S_B)"),
            li_fraction_error=(R["ratio_error"] / abs(R1 - R0)).assign_attrs(
                units="1", long_name="standard error of the Li fraction (Poisson)"),
        )
        return with_provenance(out, "ionscope.eels.sasb_li_fraction", params, [])
    if isinstance(R, xr.DataArray):
        x = ((R - R0) / (R1 - R0)).rename("li_fraction")
        x.attrs = {"units": "1", "long_name": "Li fraction x in LixCoO2 (S_A/S_B)",
                   "provenance": R.attrs.get("provenance", "[]")}
        return with_provenance(x, "ionscope.eels.sasb_li_fraction", params, [])
    return (np.asarray(R, dtype=np.float64) - R0) / (R1 - R0)


# --------------------------------------------------------------------------- wrappers


def _params(method: str, weighted: bool, **windows: Window | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: None if w is None else [float(v) for v in w] for k, w in windows.items()
    }
    out.update(method=method, weighted=bool(weighted))
    return out


def _validate(da: xr.DataArray, method: str, background: Window | None, **windows: Window):
    da, energy = spectrum_image(da, "spectrum image")
    for name, win in windows.items():
        check_window(energy, win, what=name.replace("_", " "))
    if background is not None:
        check_window(energy, background, what="background window")
        _check_disjoint(background, list(windows.values()), [n.replace("_", " ") for n in windows])
    return da, energy


_BACKGROUND_CONSTRAINTS = {"method": [Options(METHODS)], "weighted": [bool]}


@validate_params(_BACKGROUND_CONSTRAINTS)
def window_map(
    da: xr.DataArray,
    window: Window,
    *,
    background: Window | None = None,
    method: str = "fit",
    weighted: bool = True,
) -> xr.Dataset:
    """Map of the (background-subtracted) counts in one energy window, with Poisson errors.

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectrum image in counts, dims ``(..., energy)`` (see :mod:`ionscope.eels.wrapping`).
    window : (float, float)
        Integration window, eV (fractional channels at the ends).
    background : (float, float), optional
        Pre-edge power-law window, eV; no subtraction if None.
    method : {"fit", "two-window"}
        Background estimator.
    weighted : bool
        Poisson weights for the ``"fit"`` method.

    Returns
    -------
    xarray.Dataset
        ``integral`` (counts), ``integral_error`` (standard error, counts), ``chi2``
        (reduced chi-squared of the background in its window; NaN without background) and
        ``mask`` (int8: 0 ok, 1 non-positive counts in the background window, 2 fit failed)
        over the leading dims.
    """
    history, src = provenance(da), da
    da, energy = _validate(da, method, background, window=window)
    win = tuple(float(v) for v in window)
    bg = None if background is None else tuple(float(v) for v in background)

    def kernel(x: np.ndarray):
        s, cov, mask, chi2 = edge_integrals(energy, x, [win], bg, method, weighted=weighted)
        return s[..., 0], np.sqrt(np.maximum(cov[..., 0, 0], 0.0)), chi2, mask

    s, err, chi2, mask = lift(kernel, [da.drop_vars("energy")], [["energy"]], [[], [], [], []],
                              [np.float64, np.float64, np.float64, np.int8])
    unit = units_of(da)
    ds = xr.Dataset({
        "integral": finish(s, da, name="integral", units=unit,
                           long_name=f"counts in {win[0]:g}-{win[1]:g} eV"
                           + ("" if bg is None else " above the power-law background")),
        "integral_error": finish(err, da, name="integral_error", units=unit,
                                 long_name="standard error of the window integral (Poisson)"),
        "chi2": finish(chi2, da, name="chi2", units="1",
                       long_name="reduced chi-squared of the power-law background (NaN if none)"),
        "mask": finish(mask, da, name="mask", units="1", long_name="reason code (0 = ok)",
                       attrs=mask_flags()),
    })
    params = _params(method, weighted, window_eV=win, background_eV=bg)
    return with_provenance(ds, "ionscope.eels.window_map", params, [src], history=history)


@validate_params(_BACKGROUND_CONSTRAINTS)
def sasb_ratio(
    da: xr.DataArray,
    window_a: Window,
    window_b: Window,
    background: Window | None,
    *,
    method: str = "fit",
    weighted: bool = True,
) -> xr.Dataset:
    """Per-pixel ratio :math:`R = S_A/S_B` of two background-subtracted window integrals.

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectrum image in counts, dims ``(..., energy)`` (see :mod:`ionscope.eels.wrapping`).
    window_a : (float, float)
        Window spanning the Li-K onset (Li-K + Co-M), eV.
    window_b : (float, float)
        Higher-loss window dominated by the Co-M tail, eV.
    background : (float, float) or None
        Pre-edge power-law window, eV (below both windows, not overlapping them); None
        integrates the raw counts.
    method, weighted
        As for :func:`window_map`.

    Returns
    -------
    xarray.Dataset
        ``ratio`` and ``ratio_error`` (1), ``S_A``, ``S_A_error``, ``S_B``, ``S_B_error``
        (counts), ``chi2`` (reduced chi-squared of the background fit in its window; NaN
        without background) and ``mask`` (int8: 0 ok, 1 non-positive counts in the background
        window,
        2 background fit failed, 3 S_B <= 0; all values NaN where mask != 0). Feed it to
        :func:`sasb_li_fraction`.

    References
    ----------
    J. Kikkawa et al., J. Phys. Chem. C 119 (2015) 15823.
    """
    history, src = provenance(da), da
    da, energy = _validate(da, method, background, window_a=window_a, window_b=window_b)
    wa, wb = tuple(float(v) for v in window_a), tuple(float(v) for v in window_b)
    bg = None if background is None else tuple(float(v) for v in background)

    def kernel(x: np.ndarray):
        return ratio_kernel(energy, x, wa, wb, bg, method, weighted=weighted)

    outs = lift(kernel, [da.drop_vars("energy")], [["energy"]], [[]] * 8,
                [np.float64] * 7 + [np.int8])
    unit = units_of(da)
    names = [
        ("ratio", "1", "S_A/S_B"),
        ("ratio_error", "1", "standard error of S_A/S_B (Poisson)"),
        ("S_A", unit, f"background-subtracted counts in {wa[0]:g}-{wa[1]:g} eV"),
        ("S_A_error", unit, "standard error of S_A (Poisson)"),
        ("S_B", unit, f"background-subtracted counts in {wb[0]:g}-{wb[1]:g} eV"),
        ("S_B_error", unit, "standard error of S_B (Poisson)"),
        ("chi2", "1", "reduced chi-squared of the power-law background (NaN if none)"),
    ]
    data = {n: finish(o, da, name=n, units=u, long_name=ln) for o, (n, u, ln) in zip(outs, names)}
    data["mask"] = finish(outs[-1], da, name="mask", units="1", long_name="reason code (0 = ok)",
                          attrs=mask_flags())
    params = _params(method, weighted, window_a_eV=wa, window_b_eV=wb, background_eV=bg)
    ds = xr.Dataset(data)
    return with_provenance(ds, "ionscope.eels.sasb_ratio", params, [src], history=history)


def _reference_ratio(ref: xr.DataArray, what: str, wa, wb, background, method, weighted) -> float:
    ref, energy = _validate(ref, method, background, window_a=wa, window_b=wb)
    lead = [d for d in ref.dims if d != "energy"]
    spectrum = np.asarray((ref.sum(lead) if lead else ref).values, dtype=np.float64)
    out = ratio_kernel(energy, spectrum, wa, wb, background, method, weighted=weighted)
    code = int(out[-1])
    if code != MASK_OK:
        from ionscope.eels.background import MASK_CODES

        raise InputError(
            f"the {what} reference gives no S_A/S_B ratio ({MASK_CODES[code].replace('_', ' ')}); "
            "check its windows and background range"
        )
    return float(out[0])


@validate_params(_BACKGROUND_CONSTRAINTS)
def sasb_calibration(
    ref_rich: xr.DataArray,
    ref_poor: xr.DataArray,
    window_a: Window,
    window_b: Window,
    background: Window | None,
    *,
    method: str = "fit",
    weighted: bool = True,
) -> tuple[float, float]:
    """Calibration ratios :math:`(R_0, R_1)` of the S_A/S_B method from two references.

    Computes: loads the references (each is summed to one spectrum).

    Parameters
    ----------
    ref_rich : xarray.DataArray
        Spectrum (or spectrum image, summed over its leading dims) of pristine LiCoO2,
        x = 1, in counts.
    ref_poor : xarray.DataArray
        Li-free Co oxide of the same Co valence, x = 0, in counts.
    window_a, window_b, background, method, weighted
        As for :func:`sasb_ratio` (use the same values).

    Returns
    -------
    (R0, R1) : tuple of float
        Ratio of the Li-poor and of the Li-rich reference.

    Raises
    ------
    InputError
        If a reference gives no ratio (masked) or both give the same ratio.
    """
    r1 = _reference_ratio(ref_rich, "Li-rich", window_a, window_b, background, method, weighted)
    r0 = _reference_ratio(ref_poor, "Li-poor", window_a, window_b, background, method, weighted)
    if not abs(r1 - r0) > 1e-9 * max(abs(r0), abs(r1), 1e-300):
        raise InputError(
            f"the Li-rich and Li-poor references give the same ratio ({r0:g}); choose windows in "
            "which their spectra differ"
        )
    return r0, r1


__all__ = [
    "window_weights",
    "window_integral",
    "edge_integrals",
    "ratio_kernel",
    "window_map",
    "sasb_ratio",
    "sasb_calibration",
    "sasb_li_fraction",
]
