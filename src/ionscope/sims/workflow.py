"""TOF-SIMS workflow: the chain ``ionscope sims lithium`` runs, as a library function.

:func:`lithium_states`: one spectrum file per state of charge (imzML, Tofwerk .h5, arrays with a
``mass`` dim, or ion-image stacks with an ``ion`` dim) of one field of view ->

1. every state's mass calibration refined on the known ions' peaks (``sqrt(m)`` against flight
   time, :mod:`ionscope.sims.calibration`);
2. the ions' counts integrated in their windows (:mod:`ionscope.sims.ions`) -> ``(ion, y, x)``;
3. with the number of primary pulses per pixel (scans x shots per pixel), the Poisson dead-time
   correction of every ion (:mod:`ionscope.sims.deadtime`), a warning with the number of pixels
   near saturation; the 7Li / (12.2 x 6Li) check before and after it;
4. optional binning; every state registered onto the first state's grid on its matrix-ion image
   (the stage moves between states; :mod:`ionscope.register.stack`), NaN where it does not cover;
5. the phases from the matrix ions of the first state (a Gaussian mixture for the pure phases,
   every pixel unmixed into phase fractions, the majority phase; :mod:`ionscope.sims.phases`) or
   from a user's label image;
6. normalised Li maps, and the Li of every phase and LiCoPO4 particle per state, relative to the
   pristine (first) state, with counting errors (:mod:`ionscope.sims.quantify`) - over the part
   of the field every state covers.

**Normalisation.** ``total`` divides by the counts of the integrated ions *other than Li* (the
matrix), so that a change of Li does not change its own reference; ``ION`` by one ion's counts;
``none`` keeps counts. The per-phase values are normalised per state by the field's sum of the
same reference over the covered part (the primary dose of each state), so they are ratios of
phase-pure Li signals at equal dose.

The CLI (``ionscope sims lithium``, :doc:`/cli`) and the demo call it and add nothing but
argument parsing and printing.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration, jsonable, provenance, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError, IonscopeError, IonscopeWarning
from ionscope.register.stack import frame_shifts_kernel, shift_frame_kernel
from ionscope.sims.calibration import locate_peaks, refine_calibration
from ionscope.sims.deadtime import SATURATION_THRESHOLD, check_pulses, deadtime_correct, isotope_check, near_saturation
from ionscope.sims.ions import DEFAULT_WINDOW_U, ION_TABLE, LI7_LI6, integrate_peaks, integrate_windows, ion_windows, parse_ions
from ionscope.sims.phases import Phases, phases_from_labels, segment_phases, unmix
from ionscope.sims.quantify import PARTICLE_PHASE, bin_pixels, particle_labels, phase_lithium
from ionscope.units import require_length_to_nm
from ionscope.validation import Interval, validate_params

__all__ = ["DEFAULT_IONS", "read_states", "lithium_states"]

STEP = "ionscope.sims.lithium_states"

#: The ions integrated by default: the Li isotopes, the matrix ions of the LiCoPO4 / LATP / Pd
#: composite cathode, a gold collector and the common alkali contaminants.
DEFAULT_IONS = ("7Li", "6Li", "27Al", "31P", "48Ti", "59Co", "106Pd", "197Au", "23Na", "39K")
LI7, LI6 = "7Li", "6Li"
#: Least total counts of a known ion's peak (summed over the field) for the mass calibration.
CALIBRATION_MIN_COUNTS = 50.0
#: Below this 7Li / (12.2 x 6Li) (summed over the field) without --pulses, 7Li is saturated.
SATURATED_RATIO = 0.9


@dataclass
class State:
    """One state of charge read and integrated: ``counts`` (ion, y, x) and what was done."""

    name: str
    source: str
    counts: np.ndarray
    pixel_nm: tuple[float, float]
    kind: str  # "peaks" (processed centroid), "spectra" (a mass axis), "ions" (an ion-image stack)
    calibration: dict[str, Any]
    pulses: float | None


# --------------------------------------------------------------------------- reading


def _label(item: Any, index: int) -> str:
    src = item.attrs.get("source_file") if isinstance(item, xr.Dataset) else item
    return f"state {index} ({Path(str(src)).name})" if src else f"state {index}"


def read_states(spectra: Any) -> tuple[list[xr.Dataset], list[Any]]:
    """The states' spectra as Datasets (paths are read with :func:`ionscope.io.open_dataset`) and
    what identifies each (a path, or the Dataset or DataArray): :func:`ionscope.io.open_inputs`.

    Raises
    ------
    InputError
        No states, or an item that is neither a Dataset, a DataArray nor a path.
    """
    from ionscope.io import open_inputs

    return open_inputs(spectra, "TOF-SIMS spectra file")


def _counts_variable(ds: xr.Dataset, label: str) -> xr.DataArray:
    """The variable with the counts: the primary, else the one with a mass / peak / ion dim."""
    names = [ds.attrs["primary"]] if ds.attrs.get("primary") in ds.data_vars else list(ds.data_vars)
    for name in names:
        var = ds[name]
        if {"y", "x"} <= set(var.dims) and ({"mass", "peak", "ion"} & set(var.dims)):
            return var
    shapes = ", ".join(f"{n} {dict(ds[n].sizes)}" for n in ds.data_vars)
    raise DimensionError(
        f"{label} holds no TOF-SIMS spectra: it needs (y, x) maps with a mass dim (spectra), a peak dim with "
        f"peak_mass (centroid peaks, imzML processed) or an ion dim (ion images); it holds {shapes or 'nothing'}"
    )


def _pixel(var: xr.DataArray, label: str) -> tuple[float, float]:
    out = []
    for dim in ("y", "x"):
        if var.sizes[dim] < 2:
            out.append(float("nan"))
            continue
        _, step, unit = axis_calibration(var, dim)
        out.append(abs(step) * require_length_to_nm(unit, f"the {dim} axis of {label}"))
    return out[0], out[1]


def _ion_names(var: xr.DataArray, ions: Sequence[str] | None, label: str) -> list[str]:
    """Names of an ion-image stack's ions: ``--ions`` in order when given, else its ``ion``
    coordinate - a label ionscope does not read as an ion (a Tofwerk peak label such as
    ``nominal_7``) is named after the known ion within 0.3 u of its ``ion_mass``, else kept as a
    user ion ``LABEL=MASS``."""
    n = var.sizes["ion"]
    if ions:
        if len(ions) != n:
            raise InputError(f"--ions names {len(ions)} ions but {label} holds {n} ion images; name each, in order")
        return list(ions)
    coord = var.coords.get("ion")
    if coord is None or coord.dtype.kind not in "USO":
        raise InputError(
            f"{label} is a stack of {n} ion images without ion names; name them in order with --ions (ions=), "
            f"e.g. --ions {','.join(list(DEFAULT_IONS)[:n])}"
        )
    masses = var.coords["ion_mass"].values if "ion_mass" in var.coords else [None] * n
    table = {v: k for k, v in ION_TABLE.items()}
    known = np.array(sorted(ION_TABLE.values()))
    names = []
    for text, mass in zip((str(v) for v in coord.values), masses):
        try:
            names.append(next(iter(parse_ions([text]))))
            continue
        except IonscopeError:
            if mass is None or not np.isfinite(float(mass)):
                raise InputError(f"{label}: ion {text!r} is not an ion name ionscope knows and the file gives no mass; "
                                 "name the ions in order with --ions NAME or NAME=MASS") from None
        near = known[np.argmin(np.abs(known - float(mass)))]
        names.append(table[near] if abs(near - float(mass)) <= 0.3 else f"{text}={float(mass):g}")
    return names


def _integrate(var: xr.DataArray, ions: dict[str, float], window: dict[str, float], calibrate: bool, label: str
               ) -> tuple[np.ndarray, dict[str, Any], str]:
    """(ion, y, x) counts of a spectra or peaks variable, with the state's mass calibration."""
    names = list(ions)
    nominal = np.array([ions[n] for n in names])
    if "peak" in var.dims:
        if "peak_mass" not in var.coords:
            raise DimensionError(f"{label}: centroid peaks (a peak dim) need their masses, the peak_mass coordinate")
        v = var.transpose("y", "x", "peak")
        counts = np.asarray(v.values, dtype=np.float64)
        mass = np.asarray(v["peak_mass"].transpose("y", "x", "peak").values, dtype=np.float64)
        kind = "peaks"
    else:
        extra = [d for d in var.dims if d not in ("y", "x", "mass")]
        if extra:
            var = var.sum(extra)  # e.g. a Tofwerk depth series summed over its milling steps
        v = var.transpose("y", "x", "mass")
        counts = np.asarray(v.values, dtype=np.float64)
        mass = np.asarray(v["mass"].values, dtype=np.float64)
        kind = "spectra"
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise InputError(f"{label}: the counts hold negative or non-finite values; TOF-SIMS counts are >= 0")
    cal: dict[str, Any] = {"refined": False}
    if calibrate:
        if kind == "peaks":
            measured, found = locate_peaks(mass, counts, nominal, tolerance_u=0.3, min_counts=1.0)
        else:
            measured, found = locate_peaks(mass, counts.sum(axis=(0, 1)), nominal, tolerance_u=0.3, min_counts=1.0)
        use = np.isfinite(measured) & (found >= CALIBRATION_MIN_COUNTS)
        if use.sum() >= 2:
            fit = refine_calibration(measured[use], nominal[use], weights=found[use])
            mass = fit.apply(mass)
            cal = {"refined": True, "a_sqrt_u": float(fit.a), "b": float(fit.b), "rms_ppm": float(fit.rms_ppm),
                   "peaks": [n for n, u in zip(names, use) if u],
                   "shift_before_mu": {n: float(1e3 * (m - r)) for n, m, r, u in zip(names, measured, nominal, use) if u}}
        else:
            cal = {"refined": False, "reason": f"{int(use.sum())} known peak(s) with >= {CALIBRATION_MIN_COUNTS:g} counts "
                   "(the fit needs 2)"}
            warnings.warn(f"{label}: the mass calibration was not refined ({cal['reason']}); the windows are "
                          f"{_window_text(window)} around the file's masses", IonscopeWarning, stacklevel=3)
    lo, hi = ion_windows(nominal, **window)
    if kind == "peaks":
        out = integrate_peaks(counts, mass, lo, hi)
    else:
        out = integrate_windows(counts, mass, lo, hi)
    return np.asarray(out, dtype=np.float64), cal, kind


def _read_state(ds: xr.Dataset, index: int, ions: dict[str, float], extra_names: Sequence[str] | None,
                window: dict[str, float], calibrate: bool, name: str) -> tuple[State, dict[str, float]]:
    label = _label(ds, index)
    var = _counts_variable(ds, label)
    if var.sizes["y"] < 4 or var.sizes["x"] < 4:
        raise InputError(f"{label} is {var.sizes['y']} x {var.sizes['x']} px; TOF-SIMS maps need at least 4 x 4")
    pixel = _pixel(var, label)
    pulses = None
    if ds.attrs.get("scans") and ds.attrs.get("shots_per_pixel"):
        pulses = float(ds.attrs["scans"]) * float(ds.attrs["shots_per_pixel"])
    if "ion" in var.dims:
        names = _ion_names(var, extra_names, label)
        table = parse_ions(names)
        missing = [n for n in (LI7,) if n not in table]
        if missing:
            raise InputError(f"{label}: the ion images hold no {missing[0]} ({', '.join(table)}); Li maps need it")
        extra = [d for d in var.dims if d not in ("ion", "y", "x")]
        v = (var.sum(extra) if extra else var).transpose("ion", "y", "x")
        counts = np.asarray(v.values, dtype=np.float64)
        if not np.all(np.isfinite(counts)) or (counts < 0).any():
            raise InputError(f"{label}: the ion images hold negative or non-finite values; TOF-SIMS counts are >= 0")
        # into the order of the ion list: every named ion of the stack, in its order
        return State(name, str(ds.attrs.get("source_file", "")), counts, pixel, "ions",
                     {"refined": False, "reason": "ion images (already integrated)"}, pulses), table
    counts, cal, kind = _integrate(var, ions, window, calibrate, label)
    return State(name, str(ds.attrs.get("source_file", "")), counts, pixel, kind, cal, pulses), dict(ions)


def _state_names(states: Sequence[str] | None, datasets: list[xr.Dataset]) -> list[str]:
    n = len(datasets)
    if states is not None:
        states = [str(s).strip() for s in states]
        if len(states) != n or not all(states) or len(set(states)) != n:
            raise ConfigError(f"--states gives {len(states)} name(s) ({','.join(states)}) for {n} spectra files; "
                              "give one distinct name per file, in the files' order")
        return states
    stems = [Path(str(d.attrs.get("source_file", ""))).stem for d in datasets]
    if all(stems) and len(set(stems)) == n:
        return stems
    return ["pristine"] + [f"state{k}" for k in range(1, n)]


# --------------------------------------------------------------------------- registration


def _register(stack: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Shifts (state, 2) in px registering every matrix image onto the first, and their match."""
    finite = np.where(np.isfinite(stack), stack, 0.0)
    shifts, match = frame_shifts_kernel(finite, sigma_px=1.0, upsample=50)
    for k in range(1, len(labels)):
        if not np.isfinite(match[k]) or match[k] < 0.3:
            raise InputError(
                f"{labels[k]} cannot be registered onto {labels[0]} (match {match[k]:.2f} of its matrix-ion image): "
                "the states must show one field of view (the stage moves by a fraction of it between states)"
            )
    return shifts, match


# --------------------------------------------------------------------------- the chain


def _labels_file(phases: str, counts0: np.ndarray, ions: list[str], shape: tuple[int, int], bin_px: int) -> Phases:
    from ionscope.io import load

    da = load(phases)
    if tuple(da.dims) != ("y", "x") or np.issubdtype(da.dtype, np.floating) and not np.all(da.values == np.round(da.values)):
        raise DimensionError(f"--phases {phases}: a label file must be one (y, x) map of integer phase labels, "
                             f"got dims {tuple(da.dims)} of {da.dtype}")
    labels = np.asarray(da.values).astype(np.int64)
    if bin_px > 1:
        raise ConfigError("--phases LABELS_FILE is given on the unbinned grid; use it without --bin")
    if labels.shape != shape:
        raise DimensionError(f"--phases {phases}: the labels are {labels.shape[0]} x {labels.shape[1]} px but the "
                             f"first state is {shape[0]} x {shape[1]} px; give them on the first state's grid")
    values = [int(v) for v in da.attrs.get("flag_values", [])]
    meanings = str(da.attrs.get("flag_meanings", "")).split()
    codes = sorted(int(v) for v in np.unique(labels) if v >= 0)
    if not codes:
        raise InputError(f"--phases {phases}: the label map holds no label >= 0")
    names = {c: (meanings[values.index(c)] if c in values and len(meanings) == len(values) else f"phase{c}")
             for c in codes}
    return phases_from_labels(labels, names, counts=counts0, ions=ions)


@validate_params({
    "pulses": [None, Interval(float, 0, None, closed="neither", unit="pulses per pixel")],
    "window_u": [None, Interval(float, 0, 50, closed="neither", unit="u")],
    "window_fwhm": [None, Interval(float, 0, 1000, closed="neither", unit="peak widths")],
    "resolution": [None, Interval(float, 0, 1e7, closed="neither", unit="m/dm")],
    "bin_px": [Interval(int, 1, 64)],
})
def lithium_states(
    spectra: Any,
    *,
    states: Sequence[str] | None = None,
    pulses: float | None = None,
    window_u: float | None = None,
    window_fwhm: float | None = None,
    resolution: float | None = None,
    normalise: str = "total",
    phases: str = "auto",
    ions: Sequence[str] | None = None,
    calibrate: bool = True,
    bin_px: int = 1,
    seed: int = 0,
    cycler: Any = None,
    start: Any = None,
    timezone: Any = None,
) -> tuple[xr.Dataset, list[dict], list[dict], dict[str, Any]]:
    """Li maps per state of charge, phases, and the Li of every phase and particle per state.

    Parameters
    ----------
    spectra : sequence of paths or Datasets
        One per state of charge, in order, of one field of view: imzML (+ .ibd), Tofwerk .h5,
        arrays with a ``mass`` dim (spectra per pixel), a ``peak`` dim with ``peak_mass``
        (centroid peaks) or an ``ion`` dim (ion images).
    states : sequence of str, optional
        State names (default: the file names, else ``pristine, state1, ...``). The first state
        is the reference (pristine) of every relative value.
    pulses : float, optional
        Primary pulses per pixel (scans x shots per pixel): every ion's counts get the Poisson
        dead-time correction ``-n ln(1 - k/n)``. Default: from the file (IONTOF: scans x shots
        per pixel), else no correction (with a warning when 7Li looks saturated).
    window_u : float, optional
        Full width (u) of every ion's integration window, centred on its mass (default
        :data:`~ionscope.sims.ions.DEFAULT_WINDOW_U`, after the calibration).
    window_fwhm, resolution : float, optional
        Windows in peak widths instead: ``window_fwhm`` x FWHM with FWHM = m / ``resolution``
        (the mass resolving power m / dm), so they grow with the mass as the peaks do.
    normalise : str
        ``"total"`` (the non-Li ions), ``"none"`` or an ion name (e.g. ``"59Co"``).
    phases : str
        ``"auto"`` (Gaussian mixture of the first state's matrix ions), a label file (a (y, x)
        integer map on the first state's grid; names from its ``flag_values`` /
        ``flag_meanings`` attrs, else ``phaseN``), or ``"none"`` (the whole field as one).
    ions : sequence of str, optional
        Further ions (``NAME`` or ``NAME=MASS``) to integrate besides :data:`DEFAULT_IONS`; for
        an ion-image stack without names, its ions' names in order.
    calibrate : bool
        Refine each state's mass calibration on the known ions' peaks.
    bin_px : int
        Sum ``bin_px x bin_px`` pixels after the dead-time correction.
    seed : int
        Seed of the phase mixture.
    cycler : path, Dataset, DataFrame or mapping, optional
        The cell's cycler log (:func:`ionscope.timeline.cycler_log`): every state gets the cell's
        voltage, current, charge and state at its file's acquisition time (imzML
        ``startTimeStamp``; :func:`ionscope.timeline.attach_cycler_states`), which
        ``ionscope correlate`` pairs KPFM frames by.
    start, timezone : str, optional
        The log's zero when it records none; the zone of naive times (as ``--cycler`` elsewhere).

    Returns
    -------
    result : xarray.Dataset
        ``counts`` (state, ion, y, x), ``li`` and ``li_error`` (state, y, x), ``phase`` (y, x)
        (integer codes, their names in ``flag_values`` / ``flag_meanings`` and in the coordinate
        ``phases``), ``phase_fraction`` (state, phases, y, x), per phase ``phase_li``,
        ``phase_li_error``, ``phase_li_rel``, ``phase_li_rel_error`` (phases, state), ``particle`` (y, x), ``isotope_ratio`` and
        ``isotope_ratio_observed`` (state, y, x), per phase and per particle Li tables, stage shifts; all on the first state's grid.
        With ``cycler``: the coordinates ``cell_voltage``, ``cell_current``, ``charge``, ``cell_state``
        and ``cycler_time`` on ``state`` and the ``timeline`` attribute.
    phase_rows, particle_rows : list of dict
        The rows of ``phases.csv`` and ``particles.csv``.
    summary : dict
        States, ions and windows, calibrations, dead time and saturation, registration, phases.

    Raises
    ------
    InputError, DimensionError, ConfigError
        Spectra that cannot be read or integrated, states of different grids, unknown ions,
        pulses <= 0 or observed counts at or above them, a state that cannot be registered.
    """
    t0 = _time.perf_counter()
    datasets, sources = read_states(spectra)
    names = _state_names(states, datasets)
    if cycler is None and (start is not None or timezone is not None):
        raise ConfigError("--start and --timezone only apply with --cycler LOG")
    log = None
    if cycler is not None:  # the log and every state's time, checked before any work
        from ionscope.timeline import cycler_log

        log = cycler_log(cycler, timezone=timezone)
        untimed = [_label(ds, k) for k, ds in enumerate(datasets) if not ds.attrs.get("start_time")]
        if untimed:
            raise InputError(f"--cycler needs every state's acquisition time, but {', '.join(untimed)} record(s) none "
                             "(an imzML run's startTimeStamp); without it the states cannot be placed on the log")
    norm = normalise
    if not isinstance(norm, str) or not norm.strip():
        raise ConfigError(f"--normalise must be total, none or an ion name, got {normalise!r}")
    norm = norm.strip()
    table = parse_ions(list(DEFAULT_IONS))
    user = None
    if ions:
        user = [str(i) for i in ions]
    if (window_fwhm is None) != (resolution is None) or (window_fwhm is not None and window_u is not None):
        raise ConfigError("windows: give --window-u W (u), or --window-fwhm K with --resolution R (K peak widths of "
                          "m / R), not both")
    window = ({"widths": float(window_fwhm), "resolution": float(resolution)} if window_fwhm is not None
              else {"window_u": DEFAULT_WINDOW_U if window_u is None else float(window_u)})
    if pulses is not None:
        pulses = check_pulses(pulses)
    if phases not in ("auto", "none"):  # a label file: refused before any work if it is not there
        from ionscope.io import check_readable, split_spec

        try:
            check_readable(split_spec(str(phases))[0])
        except IonscopeError as exc:
            raise type(exc)(f"--phases: {exc}") from None

    # --- read and integrate every state
    read: list[State] = []
    ion_masses: dict[str, float] | None = None
    for k, ds in enumerate(datasets):
        var = _counts_variable(ds, _label(ds, k))
        full = dict(table)
        if user and "ion" not in var.dims:
            full.update(parse_ions(user))
        state, order = _read_state(ds, k, full, user, window, calibrate, names[k])
        if ion_masses is None:
            ion_masses = order
        elif list(order) != list(ion_masses):
            raise InputError(f"{_label(ds, k)} holds the ions {', '.join(order)} but {_label(datasets[0], 0)} "
                             f"holds {', '.join(ion_masses)}; every state needs the same ions")
        read.append(state)
    assert ion_masses is not None
    ion_list = list(ion_masses)
    labels = [_label(ds, k) for k, ds in enumerate(datasets)]
    shape = read[0].counts.shape[1:]
    for k, st in enumerate(read[1:], start=1):
        same_pixel = np.allclose(st.pixel_nm, read[0].pixel_nm, rtol=1e-3, equal_nan=True)
        if st.counts.shape[1:] != shape or not same_pixel:
            raise InputError(
                f"{labels[k]} is {st.counts.shape[1]} x {st.counts.shape[2]} px of {st.pixel_nm[0]:.4g} nm but "
                f"{labels[0]} is {shape[0]} x {shape[1]} px of {read[0].pixel_nm[0]:.4g} nm: states of different grids "
                "cannot be registered - measure every state with one field of view and raster"
            )
    for need in (LI7,):
        if need not in ion_list:
            raise InputError(f"no {need} among the ions ({', '.join(ion_list)}); Li maps need it")
    if norm not in ("total", "none"):
        norm = next(iter(parse_ions([norm])))
        if norm not in ion_list:
            raise InputError(f"--normalise {normalise}: {norm} is not among the ions ({', '.join(ion_list)})")
    i7 = ion_list.index(LI7)
    i6 = ion_list.index(LI6) if LI6 in ion_list else None
    matrix = [i for i, n in enumerate(ion_list) if n not in (LI7, LI6)]
    if len(matrix) < 1:
        raise InputError(f"only Li ions ({', '.join(ion_list)}): registration and normalisation need matrix ions")

    # --- dead time
    observed = np.stack([st.counts for st in read])  # (state, ion, y, x)
    n_pulses = pulses if pulses is not None else read[0].pulses
    summary_warnings: list[str] = []
    saturation: list[dict[str, Any]] = []
    if n_pulses is not None:
        corrected = np.empty_like(observed)
        error = np.empty_like(observed)
        for k in range(len(read)):
            try:
                corrected[k], error[k] = deadtime_correct(observed[k], n_pulses)
            except InputError as exc:  # counts at or above the pulses: which state says which file
                raise InputError(f"{labels[k]}: {exc}") from None
    else:
        corrected, error = observed.copy(), np.sqrt(observed)
    for k in range(len(read)):
        entry: dict[str, Any] = {"state": names[k]}
        li7_obs = observed[k, i7]
        if n_pulses is not None:
            mask, count = near_saturation(li7_obs, n_pulses)
            entry["pixels_near_saturation"] = int(count)
        else:
            mask = np.ones(li7_obs.shape, bool)
        if i6 is not None:
            before = isotope_check(li7_obs, observed[k, i6], mask=mask if mask.any() else None)
            after = isotope_check(corrected[k, i7], corrected[k, i6], mask=mask if mask.any() else None)
            entry.update(li7_over_12_2_li6_observed=before.summary, li7_over_12_2_li6_corrected=after.summary,
                         li7_over_12_2_li6_corrected_err=after.summary_err, pixels=int(before.pixels))
            if n_pulses is None and np.isfinite(before.summary) and before.summary < SATURATED_RATIO:
                text = (f"{labels[k]}: 7Li / ({LI7_LI6:g} x 6Li) = {before.summary:.2f} over the field: 7Li looks "
                        "saturated - give the primary pulses per pixel (--pulses, scans x shots per pixel) for the "
                        "dead-time correction")
                warnings.warn(text, IonscopeWarning, stacklevel=3)
                summary_warnings.append(text)
        saturation.append(entry)
    near = [e.get("pixels_near_saturation", 0) for e in saturation]
    if any(near):
        text = (f"7Li reaches {SATURATION_THRESHOLD:.0%} of the {n_pulses:g} pulses per pixel in "
                + ", ".join(f"{n} px of {name}" for n, name in zip(near, names) if n)
                + f" (of {shape[0] * shape[1]} px each): corrected for dead time there, with larger errors")
        warnings.warn(text, IonscopeWarning, stacklevel=3)
        summary_warnings.append(text)
    variance = error ** 2

    # --- binning, registration
    pixel = tuple(p * bin_px for p in read[0].pixel_nm)
    if bin_px > 1:
        if min(shape) // bin_px < 4:
            raise ConfigError(f"--bin {bin_px} leaves {shape[0] // bin_px} x {shape[1] // bin_px} px; at most "
                              f"{min(shape) // 4}")
        corrected, variance = bin_pixels(corrected, bin_px), bin_pixels(variance, bin_px)
    ns, _, ny, nx = corrected.shape
    matrix_total = corrected[:, matrix].sum(axis=1)
    if ns > 1:
        shifts, match = _register(matrix_total, labels)
    else:
        shifts, match = np.zeros((1, 2)), np.ones(1)
    reg = np.empty_like(corrected)
    reg_var = np.empty_like(variance)
    for k in range(ns):
        for i in range(corrected.shape[1]):
            reg[k, i] = shift_frame_kernel(corrected[k, i], shifts[k])
            reg_var[k, i] = np.maximum(shift_frame_kernel(variance[k, i], shifts[k]), 0.0)
    covered = np.isfinite(reg).all(axis=(0, 1))
    rows_ok, cols_ok = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if rows_ok.size < 4 or cols_ok.size < 4:
        raise InputError("the states share fewer than 4 x 4 px after registration; they are not of one field of view")
    crop = (slice(rows_ok[0], rows_ok[-1] + 1), slice(cols_ok[0], cols_ok[-1] + 1))
    inner = covered[crop]
    if not inner.all():  # a translation leaves a rectangle; anything else is NaN in the data itself
        raise InputError("the registered states leave holes inside their common field (NaN in the counts?)")

    # --- phases (on the first state's grid)
    counts0 = np.clip(np.nan_to_num(reg[0]), 0.0, None)
    if phases == "auto":
        found = segment_phases(counts0, ion_list, seed=seed)
    elif phases == "none":
        found = None
    else:
        found = _labels_file(str(phases), counts0, ion_list, (ny, nx), bin_px)
    # --- Li per phase and particle: every state on its own grid (its counts never resampled), the
    # reference's particles moved onto it, over the part of the field every state covers
    native = np.clip(corrected, 0.0, None)
    if found is not None:
        fractions = unmix(native, ion_list, found, nonnegative=False)
        names_phase = list(found.names)
        particle_phase = PARTICLE_PHASE if PARTICLE_PHASE in names_phase else None
    else:
        fractions = np.ones((ns, 1, ny, nx))
        names_phase = ["field"]
        particle_phase = None
    # the part every state images: state k shows the first state's [s_k, N + s_k) (pixel edges);
    # a pixel counts when its centre lies inside all of them
    common = np.ones((ny, nx), bool)
    for k in range(ns):
        for axis, n in ((0, ny), (1, nx)):
            centre = np.arange(n) + 0.5
            inside = (centre >= shifts[k, axis]) & (centre <= n + shifts[k, axis])
            common &= inside[:, None] if axis == 0 else inside[None, :]
    masks = np.stack([_moved(common, shifts[k]) for k in range(ns)])
    particle_maps = None
    if particle_phase is not None:
        reference_labels = particle_labels((np.argmax(fractions[0], axis=0) == names_phase.index(particle_phase))
                                           & common)
        particle_maps = np.stack([_moved(reference_labels, shifts[k]) for k in range(ns)])
    quant = phase_lithium(native[:, i7], fractions, names_phase, particle_phase=particle_phase,
                          particles=particle_maps, mask=masks)

    # --- normalisation (dose per state) and Li maps
    if norm == "none":
        ref_map = np.ones_like(reg[:, 0])
        dose = np.ones(ns)
    else:
        ref_map = reg[:, matrix].sum(axis=1) if norm == "total" else reg[:, ion_list.index(norm)]
        sums = np.nansum(np.where(covered, ref_map, 0.0), axis=(1, 2))
        if not np.all(sums > 0):
            raise InputError(f"--normalise {normalise}: the reference holds no counts in some state")
        dose = sums / sums[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        li = np.where(ref_map > 0, reg[:, i7] / ref_map, np.nan)
        ref_var = reg_var[:, matrix].sum(axis=1) if norm == "total" else (
            reg_var[:, ion_list.index(norm)] if norm != "none" else np.zeros_like(ref_map))
        li_err = np.abs(li) * np.sqrt(reg_var[:, i7] / np.maximum(reg[:, i7], 1e-12) ** 2
                                      + ref_var / np.maximum(ref_map, 1e-12) ** 2)
        if i6 is not None:
            ratio = np.where(reg[:, i6] >= 10, reg[:, i7] / (LI7_LI6 * reg[:, i6]), np.nan)
            raw = observed[:, [i7, i6]] if bin_px == 1 else bin_pixels(observed[:, [i7, i6]], bin_px)
            raw = np.stack([[shift_frame_kernel(raw[k, i], shifts[k]) for i in range(2)] for k in range(ns)])
            ratio_observed = np.where(raw[:, 1] >= 10, raw[:, 0] / (LI7_LI6 * raw[:, 1]), np.nan)
        else:
            ratio = ratio_observed = np.full_like(li, np.nan)
    li_phase = quant.li / dose[None, :]
    li_phase_err = quant.li_err / dose[None, :]
    rel = quant.rel * dose[None, 0] / dose[None, :]
    rel_err = quant.rel_err * dose[None, 0] / dose[None, :]
    p_li = quant.particle_li / dose[None, :]
    p_err = quant.particle_err / dose[None, :]
    p_rel = quant.particle_rel * dose[None, 0] / dose[None, :]
    p_rel_err = quant.particle_rel_err * dose[None, 0] / dose[None, :]

    # --- the result
    y = np.arange(ny) * pixel[0]
    x = np.arange(nx) * pixel[1]
    particle = quant.particles.astype(np.int32)
    n_particles = int(quant.particle_li.shape[0])
    phase_map = np.zeros((ny, nx), np.int8) if found is None else found.labels.astype(np.int8)  # "field": one phase
    frac_full = np.full((ns, len(names_phase), ny, nx), np.nan, np.float32)
    sub = np.clip(reg[(slice(None), slice(None)) + crop], 0.0, None)
    frac_full[(slice(None), slice(None)) + crop] = unmix(sub, ion_list, found) if found is not None else 1.0
    centroid = _centroids(particle, n_particles, pixel)
    coords = {
        "state": ("state", names), "ion": ("ion", ion_list),
        "ion_mass": ("ion", np.array([ion_masses[n] for n in ion_list]), {"units": "u"}),
        "y": ("y", y, {"units": "nm"}), "x": ("x", x, {"units": "nm"}), "phases": ("phases", names_phase),
        "particle": ("particle", np.arange(1, n_particles + 1)),
    }
    flags = {"flag_values": list(range(len(names_phase))), "flag_meanings": " ".join(names_phase),
             "units": "1", "long_name": "majority phase (-1: no matrix counts)"}
    unit = "counts" if norm == "none" else "1"
    data_vars = {
        "counts": (("state", "ion", "y", "x"), reg.astype(np.float32),
                   {"units": "counts", "long_name": "ion counts" + (" (dead-time corrected)" if n_pulses else "")
                    + ", registered onto the first state"}),
        "li": (("state", "y", "x"), li.astype(np.float32),
               {"units": unit, "long_name": f"7Li normalised ({norm})"}),
        "li_error": (("state", "y", "x"), li_err.astype(np.float32), {"units": unit, "long_name": "counting error of li"}),
        "phase": (("y", "x"), phase_map, flags),
        "phase_fraction": (("state", "phases", "y", "x"), frac_full, {"units": "1", "long_name": "area fraction (NNLS)"}),
        "particle_label": (("y", "x"), particle, {"units": "1", "long_name": "LiCoPO4 particle (0: none)"}),
        "isotope_ratio": (("state", "y", "x"), ratio.astype(np.float32),
                          {"units": "1", "long_name": f"7Li / ({LI7_LI6:g} x 6Li)"
                           + (", dead-time corrected" if n_pulses is not None else "")}),
        "isotope_ratio_observed": (("state", "y", "x"), ratio_observed.astype(np.float32),
                                   {"units": "1", "long_name": f"7Li / ({LI7_LI6:g} x 6Li) of the observed counts"}),
        "phase_li": (("phases", "state"), li_phase, {"units": unit, "long_name": "Li of a pixel full of the phase"}),
        "phase_li_error": (("phases", "state"), li_phase_err, {"units": unit}),
        "phase_li_rel": (("phases", "state"), rel, {"units": "1", "long_name": "Li relative to the first state"}),
        "phase_li_rel_error": (("phases", "state"), rel_err, {"units": "1"}),
        "particle_li": (("particle", "state"), p_li, {"units": unit}),
        "particle_li_error": (("particle", "state"), p_err, {"units": unit}),
        "particle_li_rel": (("particle", "state"), p_rel, {"units": "1"}),
        "particle_li_rel_error": (("particle", "state"), p_rel_err, {"units": "1"}),
        "shift_y_nm": (("state",), shifts[:, 0] * pixel[0], {"units": "nm"}),
        "shift_x_nm": (("state",), shifts[:, 1] * pixel[1], {"units": "nm"}),
    }
    result = xr.Dataset(data_vars, coords=coords)
    lo, hi = ion_windows([ion_masses[n] for n in ion_list], **window)
    windows = {n: [round(float(a), 6), round(float(b), 6)] for n, a, b in zip(ion_list, lo, hi)}
    params = {"states": names, "pulses": n_pulses, **window, "normalise": norm, "phases": phases,
              "ions": ion_list, "calibrate": calibrate, "bin_px": bin_px, "seed": seed}
    history = provenance(datasets[0]) if isinstance(sources[0], xr.Dataset) else []
    stamped = with_provenance(result["li"], STEP, jsonable(params), inputs=list(sources), history=history)
    result.attrs = {"primary": "li", "provenance": stamped.attrs["provenance"], "states": names,
                    "pixel_size_nm": list(pixel), "normalise": norm,
                    "pulses_per_pixel": n_pulses if n_pulses is not None else "none"}
    phase_rows = quant.rows(names)
    for row in phase_rows:  # the dose-normalised values; no relative value for a phase without Li
        p, s = names_phase.index(row["phase"]), names.index(row["state"])
        has_li = not quant.no_lithium[p]
        row.update(li_mean=float(li_phase[p, s]), li_err=float(li_phase_err[p, s]),
                   li_rel_pristine=float(rel[p, s]) if has_li else None,
                   li_rel_pristine_err=float(rel_err[p, s]) if has_li else None,
                   z=float((rel[p, s] - 1) / rel_err[p, s]) if has_li and s != 0 and rel_err[p, s] > 0 else None)
    particle_rows = []
    for j in range(n_particles):
        for s in range(ns):
            particle_rows.append({
                "particle": j + 1, "phase": particle_phase or "", "state": names[s],
                "area_px": float(quant.particle_area[j]), "centroid_y_nm": centroid[j][0], "centroid_x_nm": centroid[j][1],
                "li_mean": float(p_li[j, s]), "li_err": float(p_err[j, s]), "li_rel_pristine": float(p_rel[j, s]),
                "li_rel_pristine_err": float(p_rel_err[j, s])})
    summary = {
        "states": names, "ions": ion_list, "windows_u": windows, "window": _window_text(window),
        "spectra": [st.kind for st in read],
        "calibration": {st.name: st.calibration for st in read},
        "pulses_per_pixel": n_pulses, "dead_time_corrected": n_pulses is not None,
        "saturation": saturation, "warnings": summary_warnings,
        "registration": {"shift_y_nm": (shifts[:, 0] * pixel[0]).tolist(), "shift_x_nm": (shifts[:, 1] * pixel[1]).tolist(),
                         "match": [float(m) for m in match], "common_field_px": [int(inner.shape[0]), int(inner.shape[1])]},
        "pixel_size_nm": list(pixel), "bin_px": bin_px, "normalise": norm, "dose_relative": dose.tolist(),
        "phases": names_phase, "phase_pixels": {n: int(quant.pixels[p]) for p, n in enumerate(names_phase)},
        "no_lithium": [n for p, n in enumerate(names_phase) if quant.no_lithium[p]],
        "li_rel_pristine": {n: {"value": rel[p].tolist(), "error": rel_err[p].tolist(),
                                "z": [None if s == 0 or not rel_err[p, s] > 0 else float((rel[p, s] - 1) / rel_err[p, s])
                                      for s in range(ns)]}
                            for p, n in enumerate(names_phase) if not quant.no_lithium[p]},
        "particles": n_particles, "reduced_chi2": quant.reduced_chi2.tolist(),
        "run_time_s": _time.perf_counter() - t0,
    }
    if found is not None and found.bic:
        summary["phase_mixture"] = {"components": int(found.components), "bic": {str(k): float(v) for k, v in found.bic.items()}}
    if log is not None:
        from ionscope.timeline import attach_cycler_states, timeline_summary

        result = attach_cycler_states(result, [ds.attrs["start_time"] for ds in datasets], log, start=start,
                                      timezone=timezone)
        summary["timeline"] = timeline_summary(result)
        summary["run_time_s"] = _time.perf_counter() - t0
    return result, phase_rows, particle_rows, summary


def _window_text(window: dict[str, float]) -> str:
    if "widths" in window:
        return f"{window['widths']:g} peak widths (m / {window['resolution']:g}) wide"
    return f"{window['window_u']:g} u wide"


def _moved(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A map of the first state's grid on another state's grid: that state's pixel ``q`` shows
    the first state's ``q + shift`` (the registration shift; nearest pixel; 0 / False outside)."""
    ny, nx = image.shape
    qy = np.rint(np.arange(ny) + shift[0]).astype(int)
    qx = np.rint(np.arange(nx) + shift[1]).astype(int)
    oky, okx = (qy >= 0) & (qy < ny), (qx >= 0) & (qx < nx)
    out = image[np.clip(qy, 0, ny - 1)][:, np.clip(qx, 0, nx - 1)]
    return np.where(oky[:, None] & okx[None, :], out, np.zeros((), image.dtype))


def _centroids(labels: np.ndarray, n: int, pixel: tuple[float, float]) -> list[tuple[float, float]]:
    if n == 0:
        return []
    from scipy import ndimage

    c = ndimage.center_of_mass(np.ones(labels.shape), labels, np.arange(1, n + 1))
    return [(float(cy * pixel[0]), float(cx * pixel[1])) for cy, cx in c]
