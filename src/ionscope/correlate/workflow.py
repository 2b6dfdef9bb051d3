"""KPFM meets TOF-SIMS: the chain ``ionscope correlate`` runs, as a library function.

:func:`correlate_results`: a ``kpfm process`` result and a ``sims lithium`` result of the same
cross-section ->

1. the KPFM map registered onto the first TOF-SIMS state's grid by mutual information (rigid, in
   nm; :func:`ionscope.register.register_rigid`): the first frame's potential against the first
   state's phases (:func:`phase_code_image`; the phases' contrast is in both);
2. every KPFM frame's potential resampled onto the TOF-SIMS grid, the mean over each SIMS pixel's
   footprint, NaN where the KPFM field does not cover it (``potential_on_sims``);
3. frames paired with states (:mod:`ionscope.correlate.pairs`): as given, else by the cell's
   charge when both results carry the timeline, else the first frame with the first state and
   the last frame with the second;
4. per TOF-SIMS particle (and per phase): the potential change of the frame pair (mV, the mean
   over the particle's covered pixels) and the relative Li change of the state pair
   (``Li(d) / Li(c) - 1``, from ``sims lithium``'s per-particle fit);
5. the Pearson coefficient over the Li-hosting LiCoPO4 particles with a bootstrap interval
   (:mod:`ionscope.correlate.stats`).

The CLI (``ionscope correlate``, :doc:`/cli`) and the demo call it and add nothing but argument
parsing and printing.
"""

from __future__ import annotations

import json
import time as _time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.correlate.pairs import default_pairs, pairs_by_charge, parse_pairs
from ionscope.correlate.stats import bootstrap_pearson
from ionscope.data import jsonable, plain_json, provenance, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError, IonscopeWarning
from ionscope.validation import Interval, check_parameter

__all__ = ["correlate_results", "phase_code_image"]

STEP = "ionscope.correlate.correlate_results"
#: The TOF-SIMS particles' phase (:doc:`/cli`, ``ionscope correlate``: the correlation runs over the Li-hosting LiCoPO4 particles).
PARTICLE_PHASE = "LiCoPO4"


def _require(ds: xr.Dataset, names: Sequence[str], what: str, command: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise InputError(f"{what} is not a `{command}` result: it has no {', '.join(missing)} (it holds "
                         f"{', '.join(map(str, ds.data_vars)) or 'nothing'}); give the folder `{command}` wrote")


def _frame_labels(kpfm: xr.Dataset) -> list[str]:
    t = np.asarray(kpfm["time"].values, dtype=np.float64)
    return [f"{v:g} s" for v in t]


def _errors(ds: xr.Dataset, name: str, values: np.ndarray) -> np.ndarray:
    """``name + "_error"`` of a ``sims lithium`` result, or NaN of ``values``' shape without it."""
    err = ds.get(f"{name}_error")
    return np.full(values.shape, np.nan) if err is None else np.asarray(err.values, dtype=np.float64)


def _potential_change(v: np.ndarray, a: int, b: int, mask: np.ndarray) -> tuple[float, float, int]:
    """Frame ``b`` minus frame ``a`` of ``v`` (time, y, x; V) over the covered pixels of ``mask``:
    the mean (mV), its standard error over those pixels (mV; NaN below 2) and their number."""
    change = (v[b] - v[a])[mask]
    change = change[np.isfinite(change)]
    n = int(change.size)
    if n == 0:
        return np.nan, np.nan, 0
    se = 1e3 * float(change.std(ddof=1)) / np.sqrt(n) if n > 1 else np.nan
    return 1e3 * float(change.mean()), se, n


def _li_change(rel: np.ndarray, err: np.ndarray, a: int, b: int) -> tuple[float, float]:
    """``rel[b] / rel[a] - 1`` (Li relative to the first state) and its error from the two states'
    errors (first order, independent); NaN when state ``a`` holds no Li.

    Examples
    --------
    >>> value, error = _li_change(np.array([1.0, 0.6]), np.array([0.0, 0.03]), 0, 1)
    >>> round(value, 3), round(error, 3)
    (-0.4, 0.03)
    """
    if not rel[a] > 0:
        return np.nan, np.nan
    value = rel[b] / rel[a] - 1.0
    error = float(np.hypot(err[b] / rel[a], rel[b] * err[a] / rel[a] ** 2))
    return float(value), error


def phase_code_image(sims: xr.Dataset) -> xr.DataArray:
    r"""The first TOF-SIMS state as one image for a multimodal registration: the phase fractions
    ``f_k`` of ``sims lithium`` (every matrix ion unmixed into the phases) coded as
    :math:`\sum_k k\,f_k` (k the phase's index), or, with fewer than two phases, the sum of the
    matrix-ion counts (every ion but Li).

    The code image keeps every phase distinct (mixed pixels in between) and carries the noise of
    the unmixing, which pools all matrix ions: on the composite-cathode twin (benchmarks/
    correlate.py) it pins the KPFM field's rotation to 0.04 degrees rms where the matrix-ion sum,
    in which LATP and the Au collector give the same counts, leaves 0.3 degrees.
    """
    for name in ("phase_fraction", "counts"):
        if name in sims and not {"y", "x"} <= set(sims[name].dims):
            raise DimensionError(f"the TOF-SIMS result's {name} must have the dims y and x (a map per state), got "
                                 f"{sims[name].dims}; give the folder `sims lithium` wrote")
    fractions = sims.get("phase_fraction")
    if fractions is not None and fractions.sizes.get("phases", 0) >= 2:
        f = fractions.isel(state=0) if "state" in fractions.dims else fractions
        code = (f * xr.DataArray(np.arange(f.sizes["phases"], dtype=np.float64), dims="phases")).sum("phases",
                                                                                                      skipna=False)
        return code.transpose("y", "x").assign_attrs(units="1", long_name="phase code sum_k k f_k")
    counts = sims["counts"].isel(state=0)
    matrix = [i for i in map(str, sims["ion"].values) if i not in ("7Li", "6Li")]
    total = counts.sel(ion=matrix).sum("ion", skipna=False) if matrix else counts.sum("ion")
    return total.assign_attrs(units="counts", long_name="matrix-ion counts")


def _pairs(kpfm: xr.Dataset, sims: xr.Dataset, pairs: str | None, frames: list[str], states: list[str]
           ) -> tuple[list[tuple[int, int]], str]:
    """The (frame, state) pairs and how they were chosen: ``--pairs``; else by the cell's charge
    when both results carry the timeline (``charge`` per frame and per state, mAh); else the
    contract's default."""
    if pairs:
        return parse_pairs(pairs, frames, states), "given (--pairs)"
    if "charge" in kpfm.variables and "charge" in sims.variables:
        fq, sq = kpfm["charge"], sims["charge"]
        if fq.dims == ("time",) and sq.dims == ("state",):
            try:
                return pairs_by_charge(fq.values, sq.values), "by the cell's charge (both results carry the timeline)"
            except InputError as exc:
                warnings.warn(f"{exc}; falling back to the first frame with the first state and the last frame with the "
                              "second", IonscopeWarning, stacklevel=3)
    return default_pairs(len(frames), len(states)), "default: the first frame with the first state, the last with the second"


def correlate_results(kpfm: xr.Dataset, sims: xr.Dataset, *, init_rotation_deg: float = 0.0,
                      init_shift_nm: Sequence[float] | None = None, pairs: str | None = None,
                      search: bool = True, seed: int = 0) -> tuple[xr.Dataset, list[dict], dict[str, Any]]:
    """Register a KPFM result onto a TOF-SIMS result and correlate their changes per particle.

    Parameters
    ----------
    kpfm : xarray.Dataset
        A ``kpfm process`` result: ``potential`` (time, y, x) in V on nm coordinates.
    sims : xarray.Dataset
        A ``sims lithium`` result: ``counts`` (state, ion, y, x), ``particle_label`` (y, x) and
        ``particle_li_rel`` (particle, state), ``phase`` (y, x) with its names, on nm coordinates.
    init_rotation_deg, init_shift_nm : float, (float, float)
        Start of the registration (degrees; nm, y and x): the KPFM field's rotation and shift on
        the TOF-SIMS grid as far as known (e.g. from the stage coordinates). Default shift: the
        KPFM field's centre on the TOF-SIMS field's centre; the search then covers +/-12 degrees
        and +/-1.2 um around the start.
    pairs : str, optional
        ``FRAME:STATE,...`` (:func:`~ionscope.correlate.pairs.parse_pairs`). Default: by the
        cell's charge when both results carry the timeline (``kpfm process --cycler`` and ``sims
        lithium --cycler``: :func:`~ionscope.correlate.pairs.pairs_by_charge`), else the first
        frame with the first state and the last frame with the second.
    search : bool
        Search a grid of starts around the given one (:func:`ionscope.register.register_rigid`).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    result : xarray.Dataset
        ``potential_on_sims`` (time, y, x) V on the first state's grid; per particle
        ``particle_dV_mV``, ``particle_dLi_rel`` and their errors (particle, pair); the registration in attrs.
    rows : list of dict
        ``correlation.csv``: per particle and pair ``particle, phase, pair, frames, states, dV_mV,
        dV_err_mV, dLi_rel, dLi_rel_err, pixels``, then per phase (``particle`` empty). ``dV_err_mV``
        is the standard error over the covered TOF-SIMS pixels (each the mean of the KPFM pixels
        in its footprint); ``dLi_rel_err`` the counting error from ``sims lithium``.
    summary : dict
        ``rotation_deg``, ``shift_y_nm``, ``shift_x_nm``, ``metric`` (the registration), the
        pairs, ``pearson_r`` with its interval and the particles it uses.

    Raises
    ------
    InputError
        Results from another command, no overlap of the fields, pairs that do not exist, fewer
        than 3 particles with both a potential and a Li change.
    """
    from ionscope.register import register_rigid, resample_onto

    t0 = _time.perf_counter()
    check_parameter("init_rotation_deg", init_rotation_deg, [Interval(float, -180.0, 180.0, unit="degrees")])
    shift = None if init_shift_nm is None else tuple(init_shift_nm)
    if shift is not None and (len(shift) != 2 or not all(isinstance(v, (int, float, np.number)) and np.isfinite(v)
                                                         for v in shift)):
        raise ConfigError(f"init_shift_nm must be two finite numbers (y, x in nm), got {init_shift_nm!r}")
    if not isinstance(kpfm, xr.Dataset) or not isinstance(sims, xr.Dataset):
        raise InputError("correlate takes two result Datasets: a `kpfm process` result and a `sims lithium` result")
    _require(kpfm, ("potential",), "the KPFM result", "kpfm process")
    _require(sims, ("counts", "particle_label", "particle_li_rel", "phase"), "the TOF-SIMS result", "sims lithium")
    pot = kpfm["potential"]
    if pot.dims != ("time", "y", "x"):
        raise DimensionError(f"the KPFM potential must be (time, y, x), got {pot.dims}")
    fixed = phase_code_image(sims)
    first = pot.isel(time=0)
    options = {} if search else {"search_rotation_deg": 0.0, "search_shift_nm": 0.0}
    reg = register_rigid(fixed, first, init_rotation_deg=float(init_rotation_deg),
                         init_shift_nm=None if shift is None else tuple(float(v) for v in shift), **options)
    on_sims = resample_onto(pot, fixed, reg)
    if not np.isfinite(on_sims.values).any():
        raise InputError("the KPFM field covers no whole TOF-SIMS pixel after registration; the two results do not "
                         "show one field of view")

    # --- pairs of frames and states
    frames, states = _frame_labels(kpfm), [str(s) for s in sims["state"].values]
    chosen, pairing = _pairs(kpfm, sims, pairs, frames, states)
    pair_list = list(zip(chosen[:-1], chosen[1:]))  # consecutive (frame, state) pairs: a change each

    # --- per particle and per phase
    labels = np.asarray(sims["particle_label"].values)
    n_part = int(sims.sizes.get("particle", 0))
    li_rel = np.asarray(sims["particle_li_rel"].values, dtype=np.float64)  # (particle, state)
    li_err = _errors(sims, "particle_li_rel", li_rel)
    v = np.asarray(on_sims.values, dtype=np.float64)  # (time, y, x)
    shape = (n_part, len(pair_list))
    dv, dv_err, dli, dli_err = (np.full(shape, np.nan) for _ in range(4))
    pixels = np.zeros(n_part, dtype=np.int64)
    for j in range(n_part):
        mask = labels == j + 1
        for p, ((fa, sa), (fb, sb)) in enumerate(pair_list):
            dv[j, p], dv_err[j, p], n = _potential_change(v, fa, fb, mask)
            pixels[j] = max(pixels[j], n)
            dli[j, p], dli_err[j, p] = _li_change(li_rel[j], li_err[j], sa, sb)
    phase_codes = np.asarray(sims["phase"].values)
    phase_names = str(sims["phase"].attrs.get("flag_meanings", "")).split()
    rows: list[dict] = []
    for j in range(n_part):
        for p, ((fa, sa), (fb, sb)) in enumerate(pair_list):
            rows.append({"particle": j + 1, "phase": PARTICLE_PHASE, "pair": p,
                         "frames": f"{frames[fb]} - {frames[fa]}", "states": f"{states[sa]} -> {states[sb]}",
                         "dV_mV": dv[j, p], "dV_err_mV": dv_err[j, p], "dLi_rel": dli[j, p],
                         "dLi_rel_err": dli_err[j, p], "pixels": int(pixels[j])})
    phase_rel = np.asarray(sims["phase_li_rel"].values, dtype=np.float64) if "phase_li_rel" in sims else None
    phase_err = _errors(sims, "phase_li_rel", phase_rel) if phase_rel is not None else None
    for code, name in enumerate(phase_names):
        mask = phase_codes == code
        for p, ((fa, sa), (fb, sb)) in enumerate(pair_list):
            change, change_err, n = _potential_change(v, fa, fb, mask)
            rel, rel_err = (_li_change(phase_rel[code], phase_err[code], sa, sb)
                            if phase_rel is not None and code < phase_rel.shape[0] else (np.nan, np.nan))
            rows.append({"particle": None, "phase": name, "pair": p, "frames": f"{frames[fb]} - {frames[fa]}",
                         "states": f"{states[sa]} -> {states[sb]}", "dV_mV": change, "dV_err_mV": change_err,
                         "dLi_rel": rel, "dLi_rel_err": rel_err, "pixels": n})

    # --- the correlation over the LiCoPO4 particles, first pair
    usable = np.isfinite(dv[:, 0]) & np.isfinite(dli[:, 0]) if n_part else np.zeros(0, bool)
    if usable.sum() < 3:
        raise InputError(f"{int(usable.sum())} LiCoPO4 particle(s) have both a potential change and a Li change "
                         "(a particle needs KPFM coverage and a TOF-SIMS fit); a correlation needs at least 3")
    corr = bootstrap_pearson(dv[usable, 0], dli[usable, 0], seed=seed)

    pair_dim = {"pair": ("pair", np.arange(len(pair_list)))}
    result = xr.Dataset(
        {
            "potential_on_sims": on_sims.assign_attrs(units="V", long_name="KPFM potential on the TOF-SIMS grid "
                                                                       "(mean over each pixel's footprint)"),
            "particle_dV_mV": (("particle", "pair"), dv, {"units": "mV", "long_name": "potential change of the frame pair"}),
            "particle_dV_err_mV": (("particle", "pair"), dv_err, {"units": "mV", "long_name": "standard error of "
                                   "particle_dV_mV over the particle's TOF-SIMS pixels"}),
            "particle_dLi_rel": (("particle", "pair"), dli, {"units": "1", "long_name": "Li(d) / Li(c) - 1 of the state pair"}),
            "particle_dLi_rel_err": (("particle", "pair"), dli_err, {"units": "1", "long_name": "counting error of "
                                     "particle_dLi_rel"}),
        },
        coords={"particle": ("particle", np.arange(1, n_part + 1)), **pair_dim},
    )
    reg_summary = reg.summary()
    params = {"init_rotation_deg": init_rotation_deg, "init_shift_nm": None if shift is None else list(shift), "pairs": pairs,
              "search": search, "seed": seed}
    history = provenance(sims)
    stamped = with_provenance(result["potential_on_sims"], STEP, jsonable(params), inputs=[pot, sims["counts"]],
                              history=history)
    result.attrs = {"primary": "potential_on_sims", "provenance": stamped.attrs["provenance"],
                    "registration": json.dumps(plain_json(reg_summary))}
    summary = {
        "rotation_deg": reg.rotation_deg, "shift_y_nm": reg.shift_y_nm, "shift_x_nm": reg.shift_x_nm,
        "metric": reg.metric, "registration": reg_summary,
        "pairing": pairing,
        "pairs": [{"frames": [frames[fa], frames[fb]], "states": [states[sa], states[sb]],
                   "frame_indices": [fa, fb], "state_indices": [sa, sb]} for (fa, sa), (fb, sb) in pair_list],
        "pearson_r": corr.r, "pearson": corr.as_dict(), "particles_correlated": int(usable.sum()),
        "covered_sims_pixels": int(np.isfinite(v[0]).sum()), "run_time_s": _time.perf_counter() - t0,
    }
    return result, rows, plain_json(summary)
