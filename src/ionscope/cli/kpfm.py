"""``ionscope kpfm``: cross-sectional operando KPFM - process a scan series, find the active
particles, profile an interface. The chains are library functions in
:mod:`ionscope.kpfm.workflow` and :mod:`ionscope.kpfm.analysis`; this module only parses options
and writes the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ionscope.cli._app import (
    OutOption, OverwriteOption, TimezoneOption, app, load_cycler_log, options_named, out, parse_point, start_run, write_csv, series_command,
)

kpfm_app = typer.Typer(
    help="Cross-sectional KPFM: referenced, registered, deconvolved potential maps; active particles; profiles.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(kpfm_app, name="kpfm")


def _psf(text: str) -> Any:
    from ionscope.errors import ConfigError

    if text in ("none", "auto"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--psf {text!r} is not none, auto or a Gaussian sigma in nm (e.g. --psf 7)") from None


@kpfm_app.command("process")
@series_command
def kpfm_process(
    scans: Annotated[list[Path], typer.Argument(metavar="SCAN...", help="KPFM scans of one field of view (.sxm, .gwy, .spm, .ibw, or any file ionscope reads), put in time order from their headers.")],
    out_dir: OutOption,
    channel: Annotated[Optional[str], typer.Option("--channel", help="Potential channel (default: the one Kelvin/CPD channel in V).")] = None,
    direction: Annotated[str, typer.Option("--direction", help="Trace: forward, backward or mean.")] = "forward",
    reference: Annotated[str, typer.Option("--reference", help="Grounded region: auto (the flattest band along an image edge) or Y0:Y1,X0:X1 in pixels.")] = "auto",
    align: Annotated[bool, typer.Option("--align/--no-align", help="Register every frame onto the first frame's grid.")] = True,
    psf: Annotated[str, typer.Option("--psf", help="Deconvolution: none, auto (PSF from the reference band's edge) or a Gaussian SIGMA_NM.")] = "none",
    cycler: Annotated[Optional[Path], typer.Option("--cycler", help="Cycler log (.mpr, .mpt, .nda, .ndax, .res, .xlsx, Maccor, CSV such as time_s,voltage_V,current_A,charge_C): the cell's voltage, current and charge per frame and row.")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="Absolute time (ISO 8601) of the cycler log's zero.")] = None,
    timezone: TimezoneOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Referenced, levelled, registered (and deconvolved) potential maps of a KPFM scan series.

    Writes DIR/result.zarr with potential (time, y, x; V), potential_raw (with --psf), topography,
    shift_y_nm, shift_x_nm, the coordinates time and row_time and, with --cycler, cell_voltage,
    cell_current and charge; DIR/summary.json with frames, scan_directions, noise_mV, psf_sigma_nm,
    reference_box and run_time_s. A SCAN may also be one series (a Zarr store with channels
    (time, y, x)): it is read lazily and processed and written time chunk by time chunk.
    """
    import dask

    from ionscope import io
    from ionscope.cli._app import dask_progress
    from ionscope.data import plain_json
    from ionscope.kpfm.workflow import process_frames

    elapsed = start_run(out_dir, overwrite, inputs=(*scans, cycler))
    with options_named():
        result, summary = process_frames(
            [str(s) for s in scans], channel=channel, direction=direction, reference=reference, align=align,
            psf=_psf(psf), cycler=None if cycler is None else load_cycler_log(cycler, timezone), start=start,
            timezone=timezone, lazy=True,
        )
    # a lazy result (a dask-backed series) is computed as it is written, chunk by chunk, with the
    # summary's per-frame entries
    pending = {k: v for k, v in summary.items() if dask.is_dask_collection(v)}
    written: dict = {}

    def finished(values: dict | None = None) -> dict:
        written.update(plain_json({"command": "kpfm process", "inputs": [str(s) for s in scans], **summary,
                                   **(values or {}), "run_time_s": elapsed()}))
        return written

    with dask_progress("kpfm process"):
        io.write_result(out_dir, result, finished, overwrite=overwrite, compute_with=pending or None)
    noise = written["noise_mV"]
    out.print(f"{written['frames']} frames, noise {noise if noise is None else format(noise, '.3g')} mV; "
              f"wrote {out_dir}")


@kpfm_app.command("particles")
@series_command
def kpfm_particles(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="A 'kpfm process' result folder.")],
    out_dir: OutOption,
    threshold: Annotated[float, typer.Option("--threshold", help="Active when |dV| exceeds this many noise SDs and follows the cell.")] = 3.0,
    min_area: Annotated[Optional[float], typer.Option("--min-area-nm2", help="Smallest particle (nm^2); default 9 pixels.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Particles, their potential change dV(t), and which of them are active.

    Writes DIR/result.zarr with labels (0 = matrix), active and per particle dV(t);
    DIR/particles.csv (label, area_nm2, centroid_y_nm, centroid_x_nm, dV_last_mV, dV_err_mV, active,
    response_time_s); DIR/summary.json with particles and active_particles. The result is read
    lazily: the first frame is read to segment the particles, then the series is streamed once,
    time chunk by time chunk, as the outputs are written.
    """
    from ionscope import io
    from ionscope.cli._app import dask_progress
    from ionscope.kpfm.analysis import find_particles

    elapsed = start_run(out_dir, overwrite, inputs=(result_path,))
    io.check_output(out_dir / "particles.csv", overwrite=overwrite)
    result = io.open_dataset(result_path, lazy=True)
    with dask_progress("kpfm particles: first frame"), options_named(min_area_nm2="--min-area-nm2"):
        ds, rows = find_particles(result, threshold=threshold, min_area_nm2=min_area)
    columns = ["label", "area_nm2", "centroid_y_nm", "centroid_x_nm", "dV_last_mV", "dV_err_mV", "active",
               "response_time_s"]
    summary: dict = {}

    def finished(table: list) -> dict:  # the rows come with the result, from the same pass over the series
        write_csv(out_dir / "particles.csv", table, columns, overwrite=overwrite)
        summary.update({"command": "kpfm particles", "input": str(result_path), "threshold": threshold,
                        "particles": len(table), "active_particles": sum(bool(r["active"]) for r in table),
                        "run_time_s": elapsed()})
        return summary

    with dask_progress("kpfm particles"):
        io.write_result(out_dir, ds, finished, overwrite=overwrite, compute_with=rows)
    out.print(f"{summary['particles']} particles, {summary['active_particles']} active; wrote {out_dir}")


@kpfm_app.command("profile")
@series_command
def kpfm_profile(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="A 'kpfm process' result folder.")],
    out_dir: OutOption,
    start: Annotated[str, typer.Option("--from", help="Profile start Y,X (pixels of the result's grid).")],
    end: Annotated[str, typer.Option("--to", help="Profile end Y,X (pixels).")],
    width: Annotated[int, typer.Option("--width", help="Band width (px): parallel lines averaged.")] = 20,
    overwrite: OverwriteOption = False,
) -> None:
    """Band profile across an interface in every frame: step (drop) plus linear (IR) fit.

    Writes DIR/result.zarr with profile, profile_sigma and profile_fit (time, position) and per
    frame drop, slope and interface, and DIR/summary.json with per-frame drop_V and slope_V_per_nm
    with their standard errors. The result is read lazily and profiled time chunk by time chunk
    as the outputs are written.
    """
    import dask

    from ionscope import io
    from ionscope.cli._app import dask_progress
    from ionscope.data import plain_json
    from ionscope.kpfm.analysis import profile_frames

    elapsed = start_run(out_dir, overwrite, inputs=(result_path,))
    result = io.open_dataset(result_path, lazy=True)
    with options_named():
        ds, summary = profile_frames(result, parse_point(start, "--from"), parse_point(end, "--to"), width=width)
    pending = {k: v for k, v in summary.items() if dask.is_dask_collection(v)}
    written: dict = {}

    def finished(values: dict | None = None) -> dict:  # the per-frame fits, from the same pass
        written.update(plain_json({"command": "kpfm profile", "input": str(result_path), **summary,
                                   **(values or {}), "run_time_s": elapsed()}))
        return written

    with dask_progress("kpfm profile"):
        io.write_result(out_dir, ds, finished, overwrite=overwrite, compute_with=pending or None)
    drops = written["drop_V"]
    out.print(f"{len(drops)} frames, last drop {drops[-1]:.4g} V; wrote {out_dir}")
