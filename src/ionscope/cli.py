"""The ``ionscope`` command line: argument parsing, progress and exit codes - nothing else.

Every error a user can cause is an :class:`~ionscope.errors.IonscopeError`; it is printed as one
line ``error: ...`` on stderr and the command exits with status 2 (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ionscope import __version__
from ionscope.errors import IonscopeError

# Typer vendors its own click; take its exception base from a public class.
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1

app = typer.Typer(
    name="ionscope",
    help="Operando lithium and potential maps of all-solid-state batteries.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DimsOption = Annotated[
    Optional[str],
    typer.Option("--dims", help="Dim names in the file's axis order, e.g. time,y,x (for uncalibrated files)."),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"ionscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """ionscope: operando lithium and potential maps of all-solid-state batteries."""


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    """A Rich progress bar on stderr; yields a ``progress(done, total)`` callback."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def dask_progress(description: str) -> Iterator[None]:
    """Show a Rich progress bar for the dask computations run inside the block (e.g. a lazy
    file written chunk by chunk)."""
    from dask.callbacks import Callback

    with progress_bar(description) as update:
        state = {"done": 0, "total": 0}

        def start_state(_dsk, s):
            state["total"] += sum(len(s[k]) for k in ("ready", "waiting", "running"))
            update(state["done"], state["total"])

        def posttask(*_args):
            state["done"] += 1
            update(state["done"], state["total"])

        with Callback(start_state=start_state, posttask=posttask):
            yield


# --------------------------------------------------------------------------- info


def _format_axis(ds, dim: str) -> str:
    import numpy as np

    from ionscope.data import axis_calibration, units_of
    from ionscope.errors import NonUniformAxisError

    coord = ds[dim]
    unit = units_of(coord)
    values = np.asarray(coord.values)
    if values.size == 0:
        return f"  {dim:<9} size 0"
    try:
        offset, step, _ = axis_calibration(ds, dim)
        cal = f"offset {offset:.6g} {unit}, step {step:.6g} {unit}"
    except NonUniformAxisError:
        cal = "non-uniform"
    return (
        f"  {dim:<9} size {values.size:<6} {unit:<5} {values.min():.6g} .. {values.max():.6g}   ({cal})"
    )


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="Any file ionscope reads (.hspy, .dm4, .emd, .msa, .tif, .npy, .zarr, .nc, ...).")],
    dims: DimsOption = None,
) -> None:
    """Print dims, sizes, dtype, units, calibration, key metadata and provenance of FILE."""
    from ionscope import io
    from ionscope.data import DIM_ORDER, provenance, units_of

    ds = io.open_dataset(file, lazy=True, dims=dims)
    primary = ds.attrs.get("primary")
    out.print(f"file: {file}")
    if "source_format" in ds.attrs:
        out.print(f"format: {ds.attrs['source_format']}")
    for key in ("title", "signal_type", "twin", "seed", "beam_energy_kV"):
        if key in ds.attrs:
            label = "beam energy" if key == "beam_energy_kV" else key.replace("_", " ")
            unit = " kV" if key == "beam_energy_kV" else ""
            out.print(f"{label}: {ds.attrs[key]}{unit}")
    names = sorted(ds.data_vars, key=lambda n: (n != primary, str(n)))
    for name in names:
        da = ds[name]
        tag = " (primary)" if name == primary and len(names) > 1 else ""
        long_name = f"  [{da.attrs['long_name']}]" if da.attrs.get("long_name") else ""
        out.print(
            f"variable {name}{tag}: dims ({', '.join(map(str, da.dims))}), shape {tuple(da.shape)}, "
            f"dtype {da.dtype}, units {units_of(da)}{long_name}"
        )
    out.print("axes:")
    order = {d: i for i, d in enumerate(DIM_ORDER)}
    for dim in sorted(ds.dims, key=lambda d: order.get(str(d), len(order))):
        if dim in ds.coords:
            out.print(_format_axis(ds, str(dim)))
        else:
            out.print(f"  {dim:<9} size {ds.sizes[dim]}")
    steps = provenance(ds[primary]) if primary in ds else provenance(ds)
    if not steps:
        steps = provenance(ds)
    out.print(f"provenance: {len(steps)} step(s)")
    for i, step in enumerate(steps, 1):
        params = json.dumps(step.get("params", {}), sort_keys=True)
        if len(params) > 160:
            params = params[:157] + "..."
        out.print(f"  {i}. {step.get('step')} (ionscope {step.get('version')}) {params}")


# --------------------------------------------------------------------------- simulate


def _parse_params(items: list[str]) -> dict:
    from ionscope.errors import ConfigError

    params = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--param {item!r} is not KEY=VALUE (e.g. --param ny=48)")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@app.command()
def simulate(
    name: Annotated[str, typer.Argument(help="Which simulator twin, e.g. licoo2.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output Zarr store (.zarr).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (microstructure and noise).")] = 0,
    param: Annotated[list[str], typer.Option("--param", help="Twin parameter KEY=VALUE, repeatable.")] = [],  # noqa: B006
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate a twin with ground truth and write it (plus its cycler log as CSV) to --out."""
    from ionscope import io, simulate as sim

    params = _parse_params(param)
    out_path = Path(out_path)
    io.check_output(out_path, overwrite=overwrite, suffix=".zarr")
    with progress_bar(f"simulate {name}") as update:
        ds = sim.simulate(name, seed=seed, progress=update, **params)
    io.save(ds, out_path, overwrite=overwrite)
    written = [out_path]
    if "cycler_voltage" in ds:
        csv = out_path.with_name(out_path.stem + "_cycler.csv")
        io.write_text(csv, sim.cycler_table(ds), overwrite=True)
        written.append(csv)
    for path in written:
        out.print(f"wrote {path}")


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, figures, movie and summary.json.")] = Path("demo-output"),
    quick: Annotated[bool, typer.Option("--quick", help="A smaller, faster run.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate an operando cell and write a self-contained HTML report with figures and a movie."""
    from ionscope import io
    from ionscope.pipeline.demo import run_demo

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        io.check_output(out_dir, overwrite=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    with progress_bar("demo") as update:
        summary = run_demo(out_dir, quick=quick, seed=seed, progress=update)
    out.print(f"report: {(out_dir / 'report.html').resolve()}")
    out.print(f"summary: {(out_dir / 'summary.json').resolve()} ({summary.get('run_time_s', 0):.1f} s)")


# --------------------------------------------------------------------------- convert, movie


@app.command()
def convert(
    file: Annotated[Path, typer.Argument(help="Input file in any format ionscope reads.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output: .zarr (ionscope), or .hspy/.msa/.tif via RosettaSciIO.")],
    dims: DimsOption = None,
    variable: Annotated[Optional[str], typer.Option("--variable", help="Variable of a multi-variable input.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Convert FILE to a Zarr store (calibration, units and provenance kept) or to .hspy/.msa/.tif."""
    from ionscope import io
    from ionscope.data import require_nonempty

    da = io.load(file, lazy=True, dims=dims, variable=variable)
    require_nonempty(da, str(file))
    with dask_progress("convert"):
        if Path(out_path).suffix.lower() == ".zarr":
            io.save(da, out_path, overwrite=overwrite)
        else:
            io.export(da, out_path, overwrite=overwrite)
    out.print(f"wrote {out_path} ({', '.join(f'{d}: {n}' for d, n in da.sizes.items())})")


@app.command()
def movie(
    file: Annotated[Path, typer.Argument(help="A map series with dims (time, y, x).")],
    out_path: Annotated[Path, typer.Option("--out", help="Movie file: .mp4, .webp or .gif.")],
    dims: DimsOption = None,
    variable: Annotated[Optional[str], typer.Option("--variable", help="Variable of a multi-variable input.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 10.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Render a (time, y, x) map series as a movie with time and a scale bar on every frame."""
    from ionscope import io
    from ionscope.report.movie import map_series_movie

    io.check_output(Path(out_path), overwrite=overwrite)
    da = io.load(file, dims=dims, variable=variable)
    with progress_bar("movie") as update:
        map_series_movie(da, out_path, fps=fps, overwrite=overwrite, progress=update)
    out.print(f"wrote {out_path}")


# --------------------------------------------------------------------------- eels

eels_app = typer.Typer(
    help="STEM-EELS lithium mapping: Li-K / Co-M2,3 background, MLLS, S_A/S_B, NMF, SR-EELS.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(eels_app, name="eels")

WindowOption = Optional[str]


def parse_window(text: str | None, option: str) -> tuple[float, float] | None:
    """Parse ``LO:HI`` (eV) into a tuple; None stays None."""
    from ionscope.errors import ConfigError

    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not LO:HI in eV (e.g. {option} 40:52)") from None
    if not lo < hi:
        raise ConfigError(f"{option} {text!r}: LO must be below HI (eV)")
    return lo, hi


def load_input(spec: Path | str, *, lazy: bool = False, dims: str | None = None, what: str = "input"):
    """Load ``PATH`` or ``PATH:VARIABLE`` (a variable of a multi-variable .zarr/.nc file)."""
    from ionscope import io

    text = str(spec)
    path, variable = Path(text), None
    if not path.exists() and ":" in text:
        head, tail = text.rsplit(":", 1)
        if Path(head).exists():
            path, variable = Path(head), tail
    return io.load(path, lazy=lazy, dims=dims, variable=variable)


def _timer():
    import time

    start = time.perf_counter()
    return lambda: round(time.perf_counter() - start, 3)


@eels_app.command("lithium")
def eels_lithium(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Spectrum image or series, energy (eV) last.")],
    li_rich: Annotated[str, typer.Option("--li-rich", help="Li-rich reference spectrum (LiCoO2): FILE or FILE:VARIABLE.")],
    li_poor: Annotated[str, typer.Option("--li-poor", help="Li-poor reference spectrum (Li-free Co oxide).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (result.zarr, summary.json).")],
    extra: Annotated[list[str], typer.Option("--extra", help="Further reference without Co (repeatable).")] = [],  # noqa: B006
    co_extra: Annotated[list[str], typer.Option("--co-extra", help="Further Co-bearing reference, counted in the Co total (repeatable).")] = [],  # noqa: B006
    background: Annotated[WindowOption, typer.Option("--background", help="Pre-edge power-law window LO:HI (eV); 'none' if already subtracted.")] = "40:52",
    fit_window: Annotated[WindowOption, typer.Option("--fit-window", help="MLLS fit window LO:HI (eV).")] = None,
    method: Annotated[str, typer.Option("--method", help="mlls or sasb.")] = "mlls",
    window_a: Annotated[WindowOption, typer.Option("--window-a", help="S_A window LO:HI (eV).")] = None,
    window_b: Annotated[WindowOption, typer.Option("--window-b", help="S_B window LO:HI (eV).")] = None,
    background_method: Annotated[str, typer.Option("--background-method", help="fit or two-window.")] = "fit",
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Li-fraction maps: power-law background, then MLLS against references (or S_A/S_B)."""
    import numpy as np

    from ionscope import io
    from ionscope.eels.lithium import li_fraction_map, li_fraction_summary

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    bg = None if str(background).lower() == "none" else parse_window(background, "--background")
    windows = {"fit_window": parse_window(fit_window, "--fit-window"), "window_a": parse_window(window_a, "--window-a"),
               "window_b": parse_window(window_b, "--window-b")}
    spectra = load_input(input_path, lazy=True, dims=dims)
    refs = {name: load_input(spec, what=name) for name, spec in (("li_rich", li_rich), ("li_poor", li_poor))}
    extras = {f"extra{i}": load_input(spec) for i, spec in enumerate(extra, 1)}
    co_extras = {f"co_extra{i}": load_input(spec) for i, spec in enumerate(co_extra, 1)}
    result = li_fraction_map(
        spectra, refs["li_rich"], refs["li_poor"], extras, co_extra=co_extras, method=method,
        background=bg, background_method=background_method, **windows,
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
        **li_fraction_summary(result), "run_time_s": elapsed(),
    }
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"li_fraction mean {summary['li_fraction_mean']}, masked pixels {summary['masked_pixels']}; wrote {out_dir}")


def _mask_meaning(mask, code) -> str:
    values = list(mask.attrs.get("flag_values", []))
    meanings = str(mask.attrs.get("flag_meanings", "")).split()
    return meanings[values.index(code)] if code in values and len(meanings) == len(values) else f"code {code}"


@eels_app.command("nmf")
def eels_nmf(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Spectrum image or series, energy (eV) last.")],
    components: Annotated[int, typer.Option("--components", help="Number of NMF components.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
    window: Annotated[WindowOption, typer.Option("--window", help="Energy window LO:HI (eV) to decompose.")] = None,
    background: Annotated[WindowOption, typer.Option("--background", help="Subtract a power law fitted in LO:HI (eV) first.")] = None,
    orthogonality: Annotated[float, typer.Option("--orthogonality", help="Soft orthogonality weight on the maps (Shiga et al. 2016), e.g. 0.1.")] = 0.0,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="Scale every spectrum to unit sum in the window (removes thickness contrast).")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """NMF phase maps and component spectra (HALS)."""
    from ionscope import io
    from ionscope.eels.decomposition import nmf
    from ionscope.eels.phases import prepare_for_nmf

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    win = parse_window(window, "--window")
    bg = parse_window(background, "--background")
    spectra = prepare_for_nmf(load_input(input_path, dims=dims), window=win, background=bg, normalize=normalize)
    result = nmf(spectra, components, window=win, orthogonality=orthogonality, seed=seed)
    summary = {
        "command": "eels nmf", "input": str(input_path), "components": components, "window_eV": win,
        "background_eV": bg, "normalize": normalize, "orthogonality": orthogonality, "seed": seed,
        "reconstruction_error": float(result["reconstruction_error"]), "run_time_s": elapsed(),
    }
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"{components} components, relative reconstruction error {summary['reconstruction_error']:.4g}; wrote {out_dir}")


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
    """Edge-window profile along position, interface position and enrichment width with errors."""
    import xarray as xr

    from ionscope import io
    from ionscope.eels.srprofile import interface_and_width, sr_profile

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    win = parse_window(window, "--window")
    bg = parse_window(background, "--background")
    profile = sr_profile(load_input(image, dims=dims), win, bg)
    fit = interface_and_width(profile, model=model)
    result = xr.merge([profile.reset_coords().rename({profile.name: "profile"}), fit], combine_attrs="drop_conflicts")
    result.attrs["provenance"] = fit.attrs.get("provenance", profile.attrs.get("provenance", "[]"))
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


# --------------------------------------------------------------------------- denoise


@app.command()
def denoise(
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help="A map series (time, y, x) or one map (y, x): FILE or FILE:VARIABLE.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (result.zarr with 'denoised', summary.json).")],
    method: Annotated[str, typer.Option("--method", help="sparse, sparse3d, pca, gaussian, nlmeans or tv (bm3d when installed).")] = "sparse",
    patch: Annotated[int, typer.Option("--patch", help="Patch size (px).")] = 8,
    atoms: Annotated[int, typer.Option("--atoms", help="Dictionary atoms.")] = 256,
    sparsity: Annotated[int, typer.Option("--sparsity", help="Atoms per patch at most.")] = 4,
    temporal: Annotated[int, typer.Option("--temporal", help="Frames per space-time patch (sparse3d).")] = 3,
    noise: Annotated[str, typer.Option("--noise", help="poisson, gaussian or auto.")] = "auto",
    dose: Annotated[Optional[float], typer.Option("--dose", help="Counts per unit value (maps given as fractions), for Poisson noise.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Denoise a map series by sparse coding (or a baseline) -> DIR/result.zarr variable 'denoised'."""
    from ionscope import io
    from ionscope.denoise.methods import denoise as run_denoise

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    da = load_input(input_path, dims=dims)
    with progress_bar(f"denoise ({method})") as update:
        update(0, 1)
        result, info = run_denoise(da, method=method, patch=patch, atoms=atoms, sparsity=sparsity,
                                   temporal=temporal, noise=noise, dose=dose, seed=seed)
        update(1, 1)
    summary = {"command": "denoise", "input": str(input_path), "method": method,
               "parameters": {"patch": patch, "atoms": atoms, "sparsity": sparsity, "temporal": temporal,
                              "noise": noise, "dose": dose, "seed": seed},
               "sigma": info.get("sigma"), "info": {k: v for k, v in info.items() if k != "dictionary"},
               "run_time_s": elapsed()}
    io.write_result(out_dir, result.rename("denoised").to_dataset(), summary, overwrite=overwrite)
    out.print(f"denoised {dict(da.sizes)} with {method}; wrote {out_dir}")


# --------------------------------------------------------------------------- entry point


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn errors into one line and an exit status."""
    argv = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    debug = "--debug" in argv
    try:
        result = app(args=argv, prog_name="ionscope", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except IonscopeError as exc:
        if debug:
            raise
        err.print(f"error: {_one_line(exc)}", markup=False)
        code = EXIT_USER_ERROR
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err.print("error: aborted", markup=False)
        code = 130
    except UsageError as exc:  # usage errors: bad options, missing arguments
        if debug:
            raise
        hint = f"; see 'ionscope {exc.ctx.info_name} --help'" if getattr(exc, "ctx", None) and exc.ctx.info_name != "ionscope" else "; see 'ionscope --help'"
        err.print(f"error: {_one_line(exc.format_message()).rstrip('.')}{hint}", markup=False)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        err.print("error: interrupted", markup=False)
        code = 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if debug:
            raise
        err.print(
            f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with --debug "
            "and report the traceback",
            markup=False,
        )
        code = EXIT_INTERNAL_ERROR
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
