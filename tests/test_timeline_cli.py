"""``ionscope timeline`` and ``--cycler`` on the series commands (docs/cli.rst, ``ionscope timeline``:
"Every series command accepts ``--cycler LOG`` to the same effect")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_careless_input import _error_line

from ionscope import io
from ionscope.simulate import simulate

START = "2024-05-01T10:00:00+09:00"


@pytest.fixture(scope="module")
def twin(tmp_path_factory, run_cli):
    """The licoo2 twin (157 frames, small maps) and the cycler CSV ``simulate`` writes beside it."""
    root = tmp_path_factory.mktemp("timeline-cli")
    res = run_cli("simulate", "licoo2", "--param", "ny=16", "--param", "nx=8", "--param", "layer_thickness_nm=4",
                  "--param", "layer_roughness_nm=1", "--out", root / "lc.zarr")
    assert res.returncode == 0, res.stderr
    return io.open_dataset(root / "lc.zarr"), root


def test_timeline_writes_the_series_with_the_cell_state_and_a_figure(twin, run_cli):
    truth, root = twin
    res = run_cli("timeline", f"{root}/lc.zarr:li_fraction", "--cycler", root / "lc_cycler.csv", "--start", START,
                  "--out", root / "tl")
    assert res.returncode == 0, res.stderr
    assert res.stderr == "" and "157 frames tied to the cell" in res.stdout
    result = io.open_dataset(root / "tl" / "result.zarr")
    np.testing.assert_allclose(result["cell_voltage"].values, truth["voltage"].values, atol=1e-9)
    np.testing.assert_array_equal(result["state"].values, truth["state"].values)
    assert result["cell_current"].attrs["units"] == "mA" and result["charge"].attrs["units"] == "mAh"
    summary = json.loads((root / "tl" / "summary.json").read_text())
    assert summary["command"] == "timeline" and summary["frames"] == 157 and summary["series_start"] == START
    assert summary["figure"] == "timeline.png"
    assert (root / "tl" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeline_without_a_start_or_outside_the_log_is_one_error_line(twin, run_cli, tmp_path):
    _, root = twin
    line = _error_line(run_cli("timeline", f"{root}/lc.zarr:li_fraction", "--cycler", root / "lc_cycler.csv",
                               "--out", tmp_path / "a"))
    assert "the series has no start time" in line and "--start" in line
    assert not (tmp_path / "a").exists()
    # a series a month after the log
    frames = io.load(f"{root}/lc.zarr:li_fraction").assign_attrs(start_time="2024-06-01T10:00:00")
    io.save(frames, tmp_path / "late.zarr")
    line = _error_line(run_cli("timeline", tmp_path / "late.zarr", "--cycler", root / "lc_cycler.csv", "--start",
                               "2024-05-01T10:00:00", "--out", tmp_path / "b"))
    assert "none of the 157 frames lies within the cycler log" in line


def test_denoise_and_eels_lithium_take_the_cycler_to_the_same_effect(twin, run_cli, tmp_path):
    truth, root = twin
    res = run_cli("denoise", f"{root}/lc.zarr:li_fraction", "--method", "gaussian", "--cycler", root / "lc_cycler.csv",
                  "--start", START, "--out", tmp_path / "dn")
    assert res.returncode == 0, res.stderr
    result = io.open_dataset(tmp_path / "dn" / "result.zarr")
    np.testing.assert_allclose(result["cell_voltage"].values, truth["voltage"].values, atol=1e-9)
    assert "denoised" in result and (tmp_path / "dn" / "timeline.png").exists()
    steps = [s["step"] for s in json.loads(result["denoised"].attrs["provenance"])]
    assert steps[-1] == "ionscope.timeline.attach_cycler" and "ionscope.denoise.baselines.gaussian" in steps
    summary = json.loads((tmp_path / "dn" / "summary.json").read_text())
    assert summary["timeline"]["cell_voltage_V"][0] == pytest.approx(float(truth["voltage"][0]))

    eels = simulate("eels_licoo2", seed=2, li_params={"ny": 16, "nx": 8, "layer_thickness_nm": 4,
                                                      "layer_roughness_nm": 1}, frames=[0, 70], dose=1e8)
    io.save(eels, tmp_path / "e.zarr")
    e = tmp_path / "e.zarr"
    res = run_cli("eels", "lithium", e, "--li-rich", f"{e}:ref_licoo2", "--li-poor", f"{e}:ref_coo2", "--co-extra",
                  f"{e}:ref_co3o4", "--fit-window", "52:90", "--cycler", root / "lc_cycler.csv", "--start", START,
                  "--out", tmp_path / "el")
    assert res.returncode == 0, res.stderr
    result = io.open_dataset(tmp_path / "el" / "result.zarr")
    np.testing.assert_allclose(result["cell_voltage"].values, eels["voltage"].values, atol=1e-4)  # its own run
    assert result["state"].values.tolist() == [1, 0]  # charge, rest

    line = _error_line(run_cli("denoise", f"{root}/lc.zarr:li_fraction", "--method", "gaussian", "--start", START,
                               "--out", tmp_path / "x"))
    assert line == "error: --start only apply with --cycler LOG"
