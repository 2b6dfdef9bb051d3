"""Hologram statistics: fringe spacing, sampling, contrast and carrier frequency.

The conventions (HoloWorks and holospy's carrier of the FFT pixel at the sideband peak, the
sub-pixel ``*_subpixel`` values, the conventional std / mean ``fringe_contrast`` and the
noise-corrected ``fringe_visibility``) are described in the :mod:`~ionscope.holography.offaxis`
docstring. Both reconstructions read them from here: :func:`statistics_kernel` (numpy) measures
one hologram, :func:`statistics_dict` turns a sideband position and visibility into the keys,
:func:`hologram_statistics` is the public wrapper.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ionscope.data import jsonable
from ionscope.errors import ConfigError
from ionscope.holography.inputs import image_input
from ionscope.holography.passes import mean_and_std
from ionscope.holography.sideband import (
    APERTURE_UNITS,
    aperture_geometry,
    contrast_from_spectrum,
    default_taper,
    half_spectrum,
    refine_sideband,
    resolve_sideband,
)
from ionscope.validation import Interval, Options, validate_params


def std_over_mean(image: np.ndarray) -> float:
    """Standard deviation over mean (the conventional fringe contrast of a vacuum hologram)."""
    mean, std = mean_and_std(np.ascontiguousarray(image))
    return float(std / mean)


def statistics_dict(
    shape: tuple[int, int],
    cal: dict[str, Any],
    position: tuple[float, float],
    visibility: float,
    geom: dict[str, float] | None,
    image: np.ndarray | None,
) -> dict[str, Any]:
    """The statistics keys (see :func:`hologram_statistics`) for a sideband at ``position``
    (signed, sub-pixel, FFT pixels), its noise-corrected visibility and the image whose
    std / mean is the conventional contrast (None: not computed)."""
    ny, nx = shape

    def carrier(py: float, px: float) -> tuple[float, float, float, float]:
        fy_px, fx_px = py / ny, px / nx  # cycles per pixel
        fy_nm, fx_nm = fy_px / cal["dy"], fx_px / cal["dx"]
        return math.hypot(fy_px, fx_px), math.hypot(fy_nm, fx_nm), fy_nm, fx_nm

    # HoloWorks and holospy quote the carrier of the FFT pixel at the sideband peak
    c_px, c_nm, _, _ = carrier(float(round(position[0])), float(round(position[1])))
    s_px, s_nm, fy_nm, fx_nm = carrier(position[0], position[1])
    out = {
        "sideband_position_px": [float(position[0] % ny), float(position[1] % nx)],
        "sideband_offset_px": [float(position[0]), float(position[1])],
        "fringe_sampling_px": 1.0 / c_px,
        "fringe_spacing_nm": (1.0 / c_nm) if cal["calibrated"] else None,
        "carrier_frequency_per_nm": c_nm if cal["calibrated"] else None,
        "carrier_frequency_per_px": c_px,
        "fringe_sampling_subpixel_px": 1.0 / s_px,
        "fringe_spacing_subpixel_nm": (1.0 / s_nm) if cal["calibrated"] else None,
        "carrier_frequency_subpixel_per_nm": s_nm if cal["calibrated"] else None,
        "fringe_contrast": None if image is None else std_over_mean(image),
        "fringe_visibility": float(visibility),
        "carrier_angle_deg": math.degrees(math.atan2(fy_nm, fx_nm)),
        "pixel_size_nm": [cal["dy"], cal["dx"]] if cal["calibrated"] else None,
        "shape": [int(ny), int(nx)],
    }
    if geom is not None:
        out["aperture_px"] = float(geom["radius_px"])
        out["aperture_per_nm"] = float(geom["radius_per_nm"]) if cal["calibrated"] else None
    return out


def statistics_kernel(
    image: np.ndarray,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    taper: float | None = None,
    refine: bool = True,
) -> dict[str, Any]:
    """Hologram statistics on a numpy array (see :func:`hologram_statistics`)."""
    shape = image.shape
    R, wy, wx = half_spectrum(image, default_taper(shape) if taper is None else taper)
    pos, detected = resolve_sideband(R, shape, sideband, (wy, wx))
    geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    refined = pos
    if refine or detected:
        refined = refine_sideband(R, shape, (int(round(pos[0])), int(round(pos[1]))), geom)
        geom = aperture_geometry(shape, cal, refined, aperture, aperture_unit)
    contrast = contrast_from_spectrum(R, shape, refined, geom, wy, wx)
    return statistics_dict(shape, cal, refined, contrast, geom, image)


#: Declared constraints of the sideband parameters the Fourier wrappers share.
SIDEBAND_CONSTRAINTS: dict[str, list[Any]] = {
    "aperture": [Interval(float, 0, None, closed="neither"), None],
    "aperture_unit": [Options(APERTURE_UNITS)],
    "apodize": [bool, Interval(float, 0, None, unit="px")],
}


@validate_params(SIDEBAND_CONSTRAINTS)
def hologram_statistics(
    hologram: Any,
    sideband: Any = "auto",
    *,
    aperture: float | None = None,
    aperture_unit: str = "px",
    apodize: bool | int = True,
    refine: bool = True,
) -> dict[str, Any]:
    """Fringe spacing, sampling, contrast and carrier frequency of an off-axis hologram.

    Computes: loads the hologram (a dask-backed one is computed) and returns plain numbers
    (statistics of one whole image; the per-frame ``fringe_visibility`` of a series comes
    lazily from :func:`~ionscope.holography.reconstruct_offaxis`).

    Parameters
    ----------
    hologram : xarray.DataArray or numpy.ndarray
        Hologram (y, x), coordinates in nm (uncalibrated arrays give pixel units).
    sideband : {"auto", "lower", "upper"} or (y, x)
        Sideband to measure: detected (``"auto"`` = ``"upper"``, the one HyperSpy/holospy's
        default reconstruction cuts out, whose position is the conjugate of holospy's
        ``sb_position``; refined to sub-pixel precision from the sideband itself) or a position
        in unshifted-FFT pixels.
    aperture, aperture_unit : float, str
        Aperture used for the contrast integral (default: a third of the carrier distance).
    apodize : bool or int
        Tukey taper (default width: 1/16 of the image) or its width in px; False for none.
    refine : bool
        Refine a given position to sub-pixel precision for the ``*_subpixel`` keys and the
        visibility (default); a detected sideband is always refined.

    Returns
    -------
    dict
        ``sideband_position_px`` ([y, x], unshifted FFT, sub-pixel), ``sideband_offset_px``
        (signed), ``aperture_px``, ``aperture_per_nm``; at the FFT pixel of the peak (the
        HoloWorks / holospy convention) ``fringe_spacing_nm``, ``fringe_sampling_px``,
        ``carrier_frequency_per_nm``, ``carrier_frequency_per_px``; from the sub-pixel peak
        ``fringe_spacing_subpixel_nm``, ``fringe_sampling_subpixel_px``,
        ``carrier_frequency_subpixel_per_nm``; ``fringe_contrast`` (std / mean) and
        ``fringe_visibility`` (mu, from the sideband energy, noise-corrected);
        ``carrier_angle_deg``, ``pixel_size_nm``, ``shape``.
        Calibration-dependent values are None for uncalibrated input. JSON-able.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography", seed=0, noise=False)
    >>> stats = hologram_statistics(ds["reference"])
    >>> abs(stats["fringe_spacing_subpixel_nm"] / ds.attrs["fringe_spacing_nm"] - 1) < 5e-4
    True
    """
    image, cal = image_input(hologram, "hologram")
    taper = taper_width(apodize, image.shape)
    return jsonable(statistics_kernel(image, cal, sideband=sideband, aperture=aperture,
                                      aperture_unit=aperture_unit, taper=taper,
                                      refine=bool(refine)))


def taper_width(apodize: Any, shape: tuple[int, int]) -> float:
    """The apodisation taper width (px) an ``apodize`` argument asks for: the default
    (:func:`~ionscope.holography.sideband.default_taper`) for True, 0 for False, else the width,
    at most half the image."""
    if isinstance(apodize, (bool, np.bool_)):
        return float(default_taper(shape)) if apodize else 0.0
    try:
        width = float(apodize)
    except (TypeError, ValueError):
        raise ConfigError(f"apodize must be True, False or a taper width in px, got {apodize!r}") from None
    if not (0 <= width <= min(shape) / 2):
        raise ConfigError(
            f"apodize taper width must be between 0 and half the image ({min(shape) / 2:g} px), "
            f"got {apodize!r}"
        )
    return width


__all__ = [
    "SIDEBAND_CONSTRAINTS",
    "std_over_mean",
    "statistics_dict",
    "statistics_kernel",
    "hologram_statistics",
    "taper_width",
]
