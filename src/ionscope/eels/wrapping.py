r"""Helpers shared by the EELS wrappers: input checks, lifting kernels, labelling outputs.

Conventions used throughout :mod:`ionscope.eels`
-------------------------------------------------
* A spectrum image is an :class:`xarray.DataArray` whose dim ``energy`` (energy loss, eV) is
  the spectral axis and whose other dims are among :data:`LEADING_DIMS` (``time``, ``y``,
  ``x``, ``position``). The wrappers move ``energy`` last; kernels take arrays shaped
  ``(..., E)`` (usually ``(N, E)``, N spectra) with an energy vector of shape ``(E,)`` in eV
  (:mod:`ionscope.eels.energy`) and are vectorised over all spectra.
* Kernels are pure numpy functions (no xarray); a wrapper checks its input with
  :func:`spectrum_image`, lifts a kernel over the labelled, possibly lazy array with
  :func:`lift` and labels each output with :func:`finish` (name, units, coordinates) before
  appending its provenance step. Wrappers return an :class:`xarray.Dataset` (several outputs)
  or a DataArray with ``attrs["units"]``, and their docstrings say whether they stay lazy on
  dask-backed input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.compat import apply_ufunc
from ionscope.data import is_lazy, require_finite, require_nonempty
from ionscope.eels.energy import _calibration
from ionscope.errors import DimensionError, EmptyDataError, InputError

#: Dims allowed in front of ``energy``.
LEADING_DIMS: tuple[str, ...] = ("time", "y", "x", "position")


def require_spectra(da: Any, what: str = "input") -> None:
    """Check that ``da`` holds spectra: a non-empty DataArray with an ``energy`` dim.

    The other dims must be among :data:`LEADING_DIMS`. The values and the energy calibration
    are not checked (see :func:`spectrum_image` and :func:`energy_ev`).

    Raises
    ------
    InputError
        If ``da`` is not an :class:`xarray.DataArray`.
    DimensionError
        If it has no ``energy`` dim or an unknown one.
    EmptyDataError
        If it has no elements.
    """
    if not isinstance(da, xr.DataArray):
        raise InputError(
            f"{what} must be an xarray.DataArray with an 'energy' dim, got {type(da).__name__}"
        )
    if "energy" not in da.dims:
        raise DimensionError(
            f"{what}: dims {tuple(da.dims)} include no 'energy' dim; name the spectral axis "
            "'energy' (eV) (use --dims for uncalibrated files)"
        )
    extra = [d for d in da.dims if d != "energy" and d not in LEADING_DIMS]
    if extra:
        raise DimensionError(
            f"{what}: EELS processing does not know the dim(s) {extra}; allowed in front of "
            f"'energy' are {LEADING_DIMS}"
        )
    require_nonempty(da, what)


def spectra_array(spectra: Any, n_channels: int) -> np.ndarray:
    """``numpy.asarray(spectra)``, checked to have ``n_channels`` channels on its last axis."""
    x = np.asarray(spectra)
    if x.shape[-1] != n_channels:
        raise InputError(
            f"spectra have {x.shape[-1]} channels but the energy vector has {n_channels}"
        )
    return x


def spectrum_image(da: xr.DataArray, what: str = "input") -> tuple[xr.DataArray, np.ndarray]:
    """Validate a spectrum image and put it in the form the kernels expect.

    Checks the dims (``energy`` plus any of :data:`LEADING_DIMS`), the energy calibration, that
    the array is not empty, holds no NaN/inf (lazily for dask arrays) and, for in-memory arrays,
    is not all zero. Moves ``energy`` last, re-expresses the energy coordinate in eV and puts a
    dask array's energy axis into one chunk.

    Returns
    -------
    da : xarray.DataArray
        The checked array (lazy if the input was).
    energy : numpy.ndarray
        Channel centres, eV, float64.
    """
    require_spectra(da, what)
    _, _, factor = _calibration(da)
    energy = np.asarray(da["energy"].values, dtype=np.float64) * factor
    da = da.transpose(..., "energy")
    if factor != 1.0:
        da = da.assign_coords(energy=xr.Variable("energy", energy, attrs={"units": "eV"}))
    if is_lazy(da):
        da = da.chunk({"energy": -1})
    elif np.issubdtype(da.dtype, np.number) and not np.any(np.asarray(da.values)):
        raise EmptyDataError(
            f"{what} is all zero ({da.size} values); check the file, the selected region and "
            "the detector read-out"
        )
    da = require_finite(da, what)
    return da, energy


def lift(
    kernel: Callable[..., Any],
    arrays: Sequence[xr.DataArray | np.ndarray],
    core_dims: Sequence[Sequence[str]],
    out_core_dims: Sequence[Sequence[str]],
    out_dtypes: Sequence[Any],
) -> tuple[xr.DataArray, ...]:
    """Apply a numpy kernel over labelled, possibly lazy arrays (``xarray.apply_ufunc``).

    The core dims (``energy``) are passed whole to the kernel; blocks along the leading dims
    stay lazy (``dask="parallelized"``). Always returns a tuple of DataArrays.
    """
    many = len(out_core_dims) > 1
    result = apply_ufunc(
        kernel,
        *arrays,
        input_core_dims=[list(c) for c in core_dims],
        output_core_dims=[list(c) for c in out_core_dims] if many else [list(out_core_dims[0])],
        dask="parallelized",
        output_dtypes=list(out_dtypes),
    )
    return tuple(result) if many else (result,)


def leading_coords(da: xr.DataArray) -> dict[str, xr.Variable]:
    """The index coordinates of ``da``'s leading (non-energy) dims, with their units."""
    return {d: da[d].variable for d in da.dims if d != "energy" and d in da.coords}


def finish(
    out: xr.DataArray,
    source: xr.DataArray,
    *,
    name: str,
    units: str,
    long_name: str,
    attrs: dict[str, Any] | None = None,
) -> xr.DataArray:
    """Name an output DataArray, give it units and copy the source's coordinates."""
    out = out.rename(name)
    coords = leading_coords(source)
    if "energy" in out.dims:
        coords["energy"] = source["energy"].variable
    out = out.assign_coords(coords)
    out.attrs = {"units": units, "long_name": long_name, **(attrs or {})}
    return out


__all__ = [
    "LEADING_DIMS",
    "require_spectra",
    "spectra_array",
    "spectrum_image",
    "lift",
    "leading_coords",
    "finish",
]
