"""``ionscope eels``: STEM-EELS lithium mapping commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ionscope.cli._app import (
    CyclerOption, DimsOption, OutOption, OverwriteOption, StartOption, TimezoneOption, WindowOption, app, cell_timeline,
    dask_progress, load_input, options_named, out, parse_window, start_run, series_command,
)


# --------------------------------------------------------------------------- eels

eels_app = typer.Typer(
    help="STEM-EELS lithium mapping: Li-K / Co-M2,3 background, MLLS, S_A/S_B, NMF, SR-EELS.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(eels_app, name="eels")


@eels_app.command("lithium")
@series_command
def eels_lithium(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Spectrum image or series, energy (eV) last.")],
    li_rich: Annotated[str, typer.Option("--li-rich", help="Li-rich reference spectrum (LiCoO2): FILE or FILE:VARIABLE.")],
    li_poor: Annotated[str, typer.Option("--li-poor", help="Li-poor reference spectrum (Li-free Co oxide).")],
    out_dir: OutOption,
    extra: Annotated[list[str], typer.Option("--extra", help="Further reference without Co (repeatable).")] = [],  # noqa: B006
    co_extra: Annotated[list[str], typer.Option("--co-extra", help="Further Co-bearing reference, counted in the Co total (repeatable).")] = [],  # noqa: B006
    background: Annotated[WindowOption, typer.Option("--background", help="Pre-edge power-law window LO:HI (eV); 'none' if already subtracted.")] = "40:52",
    fit_window: Annotated[WindowOption, typer.Option("--fit-window", help="MLLS fit window LO:HI (eV).")] = None,
    method: Annotated[str, typer.Option("--method", help="mlls or sasb.")] = "mlls",
    window_a: Annotated[WindowOption, typer.Option("--window-a", help="S_A window LO:HI (eV).")] = None,
    window_b: Annotated[WindowOption, typer.Option("--window-b", help="S_B window LO:HI (eV).")] = None,
    background_method: Annotated[str, typer.Option("--background-method", help="fit or two-window.")] = "fit",
    reference_background: Annotated[str, typer.Option(
        "--reference-background",
        help="The references' background: fit (the --background window, on each reference too), none (used as "
             "given: background-subtracted already) or auto (decided per reference from its pre-edge and energy "
             "range; reported in the summary).")] = "auto",
    cycler: CyclerOption = None,
    start: StartOption = None,
    timezone: TimezoneOption = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Li-fraction maps: power-law background, then MLLS against references (or S_A/S_B).

    The spectrum image is raw (its background is fitted in --background); each reference may be
    raw or background-subtracted (--reference-background) and recorded on its own energy range and
    step (resampled onto the image's channels in the fit window).

    Writes DIR/result.zarr with li_fraction, li_fraction_stderr, chi2 (reduced), coefficients,
    stderr and mask (the input's leading dims) and DIR/summary.json with the method, windows,
    statistics, masked pixels and run time.
    """
    import numpy as np

    from ionscope import io
    from ionscope.eels.lithium import li_fraction_map, li_fraction_summary

    elapsed = start_run(out_dir, overwrite, inputs=(input_path, li_rich, li_poor, *extra, *co_extra, cycler))
    bg = None if str(background).lower() == "none" else parse_window(background, "--background")
    windows = {"fit_window": parse_window(fit_window, "--fit-window"), "window_a": parse_window(window_a, "--window-a"),
               "window_b": parse_window(window_b, "--window-b")}
    spectra = load_input(input_path, lazy=True, dims=dims, what="INPUT (the spectrum image)")
    refs = {name: load_input(spec, what="--" + name.replace("_", "-"))
            for name, spec in (("li_rich", li_rich), ("li_poor", li_poor))}
    extras = {f"extra{i}": load_input(spec, what="--extra") for i, spec in enumerate(extra, 1)}
    co_extras = {f"co_extra{i}": load_input(spec, what="--co-extra") for i, spec in enumerate(co_extra, 1)}
    sources = {"spectra": str(input_path), "li_rich": li_rich, "li_poor": li_poor,
               **{f"extra{i}": spec for i, spec in enumerate(extra, 1)},
               **{f"co_extra{i}": spec for i, spec in enumerate(co_extra, 1)}}
    timed = cell_timeline(spectra, cycler, start, timezone, out_dir, overwrite)
    with options_named():
        result = li_fraction_map(
            spectra, refs["li_rich"], refs["li_poor"], extras, co_extra=co_extras, method=method,
            background=bg, background_method=background_method, reference_background=reference_background,
            sources=sources, **windows,
        )
    with dask_progress("eels lithium"):
        result = result.compute()
    if not np.isfinite(result["li_fraction"].values).any():
        from ionscope.errors import EmptyDataError

        codes, counts = np.unique(result["mask"].values, return_counts=True)
        reasons = ", ".join(f"{n} x {_mask_meaning(result['mask'], c)}" for c, n in zip(codes, counts))
        raise EmptyDataError(
            f"no spectrum could be fitted ({reasons}); check that {input_path} holds counts in the "
            "background and fit windows (all-zero spectra?)"
        )
    summary = {
        "command": "eels lithium", "input": str(input_path), "method": method,
        "windows": {"background_eV": bg, **{f"{k}_eV": v for k, v in windows.items()}},
        "references": {"li_rich": li_rich, "li_poor": li_poor, "extra": extra, "co_extra": co_extra},
        **li_fraction_summary(result),
    }
    if timed is not None:
        result, part = timed.apply(result)
        summary.update(part)
    summary["run_time_s"] = elapsed()
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"li_fraction mean {summary['li_fraction_mean']}, masked pixels {summary['masked_pixels']}; wrote {out_dir}")


def _mask_meaning(mask, code) -> str:
    values = list(mask.attrs.get("flag_values", []))
    meanings = str(mask.attrs.get("flag_meanings", "")).split()
    return meanings[values.index(code)] if code in values and len(meanings) == len(values) else f"code {code}"


@eels_app.command("nmf")
@series_command
def eels_nmf(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Spectrum image or series, energy (eV) last.")],
    components: Annotated[int, typer.Option("--components", help="Number of NMF components.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
    window: Annotated[WindowOption, typer.Option("--window", help="Energy window LO:HI (eV) to decompose.")] = None,
    background: Annotated[WindowOption, typer.Option("--background", help="Subtract a power law fitted in LO:HI (eV) first.")] = None,
    orthogonality: Annotated[float, typer.Option("--orthogonality", help="Soft orthogonality weight on the maps (Shiga et al. 2016), e.g. 0.1.")] = 0.0,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="Scale every spectrum to unit sum in the window (removes thickness contrast).")] = True,
    passes: Annotated[int, typer.Option("--passes", help="Lazy (Zarr) input: passes over the data that refine the components learned on a sample.")] = 2,
    max_sample: Annotated[int, typer.Option("--max-sample", help="Lazy (Zarr) input: spectra in the sample the components are first learned on.")] = 20000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """NMF phase maps and component spectra (HALS).

    A Zarr input stays lazy, so the series may be larger than memory: the components are learned
    on a sample of --max-sample spectra and refined in --passes passes over the data, and the
    maps are computed chunk by chunk as they are written (with --orthogonality the spectra are
    loaded into memory: the soft orthogonality needs every map at every sweep).

    Writes DIR/result.zarr with maps (component, ...), spectra (component, energy) and
    reconstruction_error, and DIR/summary.json.
    """
    from ionscope import io
    from ionscope.data import is_lazy
    from ionscope.eels.decomposition import nmf
    from ionscope.eels.phases import prepare_for_nmf

    elapsed = start_run(out_dir, overwrite, inputs=(input_path,))
    win = parse_window(window, "--window")
    bg = parse_window(background, "--background")
    spectra = prepare_for_nmf(load_input(input_path, lazy=not orthogonality, dims=dims), window=win, background=bg,
                              normalize=normalize)
    with dask_progress("eels nmf: components"), options_named(n_components="--components"):
        result = nmf(spectra, components, window=win, orthogonality=orthogonality, seed=seed, passes=passes,
                     max_sample=max_sample)
    summary = {
        "command": "eels nmf", "input": str(input_path), "components": components, "window_eV": win,
        "background_eV": bg, "normalize": normalize, "orthogonality": orthogonality, "seed": seed,
        "lazy": is_lazy(spectra),
    }
    if is_lazy(spectra):
        summary.update(passes=passes, n_sample=int(result.attrs["n_sample"]),
                       objective_passes=list(result.attrs["objective_passes"]))

    def finish(error) -> dict:
        summary.update(reconstruction_error=float(error), run_time_s=elapsed())
        return summary

    with dask_progress("eels nmf: maps"):  # a lazy result: the maps and the error in one pass, as they are written
        io.write_result(out_dir, result, finish, overwrite=overwrite, compute_with=result["reconstruction_error"].data)
    out.print(f"{components} components, reconstruction error {summary['reconstruction_error']:.4g}; wrote {out_dir}")


@eels_app.command("profile")
def eels_profile(
    image: Annotated[Path, typer.Argument(metavar="SR_IMAGE", help="SR-EELS image (position, energy).")],
    window: Annotated[str, typer.Option("--window", help="Edge window LO:HI (eV), e.g. the Li-K edge.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
    background: Annotated[WindowOption, typer.Option("--background", help="Pre-edge power-law window LO:HI (eV).")] = None,
    model: Annotated[str, typer.Option("--model", help="layer (an enriched/depleted layer of width W), exponential or erf.")] = "layer",
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Edge-window profile along position, interface position and enrichment width with errors.

    Writes DIR/result.zarr with profile (position) and the fit (interface, width, w90 with their
    errors, fit) and DIR/summary.json with position_nm, width_nm, w90_nm and their errors.
    """
    import xarray as xr

    from ionscope import io
    from ionscope.eels.srprofile import interface_and_width, sr_profile

    elapsed = start_run(out_dir, overwrite, inputs=(image,))
    win = parse_window(window, "--window")
    bg = parse_window(background, "--background")
    profile = sr_profile(load_input(image, dims=dims), win, bg)
    fit = interface_and_width(profile, model=model)
    result = xr.merge([profile.reset_coords().rename({profile.name: "profile"}), fit], combine_attrs="drop_conflicts")
    result.attrs["provenance"] = fit.attrs.get("provenance", profile.attrs.get("provenance", "[]"))
    result.attrs["primary"] = "profile"
    summary = {"command": "eels profile", "input": str(image), "window_eV": win, "background_eV": bg,
               "model": model, "run_time_s": elapsed()}
    for key, name in (("interface", "position_nm"), ("width", "width_nm"), ("w90", "w90_nm"),
                      ("enrichment", "enrichment")):
        if key in fit:
            summary[name] = float(fit[key])
            summary[name.replace("_nm", "") + "_error" + ("_nm" if name.endswith("_nm") else "")] = float(fit[f"{key}_error"])
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"interface at {summary['position_nm']:.2f} +/- {summary['position_error_nm']:.2f} nm, "
              f"width {summary['width_nm']:.2f} +/- {summary['width_error_nm']:.2f} nm; wrote {out_dir}")
