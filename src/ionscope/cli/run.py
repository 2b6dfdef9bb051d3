"""``ionscope run``: a whole experiment from its TOML file (:func:`ionscope.pipeline.run.run_experiment`);
this module only parses options and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import app, out


@app.command("run")
def run(
    experiment: Annotated[Path, typer.Argument(metavar="EXPERIMENT", help="The experiment file (TOML: [experiment], [[inputs]], [[steps]]; paths relative to it).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue a run in its existing output folder: keep the steps that are done and unchanged, redo the others.")] = False,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder instead of the file's [experiment] out.")] = None,
) -> None:
    """Every step of an experiment file, in order: OUT/STEP as each command's --out writes it, and OUT/run.json.

    Writes OUT/STEP/result.zarr and OUT/STEP/summary.json per step, OUT/run.json (status, times and
    checksums per step and frame) and OUT/report.html.
    """
    from ionscope.pipeline.run import run_experiment

    record = run_experiment(experiment, out=out_dir, resume=resume)
    kept = sum(1 for s in record["steps"].values() if s.get("kept"))
    out.print(f"{len(record['steps'])} step(s) done ({kept} kept from the last run); wrote {record['out']}")
