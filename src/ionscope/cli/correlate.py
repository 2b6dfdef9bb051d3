"""``ionscope correlate``: a KPFM result registered onto a TOF-SIMS result, and their changes
correlated particle by particle. The chain is :func:`ionscope.correlate.workflow.correlate_results`;
this module only parses options and writes the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import OutOption, OverwriteOption, app, input_role, options_named, out, parse_point, start_run, write_csv

#: Columns of ``correlation.csv``.
COLUMNS = ["particle", "phase", "pair", "frames", "states", "dV_mV", "dV_err_mV", "dLi_rel", "dLi_rel_err", "pixels"]


@app.command("correlate")
def correlate(
    kpfm_result: Annotated[Path, typer.Argument(metavar="KPFM_RESULT", help="A 'kpfm process' result folder.")],
    sims_result: Annotated[Path, typer.Argument(metavar="SIMS_RESULT", help="A 'sims lithium' result folder.")],
    out_dir: OutOption,
    init_rotation: Annotated[float, typer.Option("--init-rotation", help="Start of the registration: the KPFM field's rotation on the TOF-SIMS grid (degrees, counter-clockwise as displayed).")] = 0.0,
    init_shift: Annotated[Optional[str], typer.Option("--init-shift", help="Start of the registration: its shift Y,X (nm; default: the KPFM field's centre on the TOF-SIMS field's centre).")] = None,
    pairs: Annotated[Optional[str], typer.Option("--pairs", help="FRAME:STATE,... (frame labels such as '540 s' or indices; state names or indices); default: by the cell's charge when both results carry the timeline (--cycler on kpfm process and sims lithium), else the first frame with the first state and the last frame with the second.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """KPFM potential on the TOF-SIMS grid (mutual-information registration) and the per-particle
    correlation of potential change with Li change.

    Writes DIR/result.zarr with potential_on_sims (time, y, x; V, NaN outside the KPFM field) and
    the per-particle changes; DIR/correlation.csv (per particle and state pair: dV_mV, dV_err_mV,
    dLi_rel, dLi_rel_err, pixels); DIR/summary.json with rotation_deg, shift_y_nm, shift_x_nm,
    metric and pearson_r with its bootstrap interval.
    """
    from ionscope import io
    from ionscope.correlate.workflow import correlate_results
    from ionscope.report.correlate_figures import correlation_figure
    from ionscope.report.figures import figure_to_png

    elapsed = start_run(out_dir, overwrite, inputs=(kpfm_result, sims_result))
    for name in ("correlation.csv", "correlation.png"):
        io.check_output(out_dir / name, overwrite=overwrite)
    with input_role("KPFM_RESULT"):
        kpfm = io.open_dataset(kpfm_result)
    with input_role("SIMS_RESULT"):
        sims = io.open_dataset(sims_result)
    shift = parse_point(init_shift, "--init-shift", "nm") if init_shift is not None else None
    with options_named(init_rotation_deg="--init-rotation", init_shift_nm="--init-shift"):
        result, rows, summary = correlate_results(kpfm, sims, init_rotation_deg=init_rotation, init_shift_nm=shift,
                                                  pairs=pairs)
    summary = {"command": "correlate", "inputs": [str(kpfm_result), str(sims_result)], **summary,
               "run_time_s": elapsed()}
    first = [r for r in rows if r["particle"] is not None and r["pair"] == 0]
    fig = correlation_figure([r["dV_mV"] for r in first], [r["dLi_rel"] for r in first], r=summary["pearson_r"],
                             ci=(summary["pearson"]["ci_low"], summary["pearson"]["ci_high"]),
                             labels=[r["particle"] for r in first], title=first[0]["frames"] + " | " + first[0]["states"]
                             if first else "")
    write_csv(out_dir / "correlation.csv", rows, COLUMNS, overwrite=overwrite)
    io.write_bytes(out_dir / "correlation.png", figure_to_png(fig), overwrite=overwrite)
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"rotation {summary['rotation_deg']:.3f} deg, shift {summary['shift_y_nm']:.1f}, {summary['shift_x_nm']:.1f} nm; "
              f"r = {summary['pearson_r']:.2f} over {summary['particles_correlated']} particles; wrote {out_dir}")
