"""``ionscope watch FOLDER --config EXPERIMENT.toml``: an experiment run live, frame by frame, as
the instrument writes its files.

The experiment file is the one ``ionscope run`` takes; one of its inputs is *live*: its files land
in FOLDER while the session runs (``--input``, or the experiment's only input given as a glob; its
file pattern is looked for in FOLDER). Every new file is processed as soon as it is complete -
its size and time unchanged for ``settle_s`` and the file readable (a file still being written is
waited for, never read half-done) - in acquisition order, by the steps that read the live input,
with the same per-frame checkpoints as ``run`` (:class:`~ionscope.pipeline.run.Session`), so a
session stopped at any moment continues with ``watch`` or ``run --resume``. After every new frame
the experiment's report (``OUT/report.html``) is written again and ``OUT/report.version`` counts
the updates; with ``serve`` the output folder is served on 127.0.0.1 and the report reloads
itself when that count changes. Steps that read an earlier step's whole series (e.g. space-time
denoising) run when the session ends (``idle_exit_s`` without a new file, or Ctrl-C).
"""

from __future__ import annotations

import functools
import glob
import http.server
import json
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ionscope import io
from ionscope.errors import ConfigError, InputError, IonscopeError
from ionscope.pipeline.experiment import load_experiment
from ionscope.pipeline.run import Session, anything_done, check_jobs, with_out

__all__ = ["watch", "ReadyFiles", "REPORT_VERSION"]

#: Counts the report's updates (JSON: ``version``, ``frames``, ``time``): the served report
#: polls it and reloads when it changes.
REPORT_VERSION = "report.version"


class ReadyFiles:
    """The files matching a pattern that are complete: size and modification time unchanged for
    ``settle_s`` seconds and the file opens (a file still being written is not returned; one that
    stays unreadable for ``give_up_s`` is returned anyway, so its frame fails with the reader's
    message instead of being waited for forever).

    Parameters
    ----------
    pattern : str
        A glob (absolute).
    settle_s : float
        Seconds a file must stay unchanged.
    give_up_s : float
        Seconds an unchanged file may stay unreadable before it is passed on.
    """

    def __init__(self, pattern: str, *, settle_s: float = 0.3, give_up_s: float = 30.0):
        self.pattern, self.settle_s, self.give_up_s = pattern, settle_s, give_up_s
        self._seen: dict[str, tuple[tuple[int, int], float]] = {}
        self.ready: list[Path] = []

    def poll(self, now: float | None = None) -> list[Path]:
        """The files that became complete since the last call (in name order)."""
        now = time.time() if now is None else now
        done = {str(p) for p in self.ready}
        new = []
        for name in sorted(glob.glob(self.pattern)):
            if name in done:
                continue
            try:
                st = os.stat(name)
            except OSError:  # gone again (a writer's temporary file)
                continue
            key = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is None or seen[0] != key:
                self._seen[name] = (key, now)
                continue
            quiet = now - max(st.st_mtime, seen[1])
            if st.st_size == 0 or quiet < self.settle_s:
                continue
            if not _readable(Path(name)) and now - seen[1] < self.give_up_s:
                continue
            new.append(Path(name))
        self.ready += new
        return new


def _readable(path: Path) -> bool:
    """Whether the file opens and its last element reads (a file cut short fails that check)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            io.open_dataset(path)
        return True
    except IonscopeError:
        return False


class _Server:
    """The output folder served on 127.0.0.1 (a thread), quietly and never from a cache."""

    def __init__(self, root: Path, port: int):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def end_headers(self):
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, *args):
                pass

        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                         functools.partial(Handler, directory=str(root)))
        except OSError as exc:
            raise InputError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}; give another --serve "
                             "port (0 picks a free one)") from None
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def watch(folder: str | os.PathLike, config: str | os.PathLike, *, input: str | None = None,
          out: str | os.PathLike | None = None, serve: int | None = None, jobs: int = 1,
          poll_s: float = 0.1, settle_s: float = 0.3, idle_exit_s: float | None = None,
          say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run an experiment live on the files that land in ``folder``.

    Parameters
    ----------
    folder : path-like
        Where the live input's files land.
    config : path-like
        The experiment file (as for ``ionscope run``).
    input : str, optional
        The live input's name (default: the experiment's only input given as a glob).
    out : path-like, optional
        Output folder instead of the file's ``[experiment] out``. An existing one is continued
        (its checkpoints are kept).
    serve : int, optional
        Serve the output folder on 127.0.0.1 at this port (0: a free one) while watching.
    jobs : int
        Processes for frames that arrive together.
    poll_s, settle_s : float
        How often the folder is looked at, and how long (s) a file must stay unchanged to count
        as complete.
    idle_exit_s : float, optional
        End the session after this many seconds without a new file (default: run until
        interrupted, e.g. Ctrl-C).
    say : callable, optional
        Called with one line per event (frame done, report written, URL served).

    Returns
    -------
    dict
        The run's record (``OUT/run.json``) when the session ended.

    Raises
    ------
    ConfigError, InputError
        A wrong experiment file, folder, live input or port (nothing written then).
    """
    say = say or (lambda line: None)
    check_jobs(jobs)
    for name, value in (("poll_s", poll_s), ("settle_s", settle_s)):
        if not value > 0:
            raise ConfigError(f"{name} must be > 0 s, not {value!r}")
    if idle_exit_s is not None and not idle_exit_s > 0:
        raise ConfigError(f"--idle-exit must be > 0 s, not {idle_exit_s!r}")
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder the instrument writes its files into")
    exp = with_out(load_experiment(config, live=input or True), out)
    root = exp.out
    if root == folder or folder in root.parents or root in folder.parents:
        raise ConfigError(f"the output folder {root} and the watched folder {folder} overlap; give another "
                          "[experiment] out (or --out)")
    created = not root.exists()
    name = exp.live
    live = next(i for i in exp.inputs if i.name == name)
    files = ReadyFiles(str(folder / Path(live.pattern).name), settle_s=settle_s)
    live_steps = {s.name for s in exp.steps if s.input == name}
    session = Session(exp.with_files(name, ()), jobs=jobs, resume=True, live=True)
    _warm_up(exp, live_steps)
    server = _Server(exp.out, serve) if serve is not None else None
    if server is not None:
        say(f"serving the report at http://127.0.0.1:{server.port}/report.html")
    current = session.exp
    version = 0
    last = time.monotonic()
    try:
        while True:
            new = files.poll()
            if new:
                current = exp.with_files(name, files.ready)
                t0 = time.perf_counter()
                try:
                    session.run(current, steps=live_steps, final=False)
                    failed = _failed_frames(session.record, new)
                except IonscopeError as exc:
                    failed = {str(p): str(exc) for p in new}
                version += 1
                _write_report(exp.out, version, len(files.ready), live=server is not None)
                for path, why in failed.items():
                    say(f"frame {Path(path).name} failed (left out; fix the file and it is tried again): {why}")
                say(f"{len(files.ready)} frame(s): {', '.join(p.name for p in new)} in "
                    f"{time.perf_counter() - t0:.2f} s; report updated")
                last = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        say("interrupted: finishing the steps over the whole series")
    try:
        if not files.ready:
            raise InputError(f"no file matching {Path(live.pattern).name!r} arrived in {folder}; check the folder and "
                             f"the path of input {name!r}")
        record = session.run(current)
        version += 1
        _write_report(exp.out, version, len(files.ready), live=False)
    except IonscopeError:
        if created and not anything_done(session.record):
            shutil.rmtree(root, ignore_errors=True)  # nothing came of the session: nothing left behind
        raise
    finally:
        if server is not None:
            server.close()
    return record


#: The technique package behind a command module of ionscope.cli, where the names differ.
_PACKAGES = {"holo": "holography", "motion": "transport", "superres": "denoise", "core": None, "run": None}


def _warm_up(exp: Any, steps: set[str]) -> None:
    """Import what the live steps' commands and the report import on first use, so that the
    first frame is not slower than the others (seconds of imports otherwise)."""
    import importlib

    from ionscope.pipeline.experiment import _commands

    commands = _commands()
    for step in exp.steps:
        if step.name not in steps:
            continue
        module = commands[step.command].callback.__module__.rsplit(".", 1)[-1]
        package = _PACKAGES.get(module, module)
        if package:
            importlib.import_module(f"ionscope.{package}")
    importlib.import_module("ionscope.report.experiment")


def _failed_frames(record: dict[str, Any], new: list[Path]) -> dict[str, str]:
    """The frames among ``new`` that a step of the live session left out, with why."""
    names = {str(p) for p in new}
    return {file: why for entry in record["steps"].values()
            for file, why in (entry.get("failed_frames") or {}).items() if file in names}


def _write_report(out: Path, version: int, frames: int, *, live: bool) -> None:
    """The experiment's report, then its version (what the served page polls)."""
    from ionscope.report.experiment import experiment_report

    experiment_report(out, live=live)
    io.write_text(out / REPORT_VERSION, json.dumps({"version": version, "frames": frames, "time": time.time()}),
                  overwrite=True)

