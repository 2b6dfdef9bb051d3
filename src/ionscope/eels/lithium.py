"""Lithium maps from Li-K / Co-M2,3 spectrum images: background, then MLLS or S_A/S_B.

This module chains the kernels of :mod:`~ionscope.eels.background`,
:mod:`~ionscope.eels.mlls` and :mod:`~ionscope.eels.windows` into the one call a user (and the
``ionscope eels lithium`` command) makes:

- ``method="mlls"``: a power law ``A E^-r`` fitted in the pre-edge ``background`` window is
  subtracted from every spectrum and from each reference, then every spectrum is fitted over
  ``fit_window`` to the references (MLLS); ``li_fraction = a_rich / (a_rich + a_poor)``.
- ``method="sasb"``: the S_A/S_B ratio of two background-subtracted windows, calibrated to a Li
  fraction with the references: ``x = (R - R0) / (R1 - R0)`` (Kikkawa et al., J. Phys. Chem. C
  119 (2015) 15823).

Both return a Dataset with ``li_fraction``, ``chi2`` (MLLS: reduced chi^2 of the edge fit;
S_A/S_B: reduced chi^2 of the background fit, the only fit that method makes) and ``mask``
(0 = ok; the codes of :data:`ionscope.eels.background.MASK_CODES`). Masked pixels are NaN in
``li_fraction`` and counted, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.eels.background import METHODS as BACKGROUND_METHODS
from ionscope.eels.background import subtract_powerlaw
from ionscope.eels.wrapping import spectrum_image
from ionscope.eels.mlls import mlls_fit
from ionscope.eels.windows import sasb_calibration, sasb_li_fraction, sasb_ratio
from ionscope.errors import ConfigError, DimensionError
from ionscope.validation import Options, validate_params

Window = tuple[float, float]
METHODS = ("mlls", "sasb")


def _reference(ref: xr.DataArray, name: str) -> xr.DataArray:
    if not isinstance(ref, xr.DataArray) or ref.dims != ("energy",):
        dims = getattr(ref, "dims", None)
        raise DimensionError(
            f"reference {name!r} must be a 1-D spectrum with dim 'energy', got dims {dims}; "
            "sum a reference spectrum image over its pixels first"
        )
    return ref.rename(name)


def _subtracted(da: xr.DataArray, background: Window | None, method: str) -> tuple[xr.DataArray, xr.Dataset | None]:
    if background is None:
        return da, None
    fit = subtract_powerlaw(da, background, method)
    return fit["signal"], fit


@validate_params({"method": [Options(METHODS)], "background_method": [Options(BACKGROUND_METHODS)],
                  "nonnegative": [bool], "derivatives": [bool]})
def li_fraction_map(
    da: xr.DataArray,
    li_rich: xr.DataArray,
    li_poor: xr.DataArray,
    extra: Mapping[str, xr.DataArray] | Sequence[xr.DataArray] = (),
    *,
    co_extra: Mapping[str, xr.DataArray] | Sequence[xr.DataArray] = (),
    method: str = "mlls",
    background: Window | None = (40.0, 52.0),
    fit_window: Window | None = None,
    window_a: Window | None = None,
    window_b: Window | None = None,
    background_method: str = "fit",
    nonnegative: bool = False,
    derivatives: bool = False,
) -> xr.Dataset:
    """Map the Li fraction of every spectrum of a spectrum image or series.

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectra in counts with ``energy`` (eV) last and any of ``time``, ``y``, ``x``,
        ``position`` in front; numpy- or dask-backed (lazy in, lazy out).
    li_rich, li_poor : xarray.DataArray
        1-D reference spectra (dim ``energy``) of the Li-rich end member (LiCoO2, x = 1) and
        the Li-poor one (a Li-free Co oxide of the same Co valence, x = 0), as measured (with
        background when ``background`` is given).
    extra : mapping or sequence of DataArray
        Further MLLS references without Co (e.g. the solid electrolyte).
    co_extra : mapping or sequence of DataArray
        Further MLLS references of Co-bearing phases (e.g. Co3O4 of the interfacial layer).
        They count in the Co total, so ``li_fraction = a_rich / (a_rich + a_poor + sum a_co)``
        stays Li per Co where such a phase is present.
    method : {"mlls", "sasb"}
        Multiple linear least squares, or the S_A/S_B ratio.
    background : (float, float) or None
        Pre-edge window (eV) of the power-law background; None if the spectra (and references)
        are already background-free.
    fit_window : (float, float), optional
        MLLS fit window (eV); default from the background window's end to the last channel.
    window_a, window_b : (float, float)
        S_A and S_B windows (eV), required for ``method="sasb"``.
    background_method : {"fit", "two-window"}
        Weighted log-log fit or Egerton's two-window estimate.
    nonnegative, derivatives : bool
        MLLS options: non-negative coefficients; first-derivative terms for small shifts.

    Returns
    -------
    xarray.Dataset
        ``li_fraction`` (1), ``li_fraction_stderr``, ``chi2`` and ``mask`` on the input's dims
        without ``energy``, plus the method's own variables (MLLS coefficients; S_A/S_B ratio).
    """
    da, energy = spectrum_image(da, "spectra")
    rich, poor = _reference(li_rich, "li_rich"), _reference(li_poor, "li_poor")
    params = {"method": method, "background_eV": background, "background_method": background_method}
    bg = None
    if method == "sasb":
        if window_a is None or window_b is None:
            raise ConfigError("the S_A/S_B method needs both --window-a LO:HI and --window-b LO:HI (eV)")
        r0, r1 = sasb_calibration(rich, poor, window_a, window_b, background, method=background_method)
        result = sasb_li_fraction(sasb_ratio(da, window_a, window_b, background, method=background_method), r0, r1)
        result = result.rename({"li_fraction_error": "li_fraction_stderr"})
        result.attrs.update(R0=float(r0), R1=float(r1))
        params.update(window_a_eV=window_a, window_b_eV=window_b, R0=float(r0), R1=float(r1))
    else:
        if fit_window is None:
            lo = background[1] if background is not None else float(energy[0])
            fit_window = (lo, float(energy[-1]))
        refs = {"li_rich": rich, "li_poor": poor}
        co_names = ["li_rich", "li_poor"]
        for group, is_co in ((extra, False), (co_extra, True)):
            items = group.items() if isinstance(group, Mapping) else ((str(r.name), r) for r in group)
            for name, ref in items:
                if name in refs:
                    raise ConfigError(f"reference name {name!r} is used twice; give each reference its own name")
                refs[name] = _reference(ref, name)
                co_names += [name] if is_co else []
        signal, bg = _subtracted(da, background, background_method)
        refs = {name: _subtracted(ref, background, background_method)[0] for name, ref in refs.items()}
        mask = bg["mask"] if bg is not None else xr.zeros_like(da.isel(energy=0), dtype=np.int8)
        fit = mlls_fit(
            signal.where(mask == 0, 0.0), refs, fit_window=fit_window, nonnegative=nonnegative,
            derivatives=derivatives, rich="li_rich", poor="li_poor",
        )
        result = fit.copy()
        if len(co_names) > 2:
            result["li_fraction"], result["li_fraction_stderr"] = _li_per_co(fit, co_names)
        for name in ("li_fraction", "li_fraction_stderr", "chi2"):
            result[name] = result[name].where(mask == 0)
        result["mask"] = mask
        params.update(fit_window_eV=fit_window, references=list(refs), co_references=co_names,
                      nonnegative=nonnegative, derivatives=derivatives)
    result["li_fraction"].attrs.update(units="1", long_name="Li fraction x in LixCoO2")
    result.attrs["primary"] = "li_fraction"
    # the whole chain on the maps themselves: the spectra's history (their load), the
    # background subtraction and the fit, then this step
    history = provenance(da)
    inner = provenance(bg)[len(history):] if method != "sasb" and bg is not None else []
    inner += [step for step in provenance(result) if step not in history and step not in inner]
    return with_provenance(result, "ionscope.eels.li_fraction_map", params, inputs=[da, li_rich, li_poor],
                           history=history + inner, variables=("li_fraction", "li_fraction_stderr", "chi2"))


def _li_per_co(fit: xr.Dataset, co_names: list[str]) -> tuple[xr.DataArray, xr.DataArray]:
    """Li per Co, ``a_rich / sum of Co-phase coefficients``, and its first-order standard error
    (coefficient errors taken as independent)."""
    a = fit["coefficients"].sel(component=co_names)
    err = fit["stderr"].sel(component=co_names)
    total = a.sum("component")
    rich = a.sel(component="li_rich")
    x = rich / total
    grad = xr.where(a.component == "li_rich", (total - rich) / total**2, -rich / total**2)
    stderr = np.sqrt(((grad * err) ** 2).sum("component"))
    return x.drop_vars("component", errors="ignore"), stderr.drop_vars("component", errors="ignore")


def li_fraction_summary(result: xr.Dataset) -> dict:
    """Mean, percentiles and masked-pixel count of a :func:`li_fraction_map` result.

    Computes: loads ``li_fraction``, ``mask`` and ``chi2``.
    """
    x = np.asarray(result["li_fraction"].values, dtype=np.float64)
    mask = np.asarray(result["mask"].values) != 0
    good = x[np.isfinite(x)]
    levels = (5, 25, 50, 75, 95)
    summary = {"pixels": int(x.size), "masked_pixels": int(mask.sum()), "fitted_pixels": int(good.size)}
    if not good.size:  # every pixel masked: say so instead of inventing numbers
        return summary | {"li_fraction_mean": None, "li_fraction_std": None,
                          "li_fraction_percentiles": None, "chi2_median": None}
    return summary | {
        "li_fraction_mean": float(good.mean()),
        "li_fraction_std": float(good.std()),
        "li_fraction_percentiles": {f"p{p}": float(v) for p, v in zip(levels, np.percentile(good, levels))},
        "chi2_median": float(np.nanmedian(result["chi2"].values)),
    }
