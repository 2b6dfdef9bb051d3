"""``ionscope run`` over a series of files: one checkpoint per frame, frames in header-time order,
stacked along time; --resume after a SIGKILL gives the uninterrupted run's result, redoing only
frames whose checkpoint is missing, damaged or stale; --jobs gives the same result."""

from __future__ import annotations

import json
import os
import signal as os_signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_careless_input import _error_line

from ionscope import io
from ionscope.pipeline.run import CHECKPOINTS
from ionscope.pipeline.series import header_start

EXPERIMENT = """
[experiment]
name = "series"
out = "results"

[[inputs]]
name = "frames"
path = "frames/*.hspy"

[[steps]]
name = "clean"
command = "denoise"
input = "frames"
[steps.options]
method = "{method}"
"""

# minutes past 10:00 of each file (by name): the header order is not the name order
MINUTES = [9, 3, 7, 1]


def _frames(folder, n=4, size=32, seed=0):
    import hyperspy.api as hs

    rng = np.random.default_rng(seed)
    (folder / "frames").mkdir()
    images = []
    for k in range(n):
        image = (rng.poisson(15, (size, size)) / 15.0).astype("float32")
        s = hs.signals.Signal2D(image)
        s.metadata.General.date, s.metadata.General.time = "2026-03-01", f"10:{MINUTES[k % len(MINUTES)] + 10 * (k // len(MINUTES)):02d}:00"
        s.save(folder / "frames" / f"f{k}.hspy")
        images.append(image)
    return images


def _experiment(folder, method="gaussian"):
    path = folder / "exp.toml"
    path.write_text(textwrap.dedent(EXPERIMENT.format(method=method)))
    return path


def _data(path):
    """The result's arrays (variables and coordinates), which must be bit-identical."""
    ds = io.open_dataset(path).load()
    return {name: ds[name].values for name in [*ds.data_vars, *ds.coords]}


def _same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.fixture()
def series(tmp_path):
    return tmp_path, _frames(tmp_path)


def test_frames_run_one_by_one_in_header_time_order_and_stack_along_time(series, run_cli):
    folder, images = series
    assert run_cli("run", _experiment(folder)).returncode == 0
    record = json.loads((folder / "results" / "run.json").read_text())
    step = record["steps"]["clean"]
    order = np.argsort(MINUTES)
    assert [os.path.basename(f["file"]) for f in step["frames"]] == [f"f{k}.hspy" for k in order]
    assert step["series_order"] == "header time" and all(f["status"] == "done" for f in step["frames"])
    result = io.open_dataset(folder / "results" / "clean" / "result.zarr")
    assert result.denoised.dims == ("time", "y", "x")
    np.testing.assert_array_equal(result.time.values, 60.0 * (np.sort(MINUTES) - min(MINUTES)))
    assert result.time.attrs["units"] == "s" and result.attrs["start_time"] == "2026-03-01T10:01:00"
    # each frame is what the command gives on that file alone
    for t, k in enumerate(order):
        alone = folder / f"alone{k}"
        assert run_cli("denoise", folder / "frames" / f"f{k}.hspy", "--method", "gaussian", "--out", alone).returncode == 0
        np.testing.assert_array_equal(result.denoised.values[t], io.open_dataset(alone / "result.zarr").denoised.values)
    summary = json.loads((folder / "results" / "clean" / "summary.json").read_text())
    assert summary["frames"] == 4 and len(summary["frame_summaries"]) == 4
    assert summary["experiment"]["step"] == "clean"


def test_resume_after_sigkill_matches_the_uninterrupted_run(tmp_path, run_cli):
    cut = tmp_path
    _frames(cut, n=6, size=32)
    exp = _experiment(cut, "sparse")
    assert run_cli("run", exp).returncode == 0
    expected = _data(cut / "results" / "clean" / "result.zarr")
    (cut / "results").rename(cut / "uninterrupted")

    proc = subprocess.Popen([sys.executable, "-m", "ionscope", "run", str(exp)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    record_path = cut / "results" / "run.json"
    done = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            frames = json.loads(record_path.read_text())["steps"]["clean"].get("frames", [])
            done = sum(f["status"] == "done" for f in frames)
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 2:
            proc.send_signal(os_signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -os_signal.SIGKILL, "the run ended before it could be killed"
    assert not (cut / "results" / "clean" / "result.zarr").exists()
    assert (cut / "results" / CHECKPOINTS / "clean").is_dir()
    refused = run_cli("run", exp)
    assert "--resume" in _error_line(refused)
    assert run_cli("run", exp, "--resume").returncode == 0
    frames = json.loads(record_path.read_text())["steps"]["clean"]["frames"]
    assert sum(f["kept"] for f in frames) >= done
    _same(_data(cut / "results" / "clean" / "result.zarr"), expected)


def test_resume_redoes_only_damaged_or_stale_frames(series, run_cli):
    folder, images = series
    exp = _experiment(folder)
    assert run_cli("run", exp).returncode == 0
    out = folder / "results"
    expected = _data(out / "clean" / "result.zarr")
    frames = json.loads((out / "run.json").read_text())["steps"]["clean"]["frames"]
    # damage frame 1's checkpoint (a chunk cut short) and change the file of frame 2
    chunk = max((p for p in (Path(frames[1]["out"]) / "result.zarr").rglob("*") if p.is_file()),
                key=lambda p: p.stat().st_size)
    chunk.write_bytes(chunk.read_bytes()[:10])
    import hyperspy.api as hs

    changed = frames[2]["file"]
    s = hs.load(changed)
    s.data = s.data * 2
    s.save(changed, overwrite=True)
    assert run_cli("run", exp, "--resume").returncode == 0
    after = json.loads((out / "run.json").read_text())["steps"]["clean"]
    assert after["kept"] is False
    assert [f["kept"] for f in after["frames"]] == [True, False, False, True]
    result = _data(out / "clean" / "result.zarr")
    for k in (0, 1, 3):
        np.testing.assert_array_equal(result["denoised"][k], expected["denoised"][k])
    assert not np.array_equal(result["denoised"][2], expected["denoised"][2])
    # nothing changed: everything is kept
    assert run_cli("run", exp, "--resume").returncode == 0
    again = json.loads((out / "run.json").read_text())["steps"]["clean"]
    assert again["kept"] is True


def test_jobs_give_the_same_result(series, run_cli):
    folder, images = series
    exp = _experiment(folder)
    assert run_cli("run", exp).returncode == 0
    assert run_cli("run", exp, "--jobs", "2", "--out", folder / "parallel").returncode == 0
    _same(_data(folder / "parallel" / "clean" / "result.zarr"), _data(folder / "results" / "clean" / "result.zarr"))


def test_a_failing_frame_names_its_file_and_keeps_the_others(series, run_cli):
    folder, images = series
    (folder / "frames" / "f2.hspy").write_bytes(b"not an hdf5 file")
    exp = _experiment(folder)
    line = _error_line(run_cli("run", exp))
    assert "f2.hspy" in line and "--resume" in line
    frames = json.loads((folder / "results" / "run.json").read_text())["steps"]["clean"]["frames"]
    assert sorted(f["status"] for f in frames) == ["done", "done", "done", "failed"]
    assert not (folder / "results" / "clean").exists()


def test_frames_without_header_times_count_frames(tmp_path, run_cli):
    (tmp_path / "frames").mkdir()
    rng = np.random.default_rng(1)
    for k in range(3):
        np.save(tmp_path / "frames" / f"f{k}.npy", rng.random((8, 8)).astype("float32"))
    exp = _experiment(tmp_path).read_text().replace("*.hspy", "*.npy")
    (tmp_path / "exp.toml").write_text(exp)
    assert run_cli("run", tmp_path / "exp.toml").returncode == 0
    result = xr.open_zarr(tmp_path / "results" / "clean" / "result.zarr")
    assert result.time.attrs["units"] == "frame" and result.time.values.tolist() == [0, 1, 2]


@pytest.mark.parametrize("zone, expected", [("", "2026-03-01T10:01:00"), ("Asia/Tokyo", "2026-03-01T10:01:00+09:00"),
                                            ("Mars/Olympus", "2026-03-01T10:01:00")])
def test_the_header_start_of_a_frame(tmp_path, zone, expected):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.zeros((4, 4), "float32"))
    s.metadata.General.date, s.metadata.General.time = "2026-03-01", "10:01:00"
    if zone:
        s.metadata.General.time_zone = zone
    s.save(tmp_path / "a.hspy")
    assert header_start(tmp_path / "a.hspy").isoformat() == expected
    np.save(tmp_path / "b.npy", np.zeros((4, 4)))
    assert header_start(tmp_path / "b.npy") is None


def test_the_inputs_calibration_reaches_every_frame_and_a_change_redoes_the_step(tmp_path, run_cli):
    (tmp_path / "frames").mkdir()
    rng = np.random.default_rng(2)
    for k in range(2):
        np.save(tmp_path / "frames" / f"f{k}.npy", rng.random((6, 8)).astype("float32"))
    text = _experiment(tmp_path).read_text().replace("*.hspy", "*.npy")
    exp = tmp_path / "exp.toml"
    exp.write_text(text.replace('path = "frames/*.npy"', 'path = "frames/*.npy"\npixel_size_nm = 2.5\nbeam_energy_kV = 300'))
    assert run_cli("run", exp).returncode == 0
    result = io.open_dataset(tmp_path / "results" / "clean" / "result.zarr")
    np.testing.assert_array_equal(result.x.values, 2.5 * np.arange(8))
    assert result.x.attrs["units"] == "nm" and result.denoised.attrs["beam_energy_kV"] == 300.0
    exp.write_text(exp.read_text().replace("2.5", "0.5"))
    assert run_cli("run", exp, "--resume").returncode == 0
    step = json.loads((tmp_path / "results" / "run.json").read_text())["steps"]["clean"]
    assert step["kept"] is False and not any(f["kept"] for f in step["frames"])
    np.testing.assert_array_equal(io.open_dataset(tmp_path / "results" / "clean" / "result.zarr").x.values,
                                  0.5 * np.arange(8))
    for bad in ("-1", "true", '"abc"', "nan"):
        exp.write_text(text.replace('path = "frames/*.npy"', f'path = "frames/*.npy"\npixel_size_nm = {bad}'))
        line = _error_line(run_cli("run", exp, "--out", tmp_path / "never"))
        assert "pixel_size_nm" in line and ":9:" in line
    assert not (tmp_path / "never").exists()
