"""``ionscope timeline``: a series with the cell's state at every frame (and scan row) from a
cycler log. The work is :func:`ionscope.timeline.attach_cycler`; the same ``--cycler`` reaches
every series command through :func:`ionscope.cli._app.cell_timeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ionscope.cli._app import (
    TIMELINE_FIGURE, CyclerOption, DimsOption, OutOption, OverwriteOption, StartOption, TimezoneOption, app,
    cell_timeline, load_input, out, start_run, series_command,
)


@app.command("timeline")
@series_command
def timeline(
    series_path: Annotated[str, typer.Argument(metavar="SERIES", help="A series (time, ...) or one frame: FILE or FILE:VARIABLE (DM, EMD, HSPY, Zarr, a 'kpfm process' result...).")],
    cycler: CyclerOption,
    out_dir: OutOption,
    start: StartOption = None,
    timezone: TimezoneOption = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """The series with cell_voltage, cell_current, charge and state per frame (and row) from a cycler log, and a figure.

    Writes DIR/result.zarr (the series with cell_voltage, cell_current, charge and state per frame,
    and per row for scanned series), DIR/timeline.png and DIR/summary.json.
    """
    from ionscope import io
    from ionscope.errors import ConfigError

    if cycler is None:
        raise ConfigError("give the cycler log with --cycler LOG")
    elapsed = start_run(out_dir, overwrite, inputs=(series_path, cycler), names=("result.zarr", "summary.json",
                                                                                  TIMELINE_FIGURE))
    series = _open_series(series_path, dims)
    if "time" not in series.dims and not {"y", "x"} <= set(series.dims):
        from ionscope.errors import DimensionError

        raise DimensionError(f"SERIES {series_path} has dims ({', '.join(map(str, series.dims))}): give a series of "
                             "frames (a time dim) or one frame with y and x")
    timed = cell_timeline(series, cycler, start, timezone, out_dir, overwrite)
    result, part = timed.apply(timed.timed)
    summary = {"command": "timeline", "input": str(series_path), "cycler": str(cycler), **part["timeline"],
               "figure": TIMELINE_FIGURE, "run_time_s": elapsed()}
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    outside = len(summary["frames_outside_log"])
    out.print(f"{summary['frames']} frames tied to the cell" + (f" ({outside} outside the log)" if outside else "")
              + f", log offset {summary['cycler_offset_s']:.6g} s; wrote {out_dir}")


def _open_series(spec: str, dims: str | None):
    """A whole result folder or store opens as its Dataset (its coordinates such as row_time
    kept); a file of one signal, or FILE:VARIABLE, as that signal. Opened lazily: the data are
    only copied, chunk by chunk, when the result is written; the (small) ``row_time``
    coordinate is read now, once."""
    from ionscope import io
    from ionscope.errors import InputError

    path = Path(spec)
    series = None
    if path.is_dir() and dims is None:
        store = path / "result.zarr" if (path / "result.zarr").is_dir() else path
        try:
            series = io.open_dataset(store, lazy=True)
        except InputError:
            pass
    if series is None:
        series = load_input(spec, lazy=True, dims=dims, what="SERIES")
    if "row_time" in series.coords and series["row_time"].chunks is not None:
        series = series.assign_coords(row_time=series["row_time"].load())
    return series
