"""Holography inputs: holograms and hologram stacks as calibrated numpy arrays.

Every holography wrapper reads its data through these checks, so a hologram (y, x), a stack
(shift, y, x) and a reference are validated and calibrated the same way: dims by name, finite
values, at least 16 x 16 pixels, y/x coordinates converted to nm through
:mod:`ionscope.units` (uncalibrated axes give pixel units). Bad data raise
:class:`~ionscope.errors.InputError` (or its subclasses :class:`~ionscope.errors.DimensionError`,
:class:`~ionscope.errors.NonFiniteError`); a bad vacuum *region* (a parameter) raises
:class:`~ionscope.errors.ConfigError`.

The calibration dictionary ``cal`` is ``{"dy", "dx", "y0", "x0", "calibrated"}``: pixel sizes and
the first pixel's position in nm, or 1, 1, 0, 0 px when the axes are not lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration, require_dims, require_finite
from ionscope.errors import ConfigError, DimensionError, InputError, NonFiniteError
from ionscope.units import length_to_nm

#: Smallest hologram (frame) side in pixels.
MIN_SIDE_PX = 16
#: Fewest frames of a phase-shifting stack.
MIN_FRAMES = 3
#: Fewest pixels of a vacuum region.
MIN_VACUUM_PX = 64


def uncalibrated() -> dict[str, Any]:
    """The calibration of an array without length coordinates (pixel units)."""
    return {"dy": 1.0, "dx": 1.0, "y0": 0.0, "x0": 0.0, "calibrated": False}


def calibration(da: xr.DataArray) -> dict[str, Any]:
    """Pixel sizes and origin (nm) of the ``y`` and ``x`` coordinates of ``da``; pixel units when
    either axis is not a length."""
    cal: dict[str, Any] = {"calibrated": True}
    for dim in ("y", "x"):
        offset, step, unit = axis_calibration(da, dim)
        factor = length_to_nm(unit)
        if factor is None:
            cal["calibrated"] = False
            continue
        cal["d" + dim] = abs(step) * factor
        cal[dim + "0"] = offset * factor
    return cal if cal["calibrated"] else uncalibrated()


def array_input(obj: Any, what: str, dims: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Validate a DataArray with ``dims`` (in any order) or a numpy array with ``len(dims)``
    dimensions in that order; return its values (float32, C-contiguous, in ``dims`` order) and
    calibration. No size checks (see :func:`image_input`, :func:`stack_input`)."""
    dims = tuple(dims)
    layout = f"{len(dims)}-D ({', '.join(dims)})"
    if isinstance(obj, xr.DataArray):
        require_dims(obj, dims, what=what)
        da = require_finite(obj.transpose(*dims), what)
        cal = calibration(da)
        values = np.asarray(da.values)
    elif isinstance(obj, np.ndarray):
        if obj.ndim != len(dims):
            raise DimensionError(f"{what} must be {layout}, got shape {obj.shape}")
        if obj.size and not np.isfinite(obj).all():
            raise NonFiniteError(f"{what} holds NaN/inf values; mask or interpolate them first")
        values = obj
        cal = uncalibrated()
    else:
        raise InputError(
            f"{what} must be an xarray.DataArray with dims ({', '.join(dims)}) or a "
            f"{len(dims)}-D numpy array, got {type(obj).__name__}"
        )
    return np.ascontiguousarray(values, dtype=np.float32), cal


def image_input(obj: Any, what: str = "hologram") -> tuple[np.ndarray, dict[str, Any]]:
    """Validate a 2-D hologram (DataArray with dims y, x, or a numpy array) and return its
    values (float32) and calibration ``{"dy", "dx", "y0", "x0", "calibrated"}`` in nm (px when
    the axes are uncalibrated)."""
    values, cal = array_input(obj, what, ("y", "x"))
    if min(values.shape) < MIN_SIDE_PX:
        raise DimensionError(f"{what} is too small ({values.shape}); need at least 16 x 16 pixels")
    return values, cal


def stack_input(obj: Any, what: str = "phase-shifting stack") -> tuple[np.ndarray, dict[str, Any]]:
    """Validate a hologram stack (DataArray with dims shift, y, x, or a 3-D numpy array) of at
    least 3 frames of at least 16 x 16 pixels; return its values (float32) and calibration."""
    values, cal = array_input(obj, what, ("shift", "y", "x"))
    if values.shape[0] < MIN_FRAMES:
        raise DimensionError(f"{what} has {values.shape[0]} frames; phase-shifting needs at least 3")
    if min(values.shape[1:]) < MIN_SIDE_PX:
        raise DimensionError(f"{what} frames are too small ({values.shape[1:]}); need 16 x 16 or more")
    return values, cal


def check_reference(ref_shape: Sequence[int], ref_cal: dict, shape: Sequence[int], cal: dict) -> None:
    """Raise :class:`~ionscope.errors.DimensionError` unless a reference's frames have the
    hologram's shape and (when both are calibrated) pixel size."""
    if tuple(ref_shape) != tuple(shape):
        raise DimensionError(
            f"reference hologram shape {tuple(ref_shape)} differs from the hologram's "
            f"{tuple(shape)}; record (or crop) both on the same area of the detector"
        )
    if cal["calibrated"] and ref_cal["calibrated"] and not np.allclose(
        [cal["dy"], cal["dx"]], [ref_cal["dy"], ref_cal["dx"]], rtol=1e-3
    ):
        raise DimensionError(
            f"reference pixel size {ref_cal['dy']:g} x {ref_cal['dx']:g} nm differs from the "
            f"hologram's {cal['dy']:g} x {cal['dx']:g} nm"
        )


def vacuum_region(
    vacuum: Any, shape: tuple[int, int]
) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None]:
    """A (y0, y1, x0, x1) box or a boolean mask (True = vacuum) from a ``vacuum`` argument: None,
    a mask (DataArray or numpy array of the frames' shape) or a half-open box of pixel indices.

    Raises
    ------
    DimensionError
        A mask of another shape than the frames.
    ConfigError
        A box outside the frames, or a region of fewer than 64 pixels.
    """
    if vacuum is None:
        return None, None
    if isinstance(vacuum, (xr.DataArray, np.ndarray)):
        mask = np.asarray(vacuum.values if isinstance(vacuum, xr.DataArray) else vacuum)
        if mask.shape != shape:
            raise DimensionError(f"vacuum mask shape {mask.shape} differs from the frames' {shape}")
        mask = mask.astype(bool)
        if mask.sum() < MIN_VACUUM_PX:
            raise ConfigError(f"the vacuum mask holds {int(mask.sum())} pixels; give at least 64")
        return None, mask
    try:
        y0, y1, x0, x1 = (int(v) for v in vacuum)
    except (TypeError, ValueError):
        raise ConfigError(
            f"vacuum must be a boolean mask or a (y0, y1, x0, x1) box in pixels, got {vacuum!r}"
        ) from None
    if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
        raise ConfigError(
            f"vacuum box {(y0, y1, x0, x1)} must satisfy 0 <= y0 < y1 <= {shape[0]} and "
            f"0 <= x0 < x1 <= {shape[1]} (pixel indices, half-open)"
        )
    if (y1 - y0) * (x1 - x0) < MIN_VACUUM_PX:
        raise ConfigError(f"vacuum box {(y0, y1, x0, x1)} is too small; give at least 64 pixels")
    return (y0, y1, x0, x1), None


def grid_coords(cal: dict[str, Any], shape: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0)):
    """``(coords, coord_units)`` of a (y, x) output grid of ``shape`` whose pixels are ``scale``
    input pixels (nm, or px for uncalibrated input)."""
    coords = {
        "y": cal["y0"] + np.arange(shape[0]) * cal["dy"] * scale[0],
        "x": cal["x0"] + np.arange(shape[1]) * cal["dx"] * scale[1],
    }
    units = {"y": "nm", "x": "nm"} if cal["calibrated"] else {"y": "px", "x": "px"}
    return coords, units


__all__ = [
    "MIN_SIDE_PX",
    "MIN_FRAMES",
    "MIN_VACUUM_PX",
    "uncalibrated",
    "calibration",
    "array_input",
    "image_input",
    "stack_input",
    "check_reference",
    "vacuum_region",
    "grid_coords",
]
