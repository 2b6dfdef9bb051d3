"""``ionscope run EXPERIMENT.toml``: every step of an experiment file, in order, step by step
resumable.

:func:`run_experiment` validates the whole file first (:func:`~ionscope.pipeline.experiment.
load_experiment`: nothing runs and nothing is written when any part of it is wrong), then runs
each step's command exactly as its command line would (``OUT/STEP`` is what ``--out OUT/STEP``
writes) and records ``OUT/run.json`` after every step: per step its status (``done``,
``failed``, ``pending``), command line, times, and the sha256 of its inputs and of its outputs,
with the experiment file's own sha256. Every result a step writes names the experiment file, its
sha256, the step and its inputs' sha256 in its provenance and summary (``io.experiment_step``).

``resume=True`` continues a run: a step whose record is ``done``, whose inputs and command line
are unchanged and whose outputs still have the recorded checksums is kept; any other (failed,
interrupted, stale, or whose output was changed or truncated since) is redone from scratch.
Without ``resume`` an existing output folder is refused, not overwritten.

Not yet here (issue 18): per-frame checkpoints of steps over a series, the live ``watch`` mode
and the experiment's report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ionscope import io
from ionscope.errors import ConfigError, InputError, IonscopeError
from ionscope.pipeline.experiment import Experiment, ExperimentStep, load_experiment

__all__ = ["run_experiment", "digest", "RUN_RECORD"]

#: The run's record in the output folder.
RUN_RECORD = "run.json"


def digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    h = hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        for folder, dirs, files in sorted(os.walk(path)):
            dirs.sort()
            for name in sorted(files):
                h.update(os.path.relpath(os.path.join(folder, name), path).encode())
                with open(os.path.join(folder, name), "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
    else:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _read_record(path: Path) -> dict[str, Any]:
    """The previous run's record, or an empty one when there is none or it cannot be read (a
    record cut by a crash: every step is then checked again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("steps"), dict) else {}


def _write_record(path: Path, record: dict[str, Any]) -> None:
    io.write_text(path, json.dumps(record, indent=1) + "\n", overwrite=True)


def _kept(previous: dict[str, Any] | None, argv: list[str], inputs: dict[str, str], out: Path) -> bool:
    """Whether a previous step record still holds: done, same command line and inputs, and its
    outputs unchanged."""
    if not previous or previous.get("status") != "done":
        return False
    if previous.get("argv") != argv or previous.get("inputs") != inputs:
        return False
    outputs = previous.get("outputs") or {}
    try:
        return bool(outputs) and all(digest(out / name) == value for name, value in outputs.items())
    except OSError:
        return False


def _run_step(argv: list[str]) -> str | None:
    """Run one command line in this process as the ``ionscope`` entry point would; returns None,
    or the error that stopped it (one line: the run reports it with the step's name)."""
    from ionscope.cli import _command, _one_line
    from ionscope.cli._app import UsageError, discard_created_out_dirs

    try:
        _command().main(args=argv, prog_name="ionscope", standalone_mode=False)
    except IonscopeError as exc:
        discard_created_out_dirs()
        return _one_line(exc)
    except UsageError as exc:
        discard_created_out_dirs()
        return _one_line(exc.format_message())
    return None


def run_experiment(path: str | os.PathLike, *, out: str | os.PathLike | None = None,
                   resume: bool = False) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) the experiment file ``path``.

    Parameters
    ----------
    path : path-like
        The experiment file (TOML; :doc:`/guide/experiments`).
    out : path-like, optional
        Output folder instead of the file's ``[experiment] out``.
    resume : bool
        Continue a run in an existing output folder: keep the steps that are done and unchanged,
        redo the others.

    Returns
    -------
    dict
        The run's record (``OUT/run.json``): ``experiment`` (name, file, sha256), ``out``,
        ``steps`` (per step: ``status``, ``argv``, ``inputs`` and ``outputs`` sha256,
        ``started``, ``finished``, ``run_time_s``, ``kept``), ``status``.

    Raises
    ------
    ConfigError, InputError
        The experiment file is wrong (:func:`load_experiment`), or the output folder exists
        without ``resume`` - nothing is written then.
    IonscopeError
        A step failed: the error names the step and says why; the record says which, and
        ``resume`` continues from it. When the first step fails in a folder this call created, the folder is removed
        (there is nothing to continue from).
    """
    exp: Experiment = load_experiment(path)
    if out is not None:
        exp = Experiment(exp.path, exp.sha256, exp.name, Path(out).absolute(), exp.inputs, exp.steps)
    root = exp.out
    if root.exists() and not resume:
        raise ConfigError(f"the output folder {root} exists; add --resume to continue that run, or give another "
                          "[experiment] out (or --out)")
    if root.exists() and not root.is_dir():
        raise InputError(f"the output folder {root} is a file; give another [experiment] out (or --out)")
    for inp in exp.inputs:
        for p in inp.paths:
            if root == p or root in p.parents or p in root.parents:
                raise ConfigError(f"the output folder {root} and the input {inp.name!r} ({p}) overlap; give another "
                                  "[experiment] out (or --out)")
    record_path = root / RUN_RECORD
    previous = _read_record(record_path).get("steps", {}) if resume else {}
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {root}: {exc.strerror or exc}") from None
    record: dict[str, Any] = {
        "experiment": {"name": exp.name, "file": str(exp.path), "sha256": exp.sha256},
        "out": str(root), "status": "running", "started": _now(),
        "steps": {s.name: {"status": "pending"} for s in exp.steps},
    }
    _write_record(record_path, record)
    for step in exp.steps:
        entry = _one_step(exp, step, previous.get(step.name))
        record["steps"][step.name] = entry
        _write_record(record_path, record)
        if entry["status"] != "done":
            what = f"step {step.name!r} (ionscope {' '.join(step.command)}): {entry['error']}"
            if created and not any(e.get("status") == "done" for e in record["steps"].values()):
                shutil.rmtree(root)  # nothing to continue from: no folder left behind
                raise IonscopeError(f"{what} - nothing was written")
            record["status"] = "failed"
            record["finished"] = _now()
            _write_record(record_path, record)
            raise IonscopeError(f"{what} - the run's record is {record_path}; fix the step and continue with --resume")
    record["status"] = "done"
    record["finished"] = _now()
    _write_record(record_path, record)
    return record


def _one_step(exp: Experiment, step: ExperimentStep, previous: dict[str, Any] | None) -> dict[str, Any]:
    argv = exp.argv(step)
    inputs = {str(p): digest(p) for p in exp.input_paths(step) if p.exists()}
    out = exp.out / step.name
    if _kept(previous, argv, inputs, out):
        return {**previous, "kept": True}
    if out.is_dir():  # a failed, interrupted or stale attempt: redone from scratch
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    started, t0 = _now(), time.perf_counter()
    with io.experiment_step({"experiment": str(exp.path), "experiment_sha256": exp.sha256, "step": step.name,
                             "inputs": inputs}):
        error = _run_step(argv)
    entry: dict[str, Any] = {"status": "done" if error is None else "failed", "argv": argv, "inputs": inputs,
                             "started": started, "finished": _now(), "run_time_s": round(time.perf_counter() - t0, 3),
                             "kept": False}
    if error is not None:
        entry["error"] = error
    else:
        entry["outputs"] = {p.name: digest(p) for p in sorted(out.iterdir())} if out.is_dir() else {}
    return entry
