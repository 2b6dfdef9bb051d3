"""Maps and series of maps for the potential routes and the workflows: checked, built, run frame by frame.

The helpers :mod:`ionscope.holography.potential` and :mod:`ionscope.holography.workflow` share
for a (y, x) map or a series of them (dims y, x and e.g. time): the map or series checked and
transposed (y, x last), the accelerating voltage and the vacuum mask checked, an output map built
like its input (coordinates, beam energy, provenance), a per-pixel numpy kernel lifted over
(possibly dask-backed) maps, a per-frame function run over the frames of a series
(:func:`frame_by_frame`: one dask task per chunk of frames, numpy in, numpy out), one frame
rebuilt as a DataArray (:func:`frame_like`) and the inputs given once for a whole series loaded
once (:func:`fixed_maps`, :func:`series_inputs`). Internal: no public names
(:mod:`ionscope.holography.potential`, where they were defined, still imports them all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.compat import apply_ufunc, compute
from ionscope.data import require_dims
from ionscope.errors import ConfigError, DimensionError, InputError


def _map(obj: Any, what: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        raise InputError(f"{what} must be a single (y, x) map, got a Dataset; pick a variable")
    if not isinstance(obj, xr.DataArray):
        raise InputError(f"{what} must be an xarray DataArray with dims (y, x), got {type(obj).__name__}")
    require_dims(obj, ("y", "x"), what=what)
    return obj.transpose("y", "x")


def _series_map(obj: Any, what: str) -> xr.DataArray:
    """A (y, x) map or a series of them (y, x and further dims, e.g. time; transposed so that
    y, x come last); numpy- or dask-backed, not loaded."""
    if isinstance(obj, xr.DataArray) and obj.ndim > 2 and "y" in obj.dims and "x" in obj.dims:
        lead = [d for d in obj.dims if d not in ("y", "x")]
        return obj.transpose(*lead, "y", "x")
    return _map(obj, what)


def _per_pixel(kernel: Any, *args: Any, **kwargs: Any) -> xr.DataArray:
    """A per-pixel numpy kernel lifted over (possibly dask-backed) maps and series: lazy, one
    task per chunk, when any argument is dask-backed (float64 result)."""
    lazy = any(isinstance(a, xr.DataArray) and a.chunks is not None for a in args)
    return apply_ufunc(kernel, *args, kwargs=kwargs, dask="parallelized" if lazy else "forbidden",
                       output_dtypes=[np.float64])


def frame_by_frame(frame_fn: Any, series: Mapping[str, xr.DataArray], *, maps: Mapping[str, Any],
                   scalars: Sequence[str] = (), vectors: Mapping[str, tuple[str, int]] | None = None,
                   ) -> dict[str, xr.DataArray]:
    """Run a per-frame function over series of (y, x) maps, lazily when they are dask-backed.

    Parameters
    ----------
    frame_fn : callable
        ``frame_fn(**{name: (y, x) ndarray})`` -> dict of its outputs for one frame: a
        (y, x) array for each of ``maps`` (None: NaN / False), a number for each of
        ``scalars`` and a 1-d array for each of ``vectors`` (missing: NaN).
    series : mapping of str to xarray.DataArray
        The per-frame inputs, all with dims y, x last and the same leading dims (e.g. time).
    maps : mapping of str to dtype
        The (y, x) outputs and their dtypes.
    scalars : sequence of str
        The per-frame numbers (float64).
    vectors : mapping of str to (dim, size)
        Per-frame vectors (float64) along a new dim.

    Returns
    -------
    dict of str to xarray.DataArray
        One entry per output: the maps with the inputs' dims, the scalars along the leading
        dims. Dask-backed (y, x rechunked to one chunk, one task per chunk of frames, the outputs
        of a chunk from one call) when any input is; numpy-backed otherwise.

    Computes: nothing while building.
    """
    vectors = dict(vectors or {})
    names = list(series)
    lazy = any(series[n].chunks is not None for n in names)
    inputs = [series[n].chunk({"y": -1, "x": -1}) if lazy else series[n] for n in names]
    out_names = [*maps, *scalars, *vectors]

    def kernel(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        lead = arrays[0].shape[:-2]
        flat = [a.reshape((-1, *a.shape[-2:])) for a in arrays]
        n, shape = flat[0].shape[0], arrays[0].shape[-2:]
        res: dict[str, np.ndarray] = {k: np.full((n, *shape), False if np.dtype(dt) == bool else np.nan, dtype=dt)
                                      for k, dt in maps.items()}
        res.update({k: np.full(n, np.nan) for k in scalars})
        res.update({k: np.full((n, size), np.nan) for k, (_, size) in vectors.items()})
        for i in range(n):
            got = frame_fn(**{name: f[i] for name, f in zip(names, flat)})
            for k in out_names:
                if got.get(k) is not None:
                    res[k][i] = got[k]
        outs = tuple(res[k].reshape(lead + res[k].shape[1:]) for k in out_names)
        return outs if len(outs) > 1 else outs[0]

    kwargs: dict[str, Any] = {}
    if lazy and vectors:
        kwargs["dask_gufunc_kwargs"] = {"output_sizes": {dim: size for dim, size in vectors.values()}}
    results = apply_ufunc(
        kernel, *inputs, input_core_dims=[["y", "x"]] * len(inputs),
        output_core_dims=[["y", "x"]] * len(maps) + [[]] * len(scalars) + [[dim] for dim, _ in vectors.values()],
        dask="parallelized" if lazy else "forbidden",
        output_dtypes=[*maps.values(), *[np.float64] * (len(scalars) + len(vectors))], **kwargs)
    if not isinstance(results, tuple):
        results = (results,)
    first = series[names[0]]  # the coordinates keep their attrs (units), as in the inputs
    results = tuple(r.assign_coords({c: first[c].variable for c in r.dims if c in first.coords}) for r in results)
    return dict(zip(out_names, results))


def _check_kv(kv: float) -> float:
    try:
        kv = float(kv)
    except (TypeError, ValueError):
        raise ConfigError(f"the accelerating voltage must be a number of kV, got {kv!r}") from None
    if not (np.isfinite(kv) and 1.0 <= kv <= 3000.0):
        raise ConfigError(f"the accelerating voltage must lie in 1-3000 kV, got {kv!r}")
    return kv


def _vacuum_values(da: xr.DataArray, vacuum: Any) -> np.ndarray | None:
    """Boolean (y, x) vacuum mask from a DataArray / ndarray, or None."""
    if vacuum is None:
        return None
    mask = np.asarray(vacuum.values if isinstance(vacuum, xr.DataArray) else vacuum).astype(bool)
    if mask.shape != da.shape:
        raise DimensionError(f"vacuum mask shape {mask.shape} differs from the map's {da.shape}")
    if mask.sum() < 16:
        raise InputError(f"the vacuum mask holds {int(mask.sum())} pixels; at least 16 are needed")
    return mask


def _like(da: xr.DataArray, values: np.ndarray, name: str, units: str, long_name: str,
          **attrs: Any) -> xr.DataArray:
    keep = {k: v for k, v in da.attrs.items() if k in ("beam_energy_kV",)}
    out = xr.DataArray(values, dims=da.dims, coords={d: da[d] for d in da.dims}, name=name,
                       attrs={**keep, **attrs, "units": units, "long_name": long_name,
                              "provenance": da.attrs.get("provenance", "[]")})
    return out


def fixed_maps(given: Mapping[str, tuple[Any, str]]) -> dict[str, xr.DataArray]:
    """(y, x) maps given once for a whole series (name -> (map, what it is)), loaded: the
    dask-backed ones are computed here, together in one compute (every frame's task then holds
    their values)."""
    das = {k: _map(obj, what) for k, (obj, what) in given.items()}
    values = compute(*[da.data for da in das.values()])
    return {k: da.copy(data=np.asarray(v)) for (k, da), v in zip(das.items(), values)}


def frame_like(series: xr.DataArray, values: np.ndarray) -> xr.DataArray:
    """One (y, x) frame ``values`` of ``series`` as a DataArray with its y, x coordinates,
    name and attrs (what ``series.isel(time=i)`` holds, without the time coordinate)."""
    return xr.DataArray(values, dims=("y", "x"), coords={d: series[d].variable for d in ("y", "x") if d in series.coords},
                        name=series.name, attrs=dict(series.attrs))


def series_inputs(lead: tuple, given: Mapping[str, tuple[Any, str]]) -> tuple[dict, dict]:
    """Split the optional inputs of a series computation into per-frame series (dims y, x and
    the ``lead`` dims of the series) and maps given once (:func:`fixed_maps`, computed once)."""
    series: dict[str, xr.DataArray] = {}
    fixed: dict[str, tuple[Any, str]] = {}
    for key, (obj, what) in given.items():
        if obj is None:
            continue
        if isinstance(obj, xr.DataArray) and obj.ndim > 2:
            da = _series_map(obj, what)
            if da.dims[:-2] != lead:
                raise DimensionError(f"{what} has dims {da.dims}; a series like the phase's {(*lead, 'y', 'x')} or one (y, x) map is needed")
            series[key] = da
        else:
            fixed[key] = (obj, what)
    return series, fixed_maps(fixed)
