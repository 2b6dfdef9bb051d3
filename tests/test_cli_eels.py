"""`ionscope eels ...`: contracts of the outputs and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.simulate import simulate

SMALL = {"li_params": {"ny": 24, "nx": 16}, "frames": [0, 60], "dose": 1e8}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """A small EELS twin saved as Zarr, with its references as variables."""
    path = tmp_path_factory.mktemp("eels") / "twin.zarr"
    ds = simulate("eels_licoo2", seed=2, **SMALL)
    io.save(ds, path)
    return path, ds


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_lithium_mlls_writes_li_fraction_and_chi2(run_cli, twin, tmp_path):
    path, ds = twin
    out = tmp_path / "mlls"
    result = run_cli("eels", "lithium", path, "--li-rich", f"{path}:ref_licoo2", "--li-poor", f"{path}:ref_coo2",
                     "--co-extra", f"{path}:ref_co3o4", "--background", "40:52", "--fit-window", "52:90", "--out", out)
    assert result.returncode == 0, result.stderr
    res = io.open_dataset(out / "result.zarr")
    assert res.li_fraction.dims == ("time", "y", "x") and res.chi2.dims == ("time", "y", "x")
    error = np.abs(res.li_fraction.values - ds.li_fraction_true.values)
    assert np.nanmean(error) < 0.05
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "mlls" and summary["windows"]["fit_window_eV"] == [52.0, 90.0]
    assert summary["masked_pixels"] == 0 and summary["pixels"] == 2 * 24 * 16
    assert summary["li_fraction_mean"] == pytest.approx(float(np.nanmean(res.li_fraction)), rel=1e-6)
    assert set(summary["li_fraction_percentiles"]) == {"p5", "p25", "p50", "p75", "p95"}
    assert summary["run_time_s"] > 0


def test_lithium_sasb_agrees_with_truth(run_cli, twin, tmp_path):
    path, ds = twin
    out = tmp_path / "sasb"
    result = run_cli("eels", "lithium", path, "--li-rich", f"{path}:ref_licoo2", "--li-poor", f"{path}:ref_coo2",
                     "--method", "sasb", "--window-a", "54:60", "--window-b", "64:85", "--out", out)
    assert result.returncode == 0, result.stderr
    res = io.open_dataset(out / "result.zarr")
    bulk = ds.region.values == 0
    error = np.abs(res.li_fraction.values - ds.li_fraction_true.values)[:, bulk]
    assert np.nanmean(error) < 0.1
    assert json.loads((out / "summary.json").read_text())["windows"]["window_a_eV"] == [54.0, 60.0]


def test_nmf_and_profile(run_cli, twin, tmp_path):
    path, _ = twin
    result = run_cli("eels", "nmf", path, "--components", "3", "--window", "52:90", "--background", "40:52", "--out", tmp_path / "nmf")
    assert result.returncode == 0, result.stderr
    res = io.open_dataset(tmp_path / "nmf" / "result.zarr")
    assert res.sizes["component"] == 3 and {"maps", "spectra"} <= set(res.data_vars)
    sr = tmp_path / "sr.zarr"
    io.save(simulate("eels_sr", seed=1), sr)
    result = run_cli("eels", "profile", sr, "--window", "55:62", "--background", "48:54", "--out", tmp_path / "prof")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "prof" / "summary.json").read_text())
    assert abs(summary["position_nm"] - 30.0) < 1.0 and summary["position_error_nm"] > 0
    assert abs(summary["width_nm"] - 13.0) < 1.0 and summary["width_error_nm"] > 0
    assert {"w90_nm", "w90_error_nm", "enrichment", "enrichment_error"} <= set(summary)


def test_reference_that_does_not_cover_the_fit_window(run_cli, twin, tmp_path):
    path, ds = twin
    short = tmp_path / "short.zarr"
    io.save(ds.ref_licoo2.sel(energy=slice(30, 70)), short)
    line = _error_line(run_cli("eels", "lithium", path, "--li-rich", short, "--li-poor", f"{path}:ref_coo2",
                               "--fit-window", "52:90", "--out", tmp_path / "o"))
    assert "cover" in line


def test_reference_with_mismatched_dispersion(run_cli, twin, tmp_path):
    path, ds = twin
    coarse = tmp_path / "coarse.zarr"
    io.save(ds.ref_licoo2.isel(energy=slice(None, None, 8)), coarse)
    line = _error_line(run_cli("eels", "lithium", path, "--li-rich", coarse, "--li-poor", f"{path}:ref_coo2",
                               "--fit-window", "52:90", "--out", tmp_path / "o"))
    assert "dispersion" in line


def test_window_outside_the_data(run_cli, twin, tmp_path):
    path, _ = twin
    line = _error_line(run_cli("eels", "lithium", path, "--li-rich", f"{path}:ref_licoo2", "--li-poor", f"{path}:ref_coo2",
                               "--fit-window", "200:300", "--out", tmp_path / "o"))
    assert "200" in line


def test_all_zero_spectra(run_cli, twin, tmp_path):
    path, ds = twin
    zero = tmp_path / "zero.zarr"
    io.save((ds.spectra * 0).rename("spectra"), zero)
    line = _error_line(run_cli("eels", "lithium", zero, "--li-rich", f"{path}:ref_licoo2", "--li-poor", f"{path}:ref_coo2",
                               "--out", tmp_path / "o"))
    assert "no spectrum could be fitted" in line


def test_bad_window_text_and_wrong_dims(run_cli, twin, tmp_path):
    path, _ = twin
    line = _error_line(run_cli("eels", "lithium", path, "--li-rich", f"{path}:ref_licoo2", "--li-poor", f"{path}:ref_coo2",
                               "--background", "40-52", "--out", tmp_path / "o"))
    assert "LO:HI" in line
    line = _error_line(run_cli("eels", "lithium", f"{path}:li_fraction_true", "--li-rich", f"{path}:ref_licoo2",
                               "--li-poor", f"{path}:ref_coo2", "--out", tmp_path / "o2"))
    assert "energy" in line
