"""`ionscope superres`: outputs on the fine grid, PSNR against the twin's truth, one-line errors.

Same data as tests/test_denoise_superres.py: training maps from the LiCoO2 twin (seed 1), test
maps from another twin (seed 2) block-averaged by the factor; measured gains over cubic-spline
up-sampling with these settings 5.8 dB (x2) and 2.9 dB (x3).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.denoise import psnr
from ionscope.denoise.superres import bicubic_upsample, block_average, downsample
from ionscope.simulate import simulate

TWIN = {"ny": 48, "nx": 48, "charge_frames": 6, "rest1_frames": 0, "discharge_frames": 0,
        "rest2_frames": 0, "dose": None}
FAST = ("--atoms", "64", "--train-iterations", "5")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """train.zarr (HR twin, seed 1) and lr2.zarr / lr3.zarr (block averages of seed 2)."""
    root = tmp_path_factory.mktemp("superres")
    train = simulate("licoo2", seed=1, **TWIN)
    io.save(train.isel(time=[1, 3, 5]), root / "train.zarr")
    truth = simulate("licoo2", seed=2, **TWIN).li_fraction_true.isel(time=[2, 5])
    for factor in (2, 3):
        io.save(downsample(truth, factor).rename(f"lr{factor}"), root / f"lr{factor}.zarr")
    return root, truth


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.slow
def test_superres_x2_series_writes_fine_grid_and_beats_bicubic(run_cli, files, tmp_path):
    root, truth = files
    out = tmp_path / "x2"
    result = run_cli("superres", root / "lr2.zarr", "--train", f"{root / 'train.zarr'}:li_fraction_true",
                     "--factor", "2", *FAST, "--out", out)
    assert result.returncode == 0, result.stderr
    sr = io.open_dataset(out / "result.zarr")["superres"]
    assert sr.dims == ("time", "y", "x") and sr.shape == (2, 48, 48)
    np.testing.assert_allclose(sr.x.values, truth.x.values, atol=1e-12)
    assert sr.x.attrs["units"] == "nm" and sr.attrs["units"] == "1"
    lr = block_average(truth.values.astype(np.float64), 2)
    bicubic = psnr(bicubic_upsample(lr, 2), truth.values, data_range=1.0)
    assert psnr(sr, truth, data_range=1.0) > bicubic + 3.0
    np.testing.assert_allclose(block_average(sr.values.astype(np.float64), 2), lr, atol=2e-7)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "coupled-dictionary" and summary["factor"] == 2
    assert summary["parameters"]["atoms"] == 64 and summary["parameters"]["patch"] == 5
    assert summary["training"]["n_maps"] == 3 and summary["training"]["n_train"] > 1000
    assert summary["consistency"]["result"]["max_abs"] < 1e-12
    assert summary["consistency"]["bicubic"]["rms"] > 1e-4
    assert summary["pixel_size"]["y"] == {"input": 5.0, "output": 2.5, "units": "nm"}
    assert summary["output_sizes"] == {"time": 2, "y": 48, "x": 48}
    assert summary["run_time_s"] > 0


@pytest.mark.slow
def test_superres_x3_single_map(run_cli, files, tmp_path):
    root, truth = files
    single = tmp_path / "one.zarr"
    io.save(io.load(root / "lr3.zarr").isel(time=1), single)
    out = tmp_path / "x3"
    result = run_cli("superres", single, "--train", f"{root / 'train.zarr'}:li_fraction_true",
                     "--factor", "3", *FAST, "--iterations", "5", "--out", out)
    assert result.returncode == 0, result.stderr
    sr = io.open_dataset(out / "result.zarr")["superres"]
    assert sr.dims == ("y", "x") and sr.shape == (48, 48)
    ref = truth.isel(time=1).values
    bicubic = psnr(bicubic_upsample(block_average(ref.astype(np.float64), 3), 3), ref, data_range=1.0)
    assert psnr(sr, ref, data_range=1.0) > bicubic + 1.5
    assert json.loads((out / "summary.json").read_text())["parameters"]["iterations"] == 5


def test_superres_errors_are_one_line(run_cli, files, tmp_path):
    root, _ = files
    train = f"{root / 'train.zarr'}:li_fraction_true"
    line = _error_line(run_cli("superres", root / "lr2.zarr", "--train", train, "--factor", "4",
                               "--out", tmp_path / "a"))
    assert "factor must be one of [2, 3]" in line
    line = _error_line(run_cli("superres", root / "lr2.zarr", "--train", train, "--factor", "2",
                               "--atoms", "100000", "--out", tmp_path / "b"))
    assert "non-flat" in line and "fewer atoms" in line
    line = _error_line(run_cli("superres", root / "lr2.zarr", "--train", f"{root / 'train.zarr'}:voltage",
                               "--factor", "2", "--out", tmp_path / "c"))
    assert "training maps" in line and "(time, y, x) or (y, x)" in line
