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

A step whose input is a series of files and whose command reads one file runs once per file
(frame, in acquisition order: :mod:`ionscope.pipeline.series`), each frame a checkpoint of its own
in ``OUT/.frames/STEP/FILE-HASH`` recorded in ``run.json`` (``frames``: file, status, times, checksums)
as soon as it is done; the frames' results are then stacked along ``time`` into ``OUT/STEP``. A
run killed at any moment continues with ``resume`` from the frames that are done, redoing a frame
whose checkpoint is missing, cut, damaged or stale (its file or the step's options changed), and
gives the same result as a run that was never interrupted. ``jobs`` runs frames in parallel
processes. ``OUT/report.html`` (:func:`ionscope.report.experiment.experiment_report`) is written
when the run ends, finished or not.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io as io_module
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import xarray as xr

from ionscope import io
from ionscope.data import file_sha256 as digest
from ionscope.errors import ConfigError, InputError, IonscopeError
from ionscope.pipeline.experiment import Experiment, ExperimentStep, load_experiment, takes_series
from ionscope.pipeline.series import combine_frames, frame_summary, header_start, order_series
from ionscope.report.experiment import experiment_report

__all__ = ["run_experiment", "Session", "frame_folder", "RUN_RECORD", "CHECKPOINTS"]

#: The run's record in the output folder.
RUN_RECORD = "run.json"
#: The folder (in the output folder) of the per-frame checkpoints, one sub-folder per step.
CHECKPOINTS = ".frames"


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


def _kept(previous: dict[str, Any] | None, argv: list[str], inputs: dict[str, str], out: Path,
          calibration: dict[str, Any] | None = None) -> bool:
    """Whether a previous step record still holds: done, same command line, inputs and input
    calibration, and its outputs unchanged."""
    if not previous or previous.get("status") != "done":
        return False
    if (previous.get("argv") != argv or previous.get("inputs") != inputs
            or (previous.get("calibration") or {}) != (calibration or {})):
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
                   resume: bool = False, jobs: int = 1,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) the experiment file ``path``.

    Parameters
    ----------
    path : path-like
        The experiment file (TOML; :doc:`/guide/experiments`).
    out : path-like, optional
        Output folder instead of the file's ``[experiment] out``.
    resume : bool
        Continue a run in an existing output folder: keep the steps and frames that are done and
        unchanged, redo the others.
    jobs : int
        Frames of a series run in this many processes at once (1: in this process).
    progress : callable, optional
        Called as ``progress(step, done, total)`` as the frames of a step over a series are done.

    Returns
    -------
    dict
        The run's record (``OUT/run.json``): ``experiment`` (name, file, sha256), ``out``,
        ``steps`` (per step: ``status``, ``argv``, ``inputs`` and ``outputs`` sha256,
        ``started``, ``finished``, ``run_time_s``, ``kept``; a step run frame by frame also
        ``frames``, each with ``file``, ``start``, ``status``, ``inputs``, ``outputs``, times and
        ``kept``), ``status``.

    Raises
    ------
    ConfigError, InputError
        The experiment file is wrong (:func:`load_experiment`), ``jobs`` is not a positive
        number, or the output folder exists without ``resume`` - nothing is written then.
    IonscopeError
        A step failed: the error names the step (and frame) and says why; the record says which,
        and ``resume`` continues from it. When the first step fails in a folder this call created,
        the folder is removed (there is nothing to continue from).
    """
    check_jobs(jobs)
    exp = with_out(load_experiment(path), out)
    root = exp.out
    if root.exists() and not resume:
        raise ConfigError(f"the output folder {root} exists; add --resume to continue that run, or give another "
                          "[experiment] out (or --out)")
    created = not root.exists()
    session = Session(exp, jobs=jobs, resume=resume, progress=progress)
    try:
        return session.run()
    except IonscopeError:
        if created and not anything_done(session.record):
            shutil.rmtree(root, ignore_errors=True)  # nothing to continue from: no folder left behind
        raise
    finally:
        if (root / RUN_RECORD).is_file():  # the experiment's report, whether the run finished or not
            experiment_report(root)


def check_jobs(jobs: Any) -> int:
    """``jobs`` when it is a whole number >= 1."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a whole number >= 1, not {jobs!r}")
    return jobs


def with_out(exp: Experiment, out: str | os.PathLike | None) -> Experiment:
    """The experiment with its output folder replaced by ``out`` (absolute) when given."""
    return exp if out is None else dataclasses.replace(exp, out=Path(out).absolute())


class Session:
    """One run (or a live session) of an experiment in its output folder: the run's record and
    what is worth keeping between calls of :meth:`run` (the input files' sha256, the frames'
    results already read).

    Parameters
    ----------
    exp : Experiment
        The validated experiment (its output folder may exist: it is then continued).
    jobs : int
        Processes for the frames of a series.
    resume : bool
        Keep what an earlier run recorded as done and unchanged.
    progress : callable, optional
        ``progress(step, done, total)`` as the frames of a series are done.
    live : bool
        A live session (``ionscope watch``): a frame that fails is left out of its step's
        series (said in ``failed_frames``; the step's recorded inputs are the frames it holds, so
        a later run tries the failed ones again) instead of failing the step.
    """

    def __init__(self, exp: Experiment, *, jobs: int = 1, resume: bool = False, live: bool = False,
                 progress: Callable[[str, int, int], None] | None = None):
        root = exp.out
        if root.exists() and not root.is_dir():
            raise InputError(f"the output folder {root} is a file; give another [experiment] out (or --out)")
        for inp in exp.inputs:
            for p in inp.paths:
                if root == p or root in p.parents or p in root.parents:
                    raise ConfigError(f"the output folder {root} and the input {inp.name!r} ({p}) overlap; give "
                                      "another [experiment] out (or --out)")
        self.exp, self.jobs, self.live = exp, jobs, live
        self.progress = progress or (lambda step, done, total: None)
        self.record_path = root / RUN_RECORD
        self.previous = _read_record(self.record_path).get("steps", {}) if resume else {}
        self.record: dict[str, Any] = {
            "experiment": {"name": exp.name, "file": str(exp.path), "sha256": exp.sha256},
            "out": str(root), "status": "running", "started": _now(),
            "steps": {s.name: {"status": "pending"} for s in exp.steps},
        }
        self.digests: dict[str, tuple[tuple[int, int], str]] = {}
        self.starts: dict[tuple[str, int, int], dt.datetime | None] = {}
        self.frame_results: dict[str, tuple[dict[str, str], xr.Dataset]] = {}
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output folder {root}: {exc.strerror or exc}") from None
        _write_record(self.record_path, self.record)

    def digest(self, path: Path) -> str:
        """sha256 of an input file, computed again only when its size or time changed."""
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        known = self.digests.get(str(path))
        if known is None or known[0] != key:
            known = self.digests[str(path)] = (key, digest(path))
        return known[1]

    def start(self, path: Path) -> dt.datetime | None:
        """A file's acquisition start (:func:`~ionscope.pipeline.series.header_start`), read
        again only when the file changed."""
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self.starts:
            self.starts[key] = header_start(path)
        return self.starts[key]

    def save(self, name: str, entry: dict[str, Any]) -> None:
        """Record a step's entry in ``run.json`` (atomically)."""
        self.record["steps"][name] = entry
        _write_record(self.record_path, self.record)

    def run(self, exp: Experiment | None = None, *, steps: set[str] | None = None, final: bool = True
            ) -> dict[str, Any]:
        """Run the steps (all, or those named in ``steps``) of ``exp`` (the session's experiment,
        or the same one with other files in a live input), each kept when done and unchanged.
        ``final``: the record's status becomes ``done`` (else it stays ``running``)."""
        exp = self.exp if exp is None else exp
        for step in exp.steps:
            if steps is not None and step.name not in steps:
                continue
            previous = self.record["steps"].get(step.name)
            if not previous or previous.get("status") == "pending":
                previous = self.previous.get(step.name)
            entry = self._one_step(exp, step, previous)
            self.save(step.name, entry)
            if entry["status"] != "done":
                what = f"step {step.name!r} (ionscope {' '.join(step.command)}): {entry['error']}"
                self.record.update(status="failed", finished=_now())
                _write_record(self.record_path, self.record)
                if not anything_done(self.record):
                    raise IonscopeError(f"{what} - nothing was written")
                raise IonscopeError(f"{what} - the run's record is {self.record_path}; fix the step and continue "
                                    "with --resume")
        self.record["status"] = "done" if final else "running"
        if final:
            self.record["finished"] = _now()
        _write_record(self.record_path, self.record)
        return self.record

    def _one_step(self, exp: Experiment, step: ExperimentStep, previous: dict[str, Any] | None) -> dict[str, Any]:
        argv = exp.argv(step)
        inputs = {str(p): self.digest(p) for p in exp.input_paths(step) if p.exists()}
        calibration = _calibration(exp, step)
        out = exp.out / step.name
        if _kept(previous, argv, inputs, out, calibration):
            return {**previous, "kept": True}
        _clear(out)
        inp = exp.input_of(step)
        if inp is not None and len(inp.paths) > 1 and not takes_series(step.command):
            return self._series_step(exp, step, previous, argv, inputs, calibration)
        started, t0 = _now(), time.perf_counter()
        with io.experiment_step(_context(exp, step, inputs, calibration)):
            error = _run_step(argv)
        entry: dict[str, Any] = {"status": "done" if error is None else "failed", "argv": argv, "inputs": inputs,
                                 "calibration": calibration, "started": started, "finished": _now(),
                                 "run_time_s": round(time.perf_counter() - t0, 3), "kept": False}
        if error is not None:
            entry["error"] = error
        else:
            entry["outputs"] = _outputs(out)
        return entry

    def _series_step(self, exp: Experiment, step: ExperimentStep, previous: dict[str, Any] | None,
                     argv: list[str], inputs: dict[str, str], calibration: dict[str, Any]) -> dict[str, Any]:
        """A step over a series of files, one frame (file) at a time, each a checkpoint; then the
        frames' results stacked into ``OUT/STEP``."""
        inp = exp.input_of(step)
        started, t0 = _now(), time.perf_counter()
        files, starts, order = order_series(inp.paths, self.start)
        entry: dict[str, Any] = {"status": "running", "argv": argv, "inputs": inputs, "calibration": calibration,
                                 "started": started, "series_order": order, "kept": False, "frames": []}
        before = {f.get("file"): f for f in (previous or {}).get("frames", []) if isinstance(f, dict)}
        checkpoints = exp.out / CHECKPOINTS / step.name
        todo = []
        for k, (path, start) in enumerate(zip(files, starts)):
            fout = checkpoints / frame_folder(path)
            frame_argv = exp.argv(step, paths=[path], out=fout, frame=True)
            frame_inputs = {str(path): inputs[str(path)]}
            prev = before.get(str(path))
            if prev is not None and prev.get("out") == str(fout) and self._frame_kept(prev, frame_argv, frame_inputs,
                                                                                     calibration):
                entry["frames"].append({**prev, "start": start, "kept": True})
                continue
            entry["frames"].append({"file": str(path), "start": start, "out": str(fout), "status": "pending",
                                    "argv": frame_argv, "inputs": frame_inputs, "calibration": calibration,
                                    "kept": False})
            todo.append(k)
        if inp.cycler is not None and any(s is None for s in starts):
            missing = next(str(f) for f, s in zip(files, starts) if s is None)
            return {**entry, "status": "failed", "finished": _now(),
                    "error": f"{missing} has no acquisition time in its header; the cell's state at each frame needs "
                             f"every frame's start (drop the cycler of input {inp.name!r}, or give files whose "
                             "headers hold it)"}
        self.save(step.name, entry)
        checkpoints.mkdir(parents=True, exist_ok=True)
        total, done = len(files), len(files) - len(todo)
        self.progress(step.name, done, total)
        for k, frame in _run_frames(entry["frames"], todo, _context(exp, step, inputs, calibration), self.jobs):
            entry["frames"][k] = frame
            self.save(step.name, entry)
            done += 1
            self.progress(step.name, done, total)
        failed = [f for f in entry["frames"] if f["status"] != "done"]
        error = None
        if failed and not (self.live and len(failed) < len(entry["frames"])):
            more = f" (and {len(failed) - 1} more frame(s))" if len(failed) > 1 else ""
            error = f"frame {failed[0]['file']}: {failed[0].get('error', 'not run')}{more}"
        else:
            held = [k for k, f in enumerate(entry["frames"]) if f["status"] == "done"]
            if failed:  # live: the series holds the frames that worked; a later run retries the others
                entry["failed_frames"] = {f["file"]: f.get("error", "") for f in failed}
                entry["inputs"] = inputs = {files_k: inputs[files_k] for files_k in (str(files[k]) for k in held)}
            try:
                done = [entry["frames"][k] for k in held]
                results = [self._frame_result(f) for f in done]
                summaries = [json.loads((Path(f["out"]) / "summary.json").read_text()) for f in done]
                held_files, held_starts = [files[k] for k in held], [starts[k] for k in held]
                with io.experiment_step(_context(exp, step, inputs, calibration)):
                    series = combine_frames(results, held_starts, files=held_files, cycler=inp.cycler, start=inp.start)
                    summary = {"command": " ".join(step.command),
                               **frame_summary(summaries, held_files, held_starts, order)}
                    io.write_result(exp.out / step.name, series, summary)
            except IonscopeError as exc:
                from ionscope.cli import _one_line

                _clear(exp.out / step.name)
                error = _one_line(exc)
        entry.update(status="done" if error is None else "failed", finished=_now(),
                     run_time_s=round(time.perf_counter() - t0, 3))
        if error is None:
            entry["outputs"] = _outputs(exp.out / step.name)
        else:
            entry["error"] = error
        return entry

    def _frame_kept(self, previous: dict[str, Any], argv: list[str], inputs: dict[str, str],
                    calibration: dict[str, Any]) -> bool:
        """Whether a frame's checkpoint holds (as :func:`_kept`; a checkpoint read in this session
        and unchanged since is not read again)."""
        out = Path(previous["out"])
        cached = self.frame_results.get(str(out))
        if (cached is not None and previous.get("status") == "done" and cached[0] == previous.get("outputs")
                and previous.get("argv") == argv and previous.get("inputs") == inputs
                and (previous.get("calibration") or {}) == calibration):
            return True
        return _kept(previous, argv, inputs, out, calibration)

    def _frame_result(self, frame: dict[str, Any]) -> xr.Dataset:
        """A frame's result, read once per session (its checksums recorded when it was made)."""
        out = frame["out"]
        cached = self.frame_results.get(out)
        if cached is None or cached[0] != frame["outputs"]:
            cached = self.frame_results[out] = (frame["outputs"], io.open_dataset(Path(out) / "result.zarr").load())
        return cached[1]


def frame_folder(path: Path) -> str:
    """The checkpoint folder of one frame: its file's name and a short hash of its full path
    (stable however many frames come before it)."""
    return f"{Path(path).stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def anything_done(record: dict[str, Any]) -> bool:
    """Whether a step or a frame of the run is done (then its folder is kept to resume from)."""
    return any(e.get("status") == "done" or any(f.get("status") == "done" for f in e.get("frames", []))
               for e in record["steps"].values())


def _calibration(exp: Experiment, step: ExperimentStep) -> dict[str, Any]:
    """The calibration the experiment file gives the step's input (``pixel_size_nm``,
    ``beam_energy_kV``), or an empty dict."""
    inp = exp.input_of(step)
    return dict(inp.calibration) if inp is not None else {}


def _context(exp: Experiment, step: ExperimentStep, inputs: dict[str, str],
             calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """What every result of a step records of the experiment (:func:`io.experiment_step`), with
    the calibration of its input files (applied when they are read)."""
    context = {"experiment": str(exp.path), "experiment_sha256": exp.sha256, "step": step.name, "inputs": inputs}
    if calibration:
        context["calibration"] = {path: calibration for path in inputs}
    return context


def _clear(out: Path) -> None:
    """Remove a failed, interrupted or stale attempt (it is redone from scratch)."""
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists() or out.is_symlink():
        out.unlink()


def _outputs(out: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(out.iterdir())} if out.is_dir() else {}



def _run_frame(frame: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """One frame: its command line into its own checkpoint folder (in this or a worker process)."""
    out = Path(frame["out"])
    _clear(out)
    started, t0 = _now(), time.perf_counter()
    frame_context = {**context, "inputs": frame["inputs"]}
    if "calibration" in context:
        frame_context["calibration"] = {path: context["calibration"][path] for path in frame["inputs"]}
    with io.experiment_step(frame_context), \
            contextlib.redirect_stdout(io_module.StringIO()):  # the record says what each frame did
        error = _run_step(frame["argv"])
    done = {**frame, "status": "done" if error is None else "failed", "started": started, "finished": _now(),
            "run_time_s": round(time.perf_counter() - t0, 3)}
    if error is None:
        done["outputs"] = _outputs(out)
    else:
        done["error"] = error
    return done


def _run_frames(frames: list[dict[str, Any]], todo: list[int], context: dict[str, Any],
                jobs: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run the frames ``todo``, yielding each as it is done: in order in this process, or in
    ``jobs`` worker processes (each frame's result does not depend on where it ran)."""
    if jobs == 1 or len(todo) < 2:
        for k in todo:
            yield k, _run_frame(frames[k], context)
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                                mp_context=multiprocessing.get_context("forkserver")) as pool:
        futures = {pool.submit(_run_frame, frames[k], context): k for k in todo}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()
