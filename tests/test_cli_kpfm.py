"""`ionscope kpfm process | particles | profile` on the composite-cathode twin's real .sxm files:
output contracts, numbers against the twin's truth, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ionscope import io

PARAMS = ["ny=96", "nx=96", "pixel_nm=20", "charge_frames=3", "rest_frames=0", "ocv_frames=1"]


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, run_cli):
    root = tmp_path_factory.mktemp("kpfm")
    args = [a for p in PARAMS for a in ("--param", p)]
    assert run_cli("simulate", "composite_cathode", "--seed", "1", "--out", root / "cell", *args).returncode == 0
    scans = sorted((root / "cell").glob("frame_*.sxm"))
    # given in reverse order: the headers' times order them
    res = run_cli("kpfm", "process", *scans[::-1], "--cycler", root / "cell" / "cycler.csv", "--out", root / "proc")
    assert res.returncode == 0, res.stderr
    res = run_cli("kpfm", "particles", root / "proc", "--out", root / "part")
    assert res.returncode == 0, res.stderr
    return root, scans, io.open_dataset(root / "cell" / "truth.zarr")


def test_process_writes_the_contract_and_matches_the_twin(chain):
    root, scans, truth = chain
    result = io.open_dataset(root / "proc")
    summary = json.loads((root / "proc" / "summary.json").read_text())
    n = truth.sizes["time"]
    assert result["potential"].dims == ("time", "y", "x") and result["potential"].attrs["units"] == "V"
    assert result["row_time"].dims == ("time", "y") and result["shift_y_nm"].dims == ("time",)
    for name in ("cell_voltage", "cell_current", "charge"):
        assert result[name].dims == ("time",)
    np.testing.assert_allclose(result["time"].values, truth["frame_start"].values - truth["frame_start"].values[0])
    assert summary["frames"] == n and summary["scan_directions"] == list(map(str, truth["scan_direction"].values))
    assert summary["noise_mV"] == pytest.approx(1000 * float(truth.attrs["noise_V"]), rel=0.2)
    # the cell's voltage per frame from the cycler log: the mean over the times its rows were scanned
    np.testing.assert_allclose(result["cell_voltage"].values, truth["cell_voltage_row"].mean("y").values, atol=0.01)
    # registration undoes the drift (shift = -drift), to a fraction of a pixel
    drift = truth["drift_y_nm"].values - truth["drift_y_nm"].values[0]
    assert np.abs(result["shift_y_nm"].values + drift).max() < 0.3 * 20
    # referenced: the collector at 0 V in every frame
    ref = summary["reference_box"]
    for k in range(n):
        assert abs(np.nanmedian(result["potential"].values[k, ref[0]:ref[1], ref[2]:ref[3]])) < 1e-3


def test_particles_finds_the_active_ones(chain):
    root, _, truth = chain
    ds = io.open_dataset(root / "part")
    summary = json.loads((root / "part" / "summary.json").read_text())
    active, true = ds["active"].values.astype(bool), truth["active_true"].values.astype(bool)
    assert (active & true).sum() / (active | true).sum() >= 0.8
    with open(root / "part" / "particles.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["label", "area_nm2", "centroid_y_nm", "centroid_x_nm", "dV_last_mV", "dV_err_mV",
                             "active", "response_time_s"]
    assert summary["particles"] == len(rows) and summary["active_particles"] == sum(r["active"] == "True" for r in rows)
    assert all(float(r["dV_last_mV"]) > 0 for r in rows if r["active"] == "True")  # they charge positive


def test_profile_gives_a_drop_and_slope_per_frame(chain, run_cli):
    root, _, truth = chain
    res = run_cli("kpfm", "profile", root / "proc", "--from", "48,5", "--to", "48,90", "--width", "8",
                  "--out", root / "prof")
    assert res.returncode == 0, res.stderr
    summary = json.loads((root / "prof" / "summary.json").read_text())
    assert len(summary["drop_V"]) == truth.sizes["time"] == len(summary["slope_V_per_nm"])
    assert all(f["drop_V_error"] > 0 and f["slope_V_per_nm_error"] > 0 for f in summary["frames"])


def test_careless_kpfm_input(chain, run_cli, tmp_path):
    root, scans, _ = chain
    assert "KPFM" in _error_line(run_cli("kpfm", "process", *scans, "--channel", "Nope", "--out", tmp_path / "a"))
    assert "reference box 0:10,500:600 lies outside" in _error_line(
        run_cli("kpfm", "process", *scans, "--reference", "0:10,500:600", "--out", tmp_path / "a"))
    cut = tmp_path / "cut.sxm"
    cut.write_bytes(scans[0].read_bytes()[: scans[0].stat().st_size // 2])
    _error_line(run_cli("kpfm", "process", scans[0], cut, "--out", tmp_path / "a"))
    other = tmp_path / "other"
    assert run_cli("simulate", "composite_cathode", "--param", "ny=64", "--param", "nx=64", "--param", "pixel_nm=20", "--param",
                   "charge_frames=1", "--param", "rest_frames=0", "--out", other).returncode == 0
    _error_line(run_cli("kpfm", "process", scans[0], other / "frame_000.sxm", "--out", tmp_path / "a"))
    _error_line(run_cli("kpfm", "particles", root / "proc", "--threshold", "-1", "--out", tmp_path / "a"))
    _error_line(run_cli("kpfm", "profile", root / "proc", "--from", "1,2,3", "--to", "4,5", "--out", tmp_path / "a"))
    assert not (tmp_path / "a").exists()
