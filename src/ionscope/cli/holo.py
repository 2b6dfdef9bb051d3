"""``ionscope holo``: electron holography - reconstruction, potential maps, interface profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ionscope.cli._app import DimsOption, OverwriteOption, _timer, app, load_input, out

holo_app = typer.Typer(
    help="Electron holography: off-axis and phase-shifting reconstruction, phase to potential "
    "(thickness, mean inner potential, biased minus 0 V, leakage fields), interface profiles.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(holo_app, name="holo")

OutOption = Annotated[Path, typer.Option("--out", help="Output folder (result.zarr, summary.json).")]

#: Hologram statistics every reconstruction summary carries (CONTRACTS.md).
STAT_KEYS = ("sideband_position_px", "aperture_px", "fringe_spacing_nm", "fringe_sampling_px",
             "fringe_contrast", "carrier_frequency_per_nm")
#: More statistics the summary carries when the reconstruction has them: the sub-pixel carrier
#: and the visibility mu (the contract keys follow the HoloWorks / holospy conventions).
EXTRA_STAT_KEYS = ("fringe_spacing_subpixel_nm", "fringe_sampling_subpixel_px",
                   "carrier_frequency_subpixel_per_nm", "fringe_visibility", "carrier_angle_deg",
                   "reference_fringe_visibility")


# --------------------------------------------------------------------------- parsing helpers


def parse_point(text: str | None, option: str) -> tuple[float, float] | None:
    """``"Y,X"`` -> (y, x) floats; None stays None."""
    from ionscope.errors import ConfigError

    if text is None:
        return None
    try:
        y, x = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not Y,X (two numbers, pixels, e.g. {option} 120,16)") from None
    return y, x


def parse_sideband(text: str) -> Any:
    """``auto|upper|lower`` or ``Y,X`` (pixels of the unshifted FFT)."""
    if text.strip().lower() in ("auto", "upper", "lower"):
        return text.strip().lower()
    return parse_point(text, "--sideband")


def parse_mtf(text: str | None) -> Any:
    """``--mtf``: ``lorentzian:FC`` (the pixel sinc times a Lorentzian of cut-off FC, cycles per
    pixel) or a CSV with the header ``frequency_per_px,mtf`` (a measured radial MTF)."""
    import csv

    import numpy as np

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
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
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


def open_result(spec: Path | str, what: str = "RESULT"):
    """The Dataset of an ionscope result: a folder with ``result.zarr``, the store itself, or
    any file :func:`ionscope.io.open_dataset` reads."""
    from ionscope import io
    from ionscope.errors import FileMissingError

    path = Path(spec)
    if not path.exists():
        raise FileMissingError(f"{what} {path} does not exist; give a result folder (--out of a holo command) or its result.zarr")
    if path.is_dir() and (path / "result.zarr").exists():
        path = path / "result.zarr"
    return io.open_dataset(path)


def _stats_summary(attrs: dict) -> dict:
    from ionscope.errors import InputError

    missing = [k for k in STAT_KEYS if k not in attrs]
    if missing:
        raise InputError(f"the reconstruction returned no {missing}; cannot write the summary")
    return {k: attrs[k] for k in STAT_KEYS + EXTRA_STAT_KEYS if k in attrs}


def _erosion_px(attrs: dict, image) -> int:
    """Pixels to erode a detected vacuum mask by: one resolution length (1 / aperture radius)
    when the reconstruction recorded its aperture, else 8 px. The amplitude hardly drops over
    the first nanometres of a wedge-shaped edge, whose phase already rises."""
    cut = attrs.get("resolution_cutoff_per_nm", attrs.get("aperture_per_nm"))
    try:
        pixel = float(abs(image["x"][1] - image["x"][0]))
    except (IndexError, KeyError, TypeError):
        pixel = 0.0
    if cut and pixel > 0:
        return max(4, int(round(1.0 / (float(cut) * pixel))))
    return 8


def _mask_from(spec: str | None, amplitude, shape, *, box_ok: bool = True, erode_px: int = 8):
    """``auto`` (detect on the amplitude), ``none``, ``Y0:Y1,X0:X1`` or ``FILE:VARIABLE``."""
    import numpy as np

    from ionscope.errors import DimensionError

    if spec is None or spec.lower() == "none":
        return None, "none"
    if spec.lower() == "auto":
        from ionscope.holography.leakage import detect_vacuum

        mask = detect_vacuum(amplitude, erode_px=erode_px) if amplitude is not None else None
        return mask, f"detected on the amplitude, eroded {erode_px} px" if mask is not None else "none found"
    if box_ok and ":" in spec and "," in spec and not Path(spec.split(":")[0]).exists():
        y0, y1, x0, x1 = parse_box(spec, "--vacuum")
        mask = np.zeros(shape, dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask, f"box {spec}"
    da = load_input(spec, what="--vacuum")
    mask = np.asarray(da.values).astype(bool)
    if mask.shape != tuple(shape):
        raise DimensionError(f"--vacuum mask has shape {mask.shape}, the map {tuple(shape)}")
    return mask, f"file {spec}"


# --------------------------------------------------------------------------- reconstruct


@holo_app.command("reconstruct")
def holo_reconstruct(
    hologram: Annotated[Path, typer.Argument(metavar="HOLOGRAM", help="Off-axis hologram (y, x): FILE or FILE:VARIABLE.")],
    out_dir: OutOption,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Vacuum reference hologram, or a stack (shift, y, x) of references at shifted fringes (removes the biprism's centre-band Fresnel fringes): FILE or FILE:VARIABLE.")] = None,
    sideband: Annotated[str, typer.Option("--sideband", help="auto, upper, lower or Y,X (pixels of the unshifted FFT).")] = "auto",
    aperture: Annotated[Optional[float], typer.Option("--aperture", help="Aperture radius (default 1/3 of the carrier distance).")] = None,
    aperture_unit: Annotated[str, typer.Option("--aperture-unit", help="px (FFT pixels), 1/nm or fraction (of the carrier).")] = "px",
    line_filter: Annotated[bool, typer.Option("--line-filter/--no-line-filter", help="Remove the biprism Fresnel streak.")] = False,
    mtf: Annotated[Optional[str], typer.Option("--mtf", help="Divide the detector MTF out of the sideband: lorentzian:FC (cut-off in cycles/px) or a CSV frequency_per_px,mtf.")] = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Fourier (sideband) reconstruction: unwrapped phase (rad) and amplitude."""
    import numpy as np

    from ionscope import io
    from ionscope.holography import reconstruct_offaxis

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    holo = load_input(hologram, dims=dims, what="HOLOGRAM")
    ref = load_input(reference, dims=dims, what="--reference") if reference else None
    result = reconstruct_offaxis(holo, ref, sideband=parse_sideband(sideband), aperture=aperture,
                                 aperture_unit=aperture_unit, line_filter=line_filter, mtf=parse_mtf(mtf))
    phase = np.asarray(result["phase"].values, dtype=np.float64)
    summary = {
        "command": "holo reconstruct", "input": str(hologram), "reference": reference,
        **_stats_summary(result.attrs),
        "aperture_per_nm": result.attrs.get("aperture_per_nm"),
        "sideband_used_px": result.attrs.get("sideband_used_px"),
        "output_shape": result.attrs.get("output_shape"),
        "mtf_corrected": bool(result.attrs.get("mtf_corrected", False)),
        "reference_frames": int(result.attrs.get("reference_frames", 0)),
        "phase_range_rad": [float(np.nanmin(phase)), float(np.nanmax(phase))],
        "amplitude_median": float(np.nanmedian(result["amplitude"].values)),
        "run_time_s": elapsed(),
    }
    result.attrs["primary"] = "phase"
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"fringe spacing {summary['fringe_spacing_nm']:.4g} nm, contrast "
              f"{summary['fringe_contrast']:.3f}, sideband {summary['sideband_position_px']}; wrote {out_dir}")


# --------------------------------------------------------------------------- phase shifting


@holo_app.command("phase-shifting")
def holo_phase_shifting(
    stack: Annotated[Path, typer.Argument(metavar="STACK", help="Phase-shifting stack (shift, y, x): FILE or FILE:VARIABLE.")],
    out_dir: OutOption,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Vacuum reference stack: FILE or FILE:VARIABLE.")] = None,
    vacuum: Annotated[str, typer.Option("--vacuum", help="Vacuum box Y0:Y1,X0:X1 (px) for the phase steps, 'auto' (the file's vacuum_box attribute) or 'none' (whole frame).")] = "auto",
    align: Annotated[bool, typer.Option("--align/--no-align", help="Register the frames (specimen drift) first.")] = True,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Phase-shifting (fringe-scanning) reconstruction: phase, amplitude and the R^2 map."""
    import numpy as np

    from ionscope import io
    from ionscope.holography import reconstruct_phase_shifting

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
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
        "frames": int(frames.sizes.get("shift", frames.shape[0])),
        "vacuum_box": box, "align": align,
        "drift_nm": {"y": [float(v) for v in result["drift_y"].values], "x": [float(v) for v in result["drift_x"].values]},
        "drift_matched_reference": bool(result.attrs.get("drift_matched_reference", False)),
        "r2_median": float(np.nanmedian(r2)), "r2_p5": float(np.nanpercentile(r2, 5)),
        "steps_rad": [float(v) for v in np.asarray(result["steps"].values)] if "steps" in result else None,
        "phase_range_rad": [float(np.nanmin(result["phase"].values)), float(np.nanmax(result["phase"].values))],
        "run_time_s": elapsed(),
    }
    result.attrs["primary"] = "phase"
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
    """Potential map (V) from a reconstructed phase; vacuum flatness and leakage numbers."""
    import numpy as np
    import xarray as xr

    from ionscope import io
    from ionscope.constants import electron_interaction_constant
    from ionscope.errors import ConfigError, InputError
    from ionscope.holography.leakage import fit_stray_field, vacuum_flatness
    from ionscope.holography.potential import potential_map

    elapsed = _timer()
    if (thickness is None) == (mip is None):
        raise ConfigError("give exactly one of --thickness NM and --mip V")
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    rec = open_result(result_path)
    if "phase" not in rec:
        raise InputError(f"{result_path} holds no 'phase' (variables: {list(rec.data_vars)}); give a holo reconstruct result")
    phase = rec["phase"]
    amplitude = rec["amplitude"] if "amplitude" in rec else None
    rec0 = open_result(zero, "--zero") if zero is not None else None
    if rec0 is not None and "phase" not in rec0:
        raise InputError(f"--zero {zero} holds no 'phase'")
    mask, how = _mask_from(vacuum, amplitude, phase.shape, erode_px=_erosion_px(dict(rec.attrs), phase))
    summary: dict[str, Any] = {"command": "holo potential", "input": str(result_path), "zero": str(zero) if zero else None,
                               "kv": kv, "interaction_constant_rad_per_V_nm": electron_interaction_constant(kv),
                               "thickness_nm": thickness, "mip_V": mip, "vacuum": how}
    work_phase, leak = phase, None
    if mask is not None:
        summary["vacuum_pixels"] = int(mask.sum())
    if leakage:
        if mask is None:
            raise ConfigError("--leakage needs a vacuum region; none was found (give --vacuum)")
        degree: Any = "auto" if leakage_degree == "auto" else int(leakage_degree)
        target = phase
        if rec0 is not None:  # the stray field is the bias-induced part: fit it on the difference
            from ionscope.holography.potential import phase_difference

            pair = (amplitude, rec0["amplitude"]) if align and amplitude is not None and "amplitude" in rec0 else None
            target = phase_difference(phase, rec0["phase"], vacuum=mask, align=pair)
            target.attrs["units"] = "rad"
        if leakage_erode < 0:
            raise ConfigError(f"--leakage-erode must be 0 or more pixels, got {leakage_erode}")
        leak = fit_stray_field(target, mask, degree=degree, erode_px=leakage_erode)
        summary["leakage"] = {"erode_px": leakage_erode}
        summary["leakage"].update({k: leak.attrs[k] for k in ("degree", "removed_fraction", "residual_rms_rad",
                                                          "vacuum_rms_before_rad", "model_range_specimen_rad",
                                                          "cv_rms_rad", "outlier_pixels")})
        err = leak["stray_phase_error"].values[~mask]
        summary["leakage"]["specimen_error_rad"] = {"median": float(np.median(err)), "max": float(np.max(err))}
        summary["vacuum_flatness"] = leak.attrs["flatness_before"]
        summary["vacuum_flatness_after_leakage"] = leak.attrs["flatness_after"]
        work_phase = phase - leak["stray_phase"].values
        work_phase.attrs = dict(phase.attrs)
    elif mask is not None:
        base = phase
        if rec0 is not None:
            from ionscope.holography.potential import phase_difference

            base = phase_difference(phase, rec0["phase"], vacuum=mask)
        summary["vacuum_flatness"] = vacuum_flatness(base, mask)
    ds = potential_map(work_phase, kv, thickness_nm=thickness, mip_v=mip,
                       phase_zero=rec0["phase"] if rec0 is not None else None,
                       amplitude=amplitude, amplitude_zero=rec0["amplitude"] if rec0 is not None and "amplitude" in rec0 else None,
                       vacuum=mask, align=align)
    if mask is not None:
        ds["vacuum"] = xr.DataArray(mask, dims=("y", "x"), coords={d: phase[d] for d in ("y", "x")},
                                    attrs={"units": "1", "long_name": f"vacuum ({how})"})
    if leak is not None:
        ds["stray_phase"] = leak["stray_phase"]
        ds["stray_phase_error"] = leak["stray_phase_error"]
    ds.attrs.update(_resolution_attrs(dict(rec.attrs)))
    if thickness is not None and rec0 is None:
        ds.attrs["phase_per_volt_rad"] = electron_interaction_constant(kv) * float(thickness)
    v = np.asarray(ds["potential"].values, dtype=np.float64)
    spec = np.isfinite(v) & (~mask if mask is not None else True)
    if not spec.any():
        raise InputError("the potential map holds no finite specimen pixels; check --thickness / --mip and the vacuum")
    summary.update({
        "route": ds.attrs["route"],
        "potential_median_V": float(np.median(v[spec])),
        "potential_percentiles_V": {f"p{p}": float(np.percentile(v[spec], p)) for p in (5, 25, 50, 75, 95)},
        "mean_free_path_nm": ds.attrs.get("mean_free_path_nm"),
        "resolution_cutoff_per_nm": ds.attrs.get("resolution_cutoff_per_nm"),
        "run_time_s": elapsed(),
    })
    io.write_result(out_dir, ds, summary, overwrite=overwrite)
    out.print(f"potential median {summary['potential_median_V']:.4g} V ({summary['route']}); wrote {out_dir}")


# --------------------------------------------------------------------------- profile


def _blur_option(text: str, ds, variable: str):
    """``--blur`` -> the ``blur`` argument of :func:`ionscope.profiles.fit_step`."""
    from ionscope.errors import ConfigError
    from ionscope.profiles import LowPass

    key = text.strip().lower()
    if key == "none":
        return None, "none"
    if key == "fit":
        return "fit", "fitted Gaussian"
    if key == "auto":
        cut = ds.attrs.get("resolution_cutoff_per_nm", ds.attrs.get("aperture_per_nm"))
        if cut is None:
            return None, "none (no aperture recorded)"
        edge = ds.attrs.get("resolution_edge_per_nm")
        if edge is None and ds.attrs.get("aperture_px") and ds.attrs.get("aperture_edge_px") is not None:
            edge = float(ds.attrs["aperture_edge_px"]) / float(ds.attrs["aperture_px"]) * float(cut)
        kappa = None
        if variable == "potential":
            kappa = ds.attrs.get("phase_per_volt_rad")
        elif variable == "phase":
            kappa = 1.0
        lp = LowPass(float(cut), float(edge or 0.0), None if kappa is None else float(kappa))
        return lp, lp.describe()
    if key.startswith("lowpass:"):
        lp = LowPass(float(key.split(":", 1)[1]))
        return lp, lp.describe()
    try:
        value = float(key)
    except ValueError:
        raise ConfigError(f"--blur {text!r}: use auto, none, fit, a Gaussian sigma in nm or lowpass:CUTOFF (1/nm)") from None
    return value, f"Gaussian sigma {value:g} nm"


@holo_app.command("profile")
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
    """Band-averaged profile across an interface and a step fit: drop, w90, position."""
    import numpy as np
    import xarray as xr

    from ionscope import io
    from ionscope.errors import ConfigError, InputError
    from ionscope.profiles import band_profile, detect_interface, fit_step, normal_segment

    elapsed = _timer()
    if (start is None) != (end is None):
        raise ConfigError("give both --from and --to, or neither (then the interface is detected)")
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    ds = open_result(result_path)
    name = variable or ("potential" if "potential" in ds else ds.attrs.get("primary"))
    if name is None or name not in ds:
        raise InputError(f"{result_path} has no variable {name!r} (variables: {list(ds.data_vars)}); choose one with --variable")
    image = ds[name]
    if set(image.dims) != {"y", "x"}:
        raise InputError(f"{name!r} has dims {image.dims}; --variable must name a (y, x) map")
    if start is None:
        allowed = None
        if "vacuum" in ds and ds["vacuum"].dims == image.dims:
            # the vacuum edge is the strongest step of a potential map: look in the specimen,
            # a few resolution lengths away from it
            from scipy.ndimage import binary_dilation

            allowed = ~binary_dilation(np.asarray(ds["vacuum"].values, bool), iterations=2 * _erosion_px(dict(ds.attrs), image) + 16)
        found = detect_interface(image, smooth_px=max(2.0, width / 10), mask=allowed)
        p0, p1 = normal_segment(found, half_length, image.shape, margin_px=width / 2 + 1)
        how = "detected"
    else:
        p0, p1 = parse_point(start, "--from"), parse_point(end, "--to")
        found, how = None, "given"
    blur_arg, blur_text = _blur_option(blur, ds, name)
    prof = band_profile(image, p0, p1, width=width)
    fit = fit_step(prof, model, side=side, blur=blur_arg, eps_r=eps_r, step=step)
    result = xr.merge([prof, fit], combine_attrs="drop_conflicts")
    result.attrs = {"primary": "profile", "model": model, "provenance": fit.attrs["provenance"],
                    "chi2_reduced": fit.attrs["chi2_reduced"], "side": fit.attrs["side"],
                    "resolution": fit.attrs["resolution"], "start_px": list(p0), "end_px": list(p1),
                    "width_px": width, "variable": name}
    unit = str(image.attrs.get("units", ""))
    step_nm = prof.attrs["step_nm"]
    pos = float(fit["interface"])
    dy = float(abs(image["y"][1] - image["y"][0])) if image.sizes["y"] > 1 else 1.0
    dx = float(abs(image["x"][1] - image["x"][0])) if image.sizes["x"] > 1 else 1.0
    # interface point in pixels: the profile runs in nm along the (pixel-space) direction
    length_nm = float(np.hypot((p1[0] - p0[0]) * dy, (p1[1] - p0[1]) * dx))
    frac = pos / length_nm if length_nm > 0 else 0.0
    at = np.array(p0) + frac * (np.array(p1) - np.array(p0))
    summary: dict[str, Any] = {
        "command": "holo profile", "input": str(result_path), "variable": name, "units": unit,
        "from_px": list(p0), "to_px": list(p1), "endpoints": how, "width_px": width, "model": model,
        "side": fit.attrs["side"], "step": step, "blur": blur_text,
        "drop": float(fit["drop"]), "drop_error": float(fit["drop_error"]),
        "w90_nm": float(fit["w90"]), "w90_nm_error": float(fit["w90_error"]),
        "position_nm": pos, "position_nm_error": float(fit["interface_error"]),
        "interface_px": [float(at[0]), float(at[1])],
        "width_nm": float(fit["width"]), "width_nm_error": float(fit["width_error"]),
        "level_start": float(fit["level_start"]), "level_end": float(fit["level_end"]),
        "field_peak": float(fit["field_peak"]), "field_peak_error": float(fit["field_peak_error"]),
        "field_peak_units": fit["field_peak"].attrs["units"],
        "chi2_reduced": float(fit.attrs["chi2_reduced"]), "points": int(prof.sizes["position"]),
        "step_nm": step_nm, "independent_lines": prof.attrs["independent_lines"],
        "run_time_s": None,
    }
    if unit == "V":
        summary["drop_V"] = summary["drop"]
        summary["drop_V_error"] = summary["drop_error"]
        summary["field_peak_V_per_m"] = summary["field_peak"]
    if step:
        summary["jump"] = float(fit["jump"])
        summary["jump_error"] = float(fit["jump_error"])
        summary["total_drop"] = float(fit["total_drop"])
        summary["total_drop_error"] = float(fit["total_drop_error"])
    if eps_r is not None:
        summary["eps_r"] = eps_r
        summary["areal_charge_C_per_m2"] = float(fit["areal_charge"])
        summary["areal_charge_C_per_m2_error"] = float(fit["areal_charge_error"])
    if found is not None:
        summary["interface_detected"] = found
    summary["run_time_s"] = elapsed()
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    label = "drop_V" if "drop_V" in summary else "drop"
    out.print(f"{label} {summary['drop']:.4g} +/- {summary['drop_error']:.2g} {unit}, w90 "
              f"{summary['w90_nm']:.3g} +/- {summary['w90_nm_error']:.2g} nm at {pos:.2f} nm; wrote {out_dir}")
