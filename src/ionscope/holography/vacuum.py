"""The vacuum of a potential map: the region found or given, and whether its phase is flat.

The vacuum is the phase reference of :func:`~ionscope.holography.potential_from_reconstruction`
(the map's zero). :func:`vacuum_mask` reads a given box or mask, or detects the vacuum on the
amplitude (:func:`~ionscope.holography.detect_vacuum`), eroded by one resolution length
(:func:`vacuum_erosion_px`) and without the pixels where the phase rises steeply (a thin specimen
edge the amplitude cannot tell from vacuum: :data:`STEEP_PHASE_MADS`).
:func:`smooth_vacuum_variation` is the smooth part of the vacuum's phase variation
(:func:`~ionscope.holography.vacuum_flatness`'s numbers); beyond
:data:`VACUUM_FLATNESS_WARN_RAD` the chain warns that the map has no flat zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError, IonscopeWarning
from ionscope.holography.inputs import vacuum_region
from ionscope.holography.leakage import detect_vacuum
from ionscope.profiles import LowPass

__all__ = [
    "VACUUM_FLATNESS_WARN_RAD",
    "smooth_vacuum_variation",
    "vacuum_erosion_px",
    "vacuum_mask",
]


def _pixel_nm(image: xr.DataArray, dim: str) -> float:
    try:
        return float(abs(image[dim][1] - image[dim][0]))
    except (IndexError, KeyError, TypeError):
        return 0.0


def vacuum_erosion_px(attrs: dict, image: xr.DataArray) -> int:
    """Pixels to erode a detected vacuum mask by: one resolution length (1 / the recorded
    aperture radius, at least 4 px) when the reconstruction recorded its aperture, else 8 px.

    The amplitude hardly drops over the first nanometres of a wedge-shaped edge, whose phase
    already rises.
    """
    lowpass = LowPass.from_attrs(attrs, phase_per_unit=None)
    pixel = _pixel_nm(image, "x")
    if lowpass is not None and pixel > 0:
        return max(4, int(round(1.0 / (lowpass.cutoff_per_nm * pixel))))
    return 8


#: A detected vacuum loses the pixels whose smoothed phase gradient exceeds the median of the
#: mask's by this many robust (MAD) standard deviations (:func:`vacuum_mask`).
STEEP_PHASE_MADS = 8.0
#: ... unless that would remove more than this fraction of it (then the mask stays as detected).
STEEP_PHASE_MAX_FRACTION = 0.3


def _without_steep_phase(mask: np.ndarray, phase: Any, sigma_px: float = 3.0) -> tuple[np.ndarray, int]:
    """``mask`` without the pixels where the phase (Gaussian-smoothed over ``sigma_px``) rises
    far more steeply than in the rest of it (:data:`STEEP_PHASE_MADS`), and how many went."""
    from scipy.ndimage import gaussian_filter

    values = np.asarray(getattr(phase, "values", phase), dtype=np.float64)
    if values.shape != mask.shape or not np.isfinite(values[mask]).all():
        return mask, 0
    smooth = gaussian_filter(np.where(np.isfinite(values), values, np.nanmedian(values[mask])), sigma_px)
    grad = np.hypot(*np.gradient(smooth))
    g = grad[mask]
    med = float(np.median(g))
    mad = 1.4826 * float(np.median(np.abs(g - med)))
    steep = mask & (grad > med + STEEP_PHASE_MADS * mad)
    removed = int(steep.sum())
    if removed == 0 or removed > STEEP_PHASE_MAX_FRACTION * mask.sum():
        return mask, 0
    return mask & ~steep, removed


def vacuum_mask(vacuum: Any, amplitude: xr.DataArray | None, shape: Sequence[int], *,
                erode_px: int = 8, phase: Any = None) -> tuple[np.ndarray | None, str]:
    """The vacuum pixels of a map, and how they were found.

    Parameters
    ----------
    vacuum : "auto", "none", None, (y0, y1, x0, x1) or bool array / DataArray
        ``"auto"`` detects it on the amplitude (:func:`detect_vacuum`); a box (half-open pixel
        indices) or a mask as :func:`ionscope.holography.inputs.vacuum_region` reads them.
    amplitude : xarray.DataArray, optional
        Reconstructed amplitude (for ``"auto"``).
    shape : (int, int)
        Shape of the map.
    erode_px : int
        Erosion of a detected mask (px).
    phase : xarray.DataArray or ndarray, optional
        The unwrapped phase: a detected mask then also loses the pixels where the phase rises
        steeply (:data:`STEEP_PHASE_MADS`). The amplitude cannot tell vacuum from the first
        nanometres of a thin specimen edge - the detector MTF even lifts their amplitude above
        the vacuum's when the specimen's phase ramp moves its part of the sideband towards the
        centre band - but their phase rises by radians per nanometre.

    Returns
    -------
    mask : numpy.ndarray of bool or None
    description : str
    """
    if vacuum is None or (isinstance(vacuum, str) and vacuum.lower() == "none"):
        return None, "none"
    if isinstance(vacuum, str):
        if vacuum.lower() != "auto":
            raise ConfigError(f"vacuum {vacuum!r}: use 'auto', 'none', a (y0, y1, x0, x1) box or a mask")
        if amplitude is None:
            return None, "none found"
        mask = detect_vacuum(amplitude, erode_px=erode_px)
        if mask is None:
            return None, "none found"
        how = f"detected on the amplitude, eroded {erode_px} px"
        if phase is not None:
            mask, removed = _without_steep_phase(mask, phase)
            if removed:
                how += f", without {removed} px of steep phase (a specimen edge)"
        return mask, how
    box, mask = vacuum_region(vacuum, tuple(shape))
    if box is None:
        return mask, "given mask"
    y0, y1, x0, x1 = box
    mask = np.zeros(tuple(shape), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask, f"box {y0}:{y1},{x0}:{x1}"


#: A vacuum whose phase varies smoothly by more than this (rad rms of the part a quadratic
#: explains) draws a warning from :func:`potential_from_reconstruction`: the map's zero is then
#: not flat (a leakage field, a wrong vacuum region or reference distortions).
VACUUM_FLATNESS_WARN_RAD = 0.25


def smooth_vacuum_variation(flatness: dict) -> float:
    """The smooth part of a vacuum's phase variation (rad rms): what a quadratic fit explains,
    ``sqrt(rms_about_mean**2 - rms_about_quadratic**2)`` of :func:`vacuum_flatness`'s numbers."""
    total = float(flatness["rms_about_mean_rad"])
    rest = float(flatness["rms_about_quadratic_rad"])
    return float(np.sqrt(max(total * total - rest * rest, 0.0)))


def _warn_if_not_flat(flatness: dict, *, after_leakage: bool, volts_per_rad: float | None) -> None:
    smooth = smooth_vacuum_variation(flatness)
    if smooth <= VACUUM_FLATNESS_WARN_RAD:
        return
    ptp = float(flatness["peak_to_valley_rad"])
    volts = f" (+-{0.5 * ptp * volts_per_rad:.3g} V in the potential map)" if volts_per_rad else ""
    if after_leakage:
        advice = ("the stray-field model does not describe it: try another degree (--leakage-degree), "
                  "or give the vacuum region (--vacuum Y0:Y1,X0:X1 or a mask)")
        what = "after the stray-field subtraction, the vacuum phase still varies"
    else:
        advice = ("fit and subtract the leakage (stray) field (--leakage; leakage=True), or give the "
                  "vacuum region (--vacuum Y0:Y1,X0:X1 or a mask; vacuum=...) if the detected one is wrong")
        what = "the vacuum phase is not flat: it varies"
    warnings.warn(f"{what} by {ptp:.3g} rad peak to valley, {smooth:.2g} rad rms smoothly{volts}, so the "
                  f"potential has no flat zero; {advice}", IonscopeWarning, stacklevel=4)
