"""Shared fixtures: small labelled arrays and files written by RosettaSciIO."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import numpy as np
import pytest

from ionscope.data import signal


@pytest.fixture
def series():
    """A (time, y, x) float32 Li-fraction series with calibrated axes."""
    rng = np.random.default_rng(0)
    return signal(
        rng.random((4, 6, 5), dtype=np.float32), ("time", "y", "x"), name="li_fraction", units="1",
        coords={"time": 60.0, "y": 2.5, "x": 2.5}, long_name="Li fraction",
    )


# the interpreter's warning filters, before pytest's per-test capture changes them: an in-process
# run shows warnings on stderr the way the real console script would
_PROCESS_WARNING_FILTERS = list(warnings.filters)


class CliResult(NamedTuple):
    """What a run of the command line gave: ``(returncode, stdout, stderr)``."""

    returncode: int
    stdout: str
    stderr: str


def invoke_cli(*args, cwd=None) -> CliResult:
    """Call :func:`ionscope.cli.main` in this process with ``args`` and return its exit status,
    stdout and stderr, as the console script would give them: ``SystemExit`` becomes the status,
    an exception that escapes ``main`` (``--debug``) is printed as a traceback with status 1, and
    warnings are printed on stderr."""
    from ionscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, {"COLUMNS": "200"}))
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        caught = stack.enter_context(warnings.catch_warnings(record=True))
        warnings.filters[:] = _PROCESS_WARNING_FILTERS
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 1
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def run_cli():
    """Run ``ionscope ARGS...`` in-process (see :func:`invoke_cli`); session-scoped so module
    fixtures can use it too."""
    return invoke_cli


@pytest.fixture(scope="session")
def run_cli_process():
    """Run the real ``ionscope`` console script in a subprocess: for the few tests where the
    process boundary itself is what is checked (entry point, exit status of the binary)."""
    script = shutil.which("ionscope", path=os.path.dirname(sys.executable)) or shutil.which("ionscope")

    def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
        env = dict(os.environ, COLUMNS="200")
        return subprocess.run(
            [script, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
        )

    return run


def pytest_collection_modifyitems(session, config, items):
    """Modules with the most ``slow`` tests first (order within a module kept): with
    ``-n 2 --dist loadfile`` the long modules start early and the two workers finish together
    instead of one of them ending on a demo run alone."""
    def module(item):
        return item.nodeid.split("::", 1)[0]

    weight: dict[str, int] = {}
    for item in items:
        weight[module(item)] = weight.get(module(item), 0) + (item.get_closest_marker("slow") is not None)
    order = {name: i for i, name in enumerate(weight)}
    items.sort(key=lambda item: (-weight[module(item)], order[module(item)]))


# --------------------------------------------------------------------------- real measured files

#: Where real files fetched from the package index are kept between runs (never committed).
REAL_DATA_CACHE = Path(os.environ.get("IONSCOPE_TEST_DATA", Path(__file__).parent / ".real-data"))


def fetch_real_file(requirement: str, member: str) -> Path:
    """A file that a public package ships (e.g. ``fetch_real_file("hyperspy==1.7.6",
    "hyperspy/tests/io/dm4_3D_data/EELS_SI.dm4")``), fetched once with ``pip download`` into
    :data:`REAL_DATA_CACHE` and extracted from the wheel or sdist. Safe under pytest-xdist: every
    step writes to a temporary name and renames into place. ``member`` may name a file inside a
    zip archive the package ships: ``".../fei_emd_files.zip/fei_emd_si.emd"``."""
    import tarfile
    import uuid
    import zipfile

    if ".zip/" in member:  # a file inside a zip inside the package
        outer, inner = member.split(".zip/", 1)
        target = REAL_DATA_CACHE / requirement.replace("==", "-") / f"{outer}.zip.d" / inner
        if not target.exists():
            with zipfile.ZipFile(fetch_real_file(requirement, outer + ".zip")) as z:
                part = target.with_name(f".{target.name}.part-{uuid.uuid4().hex[:8]}")
                target.parent.mkdir(parents=True, exist_ok=True)
                part.write_bytes(z.read(inner))
                os.replace(part, target)
        return target
    target = REAL_DATA_CACHE / requirement.replace("==", "-") / member
    if target.exists():
        return target
    archive = _fetch_archive(requirement, sdist=False)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            if member not in z.namelist():  # test files the wheel leaves out (AFMReader's): the sdist
                archive = _fetch_archive(requirement, sdist=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part-{uuid.uuid4().hex[:8]}")
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            part.write_bytes(z.read(member))
    else:
        with tarfile.open(archive) as t:
            part.write_bytes(t.extractfile(next(m for m in t.getmembers() if m.name.endswith(member))).read())
    os.replace(part, target)
    return target


def _fetch_archive(requirement: str, *, sdist: bool) -> Path:
    """The wheel (or, with ``sdist``, the source distribution) of ``requirement``, downloaded once."""
    import uuid

    archives = REAL_DATA_CACHE / "archives" / (requirement.replace("==", "-") + ("-sdist" if sdist else ""))
    found = sorted(archives.glob("*")) if archives.is_dir() else []
    if not found:
        tmp = archives.with_name(f".{archives.name}.tmp-{uuid.uuid4().hex[:8]}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                        *(["--no-binary", ":all:"] if sdist else []), requirement, "-d", str(tmp)],
                       check=True, capture_output=True)
        with contextlib.suppress(OSError):  # another worker may have won the race
            os.replace(tmp, archives)
        shutil.rmtree(tmp, ignore_errors=True)
        found = sorted(archives.glob("*"))
    return found[0]


@pytest.fixture(scope="session")
def real_file():
    """``real_file(requirement, member)`` -> Path of a real measured file (:func:`fetch_real_file`)."""
    return fetch_real_file


# --------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through selenium (tests/browser.py), one per test process: the reports'
    figures, sliders and scripts checked as a reader's browser runs them. `make test` installs
    Debian's chromium and chromium-driver when they are missing; without them this fails (it does
    not skip)."""
    from browser import start_browser, stop_browser

    driver = start_browser()
    yield driver
    stop_browser(driver)
