"""Thin xarray wrappers of the KPFM kernels, one step each, for users who build their own chain.

Each takes labelled maps (dims ``(y, x)`` or ``(time, y, x)``, coordinates in nm, values with
their unit), checks them, runs the numpy kernel and returns a DataArray or Dataset with units and
a provenance step. :func:`ionscope.kpfm.workflow.process_frames` runs the same kernels on a whole
series in one pass.

- :func:`level_topography`: :func:`~ionscope.kpfm.level.level_topography_kernel`.
- :func:`reference_potential`: line offsets and frame offset removed on an equipotential region
  (:func:`~ionscope.kpfm.level.reference_kernel`; ``auto``:
  :func:`~ionscope.kpfm.level.find_reference_kernel`).
- :func:`register_frames`: drift registration of a series onto its first frame
  (:func:`~ionscope.register.stack.frame_shifts_kernel`, :func:`~ionscope.register.stack.shift_frame_kernel`).
- :func:`deconvolve`: Wiener deconvolution in volts (:func:`~ionscope.kpfm.psf.wiener_deconvolve_kernel`).
- :func:`segment_particles`: particle labels (:func:`~ionscope.kpfm.particles.segment_particles_kernel`).

The one-map steps load their map and return numpy-backed results; :func:`register_frames`
keeps a dask-backed series lazy (one task per time chunk; the guide's first frame is computed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.compat import compute
from ionscope.data import axis_calibration, is_lazy, provenance, require_dims, units_of, with_provenance
from ionscope.errors import InputError
from ionscope.kpfm.channels import VOLT_UNITS
from ionscope.register.stack import frame_shifts_kernel, shift_frame_kernel
from ionscope.kpfm.level import (
    find_reference_kernel, highpass_noise_kernel, level_topography_kernel, parse_box, reference_kernel,
)
from ionscope.kpfm.particles import POLARITIES, segment_particles_kernel
from ionscope.kpfm.psf import PSF, wiener_deconvolve_kernel
from ionscope.units import length_to_nm, require_length_to_nm
from ionscope.validation import Interval, Options, validate_params

__all__ = ["level_topography", "reference_potential", "register_frames", "deconvolve", "segment_particles"]


def _pixel_nm(da: xr.DataArray) -> tuple[float, float]:
    out = []
    for dim in ("y", "x"):
        _, step, unit = axis_calibration(da, dim)
        out.append(abs(step) * require_length_to_nm(unit, f"the {dim} axis"))
    return out[0], out[1]


def _map(da: Any, what: str, *, series: bool = False) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} must be an xarray DataArray, got {type(da).__name__}")
    if series:
        require_dims(da, ("time", "y", "x"), what=what)
        return da.transpose("time", "y", "x")
    require_dims(da, ("y", "x"), what=what)
    return da.transpose("y", "x")


def _volts(da: xr.DataArray, what: str) -> float:
    unit = units_of(da)
    if unit not in VOLT_UNITS:
        raise InputError(f"{what} is in {unit!r}; a potential map in V (or mV) is needed")
    return VOLT_UNITS[unit]


def level_topography(height: xr.DataArray) -> xr.DataArray:
    """Level a height map (y, x): line offsets (median of row differences) and a robust plane
    removed (:func:`~ionscope.kpfm.level.level_topography_kernel`). Returns nm."""
    height = _map(height, "level_topography")
    factor = length_to_nm(units_of(height))
    if factor is None:
        raise InputError(f"level_topography needs heights in a length unit, got {units_of(height)!r}")
    out = height.copy(data=level_topography_kernel(np.asarray(height.values, dtype=np.float64) * factor))
    out.attrs = {**height.attrs, "units": "nm"}
    return with_provenance(out, "ionscope.kpfm.level_topography", {}, [height], history=provenance(height))


def reference_potential(potential: xr.DataArray, reference: Any = "auto", *, line_offsets: bool = True) -> xr.DataArray:
    """Reference a potential map (y, x) to an equipotential region: its rows' offsets and the
    frame offset removed, its median 0 V (:func:`~ionscope.kpfm.level.reference_kernel`). The
    map is never plane-fitted.

    Parameters
    ----------
    potential : xarray.DataArray (y, x)
        In V (or mV).
    reference : "auto", "Y0:Y1,X0:X1" or (y0, y1, x0, x1)
        The region (``auto``: the flattest band along an image edge).
    line_offsets : bool
        Remove the offsets of the rows the region crosses.

    Returns
    -------
    xarray.DataArray
        In V, with attrs ``reference_box``, ``reference_edge`` and ``line_offsets_V`` (per row).
    """
    potential = _map(potential, "reference_potential")
    v = np.asarray(potential.values, dtype=np.float64) * _volts(potential, "the potential")
    if isinstance(reference, str) and reference.strip().lower() == "auto":
        box, info = find_reference_kernel(v)
        edge = info["edge"]
    else:
        box, edge = parse_box(reference, v.shape), ""
    out_v, offsets = reference_kernel(v, box, line_offsets=line_offsets)
    out = potential.copy(data=out_v)
    out.attrs = {**potential.attrs, "units": "V", "reference_box": [int(b) for b in box], "reference_edge": edge,
                 "line_offsets_V": offsets.tolist()}
    return with_provenance(out, "ionscope.kpfm.reference_potential",
                           {"reference": [int(b) for b in box], "line_offsets": line_offsets}, [potential],
                           history=provenance(potential))


@validate_params({"upsample": [Interval(int, 1, 1000)], "sigma_px": [Interval(float, 0, None)]})
def register_frames(series: xr.DataArray, *, guide: xr.DataArray | None = None, upsample: int = 50,
                    sigma_px: float = 1.0) -> xr.Dataset:
    """Register every frame of a series (time, y, x) onto the first frame's grid.

    Parameters
    ----------
    series : xarray.DataArray (time, y, x)
        The maps to resample (e.g. referenced potentials).
    guide : xarray.DataArray (time, y, x), optional
        Maps the drift is measured on (e.g. the levelled topography); default ``series``.
    upsample : int
        Sub-pixel grid (``1 / upsample`` px).
    sigma_px : float
        Smoothing of the edge maps the shifts are measured on (px).

    Returns
    -------
    xarray.Dataset
        ``registered`` (time, y, x; NaN where a frame does not cover), ``shift_y_nm``,
        ``shift_x_nm`` (time; the shift applied, ``registered(r) = frame(r - shift)``: the drift
        is its negative) and ``registration_match`` (time).

    Computes: a dask-backed series (or guide) gives a dask-backed Dataset, one task per time
    chunk (each frame is registered onto the first on its own, so the chunks give the in-memory
    values); the guide's first frame is computed once, before returning (the reference every
    chunk is matched to). A numpy-backed series is loaded.
    """
    series = _map(series, "register_frames", series=True)
    guide_map = series if guide is None else _map(guide, "the guide of register_frames", series=True)
    if guide_map.shape != series.shape:
        raise InputError(f"the guide {guide_map.shape} and the series {series.shape} differ in shape")
    dy, dx = _pixel_nm(series)
    dtype = np.float32 if series.dtype == np.float32 else np.float64
    if is_lazy(series) or is_lazy(guide_map):
        registered, shifts, match = _register_lazy(series.data, guide_map.data, dtype, upsample=upsample,
                                                   sigma_px=sigma_px)
    else:
        shifts, match = frame_shifts_kernel(np.asarray(guide_map.values, dtype=np.float64), upsample=upsample,
                                            sigma_px=sigma_px)
        values = np.asarray(series.values)
        registered = np.stack([shift_frame_kernel(values[k].astype(dtype), shifts[k]) for k in range(values.shape[0])])
    out = xr.Dataset({
        "registered": series.copy(data=registered),
        "shift_y_nm": ("time", shifts[:, 0] * dy, {"units": "nm"}),
        "shift_x_nm": ("time", shifts[:, 1] * dx, {"units": "nm"}),
        "registration_match": ("time", match, {"units": "1"}),
    }, attrs={"primary": "registered"})
    inputs = [series] + ([guide_map] if guide is not None else [])
    return with_provenance(out, "ionscope.kpfm.register_frames", {"upsample": upsample, "sigma_px": sigma_px},
                           inputs, history=provenance(series), variables=["registered"])


def _shifts_block(guide: np.ndarray, reference: np.ndarray, first: int, *, upsample: int,
                  sigma_px: float) -> np.ndarray:
    """(frames, 3): shift (dy, dx) px and match of a block of guide frames registered onto the
    reference frame. The block whose first frame is the series' first (``first == 0``) is the
    reference's own block: that frame gets shift 0 and match 1, as in the whole series; every other
    frame is matched on its own, so the blocks give the whole series' values."""
    g = np.asarray(guide, dtype=np.float64)
    if first == 0:
        shifts, match = frame_shifts_kernel(g, upsample=upsample, sigma_px=sigma_px)
    else:
        shifts, match = frame_shifts_kernel(np.concatenate([reference[None], g]), upsample=upsample,
                                            sigma_px=sigma_px)
        shifts, match = shifts[1:], match[1:]
    return np.c_[shifts, match]


def _register_lazy(series: Any, guide: Any, dtype: Any, *, upsample: int, sigma_px: float) -> tuple[Any, Any, Any]:
    """:func:`register_frames` over the time chunks of dask arrays: the guide's first frame is
    computed (the reference), then per time chunk one task of shifts and one of registered frames."""
    import dask.array as da

    series, guide = da.asarray(series), da.asarray(guide)
    chunks = series.chunks[0]
    series = series.rechunk({1: -1, 2: -1})
    guide = guide.rechunk({0: chunks, 1: -1, 2: -1})
    (reference,) = compute(guide[0])  # the one sample: the frame every chunk is matched to
    reference = np.asarray(reference, dtype=np.float64)

    def shifts(g: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        return _shifts_block(g, reference, block_info[0]["array-location"][0][0], upsample=upsample,
                             sigma_px=sigma_px)

    def register(v: np.ndarray, table: np.ndarray) -> np.ndarray:
        return np.stack([shift_frame_kernel(v[k].astype(dtype), table[k, :2]) for k in range(v.shape[0])])

    table = guide.map_blocks(shifts, drop_axis=[1, 2], new_axis=1, chunks=(chunks, (3,)), dtype=np.float64)
    # each chunk of frames with its rows of the table (time chunks aligned, the table's columns one chunk)
    registered = da.blockwise(register, "tyx", series, "tyx", table, "tc", concatenate=True, dtype=dtype)
    return registered, table[:, :2], table[:, 2]


@validate_params({"balance": [Interval(float, 0, None, closed="neither")],
                  "noise_V": [Interval(float, 0, None, closed="neither", unit="V"), None]})
def deconvolve(potential: xr.DataArray, psf: PSF | dict | float, *, noise_V: float | None = None,
               balance: float = 1.0) -> xr.DataArray:
    """Wiener deconvolution of a potential map (y, x) that keeps volts (no clipping, reflect
    padding, the noise from the data; :func:`~ionscope.kpfm.psf.wiener_deconvolve_kernel`).

    Parameters
    ----------
    potential : xarray.DataArray (y, x)
        In V (or mV).
    psf : PSF, dict or float
        The PSF: a :class:`~ionscope.kpfm.psf.PSF` (x pixels), a dict ``core_sigma_nm``,
        ``tail_weight``, ``tail_sigma_nm``, or a Gaussian sigma in nm.
    noise_V : float, optional
        White-noise SD (V); default from second differences along the scan lines
        (:func:`~ionscope.kpfm.level.highpass_noise_kernel`).
    balance : float
        Noise weight (> 1 smoother).
    """
    potential = _map(potential, "deconvolve")
    dy, dx = _pixel_nm(potential)
    v = np.asarray(potential.values, dtype=np.float64) * _volts(potential, "the potential")
    if isinstance(psf, PSF):
        the_psf = psf
    elif isinstance(psf, dict):
        the_psf = PSF.from_nm(psf, dx)
    else:
        the_psf = PSF(float(psf) / dx)
    noise = float(noise_V) if noise_V is not None else highpass_noise_kernel(v)
    if not np.isfinite(noise) or noise <= 0:
        raise InputError("the noise of the map could not be estimated; give noise_V")
    out = potential.copy(data=wiener_deconvolve_kernel(v, the_psf, noise, balance=balance, aspect=dy / dx))
    out.attrs = {**potential.attrs, "units": "V", "psf": the_psf.to_nm(dx), "noise_V": noise}
    return with_provenance(out, "ionscope.kpfm.deconvolve",
                           {"psf": the_psf.to_nm(dx), "noise_V": noise, "balance": balance}, [potential],
                           history=provenance(potential))


@validate_params({"polarity": [Options(set(POLARITIES))], "smooth_px": [Interval(float, 0, None)],
                  "min_area_nm2": [Interval(float, 0, None), None]})
def segment_particles(image: xr.DataArray, *, exclude: Any = None, polarity: str = "auto", smooth_px: float = 0.5,
                      min_area_nm2: float | None = None) -> xr.DataArray:
    """Particle labels of a map (y, x): topography or potential
    (:func:`~ionscope.kpfm.particles.segment_particles_kernel`).

    Parameters
    ----------
    image : xarray.DataArray (y, x)
        The map.
    exclude : array_like of bool or (y0, y1, x0, x1), optional
        Pixels that are never particles (e.g. the collector's box).
    polarity : {"auto", "bright", "dark", "both"}
        How particles differ from the matrix.
    smooth_px : float
        Gaussian smoothing (px) before the threshold.
    min_area_nm2 : float, optional
        Smallest particle (nm^2); default 9 pixels.

    Returns
    -------
    xarray.DataArray of int32
        Labels 1..n, 0 = matrix; attrs ``particles``.
    """
    image = _map(image, "segment_particles")
    dy, dx = _pixel_nm(image)
    mask = None
    if exclude is not None:
        if np.ndim(exclude) == 1 and len(exclude) == 4:
            y0, y1, x0, x1 = parse_box(exclude, image.shape)
            mask = np.zeros(image.shape, dtype=bool)
            mask[y0:y1, x0:x1] = True
        else:
            mask = np.asarray(exclude, dtype=bool)
            if mask.shape != image.shape:
                raise InputError(f"exclude {mask.shape} does not match the map {image.shape}")
    min_px = max(1, int(np.ceil((min_area_nm2 if min_area_nm2 is not None else 9 * dy * dx) / (dy * dx))))
    labels = segment_particles_kernel(np.asarray(image.values, dtype=np.float64), exclude=mask, polarity=polarity,
                                      smooth_px=smooth_px, min_area_px=min_px)
    out = xr.DataArray(labels, dims=("y", "x"), coords={d: image[d] for d in ("y", "x")}, name="labels",
                       attrs={"units": "1", "long_name": "particle labels (0 = matrix)", "particles": int(labels.max())})
    return with_provenance(out, "ionscope.kpfm.segment_particles",
                           {"polarity": polarity, "smooth_px": smooth_px, "min_area_px": min_px}, [image],
                           history=provenance(image))
