"""Lithium maps from Li-K / Co-M2,3 spectrum images: background, then MLLS or S_A/S_B.

This module chains the kernels of :mod:`~ionscope.eels.background`,
:mod:`~ionscope.eels.mlls` and :mod:`~ionscope.eels.windows` into the one call a user (and the
``ionscope eels lithium`` command) makes:

- ``method="mlls"``: a power law ``A E^-r`` fitted in the pre-edge ``background`` window is
  subtracted from every spectrum; each reference gets the same fit, or is used as given, as
  ``reference_background`` says (``"auto"``: decided per reference from its pre-edge and its
  energy coverage); the references are resampled onto the spectrum image's channels over
  ``fit_window`` and every spectrum is fitted to them (MLLS);
  ``li_fraction = a_rich / (a_rich + a_poor)``.
- ``method="sasb"``: the S_A/S_B ratio of two background-subtracted windows, calibrated to a Li
  fraction with the references (each on its own energy axis, its background handled the same
  way): ``x = (R - R0) / (R1 - R0)`` (Kikkawa et al., J. Phys. Chem. C 119 (2015) 15823).

Both return a Dataset with ``li_fraction``, ``chi2`` (MLLS: reduced chi^2 of the edge fit;
S_A/S_B: reduced chi^2 of the background fit, the only fit that method makes) and ``mask``
(0 = ok; the codes of :data:`ionscope.eels.background.MASK_CODES`). Masked pixels are NaN in
``li_fraction`` and counted, never silently dropped. What was decided for each reference's
background is in ``attrs["reference_background"]`` (JSON) and in :func:`li_fraction_summary`.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.eels.background import METHODS as BACKGROUND_METHODS
from ionscope.eels.background import (
    MASK_CODES,
    MASK_OK,
    MASK_RATIO_UNDEFINED,
    REFERENCE_BACKGROUND,
    estimate_powerlaw,
    reference_background_decision,
    subtract_background,
    subtract_powerlaw,
)
from ionscope.eels.energy import _window_bounds, energy_ev, resample_spectrum, window_slice
from ionscope.eels.mlls import mlls_fit
from ionscope.eels.windows import ratio_kernel, sasb_li_fraction, sasb_ratio
from ionscope.eels.wrapping import spectrum_image
from ionscope.errors import (
    ConfigError,
    DimensionError,
    EmptyDataError,
    InputError,
    IonscopeError,
    IonscopeWarning,
    NonFiniteError,
)
from ionscope.validation import Options, validate_params

Window = tuple[float, float]
METHODS = ("mlls", "sasb")
_NONE_HINT = "if it is background-subtracted already, use --reference-background none (or auto)"


# --------------------------------------------------------------------------- inputs


def _label(name: str | None, sources: Mapping[str, Any] | None) -> str:
    """How messages name an input: ``the spectrum image (FILE)`` or ``reference NAME (FILE)``."""
    source = (sources or {}).get("spectra" if name is None else name)
    what = "the spectrum image" if name is None else f"reference {name}"
    return f"{what} ({source})" if source else what


@contextlib.contextmanager
def _about(label: str) -> Iterator[None]:
    """Errors raised inside name the input ``label`` (prefixed unless they already do)."""
    try:
        yield
    except IonscopeError as exc:
        if label in str(exc) or getattr(exc, "parameter", None) is not None:
            raise
        raise type(exc)(f"{label}: {exc}") from exc


class _Reference(NamedTuple):
    name: str
    label: str
    file: str | None
    energy: np.ndarray
    dispersion: float
    values: np.ndarray
    units: str


def _reference(ref: Any, name: str, sources: Mapping[str, Any] | None) -> _Reference:
    """Check one reference spectrum: 1-D along a calibrated, uniform ``energy``, finite, not
    all zero. Every error names it (``reference NAME (FILE)``)."""
    label = _label(name, sources)
    if not isinstance(ref, xr.DataArray) or ref.dims != ("energy",):
        dims = getattr(ref, "dims", None)
        raise DimensionError(
            f"{label} must be a 1-D spectrum with dim 'energy', got dims {dims}; "
            "sum a reference spectrum image over its pixels first"
        )
    if ref.size < 2:
        raise InputError(f"{label} has {ref.size} channel(s); a reference spectrum needs at least 2")
    with _about(label):
        energy, dispersion = energy_ev(ref, label)
    values = np.asarray(ref.values, dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise NonFiniteError(f"{label} holds {bad} NaN/inf value(s); clean or interpolate it first")
    if not np.any(values):
        raise EmptyDataError(f"{label} is all zero ({values.size} channels); check the file and the variable")
    source = (sources or {}).get(name)
    return _Reference(name, label, None if source is None else str(source), energy, dispersion, values,
                      str(ref.attrs.get("units", "counts")))


def _window_on(energy: np.ndarray, d: float, window: Window, what: str, label: str) -> Window:
    """``window`` (eV) checked to be finite, increasing and inside the range recorded by the
    axis ``energy`` (dispersion ``d``) of the input ``label``."""
    return _window_bounds(energy, d, window, f"the {what}", label)


def _covers(ref: _Reference, window: Window, what: str, needs: str) -> None:
    """Refuse a reference whose recorded range does not hold ``window``."""
    e, d = ref.energy, ref.dispersion
    tol = 1e-6 * d
    if e[0] - d / 2 > window[0] + tol or e[-1] + d / 2 < window[1] - tol:
        raise InputError(
            f"{ref.label} covers {e[0]:g}-{e[-1]:g} eV but {what} "
            f"{window[0]:g}-{window[1]:g} eV needs it; {needs}"
        )


def _background_of(
    ref: _Reference, background: Window | None, mode: str, method: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """A reference without its background, as ``mode`` decides, and what was decided."""
    decision = reference_background_decision(ref.energy, ref.values, background, mode, method)
    info: dict[str, Any] = {
        "file": ref.file, "decision": decision.decision, "why": decision.why,
        "covers_eV": [float(ref.energy[0]), float(ref.energy[-1])], "dispersion_eV": float(ref.dispersion),
    }
    if decision.decision == "none":
        return ref.values, info
    if background is None:
        raise ConfigError(
            f"{ref.label}: --reference-background fit needs a background window; give --background LO:HI, "
            "or use --reference-background none (or auto)"
        )
    _covers(ref, background, "the background window", f"its background cannot be fitted there - {_NONE_HINT}")
    with _about(ref.label):
        law = estimate_powerlaw(ref.energy, ref.values, background, method)
    code = int(law.mask)
    if code == MASK_OK:
        signal = subtract_background(ref.energy, ref.values, law, start=background[0])
    if code != MASK_OK or not np.all(np.isfinite(signal)):
        reason = MASK_CODES[code].replace("_", " ") if code != MASK_OK else "non-finite result"
        raise InputError(
            f"{ref.label}: the power-law background fit in {background[0]:g}-{background[1]:g} eV failed "
            f"({reason}; its pre-edge may be background-subtracted already); {_NONE_HINT}"
        )
    info["r"] = float(law.r)
    return signal, info


def _named_references(group: Mapping[str, Any] | Sequence[Any]) -> list[tuple[str, Any]]:
    return list(group.items()) if isinstance(group, Mapping) else [(str(r.name), r) for r in group]


# --------------------------------------------------------------------------- the map


@validate_params({"method": [Options(METHODS)], "background_method": [Options(BACKGROUND_METHODS)],
                  "reference_background": [Options(REFERENCE_BACKGROUND)],
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
    reference_background: str = "auto",
    nonnegative: bool = False,
    derivatives: bool = False,
    sources: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Map the Li fraction of every spectrum of a spectrum image or series.

    Lazy: stays lazy on dask-backed input (computed block by block when the result is); the
    references are loaded.

    Parameters
    ----------
    da : xarray.DataArray
        Spectra in counts with ``energy`` (eV) last and any of ``time``, ``y``, ``x``,
        ``position`` in front; numpy- or dask-backed (lazy in, lazy out). Raw: the
        ``background`` window is fitted on every spectrum.
    li_rich, li_poor : xarray.DataArray
        1-D reference spectra (dim ``energy``, counts per channel) of the Li-rich end member
        (LiCoO2, x = 1) and the Li-poor one (a Li-free Co oxide of the same Co valence, x = 0),
        raw or background-subtracted (see ``reference_background``), each on its own energy
        axis (any range and uniform step) as long as it covers the fit window (MLLS) or the
        S_A and S_B windows.
    extra : mapping or sequence of DataArray
        Further MLLS references without Co (e.g. the solid electrolyte).
    co_extra : mapping or sequence of DataArray
        Further MLLS references of Co-bearing phases (e.g. Co3O4 of the interfacial layer).
        They count in the Co total, so ``li_fraction = a_rich / (a_rich + a_poor + sum a_co)``
        stays Li per Co where such a phase is present.
    method : {"mlls", "sasb"}
        Multiple linear least squares, or the S_A/S_B ratio.
    background : (float, float) or None
        Pre-edge window (eV) of the spectra's power-law background; None if the spectra are
        already background-free.
    fit_window : (float, float), optional
        MLLS fit window (eV). Default: from the background window's end (or the first channel)
        to the last channel, narrowed (with an :class:`~ionscope.errors.IonscopeWarning`) to
        the range every reference covers. A given window that a reference does not cover is
        refused.
    window_a, window_b : (float, float)
        S_A and S_B windows (eV), required for ``method="sasb"``.
    background_method : {"fit", "two-window"}
        Weighted log-log fit or Egerton's two-window estimate.
    reference_background : {"auto", "fit", "none"}
        The references' background: ``"fit"`` subtracts a power law fitted in the
        ``background`` window from each (the reference must cover it); ``"none"`` uses them as
        given (background-subtracted already); ``"auto"`` (default) decides per reference with
        :func:`~ionscope.eels.background.reference_background_decision` (no fit when the
        reference does not cover the window, its pre-edge is flat around zero or holds
        channels <= 0, or no decaying power law fits it).
    nonnegative, derivatives : bool
        MLLS options: non-negative coefficients; first-derivative terms for small shifts.
    sources : mapping, optional
        Where the inputs came from (file names), for the messages and the record: key
        ``"spectra"`` for ``da`` and the reference names (``"li_rich"``, ``"li_poor"``, the
        keys of ``extra`` / ``co_extra``).

    Returns
    -------
    xarray.Dataset
        ``li_fraction`` (1), ``li_fraction_stderr``, ``chi2`` and ``mask`` on the input's dims
        without ``energy``, plus the method's own variables (MLLS coefficients; S_A/S_B ratio).
        ``attrs["reference_background"]``: JSON of ``{name: {"file", "decision", "why",
        "covers_eV", "dispersion_eV"[, "r"]}}``; ``attrs["reference_background_mode"]``.

    Notes
    -----
    MLLS: each reference (background handled) is resampled onto the spectrum image's channels
    in the fit window by :func:`~ionscope.eels.energy.resample_spectrum` - as a density, so
    counts per channel follow the channel width (area-preserving rebinning of a finer
    reference, linear interpolation otherwise; a reference more than 2x coarser is refused).
    """
    image = _label(None, sources)
    with _about(image):
        da, energy = spectrum_image(da, image)
    d_img = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
    if background is not None:
        background = _window_on(energy, d_img, background, "background window", image)
    items = [("li_rich", li_rich), ("li_poor", li_poor)]
    co_names = ["li_rich", "li_poor"]
    if method != "sasb":
        for group, is_co in ((extra, False), (co_extra, True)):
            for name, ref in _named_references(group):
                if name in dict(items):
                    raise ConfigError(f"reference name {name!r} is used twice; give each reference its own name")
                items.append((name, ref))
                co_names += [name] if is_co else []
    refs = [_reference(ref, name, sources) for name, ref in items]
    params = {"method": method, "background_eV": background, "background_method": background_method,
              "reference_background": reference_background}
    bg = None
    decisions: dict[str, dict[str, Any]] = {}
    if method == "sasb":
        if window_a is None or window_b is None:
            raise ConfigError("the S_A/S_B method needs both --window-a LO:HI and --window-b LO:HI (eV)")
        window_a = _window_on(energy, d_img, window_a, "S_A window", image)
        window_b = _window_on(energy, d_img, window_b, "S_B window", image)
        ratios = []
        for ref in refs:
            ratio, decisions[ref.name] = _reference_ratio(ref, window_a, window_b, background, reference_background,
                                                          background_method)
            ratios.append(ratio)
        r1, r0 = ratios
        if not abs(r1 - r0) > 1e-9 * max(abs(r0), abs(r1), 1e-300):
            raise InputError(
                f"{refs[0].label} and {refs[1].label} give the same S_A/S_B ratio ({r0:g}); choose windows in "
                "which their spectra differ"
            )
        result = sasb_li_fraction(sasb_ratio(da, window_a, window_b, background, method=background_method), r0, r1)
        result = result.rename({"li_fraction_error": "li_fraction_stderr"})
        result.attrs.update(R0=float(r0), R1=float(r1))
        params.update(window_a_eV=window_a, window_b_eV=window_b, R0=float(r0), R1=float(r1))
    else:
        subtracted = {}
        for ref in refs:
            subtracted[ref.name], decisions[ref.name] = _background_of(ref, background, reference_background,
                                                                       background_method)
        if fit_window is None:
            fit_window = _default_fit_window(energy, background, refs, image)
        else:
            fit_window = _window_on(energy, d_img, fit_window, "fit window", image)
        sel = window_slice(energy, d_img, fit_window, what="fit window")
        if sel.stop - sel.start < 2:
            raise ConfigError(
                f"the fit window {fit_window[0]:g}-{fit_window[1]:g} eV holds {sel.stop - sel.start} channel(s) "
                f"of {image}; widen it"
            )
        e_win = energy[sel]
        coord = da["energy"].isel(energy=sel).variable
        onto = f"the fit window of {image}"
        columns = {
            ref.name: xr.DataArray(
                resample_spectrum(ref.energy, subtracted[ref.name], e_win, what=ref.label, onto=onto),
                dims=("energy",), coords={"energy": coord}, name=ref.name, attrs={"units": ref.units},
            )
            for ref in refs
        }
        signal, bg = _subtracted(da, background, background_method)
        mask = bg["mask"] if bg is not None else xr.zeros_like(da.isel(energy=0), dtype=np.int8)
        fit = mlls_fit(
            signal.where(mask == 0, 0.0), columns, fit_window=fit_window, nonnegative=nonnegative,
            derivatives=derivatives, rich="li_rich", poor="li_poor",
        )
        result = fit.copy()
        if len(co_names) > 2:
            result["li_fraction"], result["li_fraction_stderr"] = _li_per_co(fit, co_names)
        for name in ("li_fraction", "li_fraction_stderr", "chi2"):
            result[name] = result[name].where(mask == 0)
        result["mask"] = mask
        params.update(fit_window_eV=list(fit_window), references=list(columns), co_references=co_names,
                      nonnegative=nonnegative, derivatives=derivatives)
    params["reference_background_decisions"] = {name: info["decision"] for name, info in decisions.items()}
    result["li_fraction"].attrs.update(units="1", long_name="Li fraction x in LixCoO2")
    result.attrs["primary"] = "li_fraction"
    result.attrs["reference_background_mode"] = reference_background
    result.attrs["reference_background"] = json.dumps(decisions)
    # the whole chain on the maps themselves: the spectra's history (their load), the
    # background subtraction and the fit, then this step
    history = provenance(da)
    inner = provenance(bg)[len(history):] if method != "sasb" and bg is not None else []
    inner += [step for step in provenance(result) if step not in history and step not in inner]
    return with_provenance(result, "ionscope.eels.li_fraction_map", params, inputs=[da, li_rich, li_poor],
                           history=history + inner, variables=("li_fraction", "li_fraction_stderr", "chi2"))


def _subtracted(da: xr.DataArray, background: Window | None, method: str) -> tuple[xr.DataArray, xr.Dataset | None]:
    if background is None:
        return da, None
    fit = subtract_powerlaw(da, background, method)
    return fit["signal"], fit


def _default_fit_window(energy: np.ndarray, background: Window | None, refs: list[_Reference], image: str) -> Window:
    """From the background window's end (or the first channel) to the last channel of the
    spectrum image, narrowed to what every reference covers (with a warning saying so)."""
    lo = background[1] if background is not None else float(energy[0])
    hi = float(energy[-1])
    start = max(refs, key=lambda r: r.energy[0])
    stop = min(refs, key=lambda r: r.energy[-1])
    window = (max(lo, float(start.energy[0])), min(hi, float(stop.energy[-1])))
    if window == (lo, hi):
        return window
    narrow = [r for r in refs if r.energy[0] > lo or r.energy[-1] < hi]
    covers = ", ".join(f"{r.label} covers {r.energy[0]:g}-{r.energy[-1]:g} eV" for r in narrow)
    if window[1] - window[0] <= 0:
        raise InputError(
            f"the references do not overlap the fit range {lo:g}-{hi:g} eV of {image} ({covers}); "
            "use references recorded over the edges you fit"
        )
    warnings.warn(
        f"the fit window defaults to {window[0]:g}-{window[1]:g} eV, the part of {lo:g}-{hi:g} eV "
        f"({image}, after the background window) that every reference covers ({covers}); give the fit "
        "window to choose another",
        IonscopeWarning, stacklevel=3,
    )
    return window


def _reference_ratio(
    ref: _Reference, window_a: Window, window_b: Window, background: Window | None, mode: str, method: str
) -> tuple[float, dict[str, Any]]:
    """S_A/S_B of one reference on its own energy axis, its background handled as ``mode``
    decides, and what was decided."""
    for what, window in (("the S_A window", window_a), ("the S_B window", window_b)):
        _covers(ref, window, what, "use a reference recorded over both windows")
    decision = reference_background_decision(ref.energy, ref.values, background, mode, method)
    info: dict[str, Any] = {
        "file": ref.file, "decision": decision.decision, "why": decision.why,
        "covers_eV": [float(ref.energy[0]), float(ref.energy[-1])], "dispersion_eV": float(ref.dispersion),
    }
    window = None
    if decision.decision == "fit":
        if background is None:
            raise ConfigError(
                f"{ref.label}: --reference-background fit needs a background window; give --background LO:HI, "
                "or use --reference-background none (or auto)"
            )
        _covers(ref, background, "the background window", f"its background cannot be fitted there - {_NONE_HINT}")
        window = background
    with _about(ref.label):
        out = ratio_kernel(ref.energy, ref.values, window_a, window_b, window, method, weighted=True)
    code = int(out[-1])
    if code != MASK_OK:
        hint = _NONE_HINT if window is not None and code != MASK_RATIO_UNDEFINED else "check its windows"
        raise InputError(
            f"{ref.label} gives no S_A/S_B ratio ({MASK_CODES[code].replace('_', ' ')}); {hint}"
        )
    return float(out[0]), info


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
    """Mean, percentiles and masked-pixel count of a :func:`li_fraction_map` result, and what
    was decided for each reference's background.

    Computes: loads ``li_fraction``, ``mask`` and ``chi2``.

    Returns
    -------
    dict
        ``pixels``, ``masked_pixels``, ``fitted_pixels``, ``li_fraction_mean``,
        ``li_fraction_std``, ``li_fraction_percentiles`` (p5 ... p95), ``chi2_median``; when the
        result records them, ``reference_background_mode`` and ``reference_background``
        (``{name: {"file", "decision", "why", ...}}``, decision ``"fit"`` or ``"none"``) and
        ``fit_window_used_eV`` (centres of the first and last fitted channel, MLLS).
    """
    x = np.asarray(result["li_fraction"].values, dtype=np.float64)
    mask = np.asarray(result["mask"].values) != 0
    good = x[np.isfinite(x)]
    levels = (5, 25, 50, 75, 95)
    summary = {"pixels": int(x.size), "masked_pixels": int(mask.sum()), "fitted_pixels": int(good.size)}
    if "reference_background" in result.attrs:
        summary["reference_background_mode"] = result.attrs.get("reference_background_mode")
        summary["reference_background"] = json.loads(result.attrs["reference_background"])
    if "fit_window_eV" in result.attrs:
        summary["fit_window_used_eV"] = [float(v) for v in result.attrs["fit_window_eV"]]
    if not good.size:  # every pixel masked: say so instead of inventing numbers
        return summary | {"li_fraction_mean": None, "li_fraction_std": None,
                          "li_fraction_percentiles": None, "chi2_median": None}
    return summary | {
        "li_fraction_mean": float(good.mean()),
        "li_fraction_std": float(good.std()),
        "li_fraction_percentiles": {f"p{p}": float(v) for p, v in zip(levels, np.percentile(good, levels))},
        "chi2_median": float(np.nanmedian(result["chi2"].values)),
    }
