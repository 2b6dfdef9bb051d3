r"""Energy-loss axis of EELS data: calibration (offset, dispersion in eV) and energy windows.

The energy coordinate holds channel **centres** on a uniform grid of dispersion ``d`` (eV per
channel); channel ``i`` covers ``[E_i - d/2, E_i + d/2]`` and its value is the number of counts
(electrons) recorded in it. Units are read through :mod:`ionscope.units` (eV, keV, meV, MeV).

The other EELS helpers once defined here still import from this module: the wrapper helpers
(:func:`require_spectra`, :func:`spectrum_image`, :func:`lift`, :func:`finish`, ...) live in
:mod:`ionscope.eels.wrapping` and the drift alignment (:func:`align_energy`,
:func:`estimate_shifts`, :func:`apply_shifts`) in :mod:`ionscope.eels.alignment`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.compat import moved_names
from ionscope.data import axis_calibration
from ionscope.errors import ConfigError, InputError, NonUniformAxisError
from ionscope.units import energy_to_ev


# --------------------------------------------------------------------------- calibration


def energy_axis(da: xr.DataArray) -> tuple[float, float]:
    """Offset and dispersion of the energy-loss axis, in eV.

    Parameters
    ----------
    da : xarray.DataArray
        Array with an evenly spaced ``energy`` coordinate in eV, keV or meV
        (``attrs["units"]`` of the coordinate).

    Returns
    -------
    offset_eV : float
        Energy loss of the centre of the first channel (eV).
    dispersion_eV : float
        Channel width (eV per channel); positive.

    Raises
    ------
    DimensionError
        If ``da`` has no ``energy`` dim.
    NonUniformAxisError
        If the channels are not evenly spaced or the axis runs backwards.
    InputError
        If the axis is not calibrated in an energy unit (e.g. ``px``).

    Examples
    --------
    >>> from ionscope.data import signal
    >>> da = signal(np.ones(4), ("energy",), name="s", units="counts",
    ...             coords={"energy": [0.05, 0.0505, 0.051, 0.0515]}, coord_units={"energy": "keV"})
    >>> [round(v, 6) for v in energy_axis(da)]
    [50.0, 0.5]
    """
    offset, dispersion, _ = _calibration(da)
    return offset, dispersion


def _calibration(da: xr.DataArray, what: str | None = None) -> tuple[float, float, float]:
    """Offset (eV), dispersion (eV) and unit-to-eV factor of ``da``'s energy axis (see
    :func:`energy_axis`); error messages name ``what`` if given."""
    offset, step, unit = axis_calibration(da, "energy")
    axis = "the energy axis" if what is None else f"the energy axis of {what}"
    factor = energy_to_ev(unit)
    if factor is None:
        raise InputError(
            f"{axis} is in {unit!r}, not an energy unit; calibrate it in eV "
            "(offset and dispersion) before EELS processing"
        )
    if step <= 0:
        raise NonUniformAxisError(
            f"{axis} decreases (dispersion {step * factor:.6g} eV); reverse it with "
            "da.isel(energy=slice(None, None, -1)) first"
        )
    return offset * factor, step * factor, factor


def energy_ev(da: xr.DataArray, what: str | None = None) -> tuple[np.ndarray, float]:
    """Channel energies and dispersion of ``da``'s energy-loss axis, in eV.

    Parameters
    ----------
    da : xarray.DataArray
        Array with an evenly spaced, increasing ``energy`` coordinate in eV, keV or meV.
    what : str, optional
        What ``da`` is, for the error messages (e.g. ``"the spectra"``).

    Returns
    -------
    energy : numpy.ndarray, shape (E,)
        Channel centres, eV, float64.
    dispersion_eV : float
        Channel width, eV per channel.

    Raises
    ------
    DimensionError, NonUniformAxisError, InputError
        As :func:`energy_axis`.
    """
    _, dispersion, factor = _calibration(da, what)
    return np.asarray(da.coords.variables["energy"].values, dtype=np.float64) * factor, dispersion


def energy_vector(energy: Any) -> tuple[np.ndarray, float]:
    """Energy vector (float64, eV) and its dispersion; checks that it is uniform and increasing."""
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise InputError(
            f"the energy vector must be 1-D with at least 2 channels, got shape {e.shape}"
        )
    if not np.all(np.isfinite(e)):
        raise InputError("the energy vector holds NaN/inf; give calibrated channel energies in eV")
    steps = np.diff(e)
    d = float(steps.mean())
    if d <= 0 or not np.allclose(steps, d, rtol=1e-4, atol=0):
        raise NonUniformAxisError(
            f"the energy axis must be evenly spaced and increasing (steps from {steps.min():.6g} "
            f"to {steps.max():.6g} eV); resample it onto a uniform grid first"
        )
    return e, d


def _window_bounds(
    e: np.ndarray, d: float, window: Sequence[float], what: str, label: str | None = None
) -> tuple[float, float]:
    """``(lo, hi)`` of ``window`` (eV), checked to be finite, increasing and inside the range
    ``[E_0 - d/2, E_last + d/2]`` recorded by the uniform axis ``e`` of dispersion ``d``;
    ``label`` names the input the axis belongs to in the message (default: the data)."""
    try:
        lo, hi = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what} must be a pair (lo, hi) of energies in eV, got {window!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise ConfigError(f"{what} ({lo:g}, {hi:g}) eV must be finite with lo < hi")
    first, last = e[0] - d / 2, e[-1] + d / 2
    tol = 1e-6 * d
    if lo < first - tol or hi > last + tol:
        where = ("the data, which cover", "the recorded") if label is None else (f"{label}, which covers", "its recorded")
        raise ConfigError(
            f"{what} {lo:g}-{hi:g} eV lies outside {where[0]} {first:g}-{last:g} eV; "
            f"choose a window inside {where[1]} energy range"
        )
    return lo, hi


def _channels_inside(e: np.ndarray, d: float, lo: float, hi: float) -> slice:
    """Slice of the channels of ``e`` whose centres lie in ``[lo, hi]`` (up to 1e-6 channel)."""
    tol = 1e-6 * d
    i0 = int(np.searchsorted(e, lo - tol, side="left"))
    i1 = int(np.searchsorted(e, hi + tol, side="right"))
    return slice(i0, i1)


def check_window(
    energy: Any, window: Sequence[float], *, what: str = "window"
) -> tuple[float, float]:
    """Validate an energy window ``(lo, hi)`` in eV against an energy vector.

    The window must be finite, increasing, lie within the recorded range
    ``[E_0 - d/2, E_last + d/2]`` and be at least two channels (``2 d``) wide.

    Returns
    -------
    (lo, hi) : tuple of float
        The window in eV.

    Raises
    ------
    ConfigError
        If the window is malformed, outside the data or narrower than two channels (a window is
        a parameter; a bad energy vector raises :class:`~ionscope.errors.InputError`).
    """
    e, d = energy_vector(energy)
    lo, hi = _window_bounds(e, d, window, what)
    tol = 1e-6 * d
    if hi - lo < 2 * d - tol:
        raise ConfigError(
            f"{what} {lo:g}-{hi:g} eV spans {(hi - lo) / d:.2f} channel(s) of {d:g} eV; "
            "it needs at least 2 channels - widen it"
        )
    return lo, hi


def window_channels(energy: Any, window: Sequence[float], *, what: str = "window") -> slice:
    """Slice of the channels whose centres lie inside ``window`` (closed interval, eV)."""
    e, d = energy_vector(energy)
    lo, hi = check_window(e, window, what=what)
    sel = _channels_inside(e, d, lo, hi)
    if sel.stop - sel.start < 2:
        raise ConfigError(
            f"{what} {lo:g}-{hi:g} eV holds {sel.stop - sel.start} channel centre(s); it needs "
            "at least 2 - widen it"
        )
    return sel


def window_slice(
    energy: np.ndarray, dispersion: float, window: Sequence[float] | None, *, what: str = "window"
) -> slice:
    """Slice of the channels whose centres lie inside ``window`` (closed interval, eV).

    Unlike :func:`window_channels` it sets no minimum width (callers check the channel count
    they need) and takes an axis already checked to be uniform and increasing, e.g. from
    :func:`energy_ev`.

    Parameters
    ----------
    energy : numpy.ndarray, shape (E,)
        Channel centres, eV (uniform, increasing).
    dispersion : float
        Channel width, eV.
    window : (float, float) or None
        Energy range, eV, inside the recorded range; None selects every channel.
    what : str
        Name of the window in error messages.

    Returns
    -------
    slice
    """
    if window is None:
        return slice(0, energy.size)
    lo, hi = _window_bounds(energy, dispersion, window, what)
    return _channels_inside(energy, dispersion, lo, hi)


def float_dtype(dtype: Any) -> np.dtype:
    """Result dtype for spectra of ``dtype``: float32/float64 kept, anything else float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)


#: A spectrum may be resampled onto channels at most this many times finer than its own
#: (interpolation cannot supply fine structure a coarser recording never had).
MAX_COARSER_FACTOR = 2.0


def resample_spectrum(
    energy: Any,
    values: Any,
    target: Any,
    *,
    what: str = "the spectrum",
    onto: str = "the target axis",
    max_coarser: float = MAX_COARSER_FACTOR,
) -> np.ndarray:
    r"""Resample a spectrum in counts per channel onto the channels of another energy axis.

    The spectrum is read as a density (counts per eV, ``values / d``) and returned as counts
    per target channel (density times the target's dispersion ``d_t``), so two spectra of the
    same dose per eV stay comparable after resampling, whatever their own channel widths.

    - Source finer than the target (``d < d_t``): area-preserving rebinning - each target
      channel gets the mean density of the source over the part of the channel it records
      (the source taken as constant across each of its channels), times ``d_t``.
    - Otherwise: linear interpolation of the density at the target's channel centres, times
      ``d_t`` (exactly the values themselves when both axes have the same dispersion).

    Parameters
    ----------
    energy : array_like, shape (E,)
        Channel centres of the spectrum, eV (uniform, increasing).
    values : array_like, shape (E,)
        Counts per channel (finite).
    target : array_like, shape (T,)
        Channel centres to resample onto, eV (uniform, increasing; at least 2).
    what, onto : str
        The spectrum and the target axis, for the error messages (e.g.
        ``"reference li_rich (rich.msa)"``, ``"the fit window of the spectrum image"``).
    max_coarser : float
        Refuse a spectrum whose dispersion is more than this many times the target's.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Counts per target channel, float64.

    Raises
    ------
    InputError
        If the target's channel centres are not all inside ``[E_0, E_last]`` (the message
        names ``what``, the range it covers and the range ``onto`` needs), or the spectrum is
        too coarse.

    Examples
    --------
    >>> e = np.arange(50.0, 60.0, 0.05)            # 0.05 eV channels, 10 counts each
    >>> out = resample_spectrum(e, np.full(e.size, 10.0), np.arange(52.0, 58.0, 0.25))
    >>> bool(np.allclose(out, 50.0))                # 0.25 eV channels hold 5 x as many
    True
    """
    e, d = energy_vector(energy)
    y = np.asarray(values, dtype=np.float64)
    t, d_t = energy_vector(target)
    if y.shape != e.shape:
        raise InputError(f"{what} has {y.size} values but {e.size} channel energies")
    tol = 1e-3 * d_t
    if t[0] < e[0] - tol or t[-1] > e[-1] + tol:
        raise InputError(
            f"{what} covers {e[0]:g}-{e[-1]:g} eV but {onto} needs {t[0]:g}-{t[-1]:g} eV; "
            f"use a window inside {e[0]:g}-{e[-1]:g} eV or a spectrum recorded over the whole window"
        )
    ratio = d / d_t
    if ratio > max_coarser:
        raise InputError(
            f"{what} has a dispersion of {d:g} eV/channel, {ratio:.3g}x coarser than the "
            f"{d_t:g} eV/channel of {onto}; interpolation cannot supply the missing fine "
            "structure - record it at a finer dispersion or bin the spectrum image to match "
            f"(da.coarsen(energy={int(round(ratio))}, boundary='trim').sum())"
        )
    scale = 1.0 if np.isclose(ratio, 1.0, rtol=1e-9, atol=0) else d_t / d
    if ratio >= 1.0 - 1e-9:
        return np.interp(t, e, y) * scale
    edges = np.concatenate([[e[0] - d / 2], e + d / 2])
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    lo = np.maximum(t - d_t / 2, edges[0])
    hi = np.minimum(t + d_t / 2, edges[-1])
    counts = np.interp(hi, edges, cumulative) - np.interp(lo, edges, cumulative)
    return counts / (hi - lo) * d_t



# --------------------------------------------------------------------------- compatibility

#: Names that moved to :mod:`ionscope.eels.wrapping` and :mod:`ionscope.eels.alignment`; they
#: stay importable from here (resolved on first access: those modules import this one).
_MOVED = {
    **dict.fromkeys(("LEADING_DIMS", "require_spectra", "spectra_array", "spectrum_image", "lift",
                     "leading_coords", "finish"), "ionscope.eels.wrapping"),
    **dict.fromkeys(("estimate_shifts", "apply_shifts", "align_energy"), "ionscope.eels.alignment"),
}
#: The old lower-case table of this module (deprecated: use :func:`ionscope.units.energy_to_ev`).
_OLD_ENERGY_UNITS_TO_EV = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}


def _deprecated(name: str) -> Any:
    if name == "ENERGY_UNITS_TO_EV":
        warnings.warn(
            "ionscope.eels.energy.ENERGY_UNITS_TO_EV is deprecated (its lower-case keys read "
            "'MeV' as meV); use ionscope.units.energy_to_ev(unit)",
            DeprecationWarning, stacklevel=2,
        )
        return dict(_OLD_ENERGY_UNITS_TO_EV)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__getattr__ = moved_names(__name__, _MOVED, fallback=_deprecated)

# the moved names are provided by __getattr__ above (ruff cannot see them)
__all__ = [  # noqa: F822
    "LEADING_DIMS",
    "energy_axis",
    "energy_ev",
    "energy_vector",
    "check_window",
    "window_channels",
    "window_slice",
    "float_dtype",
    "MAX_COARSER_FACTOR",
    "resample_spectrum",
    "estimate_shifts",
    "apply_shifts",
    "align_energy",
]
