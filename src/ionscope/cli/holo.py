"""``ionscope holo``: electron holography - reconstruction, potential maps, interface profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ionscope.cli._app import (
    DimsOption, OutOption, OverwriteOption, app, dask_progress, load_input, options_named, out, parse_point, start_run,
    series_command,
)

holo_app = typer.Typer(
    help="Electron holography: off-axis and phase-shifting reconstruction, phase to potential "
    "(thickness, mean inner potential, biased minus 0 V, leakage fields), interface profiles.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(holo_app, name="holo")


#: Hologram statistics every reconstruction summary carries (:doc:`/cli`).
STAT_KEYS = ("sideband_position_px", "aperture_px", "fringe_spacing_nm", "fringe_sampling_px",
             "fringe_contrast", "carrier_frequency_per_nm")
#: More statistics the summary carries when the reconstruction has them: the sub-pixel carrier
#: and the visibility mu (the contract keys follow the HoloWorks / holospy conventions).
EXTRA_STAT_KEYS = ("fringe_spacing_subpixel_nm", "fringe_sampling_subpixel_px",
                   "carrier_frequency_subpixel_per_nm", "fringe_visibility", "carrier_angle_deg",
                   "reference_fringe_visibility")


# --------------------------------------------------------------------------- parsing helpers


def parse_sideband(text: str) -> Any:
    """``auto|upper|lower`` or ``Y,X`` (pixels of the unshifted FFT)."""
    if text.strip().lower() in ("auto", "upper", "lower"):
        return text.strip().lower()
    return parse_point(text, "--sideband")


def parse_mtf(text: str | None) -> Any:
    """``--mtf``: ``lorentzian:FC`` (the pixel sinc times a Lorentzian of cut-off FC, cycles per
    pixel) or a CSV with the header ``frequency_per_px,mtf`` (a measured radial MTF)."""
    import numpy as np

    from ionscope import io
    from ionscope.errors import ConfigError, FileMissingError, FormatError

    if text is None:
        return None
    if text.strip().lower().startswith("lorentzian:"):
        try:
            return float(text.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"--mtf {text!r}: give lorentzian:FC with FC the cut-off in cycles per pixel, "
                              "e.g. lorentzian:0.5") from None
    path = Path(text)
    if not path.exists():
        raise FileMissingError(f"--mtf {path} does not exist (give lorentzian:FC or a CSV frequency_per_px,mtf)")
    rows = io.read_table(path, "--mtf")
    if not rows or [h.strip().lower() for h in rows[0]] != ["frequency_per_px", "mtf"]:
        raise FormatError(f"--mtf {path}: the header must be frequency_per_px,mtf")
    try:
        table = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
    except ValueError as exc:
        raise FormatError(f"--mtf {path}: a value is not a number ({exc})") from None
    if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] != 2:
        raise FormatError(f"--mtf {path}: need at least two rows of two numbers")
    return table[:, 0], table[:, 1]


def parse_box(text: str, option: str) -> list[int]:
    """``Y0:Y1,X0:X1`` (pixel indices, half-open) -> [y0, y1, x0, x1]."""
    from ionscope.errors import ConfigError

    try:
        ys, xs = text.split(",")
        y0, y1 = (int(v) for v in ys.split(":"))
        x0, x1 = (int(v) for v in xs.split(":"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not Y0:Y1,X0:X1 (pixel indices, e.g. 4:40,8:248)") from None
    if not (y0 < y1 and x0 < x1):
        raise ConfigError(f"{option} {text!r}: the box is empty (need Y0 < Y1 and X0 < X1)")
    return [y0, y1, x0, x1]


def open_result(spec: Path | str, what: str = "RESULT", *, lazy: bool = False):
    """The Dataset of an ionscope result: a folder with ``result.zarr``, the store itself, or
    any file :func:`ionscope.io.open_dataset` reads (dask-backed, nothing read, with ``lazy``)."""
    from ionscope import io
    from ionscope.errors import FileMissingError

    path = Path(spec)
    if not path.exists():
        raise FileMissingError(f"{what} {path} does not exist; give a result folder (--out of a holo command) or its result.zarr")
    return io.open_dataset(path, lazy=lazy)  # a result folder opens as its result.zarr


def _stats_summary(attrs: dict) -> dict:
    from ionscope.errors import InputError

    missing = [k for k in STAT_KEYS if k not in attrs]
    if missing:
        raise InputError(f"the reconstruction returned no {missing}; cannot write the summary")
    return {k: attrs[k] for k in STAT_KEYS + EXTRA_STAT_KEYS if k in attrs}


def parse_vacuum(spec: str | None):
    """``--vacuum``: ``auto``, ``none``, ``Y0:Y1,X0:X1`` (a pixel box) or ``FILE:VARIABLE`` (a
    mask) -> the ``vacuum`` argument of :func:`ionscope.holography.potential_from_reconstruction`."""
    if spec is None or spec.lower() in ("auto", "none"):
        return "none" if spec is None else spec.lower()
    if ":" in spec and "," in spec and not Path(spec.split(":")[0]).exists():
        return tuple(parse_box(spec, "--vacuum"))
    return load_input(spec, what="--vacuum")


# --------------------------------------------------------------------------- reconstruct


@holo_app.command("reconstruct")
@series_command
def holo_reconstruct(
    hologram: Annotated[Path, typer.Argument(metavar="HOLOGRAM", help="Off-axis hologram (y, x): FILE or FILE:VARIABLE.")],
    out_dir: OutOption,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Vacuum reference hologram, or a stack (shift, y, x) of references at shifted fringes (removes the biprism's centre-band Fresnel fringes): FILE or FILE:VARIABLE.")] = None,
    sideband: Annotated[str, typer.Option("--sideband", help="auto (the sideband HyperSpy/holospy's default reconstruction uses: the phase has its sign; = upper), upper, lower (the conjugate: the negative phase) or Y,X (pixels of the unshifted FFT, cut out as given; holospy's sb_position P is -P here). Which sign rises with the potential depends on the microscope: if the specimen's phase comes out below the vacuum's, use the other sideband.")] = "auto",
    aperture: Annotated[Optional[float], typer.Option("--aperture", help="Aperture radius (default 1/3 of the carrier distance).")] = None,
    aperture_unit: Annotated[str, typer.Option("--aperture-unit", help="px (FFT pixels), 1/nm or fraction (of the carrier).")] = "px",
    line_filter: Annotated[bool, typer.Option("--line-filter/--no-line-filter", help="Remove the biprism Fresnel streak.")] = False,
    mtf: Annotated[Optional[str], typer.Option("--mtf", help="Divide the detector MTF out of the sideband: lorentzian:FC (cut-off in cycles/px) or a CSV frequency_per_px,mtf.")] = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Fourier (sideband) reconstruction: unwrapped phase (rad) and amplitude.

    Phase sign convention: HyperSpy/holospy's default reconstruction (s_holo.reconstruct_phase(s_ref)):
    the sideband at -P with P holospy's sb='lower' position; the summary says which
    (phase_sign_convention).

    Writes DIR/result.zarr with phase (unwrapped, rad) and amplitude (y, x), and DIR/summary.json
    with sideband_position_px, aperture_px, fringe_spacing_nm, fringe_sampling_px, fringe_contrast,
    carrier_frequency_per_nm and phase_sign_convention. A hologram series (time, y, x; e.g. a Zarr
    store) is read lazily and reconstructed chunk by chunk as it is written, with one sideband
    and aperture for all frames (from the reference, or from the first frame without one) and a
    per-frame fringe_visibility; the summary adds frames and the visibility's mean and range.
    """
    import numpy as np

    from ionscope import io
    from ionscope.holography import reconstruct_offaxis

    elapsed = start_run(out_dir, overwrite, inputs=(hologram, reference))
    # a series (time, y, x) stays lazy: reconstructed chunk by chunk while it is written
    holo = load_input(hologram, lazy=True, dims=dims, what="HOLOGRAM")
    ref = load_input(reference, dims=dims, what="--reference") if reference else None
    with options_named(cutoff="--mtf lorentzian:FC"):
        result = reconstruct_offaxis(holo, ref, sideband=parse_sideband(sideband), aperture=aperture,
                                     aperture_unit=aperture_unit, line_filter=line_filter, mtf=parse_mtf(mtf))
    summary = {
        "command": "holo reconstruct", "input": str(hologram), "reference": reference,
        **_stats_summary(result.attrs),
        "aperture_per_nm": result.attrs.get("aperture_per_nm"),
        "sideband_used_px": result.attrs.get("sideband_used_px"),
        "phase_sign_convention": result.attrs.get("phase_sign_convention"),
        "output_shape": result.attrs.get("output_shape"),
        "mtf_corrected": bool(result.attrs.get("mtf_corrected", False)),
        "reference_frames": int(result.attrs.get("reference_frames", 0)),
    }
    if result["phase"].ndim > 2:
        summary.update(frames=int(result.attrs["frames"]), series_dims=result.attrs["series_dims"],
                       sideband_from=result.attrs["sideband_from"])
    # the summary's statistics are computed in the same pass as the (lazy) result is written
    stats = {"phase_min": result["phase"].min(), "phase_max": result["phase"].max(),
             "amplitude_median": _frame_medians(result["amplitude"]),
             **({"fringe_visibility": result["fringe_visibility"]} if "fringe_visibility" in result else {})}

    def finish(values: dict) -> dict:
        summary.update(phase_range_rad=[float(values["phase_min"]), float(values["phase_max"])],
                       amplitude_median=float(np.nanmedian(values["amplitude_median"])))
        if "fringe_visibility" in values:
            vis = np.asarray(values["fringe_visibility"], dtype=np.float64)
            summary.update(fringe_visibility_mean=float(vis.mean()), fringe_visibility_range=[
                float(vis.min()), float(vis.max())])
        summary["run_time_s"] = elapsed()
        return summary

    with dask_progress("holo reconstruct"):
        io.write_result(out_dir, result, finish, overwrite=overwrite,
                        compute_with={k: getattr(v, "data", v) for k, v in stats.items()})
    out.print(f"fringe spacing {summary['fringe_spacing_nm']:.4g} nm, contrast "
              f"{summary['fringe_contrast']:.3f}, sideband {summary['sideband_position_px']}; wrote {out_dir}")


def _frame_medians(amplitude):
    """Median amplitude of each frame (one number for a single map), lazily for a dask-backed
    series (the median over the medians is the summary's amplitude_median)."""
    import numpy as np
    import xarray as xr

    if amplitude.ndim == 2:
        return xr.DataArray(np.nanmedian(amplitude.values))
    return xr.apply_ufunc(lambda a: np.nanmedian(a, axis=(-2, -1)), amplitude, input_core_dims=[["y", "x"]],
                          dask="parallelized" if amplitude.chunks is not None else "forbidden",
                          output_dtypes=[np.float64])


# --------------------------------------------------------------------------- phase shifting


@holo_app.command("phase-shifting")
@series_command
def holo_phase_shifting(
    stack: Annotated[Path, typer.Argument(metavar="STACK", help="Phase-shifting stack (shift, y, x): FILE or FILE:VARIABLE.")],
    out_dir: OutOption,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Vacuum reference stack: FILE or FILE:VARIABLE.")] = None,
    vacuum: Annotated[str, typer.Option("--vacuum", help="Vacuum box Y0:Y1,X0:X1 (px) for the phase steps, 'auto' (the file's vacuum_box attribute) or 'none' (whole frame).")] = "auto",
    align: Annotated[bool, typer.Option("--align/--no-align", help="Register the frames (specimen drift) first.")] = True,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Phase-shifting (fringe-scanning) reconstruction: phase, amplitude and the R^2 map.

    Writes DIR/result.zarr with phase, amplitude, r2, contrast and valid (y, x) and the measured
    steps, and DIR/summary.json as holo reconstruct.
    """
    import numpy as np

    from ionscope import io
    from ionscope.holography import reconstruct_phase_shifting

    elapsed = start_run(out_dir, overwrite, inputs=(stack, reference))
    frames = load_input(stack, dims=dims, what="STACK")
    ref = load_input(reference, dims=dims, what="--reference") if reference else None
    box = None
    if vacuum.lower() == "auto":
        raw = frames.attrs.get("vacuum_box")
        if raw is None:
            from ionscope.errors import IonscopeError

            try:  # the attribute of the file's Dataset (e.g. a saved holography_ps twin)
                raw = io.open_dataset(str(stack).rsplit(":", 1)[0] if not Path(stack).exists() else stack).attrs.get("vacuum_box")
            except IonscopeError:  # only a hint; the reconstruction works without it
                raw = None
        box = [int(v) for v in raw] if raw is not None else None
    elif vacuum.lower() != "none":
        box = parse_box(vacuum, "--vacuum")
    result = reconstruct_phase_shifting(frames, ref, vacuum=box, align=align)
    r2 = np.asarray(result["r2"].values, dtype=np.float64)
    summary = {
        "command": "holo phase-shifting", "input": str(stack), "reference": reference,
        **_stats_summary(result.attrs),
        "phase_sign_convention": result.attrs.get("phase_sign_convention"),
        "frames": int(frames.sizes.get("shift", frames.shape[0])),
        "vacuum_box": box, "align": align,
        "drift_nm": {"y": [float(v) for v in result["drift_y"].values], "x": [float(v) for v in result["drift_x"].values]},
        "drift_matched_reference": bool(result.attrs.get("drift_matched_reference", False)),
        "r2_median": float(np.nanmedian(r2)), "r2_p5": float(np.nanpercentile(r2, 5)),
        "steps_rad": [float(v) for v in np.asarray(result["steps"].values)] if "steps" in result else None,
        "phase_range_rad": [float(np.nanmin(result["phase"].values)), float(np.nanmax(result["phase"].values))],
        "run_time_s": elapsed(),
    }
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"{summary['frames']} frames, median R^2 {summary['r2_median']:.4f}; wrote {out_dir}")


# --------------------------------------------------------------------------- potential


def _resolution_attrs(rec_attrs: dict) -> dict:
    """The reconstruction's aperture as a low-pass resolution (for ``holo profile --blur auto``)."""
    cut = rec_attrs.get("aperture_per_nm")
    if cut is None:
        return {}
    edge = 0.0
    if rec_attrs.get("aperture_px") and rec_attrs.get("aperture_edge_px") is not None:
        edge = float(rec_attrs["aperture_edge_px"]) / float(rec_attrs["aperture_px"]) * float(cut)
    return {"resolution_cutoff_per_nm": float(cut), "resolution_edge_per_nm": float(edge)}


@holo_app.command("potential")
@series_command
def holo_potential(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="A 'holo reconstruct' / 'holo phase-shifting' result folder (or its result.zarr).")],
    kv: Annotated[float, typer.Option("--kv", help="Accelerating voltage (kV).")],
    out_dir: OutOption,
    thickness: Annotated[Optional[float], typer.Option("--thickness", help="Uniform specimen thickness (nm).")] = None,
    mip: Annotated[Optional[float], typer.Option("--mip", help="Mean inner potential of the specimen (V): thickness from the 0 V phase, or from the amplitude.")] = None,
    zero: Annotated[Optional[Path], typer.Option("--zero", help="Result of the same area at 0 V: the potential of the biased-minus-0 V phase.")] = None,
    vacuum: Annotated[str, typer.Option("--vacuum", help="Vacuum region: auto (detected on the amplitude), none, Y0:Y1,X0:X1 or FILE:VARIABLE (a mask).")] = "auto",
    leakage: Annotated[bool, typer.Option("--leakage/--no-leakage", help="Fit a harmonic (Laplace) stray-field model in the vacuum and subtract it.")] = False,
    leakage_degree: Annotated[str, typer.Option("--leakage-degree", help="Degree of the stray-field model: auto (cross-validated) or a number (1 = plane).")] = "auto",
    leakage_erode: Annotated[int, typer.Option("--leakage-erode", help="Erode the vacuum by PX more before the stray-field fit (a detected vacuum is already eroded by the map's resolution).")] = 4,
    align: Annotated[bool, typer.Option("--align/--no-align", help="Align the 0 V result onto RESULT (amplitude cross-correlation) first.")] = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Potential map (V) from a reconstructed phase; vacuum flatness and leakage numbers.

    Writes DIR/result.zarr with potential (V; thickness in nm on the mean-inner-potential routes,
    phase_difference with --zero, vacuum, stray_phase with --leakage) and DIR/summary.json with the
    vacuum flatness and leakage numbers. A series result (time, y, x; e.g. a Zarr written by holo
    reconstruct) stays lazy: each frame goes through the map's chain while the result is written
    chunk by chunk, and the summary lists the per-frame numbers (potential_median_V,
    potential_percentiles_V, vacuum_pixels...), computed in the same pass; a --zero result is one
    map, loaded once.
    """
    import json

    from ionscope import io
    from ionscope.constants import electron_interaction_constant
    from ionscope.errors import ConfigError
    from ionscope.holography.workflow import potential_from_reconstruction

    if (thickness is None) == (mip is None):
        raise ConfigError("give exactly one of --thickness NM and --mip V")
    elapsed = start_run(out_dir, overwrite, inputs=(result_path, zero, vacuum))
    rec = open_result(result_path, lazy=True)
    if "phase" in rec and rec["phase"].ndim > 2:  # a series stays lazy: computed frame by frame while written
        from ionscope.cluster import check_chunk_memory

        check_chunk_memory(rec["phase"], "RESULT")
    else:
        rec = rec.load()
    rec0 = open_result(zero, "--zero") if zero is not None else None
    try:
        degree: Any = "auto" if leakage_degree == "auto" else int(leakage_degree)
    except ValueError:
        raise ConfigError(f"--leakage-degree {leakage_degree!r}: use auto or a whole number (1 = plane)") from None
    with options_named(thickness_nm="--thickness", mip_v="--mip", leakage_erode_px="--leakage-erode"):
        ds = potential_from_reconstruction(rec, kv, thickness_nm=thickness, mip_v=mip, zero=rec0,
                                           vacuum=parse_vacuum(vacuum), leakage=leakage, leakage_degree=degree,
                                           leakage_erode_px=leakage_erode, align=align)
    if ds["potential"].ndim > 2:  # a series: lazy, computed frame by frame while written
        _write_potential_series(ds, out_dir, result_path, zero, kv, thickness, mip, elapsed, overwrite)
        return
    attrs = ds.attrs
    summary: dict[str, Any] = {"command": "holo potential", "input": str(result_path), "zero": str(zero) if zero else None,
                               "kv": kv, "interaction_constant_rad_per_V_nm": electron_interaction_constant(kv),
                               "thickness_nm": thickness, "mip_V": mip, "vacuum": attrs["vacuum_region"]}
    if "vacuum_pixels" in attrs:
        summary["vacuum_pixels"] = attrs["vacuum_pixels"]
    for key in ("leakage", "vacuum_flatness", "vacuum_flatness_after_leakage"):
        if key in attrs:
            summary[key] = json.loads(attrs[key])
    summary.update({
        "route": attrs["route"],
        "potential_median_V": attrs["potential_median_V"],
        "potential_percentiles_V": json.loads(attrs["potential_percentiles_V"]),
        "mean_free_path_nm": attrs.get("mean_free_path_nm"),
        "resolution_cutoff_per_nm": attrs.get("resolution_cutoff_per_nm"),
        "run_time_s": elapsed(),
    })
    io.write_result(out_dir, ds, summary, overwrite=overwrite)
    out.print(f"potential median {summary['potential_median_V']:.4g} V ({summary['route']}); wrote {out_dir}")


def _write_potential_series(ds, out_dir, result_path, zero, kv, thickness, mip, elapsed, overwrite) -> None:
    """Write a series potential (:func:`ionscope.holography.potential_from_reconstruction` of a
    series): the result frame by frame and, computed in the same pass, the summary's per-frame
    numbers (lists along the series)."""
    import numpy as np

    from ionscope import io
    from ionscope.constants import electron_interaction_constant
    from ionscope.holography.workflow import POTENTIAL_PERCENTILES, SERIES_NUMBERS

    attrs = ds.attrs
    summary: dict[str, Any] = {"command": "holo potential", "input": str(result_path), "zero": str(zero) if zero else None,
                               "kv": kv, "interaction_constant_rad_per_V_nm": electron_interaction_constant(kv),
                               "thickness_nm": thickness, "mip_V": mip, "vacuum": attrs["vacuum_region"],
                               "frames": int(ds["potential"].shape[0]), "route": attrs["route"],
                               "resolution_cutoff_per_nm": attrs.get("resolution_cutoff_per_nm")}
    numbers = [k for k in (*SERIES_NUMBERS, "potential_percentiles_V") if k in ds.coords]

    def finish(values: dict) -> dict:
        for k in numbers:
            v = np.asarray(values[k], dtype=np.float64)
            if k == "potential_percentiles_V":
                summary[k] = [{f"p{p}": float(x) for p, x in zip(POTENTIAL_PERCENTILES, row)} for row in v]
            elif k in ("vacuum_pixels", "leakage_degree"):
                summary[k] = [int(x) for x in v]
            else:
                summary[k] = [float(x) for x in v]
        summary["run_time_s"] = elapsed()
        return summary

    with dask_progress("holo potential"):
        io.write_result(out_dir, ds, finish, overwrite=overwrite,
                        compute_with={k: ds[k].data for k in numbers})
    med = summary["potential_median_V"]
    out.print(f"{summary['frames']} frames, potential median {min(med):.4g} to {max(med):.4g} V ({summary['route']}); "
              f"wrote {out_dir}")


#: The per-frame numbers the summary of ``holo profile`` lists for a series (summary key ->
#: variable or coordinate of the result).
PROFILE_SERIES_KEYS = {"drop": "drop", "drop_error": "drop_error", "w90_nm": "w90", "w90_nm_error": "w90_error",
                       "position_nm": "interface", "position_nm_error": "interface_error", "width_nm": "width",
                       "width_nm_error": "width_error", "level_start": "level_start", "level_end": "level_end",
                       "field_peak": "field_peak", "field_peak_error": "field_peak_error",
                       "chi2_reduced": "chi2_reduced", "interface_y_px": "interface_y_px",
                       "interface_x_px": "interface_x_px", "plateau_samples_start": "plateau_samples_start",
                       "plateau_samples_end": "plateau_samples_end"}


def _write_profile_series(result, out_dir, result_path, elapsed, overwrite) -> None:
    """Write a series of profiles (:func:`ionscope.holography.profile_across_interface` of a
    series) and the summary's per-frame numbers, computed in the same pass."""
    import numpy as np

    from ionscope import io

    attrs = result.attrs
    summary: dict[str, Any] = {
        "command": "holo profile", "input": str(result_path), "frames": int(result["profile"].shape[0]),
        "variable": attrs["variable"], "units": attrs["units"], "from_px": attrs["start_px"],
        "to_px": attrs["end_px"], "endpoints": attrs["endpoints"], "width_px": attrs["width_px"],
        "model": attrs["model"], "step": attrs["fit_step"], "blur": attrs["blur"], "points": int(result.sizes["position"]),
        "step_nm": attrs["step_nm"]}
    keys = {k: v for k, v in PROFILE_SERIES_KEYS.items() if v in result.variables}
    for name in ("jump", "total_drop", "areal_charge"):
        for suffix in ("", "_error"):
            if name + suffix in result.variables:
                keys[name + suffix] = name + suffix

    def finish(values: dict) -> dict:
        for k, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            summary[k] = [int(x) for x in v] if k.startswith("plateau") else [float(x) for x in v]
        if attrs["units"] == "V":
            summary.update(drop_V=summary["drop"], drop_V_error=summary["drop_error"])
        summary["run_time_s"] = elapsed()
        return summary

    with dask_progress("holo profile"):
        io.write_result(out_dir, result, finish, overwrite=overwrite,
                        compute_with={k: result[v].data for k, v in keys.items()})
    out.print(f"{summary['frames']} frames, drop {min(summary['drop']):.4g} to {max(summary['drop']):.4g} "
              f"{summary['units']}; wrote {out_dir}")


# --------------------------------------------------------------------------- profile


@holo_app.command("profile")
@series_command
def holo_profile(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="A 'holo potential' result (or any result / file with a (y, x) map).")],
    out_dir: OutOption,
    start: Annotated[Optional[str], typer.Option("--from", help="Profile start Y,X (pixels); with --to. Default: normal to the detected interface.")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Profile end Y,X (pixels).")] = None,
    width: Annotated[int, typer.Option("--width", help="Band width (px): parallel lines averaged.")] = 20,
    model: Annotated[str, typer.Option("--model", help="Step model: erf, tanh, exp, erfc (space-charge-like) or depletion.")] = "erf",
    side: Annotated[str, typer.Option("--side", help="Side of a one-sided layer (exp, erfc, depletion): auto, start or end.")] = "auto",
    step: Annotated[bool, typer.Option("--step/--no-step", help="Also fit a sharp step at the interface (e.g. a mean-inner-potential difference).")] = False,
    blur: Annotated[str, typer.Option("--blur", help="Resolution: auto (the reconstruction aperture, if recorded), none, fit, SIGMA_NM or lowpass:CUTOFF.")] = "auto",
    eps_r: Annotated[Optional[float], typer.Option("--eps-r", help="Relative permittivity for the charge density.")] = None,
    variable: Annotated[Optional[str], typer.Option("--variable", help="Map to profile (default potential, else the file's primary variable).")] = None,
    half_length: Annotated[float, typer.Option("--half-length", help="Half length (px) of a profile across the detected interface.")] = 60.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Band-averaged profile across an interface and a step fit: drop, w90, position.

    Writes DIR/result.zarr with profile, profile_sigma and fit along position (nm) and
    DIR/summary.json with drop_V, w90_nm, position_nm and their standard errors. A series result
    (time, y, x; e.g. from holo potential of a series) stays lazy but for its first frame, loaded
    once: it fixes the line (the interface detected on it without --from/--to); each frame's
    profile and fit along that line are computed while the result is written, and the summary
    lists the per-frame numbers, computed in the same pass.
    """
    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.holography.workflow import profile_across_interface, profile_summary

    if (start is None) != (end is None):
        raise ConfigError("give both --from and --to, or neither (then the interface is detected)")
    elapsed = start_run(out_dir, overwrite, inputs=(result_path,))
    ds = open_result(result_path, lazy=True)
    if not any(v.ndim > 2 and "y" in v.dims and "x" in v.dims for v in ds.data_vars.values()):
        ds = ds.load()  # one map: loaded, as before
    with options_named(half_length_px="--half-length"):
        result = profile_across_interface(ds, start=parse_point(start, "--from"), end=parse_point(end, "--to"),
                                          width=width, model=model, side=side, step=step, blur=blur, eps_r=eps_r,
                                          variable=variable, half_length_px=half_length)
    if result["profile"].ndim > 1:  # a series: the profiles along one line, computed while written
        _write_profile_series(result, out_dir, result_path, elapsed, overwrite)
        return
    summary: dict[str, Any] = {"command": "holo profile", "input": str(result_path), **profile_summary(result)}
    summary["run_time_s"] = elapsed()
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    label = "drop_V" if "drop_V" in summary else "drop"
    out.print(f"{label} {summary['drop']:.4g} +/- {summary['drop_error']:.2g} {summary['units']}, w90 "
              f"{summary['w90_nm']:.3g} +/- {summary['w90_nm_error']:.2g} nm at {summary['position_nm']:.2f} nm; "
              f"wrote {out_dir}")
