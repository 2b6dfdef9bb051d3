"""General commands: info, simulate, demo, convert, movie."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import (
    DimsOption, OverwriteOption, VariableOption, app, dask_progress, options_named, out, progress_bar, start_run,
)


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
    if values.dtype.kind not in "iuf":  # labels (reference names, sides, parameters)
        labels = ", ".join(map(str, values[:6])) + (", ..." if values.size > 6 else "")
        return f"  {dim:<9} size {values.size:<6} labels {labels}"
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
    file: Annotated[Path, typer.Argument(help="Any file ionscope reads (.hspy, .dm4, .emd, .msa, .tif, .npy, .zarr, .nc, ...); FILE:VARIABLE for one of its signals.")],
    dims: DimsOption = None,
) -> None:
    """Print dims, sizes, dtype, units, calibration, key metadata and provenance of FILE (every
    signal of a file that holds several, each as its own variable)."""
    from ionscope import io
    from ionscope.data import provenance
    from ionscope.errors import InputError
    from ionscope.io._readers import combine_signals

    parts = io.open_signals(file, lazy=True, dims=dims)
    path = io.data_path(file)
    for part in parts:
        io.check_complete(part, path)
    try:  # signals that share their axes are shown as one dataset, with one list of axes
        groups = [parts[0] if len(parts) == 1 else combine_signals(path, parts)]
    except InputError:
        groups = parts
    first = parts[0]
    primary = first.attrs.get("primary")
    steps = (provenance(first[primary]) if primary in first else []) or provenance(first)  # refused before printing
    out.print(f"file: {file}")
    if "source_format" in first.attrs:
        out.print(f"format: {first.attrs['source_format']}")
    if len(parts) == 1:
        _print_keys(first.attrs)
    for ds in groups:
        _print_variables(ds, per_signal=len(parts) > 1)
    out.print(f"provenance: {len(steps)} step(s)")
    for i, step in enumerate(steps, 1):
        params = json.dumps(step.get("params", {}), sort_keys=True)
        if len(params) > 160:
            params = params[:157] + "..."
        out.print(f"  {i}. {step.get('step')} (ionscope {step.get('version')}) {params}")


def _print_keys(attrs) -> None:
    for key in ("title", "signal_type", "twin", "seed", "beam_energy_kV", "start_time", "scan_direction"):
        if key in attrs:
            label = "beam energy" if key == "beam_energy_kV" else key.replace("_", " ")
            unit = " kV" if key == "beam_energy_kV" else ""
            out.print(f"{label}: {attrs[key]}{unit}")


def _print_variables(ds, *, per_signal: bool) -> None:
    """One ``variable`` line per variable (primary first), then the axes they share."""
    from ionscope.data import DIM_ORDER, units_of

    primary = ds.attrs.get("primary")
    names = sorted(ds.data_vars, key=lambda n: (n != primary, str(n)))
    for name in names:
        da = ds[name]
        tag = " (primary)" if name == primary and len(names) > 1 else ""
        long_name = f"  [{da.attrs['long_name']}]" if da.attrs.get("long_name") else ""
        extra = ""
        if per_signal:  # a vendor file's signals: what each one is
            extra = "".join(f", {k.replace('_', ' ')} {da.attrs[k]}" for k in ("signal_type",) if da.attrs.get(k))
        out.print(
            f"variable {name}{tag}: dims ({', '.join(map(str, da.dims))}), shape {tuple(da.shape)}, "
            f"dtype {da.dtype}, units {units_of(da)}{extra}{long_name}"
        )
    out.print("axes:")
    order = {d: i for i, d in enumerate(DIM_ORDER)}
    for dim in sorted(ds.dims, key=lambda d: order.get(str(d), len(order))):
        if dim in ds.coords:
            out.print(_format_axis(ds, str(dim)))
        else:
            out.print(f"  {dim:<9} size {ds.sizes[dim]}")


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
    out_path: Annotated[Path, typer.Option("--out", help="Output Zarr store (.zarr); a folder for twins that write instrument files (composite_cathode: .sxm KPFM scans, .imzML TOF-SIMS states, cycler.csv, truth.zarr, sims_truth.zarr).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (microstructure and noise).")] = 0,
    param: Annotated[list[str], typer.Option("--param", help="Twin parameter KEY=VALUE, repeatable.")] = [],  # noqa: B006
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate a twin with ground truth and write it (plus its cycler log as CSV) to --out.

    Writes FILE (a Zarr store of the twin: its data, the truth variables ending in _true, the
    parameters in the attributes) and, for twins with a cell, FILE_cycler.csv; twins that make
    instrument files (composite_cathode, cell_cycling) write them into the folder --out names.
    """
    from ionscope import io, simulate as sim

    params = _parse_params(param)
    out_path = Path(out_path)
    writer = sim.FILE_WRITERS.get(name)
    if writer is not None:  # instrument files into a folder
        start_run(out_path, overwrite, names=("truth.zarr", "cycler.csv", "frame_000.sxm"))
    else:
        io.check_output(out_path, overwrite=overwrite, suffix=".zarr")
    with progress_bar(f"simulate {name}") as update, options_named():
        ds = sim.simulate(name, seed=seed, progress=update, **params)
    if writer is not None:
        written = writer(ds, out_path, overwrite=overwrite)
        kinds = {}
        for path in written:
            kinds[path.suffix] = kinds.get(path.suffix, 0) + 1
        out.print(f"wrote {', '.join(f'{n} {ext}' for ext, n in kinds.items())} to {out_path}")
        return
    csv = out_path.with_name(out_path.stem + "_cycler.csv") if "cycler_voltage" in ds else None
    if csv is not None:  # refuse before anything is written
        io.check_output(csv, overwrite=overwrite)
    with dask_progress(f"simulate {name}: writing"):  # a streamed twin is rendered as it is written
        io.save(ds, out_path, overwrite=overwrite)
    written = [out_path]
    if csv is not None:
        io.write_text(csv, sim.cycler_table(ds), overwrite=overwrite)
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
    """Simulate an operando cell and write a self-contained HTML report with figures and a movie.

    Writes DIR/report.html, the PNG figures, the movie and DIR/summary.json.
    """
    from ionscope import io
    from ionscope.errors import OutputError
    from ionscope.pipeline.demo import run_demo

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} exists and is not a folder; give a folder for --out")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        io.check_output(out_dir, overwrite=False)
    with progress_bar("demo") as update, options_named():
        summary = run_demo(out_dir, quick=quick, seed=seed, progress=update)
    out.print(f"report: {(out_dir / 'report.html').resolve()}")
    out.print(f"summary: {(out_dir / 'summary.json').resolve()} ({summary.get('run_time_s', 0):.1f} s)")


# --------------------------------------------------------------------------- convert, movie


@app.command()
def convert(
    file: Annotated[Path, typer.Argument(help="Input file in any format ionscope reads.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output: .zarr (ionscope), or .hspy/.msa/.tif via RosettaSciIO.")],
    dims: DimsOption = None,
    variable: VariableOption = None,
    chunks: Annotated[Optional[str], typer.Option(
        "--chunks", help="Zarr chunks as DIM=N[,DIM=N] (e.g. time=4): smaller chunks for inputs whose chunks do not "
                         "fit a worker's memory (chunks under 1 MB are merged along the first dim).")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Convert FILE to a Zarr store (calibration, units and provenance kept) or to .hspy/.msa/.tif.

    Writes OUT in the format its extension names.
    """
    import xarray as xr

    from ionscope import io
    from ionscope.data import require_nonempty

    io.check_not_input([out_path], [file])
    to_zarr = Path(out_path).suffix.lower() == ".zarr"
    if to_zarr and variable is None:  # a whole store or multi-signal file, every variable
        da = io.open_dataset(file, lazy=True, dims=dims)
        for name in da.data_vars:
            require_nonempty(da[name], f"{file}:{name}")
    else:
        da = io.load(file, lazy=True, dims=dims, variable=variable)
        require_nonempty(da, str(file))
    io.check_complete(da if isinstance(da, xr.Dataset) else da.to_dataset(name="data"), Path(file))
    if chunks is not None:
        da = da.chunk(_parse_chunks(chunks, da.sizes))
    with dask_progress("convert"):
        if to_zarr:
            io.save(da, out_path, overwrite=overwrite)
        else:
            io.export(da, out_path, overwrite=overwrite)
    out.print(f"wrote {out_path} ({', '.join(f'{d}: {n}' for d, n in da.sizes.items())})")


def _parse_chunks(text: str, sizes) -> dict[str, int]:
    """``--chunks time=4,y=256`` -> ``{"time": 4, "y": 256}`` for dims of ``sizes``."""
    from ionscope.errors import ConfigError

    chunks = {}
    for item in text.split(","):
        dim, _, value = item.partition("=")
        dim = dim.strip()
        if dim not in sizes or not value.strip().isdigit() or int(value) < 1:
            raise ConfigError(f"--chunks {text!r}: give DIM=N with N >= 1 for dims of the input "
                              f"({', '.join(map(str, sizes))}), e.g. --chunks {next(iter(sizes), 'time')}=4")
        chunks[dim] = int(value)
    return chunks


@app.command()
def movie(
    file: Annotated[Path, typer.Argument(help="A map series with dims (time, y, x).")],
    out_path: Annotated[Path, typer.Option("--out", help="Movie file: .mp4, .webp or .gif.")],
    dims: DimsOption = None,
    variable: VariableOption = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 10.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Render a (time, y, x) map series as a movie with time and a scale bar on every frame.

    Writes MOVIE (.mp4, .webp or .gif).
    """
    from ionscope import io
    from ionscope.report.movie import map_series_movie

    io.check_output(Path(out_path), overwrite=overwrite)
    io.check_not_input([out_path], [file])
    da = io.load(file, dims=dims, variable=variable)
    with progress_bar("movie") as update:
        with options_named():
            map_series_movie(da, out_path, fps=fps, overwrite=overwrite, progress=update)
    out.print(f"wrote {out_path}")
