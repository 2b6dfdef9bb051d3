"""``ionscope sims``: in-situ TOF-SIMS - Li maps per state of charge, phases, and Li per phase.
The chain is the library function :func:`ionscope.sims.workflow.lithium_states`; this module only
parses options and writes the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import (
    TIMELINE_FIGURE, OutOption, OverwriteOption, TimezoneOption, app, load_cycler_log, options_named, out, start_run,
    write_csv, series_command,
)

sims_app = typer.Typer(
    help="In-situ TOF-SIMS: dead-time corrected, registered Li maps per state of charge; phases; Li per phase.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(sims_app, name="sims")

#: Columns of ``phases.csv`` (:doc:`/cli`) and of ``particles.csv``.
PHASE_COLUMNS = ["phase", "state", "li_mean", "li_err", "li_rel_pristine", "li_rel_pristine_err", "pixels"]
PARTICLE_COLUMNS = ["particle", "phase", "state", "area_px", "centroid_y_nm", "centroid_x_nm", "li_mean", "li_err",
                    "li_rel_pristine", "li_rel_pristine_err"]


def _names(text: Optional[str], option: str) -> Optional[list[str]]:
    from ionscope.errors import ConfigError

    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ConfigError(f"{option} {text!r}: give names separated by commas, e.g. {option} pristine,charge,discharge")
    return names


@sims_app.command("lithium")
@series_command
def sims_lithium(
    spectra: Annotated[list[Path], typer.Argument(metavar="SPECTRA...", help="One file per state of charge, same field of view: imzML (+ .ibd), Tofwerk .h5, or arrays with a mass dim (or an ion dim: ion-image stacks), in state order.")],
    out_dir: OutOption,
    states: Annotated[Optional[str], typer.Option("--states", help="State names, one per file (default: pristine, state1, ...).")] = None,
    pulses: Annotated[Optional[float], typer.Option("--pulses", help="Primary pulses per pixel (scans x shots per pixel): applies the Poisson dead-time correction.")] = None,
    window_u: Annotated[Optional[float], typer.Option("--window-u", help="Full width (u) of every ion's integration window (default 0.02 u after the mass calibration; 0.3 u for unit-mass data).")] = None,
    window_fwhm: Annotated[Optional[float], typer.Option("--window-fwhm", help="Windows of K peak widths instead (FWHM = m / --resolution): they grow with the mass as the peaks do.")] = None,
    resolution: Annotated[Optional[float], typer.Option("--resolution", help="Mass resolving power m/dm (FWHM) for --window-fwhm.")] = None,
    normalise: Annotated[str, typer.Option("--normalise", help="total (the ions other than Li in each pixel), none, or an ion name (e.g. 59Co).")] = "total",
    phases: Annotated[str, typer.Option("--phases", help="auto (Gaussian mixture of the matrix ions), a LABELS_FILE (integer phase map on the first state's grid), or none.")] = "auto",
    ions: Annotated[Optional[str], typer.Option("--ions", help="Further ions (NAME or NAME=MASS_U, comma-separated); for an ion-image stack without ion names, the names of its ions in order.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate", help="Refine each state's mass calibration on the known ions' peaks (sqrt(m) against flight time).")] = True,
    bin_px: Annotated[int, typer.Option("--bin", help="Sum N x N pixels (trades resolution for counts).")] = 1,
    cycler: Annotated[Optional[Path], typer.Option("--cycler", help="Cycler log (.mpr, .mpt, .nda, .ndax, .res, .xlsx, Maccor, CSV): the cell's voltage, current, charge and state at every state's acquisition time (its file's start time); writes timeline.png.")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="ISO 8601 time: the cycler log's zero when the log records none.")] = None,
    timezone: TimezoneOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Li maps per state of charge (dead-time corrected, registered onto the first state), the
    phase map, and the Li of every phase and particle against the state.

    Writes DIR/result.zarr with counts (state, ion, y, x), li and li_error (state, y, x), phase (y,
    x), phase_fraction, per-phase Li and the isotope ratios, all on the first state's grid;
    DIR/phases.csv (phase, state, li_mean, li_err, li_rel_pristine, li_rel_pristine_err, pixels),
    DIR/particles.csv and DIR/summary.json (states, ions and windows, saturation warnings).
    """
    from ionscope import io
    from ionscope.sims.workflow import lithium_states

    elapsed = start_run(out_dir, overwrite, inputs=tuple(spectra) + ((Path(phases),) if phases not in ("auto", "none") else ())
                        + ((cycler,) if cycler is not None else ()))
    io.check_output(out_dir / "phases.csv", overwrite=overwrite)
    io.check_output(out_dir / "particles.csv", overwrite=overwrite)
    if cycler is not None:
        io.check_output(out_dir / TIMELINE_FIGURE, overwrite=overwrite)
    log = load_cycler_log(cycler, timezone) if cycler is not None else None
    with options_named(window_u="--window-u", window_fwhm="--window-fwhm", bin_px="--bin"):
        result, phase_rows, particle_rows, summary = lithium_states(
            [str(s) for s in spectra], states=_names(states, "--states"), pulses=pulses, window_u=window_u,
            window_fwhm=window_fwhm, resolution=resolution,
            normalise=normalise, phases=phases, ions=_names(ions, "--ions"), calibrate=calibrate, bin_px=bin_px,
            cycler=log, start=start, timezone=timezone,
        )
    summary = {"command": "sims lithium", "inputs": [str(s) for s in spectra], **summary, "run_time_s": elapsed()}
    write_csv(out_dir / "phases.csv", phase_rows, PHASE_COLUMNS, overwrite=overwrite)
    write_csv(out_dir / "particles.csv", particle_rows, PARTICLE_COLUMNS, overwrite=overwrite)
    if log is not None:
        from ionscope.report.figures import figure_to_png
        from ionscope.report.timeline_figures import timeline_figure

        io.write_bytes(out_dir / TIMELINE_FIGURE, figure_to_png(timeline_figure(log, result)), overwrite=overwrite)
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"{len(summary['states'])} states, {len(summary['ions'])} ions, phases: "
              f"{', '.join(summary['phases']) or 'none'}; wrote {out_dir}")
