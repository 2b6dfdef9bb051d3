"""``ionscope run``: a whole experiment from its TOML file (:func:`ionscope.pipeline.run.run_experiment`);
this module only parses options and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import app, out, progress_bar, series_command


@app.command("run")
@series_command
def run(
    experiment: Annotated[Path, typer.Argument(metavar="EXPERIMENT", help="The experiment file (TOML: [experiment], [[inputs]], [[steps]]; paths relative to it).")],
    resume: Annotated[bool, typer.Option("--resume", help="Continue a run in its existing output folder: keep the steps that are done and unchanged, redo the others.")] = False,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder instead of the file's [experiment] out.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Frames of a series run in this many processes at once.")] = 1,
) -> None:
    """Every step of an experiment file, in order: OUT/STEP as each command's --out writes it, and OUT/run.json.

    A step over a series of files runs frame by frame, each frame a checkpoint (OUT/.frames/STEP);
    --resume continues a run that stopped or was killed, with the same results.

    Writes OUT/STEP/result.zarr and OUT/STEP/summary.json per step, OUT/run.json (status, times and
    checksums per step and frame) and OUT/report.html.
    """
    from ionscope.pipeline.run import run_experiment

    with progress_bar("run") as update:
        record = run_experiment(experiment, out=out_dir, resume=resume, jobs=jobs,
                                progress=lambda step, done, total: update(done, total))
    for name, step in record["steps"].items():
        frames = step.get("frames")
        what = f"{len(frames)} frames ({sum(f.get('kept', False) for f in frames)} kept)" if frames else (
            "kept" if step.get("kept") else "done")
        out.print(f"step {name}: {what}, {step.get('run_time_s', 0.0):.1f} s", markup=False)
    kept = sum(1 for s in record["steps"].values() if s.get("kept"))
    out.print(f"{len(record['steps'])} step(s) done ({kept} kept from the last run); wrote {record['out']}")


@app.command("watch")
@series_command
def watch(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="The folder the instrument writes the live input's files into.")],
    config: Annotated[Path, typer.Option("--config", help="The experiment file (as for ionscope run); one input's files land in FOLDER.")],
    input_name: Annotated[Optional[str], typer.Option("--input", help="The live input's name (default: the experiment's only input given as a glob).")] = None,
    serve: Annotated[Optional[int], typer.Option("--serve", min=0, max=65535, help="Serve the output folder on 127.0.0.1 at this port (0: a free one); the report reloads itself.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder instead of the file's [experiment] out (an existing one is continued).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Frames that arrive together run in this many processes.")] = 1,
    settle: Annotated[float, typer.Option("--settle", min=0.01, help="Seconds a file must stay unchanged to count as complete.")] = 0.3,
    idle_exit: Annotated[Optional[float], typer.Option("--idle-exit", min=0.01, help="End after this many seconds without a new file (default: until Ctrl-C).")] = None,
) -> None:
    """Run an experiment live: every new file in FOLDER is processed as it is complete, with run's checkpoints, and OUT/report.html updated.

    Steps over the live input run frame by frame as the files arrive; steps over a whole earlier
    result run when the session ends (--idle-exit, or Ctrl-C). `ionscope run --resume` continues
    from the same checkpoints."""
    from ionscope.pipeline.watch import watch as watch_folder

    record = watch_folder(folder, config, input=input_name, out=out_dir, serve=serve, jobs=jobs, settle_s=settle,
                          idle_exit_s=idle_exit, say=lambda line: out.print(line, markup=False))
    out.print(f"{len(record['steps'])} step(s) {record['status']}; wrote {record['out']}")
