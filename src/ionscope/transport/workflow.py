"""Li motion from an operando Li-fraction series: the chain ``ionscope motion`` runs.

:func:`li_motion`: a (denoised) Li-fraction or concentration series (time, y, x) ->

1. the rate :math:`\\partial_t x` per frame and pixel, the slope of a straight line over
   ``window`` frames inside each run of one cell state
   (:func:`~ionscope.transport.continuity.rate_of_change`);
2. the flux (``method``): ``continuity``, the minimum-norm flux :math:`-\\nabla\\phi` that
   satisfies :math:`\\partial_t x = -\\nabla\\cdot\\mathbf J` with Li crossing only the
   electrolyte face (:func:`~ionscope.transport.continuity.poisson_flux`), and the Li drift
   velocity :math:`\\mathbf J / x`; ``flow``, the TV-L1 optical flow of the Li features
   (:mod:`ionscope.transport.flow`) as the velocity and :math:`x\\,\\mathbf v` as the flux;
   ``both``, the continuity flux plus the divergence-free part of the flow's flux (which the
   maps alone cannot fix), with the flow as the velocity;
3. the front, the iso-line ``x = level`` (:mod:`ionscope.transport.fronts`): its depth per frame
   and column, normal velocity and roughness; the front velocity of a frame is the rate of the
   mean depth (its advance into the electrode);
4. per cell state (charge / rest / discharge from the series' ``state`` coordinate, else one
   state ``all``): the fraction of :math:`\\sum |\\mathbf J|` (component by component) that runs
   in-plane (parallel to the electrolyte interface) rather than toward or away from it, the
   mean front velocity, the mean flux and where it concentrates (the mean :math:`|\\mathbf J|`
   map), with standard errors over the state's frames (inflated by the window, whose frames
   share rate fits: ``std * sqrt(window / n)``);
5. the noise: the map noise from the series' second differences in time (a robust estimate, so
   it holds for denoised series too), propagated exactly through the rate fit and the Poisson
   solve to the flux (:func:`~ionscope.transport.continuity.flux_noise_sd`).

What the maps cannot show: a divergence-free flux (Li circulating, e.g. in along a fast domain
boundary and out through the grain next to it) changes no map, so no analysis of the maps alone
recovers it; the minimum-norm flux is the least flux that explains every map, and its in-plane
fraction is a lower bound of the true one (``benchmarks/transport.py`` measures how far below on
the ``licoo2`` twin).

What the structure adds: with a mobility map (``mobility``) or a domain-boundary mask whose bulk and
boundary mobilities are fitted to the maps (``boundaries``), the continuity flux is the Fickian
flux :math:`-D\\nabla\\phi`, :math:`\\nabla\\cdot(D\\nabla\\phi) = \\partial_t x`
(:mod:`ionscope.transport.mobility`), which runs along the fast paths as diffusion does. The fit
leaves out the electrolyte row (a source) and the Li-poor interfacial layer of the first frame
(:func:`~ionscope.transport.interfacial_layer_mask`: Li fraction = site fraction x occupancy there, so Fick's law on
the maps fails at its edge), which keeps the bulk mobility; the fit is pooled over the cell states
Fick's law describes (``r2 >= 0.5`` and positive mobilities: not a state with Li inserted inside
the field, as the twin's electron-limited discharge, whose maps have a source), and the Fickian
flux with that mobility is the flux of every state (inserted Li is supplied along the same paths of
least resistance; the ``licoo2`` twin's truth takes that path).

Dask-backed input stays lazy: the flux, velocity and rate are built per time chunk (with the
neighbouring frames the rate fit and the flow need) and computed when written. Two computes read
the maps: the first frame (the default level and the value check), then one pass of per-frame
statistics, one task per time chunk, none holding more than a chunk of the maps (plus its halo):
the flux sums per frame and the mean :math:`|\\mathbf J|` map per state, the front depth per frame
and column (:func:`~ionscope.transport.fronts.front_depth`, frame by frame), and the second
differences of the noise (each chunk with one frame on either side) binned on a fine log grid with
each bin's smallest and largest value, whose median equals the in-memory one (to rounding) where the middle
values are ties or neighbours (discrete maps such as counts / dose) and is within the bin width
(1.2e-3 relative) otherwise. The rest (the front velocities and roughness, the state table, the
flux noise) works on these small per-frame arrays. With ``boundaries`` the mobility fit loads the
whole series (a third compute).

Its steps live here (the per-chunk kernel, the per-frame statistics and the noise, the state
table, the output Dataset) and in :mod:`ionscope.transport.series` (the series checked: quantity,
frame times, pixel size, cell states: :func:`~ionscope.transport.state_codes`) and
:mod:`ionscope.transport.structure` (the mobility map or boundary mask checked, the interfacial
layer, the mobility fit: :func:`~ionscope.transport.interfacial_layer_mask`); the public ones are
re-exported here.
"""

from __future__ import annotations

import time as _time
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import is_lazy, plain_json, provenance, require_dims, require_finite, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.transport.continuity import SIDES, divergence_free_part, flux_noise_sd, poisson_flux, rate_of_change
from ionscope.transport.flow import velocity_at_frames
from ionscope.transport.mobility import MobilityFlux
from ionscope.transport.fronts import LEVEL_FRACTION, default_level, front_depth, front_roughness, front_velocity
from ionscope.transport.series import _check_fraction_values, _check_quantity, _frame_times, _pixel_nm, _runs, state_codes
from ionscope.transport.series import _STATE_NAMES  # noqa: F401  (re-exported: it was defined here)
from ionscope.transport.structure import _mobility_from_boundaries, _structure_map
from ionscope.transport.structure import interfacial_layer_mask  # noqa: F401  (re-exported: it was defined here)
from ionscope.validation import Interval, Options, check_parameter, described

__all__ = ["METHODS", "li_motion", "state_codes"]

STEP = "ionscope.transport.li_motion"
METHODS = ("continuity", "flow", "both")
#: Velocities J / x are NaN where x is below this fraction of the Li-rich level.
_VELOCITY_FLOOR = 0.02


@described("an odd integer in [3, 1001] (frames)")
def _ODD_WINDOW(value: Any) -> bool:  # noqa: N802 (a constraint, named like the others)
    return Interval(int, 3, 1001)(value) and int(value) % 2 == 1


# --------------------------------------------------------------------------- the per-chunk kernel


def _motion_kernel(x: np.ndarray, t: np.ndarray, runs: np.ndarray, keep: slice, *, method: str, side: str,
                   pixel: tuple[float, float], window: int, floor: float, solver: MobilityFlux | None = None,
                   fickian: np.ndarray | None = None) -> np.ndarray:
    """Rate, flux and velocity of the frames ``keep`` of ``x`` (T, ny, nx), which holds them and
    their neighbours: (5, n_keep, ny, nx) = rate, J_y, J_x, v_y, v_x. With a ``solver`` the
    continuity flux of the frames where ``fickian`` (per frame of ``x``) is true is its
    mobility-weighted flux, else the minimum-norm one."""
    x = np.asarray(x, dtype=np.float64)
    rate = rate_of_change(x, t, runs, window)[keep]
    xs = x[keep]
    if method in ("continuity", "both"):
        jy, jx = poisson_flux(rate, pixel, side)
        if solver is not None:
            on = np.ones(x.shape[0], bool)[keep] if fickian is None else np.asarray(fickian, bool)[keep]
            if on.any():
                jy[on], jx[on] = solver.flux(rate[on])
    if method in ("flow", "both"):
        v = velocity_at_frames(x, t, pixel)[:, keep]
        if method == "flow":
            jy, jx = xs * v[0], xs * v[1]
        else:
            dy, dx = divergence_free_part(xs * v[0], xs * v[1], pixel)
            jy, jx = jy + dy, jx + dx
        vy, vx = v[0], v[1]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = xs >= floor
            vy, vx = np.where(ok, jy / xs, np.nan), np.where(ok, jx / xs, np.nan)
    return np.stack([rate, jy, jx, vy, vx]).astype(np.float32)


def _halo(method: str, window: int) -> int:
    return max((window - 1) // 2, 1 if method != "continuity" else 0, 1)


def _motion_arrays(x: Any, t: np.ndarray, runs: np.ndarray, **kw) -> Any:
    """The kernel over the whole series: numpy in, numpy out; dask in, lazy dask out (one task
    per time chunk, each reading its chunk and ``halo`` frames on either side)."""
    n = t.size
    halo = _halo(kw["method"], kw["window"])
    if not hasattr(x, "dask"):
        return _motion_kernel(x, t, runs, slice(0, n), **kw)
    fickian = kw.pop("fickian", None)
    import dask.array as dsa

    pieces = []
    bounds = np.cumsum((0,) + x.chunks[0])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        a, b = max(lo - halo, 0), min(hi + halo, n)
        block = x[a:b].rechunk({0: -1, 1: -1, 2: -1})
        keep = slice(lo - a, hi - a)

        def run(xb, t_=t[a:b], r_=runs[a:b], keep_=keep, f_=None if fickian is None else fickian[a:b]):
            return _motion_kernel(xb, t_, r_, keep_, fickian=f_, **kw)

        pieces.append(dsa.map_blocks(run, block, new_axis=0, dtype=np.float32,
                                     chunks=((5,), (hi - lo,), (x.shape[1],), (x.shape[2],))))
    return dsa.concatenate(pieces, axis=1)


# --------------------------------------------------------------------------- statistics


def _noise_sd(x: np.ndarray, runs: np.ndarray) -> float:
    """Map noise (x units) from second differences in time within runs: for white noise of
    standard deviation s the second difference has s sqrt(6); the median absolute value, robust
    to the signal's own curvature, gives s = 1.4826 median|d2| / sqrt(6). NaN below 3 frames."""
    return _noise_from_d2(_second_differences(x, runs))


#: Bins of the streamed noise estimate: |second difference| in log-spaced bins, _D2_PER_DECADE per
#: decade over [_D2_RANGE[0], _D2_RANGE[1]] (relative bin width 1.2e-3), one bin [0, lowest edge) below
#: and one [highest edge, inf) above.
_D2_PER_DECADE = 2000
_D2_RANGE = (-15, 3)
_D2_EDGES = np.concatenate([[0.0], np.logspace(_D2_RANGE[0], _D2_RANGE[1],
                                               (_D2_RANGE[1] - _D2_RANGE[0]) * _D2_PER_DECADE + 1)])


def _second_differences(x: np.ndarray, runs: np.ndarray, centres: slice | None = None) -> np.ndarray:
    """|x[i+1] - 2 x[i] + x[i-1]| of the frames i of ``x`` (T, ny, nx) whose three frames lie in one
    run, flattened; ``centres`` (a slice of 1..T-2) restricts the frames i."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 3:
        return np.zeros(0)
    ok = (runs[2:] == runs[1:-1]) & (runs[1:-1] == runs[:-2])
    if centres is not None:
        keep = np.zeros_like(ok)
        keep[slice(centres.start - 1, centres.stop - 1)] = True
        ok &= keep
    return np.abs((x[2:] - 2 * x[1:-1] + x[:-2])[ok]).ravel()


def _noise_from_d2(d2: np.ndarray) -> float:
    return float(1.4826 * np.median(d2) / np.sqrt(6.0)) if d2.size else float("nan")


def _d2_bins(x: np.ndarray, runs: np.ndarray, centres: slice) -> np.ndarray:
    """Histogram of :func:`_second_differences` on :data:`_D2_EDGES` (the last bin open), with the
    smallest and largest value in each bin: (1, 3, bins) = count, min, max (+inf, -inf if empty)."""
    d2 = np.sort(_second_differences(x, runs, centres))
    index = np.searchsorted(_D2_EDGES, d2, side="right") - 1
    out = np.empty((1, 3, _D2_EDGES.size))
    out[0, 0] = np.bincount(index, minlength=_D2_EDGES.size)
    out[0, 1], out[0, 2] = np.inf, -np.inf
    used, first = np.unique(index, return_index=True)
    last = np.append(first[1:], d2.size)[: used.size] - 1
    out[0, 1, used], out[0, 2, used] = d2[first], d2[last]
    return out


def _median_from_bins(count: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """The median of the values binned by :func:`_d2_bins` (counts, min and max per bin, summed
    and merged over the blocks), as :func:`numpy.median` (the mean of the two middle values for an
    even count): each of the two middle ranks is read off the bin holding it, by linear
    interpolation between the bin's smallest and largest value. Exact where these are the
    neighbouring values or equal (ties: discrete maps such as counts / dose), else within the
    bin's width (1.2e-3 relative; below 1e-15: 1e-15 absolute)."""
    count = np.asarray(count, dtype=np.float64)
    total = int(count.sum())
    if total == 0:
        return float("nan")
    cum = np.cumsum(count)

    def value(rank: int) -> float:  # the rank-th smallest (0-based)
        j = int(np.searchsorted(cum, rank, side="right"))
        n, before = int(count[j]), int(cum[j] - count[j])
        if n == 1:
            return float(low[j])
        return float(low[j] + (rank - before) / (n - 1) * (high[j] - low[j]))

    return 0.5 * (value((total - 1) // 2) + value(total // 2))


def _frame_statistics(x: Any, t: np.ndarray, runs: np.ndarray, level: float, side: str, pixel_nm: float
                      ) -> tuple[Any, Any]:
    """The front depth (T, along) and the binned second differences (count, min, max per bin of
    :func:`_d2_bins`, merged over the chunks) of a dask-backed series, lazy: one task per time chunk
    of ``x`` for each, the depth from the chunk's frames, the second differences from the chunk and
    one frame on either side (those whose centre frame is in the chunk)."""
    import dask.array as dsa

    n = t.size
    ny, nx = x.shape[1:]
    along = nx if SIDES[side][0] == 0 else ny
    depth, bins = [], []
    bounds = np.cumsum((0,) + x.chunks[0])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        block = x[lo:hi].rechunk({0: -1, 1: -1, 2: -1})
        depth.append(dsa.map_blocks(partial(front_depth, level=level, side=side, pixel_nm=pixel_nm), block,
                                    drop_axis=2, meta=np.empty((0, 0)), chunks=((hi - lo,), (along,))))
        a, b = max(lo - 1, 0), min(hi + 1, n)
        centres = slice(max(lo, 1) - a, min(hi, n - 1) - a)
        if centres.stop <= centres.start:
            continue
        halo = x[a:b].rechunk({0: -1, 1: -1, 2: -1})
        bins.append(dsa.map_blocks(partial(_d2_bins, runs=runs[a:b], centres=centres), halo,
                                   meta=np.empty((0, 0, 0)), chunks=((1,), (3,), (_D2_EDGES.size,))))
    if not bins:
        bins.append(dsa.from_array(_d2_bins(np.zeros((0, ny, nx)), runs[:0], slice(1, 1))))
    bins = dsa.concatenate(bins, axis=0)
    merged = [bins[:, 0].sum(axis=0), bins[:, 1].min(axis=0), bins[:, 2].max(axis=0)]
    return dsa.concatenate(depth, axis=0), merged


def _mean_and_error(values: np.ndarray, window: int) -> tuple[float, float]:
    """Mean over a state's frames and its standard error. Frames closer than ``window`` share
    rate fits, so only ``n / window`` of the n values are independent: the error is
    ``std * sqrt(window / n)``, NaN with fewer than two independent values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    err = float(v.std(ddof=1) * np.sqrt(window / v.size)) if v.size >= 2 * window else float("nan")
    return float(v.mean()), err


def _state_table(codes, names, inplane_sum, normal_sum, frame_fraction, front_v, mean_flux, window
                 ) -> dict[str, Any]:
    table = {}
    for code, name in names.items():
        sel = codes == code
        a, b = float(inplane_sum[sel].sum()), float(normal_sum[sel].sum())
        _, f_err = _mean_and_error(frame_fraction[sel], window)
        v, v_err = _mean_and_error(front_v[sel], window)
        m, m_err = _mean_and_error(mean_flux[sel], window)
        table[name] = {
            "frames": int(sel.sum()),
            "in_plane_fraction": a / (a + b) if a + b > 0 else float("nan"), "in_plane_fraction_error": f_err,
            "front_velocity_nm_per_s": v, "front_velocity_nm_per_s_error": v_err,
            "mean_flux_nm_per_s": m, "mean_flux_nm_per_s_error": m_err,
        }
    return table


# --------------------------------------------------------------------------- the workflow


def li_motion(
    series: xr.DataArray,
    *,
    state: Any = None,
    electrolyte: str = "top",
    method: str = "continuity",
    level: float | None = None,
    window: int = 5,
    mobility: Any = None,
    boundaries: Any = None,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """Li flux, feature velocities, fronts and per-state transport of a Li map series.

    Computes: a numpy-backed series gives numpy-backed results. A dask-backed series gives
    dask-backed ``rate``, ``flux_*`` and ``velocity_*`` (one task per time chunk, y and x in one
    chunk) and computes the first frame, then one pass of per-frame statistics over the time
    chunks (the flux sums, the per-state mean flux maps, the front depth and the binned second
    differences of the noise; module docstring), never the whole series at once; with
    ``boundaries``, the whole series for the mobility fit.

    Parameters
    ----------
    series : xarray.DataArray
        Li fraction (units ``1``) or concentration (:data:`ionscope.units.CONCENTRATION_UNITS`)
        with dims (time, y, x): ``time`` in s (or min, h), ``y`` and ``x`` in nm; a ``state``
        coordinate (per frame, cycler flags) groups the statistics by cell state. Denoise it
        first (``ionscope denoise``): rates amplify noise.
    state : array-like, optional
        Per-frame state codes (0 rest, 1 charge, 2 discharge, or with CF flag attrs) overriding
        the series' ``state`` coordinate.
    electrolyte : {'top', 'bottom', 'left', 'right'}
        The side of the map where the solid electrolyte is (the only face Li crosses). Default
        top (row 0, as the ``licoo2`` twin and the demo have it).
    method : {'continuity', 'flow', 'both'}
        Flux from the continuity equation (default), from the optical flow, or both (module
        docstring).
    level : float, optional
        Front iso-value (units of the series); default
        :func:`~ionscope.transport.fronts.default_level` of the first frame.
    window : int
        Frames per rate fit (odd, >= 3; default 5).
    mobility : xarray.DataArray or array-like, optional
        A Li mobility (diffusivity) map :math:`D` (y, x) on the series' grid, absolute or
        relative, finite and > 0: the continuity flux becomes the Fickian flux
        :math:`-D\\nabla\\phi`, :math:`\\nabla\\cdot(D\\nabla\\phi) = \\partial_t x`
        (:class:`~ionscope.transport.mobility.MobilityFlux`), which runs along fast paths.
    boundaries : xarray.DataArray or array-like, optional
        A domain-boundary mask (y, x; true / non-zero = boundary) from a structure image (e.g. a
        segmented HAADF image, registered to the series): :math:`D_{bulk}` and
        :math:`D_{boundary}` are fitted to the maps per cell state
        (:func:`~ionscope.transport.mobility.fit_two_phase_mobility`, reported with jackknife
        errors in the summary's ``mobility``); the fit pooled over the states Fick's law
        describes on the maps (not those with Li inserted inside the field, where the fitted
        mobility is not positive) gives the flux of every state (summary ``mobility``:
        ``pooled_states``, ``fickian_states``). Not with ``mobility``. Without either, the flux is the minimum-norm
        one, whose in-plane fraction is a lower bound of the true one.

    Returns
    -------
    (xarray.Dataset, dict)
        ``flux_y``, ``flux_x`` (time, y, x; x nm/s for a fraction, concentration nm/s else),
        ``velocity_y``, ``velocity_x`` (time, y, x; nm/s), ``rate`` (time, y, x; per s),
        ``front_position_nm`` (time, along; nm from the electrolyte-side edge),
        ``front_velocity_nm_per_s``, ``front_roughness_nm``, ``in_plane_fraction`` (time),
        ``flux_magnitude_by_state`` (cell_state, y, x); and the summary (per state:
        ``in_plane_fraction``, ``front_velocity_nm_per_s``, ``mean_flux_nm_per_s`` with
        ``_error``; the noise; the parameters; ``mobility``: its source and, when fitted, the
        fitted mobilities; plain JSON, NaN as None); with a mobility, ``mobility`` (y, x) too.

    Raises
    ------
    DimensionError, InputError
        No time dim or coordinate, fewer than two frames, not a fraction or concentration,
        uncalibrated axes, NaN values, an electrolyte side with fewer than 3 pixels of depth.
    ConfigError
        Unknown ``electrolyte`` or ``method``, a bad ``window`` or ``level``; both ``mobility``
        and ``boundaries``.

    Examples
    --------
    A front moving down at 0.05 nm/s (Li leaving through the top):

    >>> from ionscope.data import signal
    >>> t = np.arange(8) * 60.0
    >>> y = np.arange(32) * 2.0
    >>> x = 0.5 + 0.4 * np.tanh((y[None, :, None] - 20 - 0.05 * t[:, None, None]) / 6) * np.ones((1, 1, 16))
    >>> da = signal(x, ("time", "y", "x"), name="li", units="1", coords={"time": t, "y": 2.0, "x": 2.0})
    >>> ds, summary = li_motion(da, level=0.5)
    >>> round(summary["states"]["all"]["front_velocity_nm_per_s"], 3)
    0.05
    """
    t0 = _time.perf_counter()
    if not isinstance(series, xr.DataArray):
        raise InputError(f"the series must be an xarray.DataArray (time, y, x), got {type(series).__name__}")
    check_parameter("method", method, [Options(METHODS)])
    check_parameter("electrolyte", electrolyte, [Options(SIDES)])
    check_parameter("window", window, [_ODD_WINDOW])
    check_parameter("level", level, [None, Interval(float, None, None)])
    t = _frame_times(series)
    require_dims(series, ("time", "y", "x"), what="Li motion")
    quantity = _check_quantity(series)
    series = require_finite(series.transpose("time", "y", "x"), str(series.name or "the series"))
    hy, hx = _pixel_nm(series, "y"), _pixel_nm(series, "x")
    axis, _ = SIDES[electrolyte]
    depth_px = series.sizes["y" if axis == 0 else "x"]
    if depth_px < 3 or series.sizes["x" if axis == 0 else "y"] < 2:
        raise DimensionError(
            f"--electrolyte {electrolyte}: the map is {series.sizes['y']} x {series.sizes['x']} px; the electrolyte "
            f"side needs at least 3 px of depth behind it and 2 along it")
    codes, names = state_codes(series, state)
    runs = _runs(codes)
    lazy = is_lazy(series)
    data = series.data if lazy else np.asarray(series.values)
    first = np.asarray(series.isel(time=0).values, dtype=np.float64)
    if quantity == "fraction":
        _check_fraction_values(first, str(series.name or "the series"))
    rich = default_level(first) / LEVEL_FRACTION  # the first frame's Li-rich level
    level = float(LEVEL_FRACTION * rich if level is None else level)
    solver, mobility_map, mobility_report = None, None, {"source": "none"}
    if mobility is not None and boundaries is not None:
        raise ConfigError("give a mobility map or a boundary mask (whose mobilities are fitted), not both")
    shape = (series.sizes["y"], series.sizes["x"])
    if mobility is not None:
        mobility_map = _structure_map(mobility, "mobility map", shape)
        if not np.all(mobility_map > 0):
            raise InputError(f"the mobility map has {int(np.sum(mobility_map <= 0))} pixels <= 0 (min "
                             f"{mobility_map.min():.3g}); a mobility is positive everywhere Li can move")
        mobility_report = {"source": "given", "units": str(getattr(mobility, "attrs", {}).get("units", "relative")),
                           "min": float(mobility_map.min()), "max": float(mobility_map.max())}
    elif boundaries is not None:
        mask = _structure_map(boundaries, "boundary mask", shape)
        if not np.all(np.isin(mask, (0.0, 1.0))):
            raise InputError("the boundary mask must be 0 / 1 (or bool): true on domain boundaries; threshold a "
                             "segmented structure image first")
        x_np = np.asarray(series.values, dtype=np.float64)
        mobility_map, mobility_report = _mobility_from_boundaries(
            x_np, t, codes, names, runs, mask.astype(bool), level, electrolyte, (hy, hx), int(window))
    fickian = None
    if mobility_map is not None:
        solver = MobilityFlux(mobility_map, (hy, hx), electrolyte)
        # the mobility (given, or fitted on the states Fick's law describes) routes the flux in every state:
        # Li inserted inside the field is supplied along the same paths of least resistance
        fickian = np.ones(t.size, bool)
        mobility_report["fickian_states"] = [name for c, name in names.items() if fickian[codes == c].all()]
    kw = dict(method=method, side=electrolyte, pixel=(hy, hx), window=int(window), floor=_VELOCITY_FLOOR * rich,
              solver=solver, fickian=fickian)
    stacked = _motion_arrays(data, t, runs, **kw)

    # the small per-frame statistics (one pass over lazy data)
    jy, jx = stacked[1], stacked[2]
    par, nor = (jx, jy) if axis == 0 else (jy, jx)
    mag = (jy.astype(np.float64) ** 2 + jx.astype(np.float64) ** 2) ** 0.5
    per_frame = [abs(par).astype(np.float64).sum(axis=(1, 2)), abs(nor).astype(np.float64).sum(axis=(1, 2)),
                 mag.mean(axis=(1, 2))]
    per_state = [mag[codes == c].mean(axis=0) for c in names]
    h_depth, h_along = (hy, hx) if axis == 0 else (hx, hy)
    if lazy:
        from ionscope.compat import compute

        # the front depth and the noise's histogram per time chunk, with the flux sums: one pass,
        # no task holding more than a chunk of the maps (and a frame on either side)
        depth, d2_bins = _frame_statistics(data, t, runs, level, electrolyte, h_depth)
        depth, d2_bins, per_frame, per_state = compute(depth, d2_bins, per_frame, per_state)
        noise = float(1.4826 * _median_from_bins(*d2_bins) / np.sqrt(6.0))
    else:
        depth = front_depth(data, level, electrolyte, h_depth)
        noise = _noise_sd(data, runs)
    depth = np.asarray(depth, dtype=np.float64)
    inplane_sum, normal_sum, mean_flux = (np.asarray(v) for v in per_frame)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame_fraction = inplane_sum / (inplane_sum + normal_sum)
    v_front = front_velocity(depth, t, runs, int(window), h_along)
    with np.errstate(invalid="ignore"), _quiet():
        mean_depth = np.nanmean(depth, axis=1)
    # the front's advance: the rate of its mean depth (the per-column normal velocity divides by
    # the local slope of the front, which noise steepens, and so reads low on noisy maps)
    front_v_frame = rate_of_change(mean_depth, t, runs, int(window))
    rough = front_roughness(depth)

    m = (int(window) - 1) // 2
    offsets = np.arange(-m, m + 1) * (float(np.median(np.diff(t))))
    rate_sd = noise / float(np.sqrt(np.sum(offsets**2)))
    flux_sd = (solver.noise_sd(rate_sd) if solver is not None and fickian.any()
               else flux_noise_sd(rate_sd, shape, (hy, hx), electrolyte))

    ds = _dataset(series, stacked, t, depth, v_front, front_v_frame, rough, frame_fraction, per_state, names,
                  quantity, level, electrolyte)
    if mobility_map is not None:
        ds["mobility"] = xr.DataArray(
            mobility_map.astype(np.float32), dims=("y", "x"), coords={"y": series["y"].variable, "x": series["x"].variable},
            name="mobility", attrs={"units": "nm^2/s" if mobility_report["source"] != "given" else mobility_report["units"],
                                    "long_name": f"Li mobility D of the Fickian flux ({mobility_report['source']})"})
    params = {"electrolyte": electrolyte, "method": method, "level": level, "window": int(window),
              "mobility": mobility_report["source"]}
    ds = with_provenance(ds, STEP, params, inputs=[series], history=provenance(series), variables=True)
    summary = {
        "method": method, "electrolyte": electrolyte, "quantity": quantity, "level": level,
        "window_frames": int(window), "frames": int(t.size), "map_shape_px": [series.sizes["y"], series.sizes["x"]],
        "pixel_nm": [hy, hx],
        "noise": {"map_sd": noise, "rate_sd_per_s": rate_sd, "flux_sd_y_nm_per_s": flux_sd[0],
                  "flux_sd_x_nm_per_s": flux_sd[1]},
        "front": {"crossing_fraction": float(np.isfinite(depth).mean()),
                  "mean_position_nm": float(np.nanmean(depth)) if np.isfinite(depth).any() else float("nan"),
                  "mean_roughness_nm": float(np.nanmean(rough)) if np.isfinite(rough).any() else float("nan")},
        "states": _state_table(codes, names, inplane_sum, normal_sum, frame_fraction, front_v_frame, mean_flux,
                               int(window)),
        "regulariser": ("none (advective flux x v of the flow)" if method == "flow" else
                        "minimum-norm flux -grad(phi), laplacian(phi) = dx/dt, phi = 0 on the electrolyte face, "
                        "no flux through the others (its in-plane fraction is a lower bound of the true one)"
                        if solver is None else
                        "Fickian flux -D grad(phi), div(D grad(phi)) = dx/dt with the mobility map D (harmonic-mean "
                        "face mobilities), phi = 0 on the electrolyte face, no flux through the others, in the "
                        "states of mobility.fickian_states; minimum-norm (D = 1) in the others"),
        "mobility": mobility_report,
        "compute_time_s": round(_time.perf_counter() - t0, 3),
    }
    return ds, plain_json(summary)


class _quiet:
    """Silence numpy's 'Mean of empty slice' (frames where no column crosses the level)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def _dataset(series, stacked, t, depth, v_front, front_v_frame, rough, frame_fraction, per_state, names,
             quantity, level, electrolyte) -> xr.Dataset:
    flux_unit = "nm/s" if quantity == "fraction" else f"({series.attrs.get('units')}) nm/s"
    what = "Li fraction x nm/s" if quantity == "fraction" else "concentration x nm/s"
    coords = {"time": series["time"].variable, "y": series["y"].variable, "x": series["x"].variable}
    extra = {k: v.variable for k, v in series.coords.items() if k not in coords and v.dims == ("time",)}
    tyx = ("time", "y", "x")

    def field(k: int, name: str, units: str, long_name: str) -> xr.DataArray:
        return xr.DataArray(stacked[k], dims=tyx, coords={**coords, **extra}, name=name,
                            attrs={"units": units, "long_name": long_name})

    along_dim = "x" if SIDES[electrolyte][0] == 0 else "y"
    along = series[along_dim]
    along_values = np.asarray(along.values)
    variables = {
        "rate": field(0, "rate", "1/s" if quantity == "fraction" else f"({series.attrs.get('units')})/s",
                      "rate of change of the series (straight-line fit over the window, within each cell state)"),
        "flux_y": field(1, "flux_y", flux_unit, f"Li flux along y ({what}; + towards larger y)"),
        "flux_x": field(2, "flux_x", flux_unit, f"Li flux along x ({what}; + towards larger x)"),
        "velocity_y": field(3, "velocity_y", "nm/s", "Li velocity along y"),
        "velocity_x": field(4, "velocity_x", "nm/s", "Li velocity along x"),
    }
    front_coords = {"time": coords["time"], "along": ("along", along_values, dict(along.attrs))}
    variables["front_position_nm"] = xr.DataArray(
        depth, dims=("time", "along"), coords=front_coords, name="front_position_nm",
        attrs={"units": "nm", "level": level, "electrolyte": electrolyte,
               "long_name": f"front depth from the {electrolyte} edge (deepest crossing of x = level; NaN: none)"})
    variables["front_normal_velocity"] = xr.DataArray(
        v_front, dims=("time", "along"), coords=front_coords, name="front_normal_velocity",
        attrs={"units": "nm/s", "long_name": "front velocity normal to the front (+ away from the electrolyte)"})
    for name, values, units, long_name in (
        ("front_velocity_nm_per_s", front_v_frame, "nm/s", "front advance: rate of the mean front depth (+ away "
                                                           "from the electrolyte)"),
        ("front_roughness_nm", rough, "nm", "standard deviation of the front depth along the interface"),
        ("in_plane_fraction", frame_fraction, "1", "fraction of sum |J| parallel to the electrolyte interface"),
    ):
        variables[name] = xr.DataArray(values, dims=("time",), coords={"time": coords["time"], **extra}, name=name,
                                       attrs={"units": units, "long_name": long_name})
    variables["flux_magnitude_by_state"] = xr.DataArray(
        np.stack([np.asarray(p, dtype=np.float32) for p in per_state]), dims=("cell_state", "y", "x"),
        coords={"cell_state": [names[c] for c in names], "y": coords["y"], "x": coords["x"]},
        name="flux_magnitude_by_state",
        attrs={"units": flux_unit, "long_name": "mean |J| over the frames of each cell state (where the flow "
                                                "concentrates)"})
    ds = xr.Dataset(variables)
    ds.attrs = {"primary": "flux_y", "electrolyte": electrolyte, "front_level": level}
    for key in ("start_time", "timeline"):
        if key in series.attrs:
            ds.attrs[key] = series.attrs[key]
    return ds

