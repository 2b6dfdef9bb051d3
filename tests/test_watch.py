"""``ionscope watch FOLDER --config EXPERIMENT.toml``: frames processed as they land (a file still
being written is waited for), the report written after each and served on 127.0.0.1, the steps
over the whole series run at the end - with the same results as ``ionscope run`` on the files."""

from __future__ import annotations

import json
import shutil
import textwrap
import threading
import time
import urllib.request

import numpy as np
import pytest
from test_careless_input import _error_line
from test_run_series import _data, _frames, _same

from ionscope.pipeline.watch import REPORT_VERSION, ReadyFiles, watch

EXPERIMENT = """
[experiment]
name = "live"
out = "results"

[[inputs]]
name = "frames"
path = "incoming/*.hspy"

[[steps]]
name = "clean"
command = "denoise"
input = "frames"
[steps.options]
method = "gaussian"

[[steps]]
name = "movie"
command = "denoise"
input = "clean"
[steps.options]
method = "gaussian"
"""


@pytest.fixture()
def live(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    _frames(source, n=4, size=24)
    (tmp_path / "incoming").mkdir()
    config = tmp_path / "exp.toml"
    config.write_text(textwrap.dedent(EXPERIMENT))
    return tmp_path, config


def test_frames_are_processed_as_they_land_and_match_a_run(live, run_cli):
    folder, config = live
    lines: list[str] = []
    box: dict = {}

    def session():
        box["record"] = watch(folder / "incoming", config, serve=0, settle_s=0.3, idle_exit_s=2.5,
                              say=lines.append)

    thread = threading.Thread(target=session)
    thread.start()
    files = sorted((folder / "source" / "frames").glob("*.hspy"))
    versions = []
    for k, path in enumerate(files):
        data = path.read_bytes()
        target = folder / "incoming" / path.name
        if k == 1:  # written in two parts, half a file for longer than the settle time
            target.write_bytes(data[: len(data) // 2])
            time.sleep(0.8)
            with open(target, "ab") as fh:
                fh.write(data[len(data) // 2:])
        else:
            target.write_bytes(data)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                version = json.loads((folder / "results" / REPORT_VERSION).read_text())
            except (OSError, ValueError):
                version = {}
            if version.get("frames") == k + 1:
                break
            time.sleep(0.05)
        versions.append(version)
        if k == 0:
            url = next(line.split()[-1] for line in lines if line.startswith("serving"))
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200 and b"<html" in response.read(2000).lower()
    thread.join(60)
    assert not thread.is_alive()
    assert [v["frames"] for v in versions] == [1, 2, 3, 4]
    record = box["record"]
    assert record["status"] == "done"
    frames = record["steps"]["clean"]["frames"]
    assert len(frames) == 4 and all(f["status"] == "done" for f in frames)
    assert record["steps"]["movie"]["status"] == "done"  # the step over the whole series, at the end
    assert not any("warning" in line for line in lines), lines
    # the same as a run over the same files
    (folder / "frames").mkdir()
    for path in files:
        shutil.copy(path, folder / "frames" / path.name)
    batch = config.read_text().replace("incoming/", "frames/").replace('out = "results"', 'out = "batch"')
    (folder / "batch.toml").write_text(batch)
    assert run_cli("run", folder / "batch.toml").returncode == 0
    for step in ("clean", "movie"):
        got, want = _data(folder / "results" / step / "result.zarr"), _data(folder / "batch" / step / "result.zarr")
        got.pop("source_file", None), want.pop("source_file", None)
        _same(got, want)


def test_a_file_being_written_is_not_ready(tmp_path):
    ready = ReadyFiles(str(tmp_path / "*.npy"), settle_s=0.2)
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((8, 8)))
    full = path.read_bytes()
    path.write_bytes(full[:40])  # the header only: the reader cannot read it
    now = time.time()
    assert ready.poll(now) == []
    assert ready.poll(now + 1.0) == []  # unchanged but unreadable: waited for
    path.write_bytes(full)
    assert ready.poll(time.time()) == []  # changed: seen again
    assert ready.poll(time.time() + 1.0) == [path]
    assert ready.poll(time.time() + 2.0) == []  # only once


def test_careless_watch_input(live, run_cli):
    folder, config = live
    assert "not a folder" in _error_line(run_cli("watch", folder / "nowhere", "--config", config))
    assert "no input named" in _error_line(run_cli("watch", folder / "incoming", "--config", config,
                                                   "--input", "nope"))
    assert not (folder / "results").exists()
