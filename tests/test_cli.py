"""The command line: contracts, and one line on stderr with exit status 2 for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope import __version__, io
from ionscope.data import signal


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _hspy(path, data, axes):
    from rsciio.hspy import file_writer

    file_writer(str(path), {
        "data": data, "axes": [dict(a, size=n) for a, n in zip(axes, data.shape)],
        "metadata": {"General": {"title": "operando Li"}, "Signal": {"quantity": "Li fraction (1)"},
                     "Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "package_info": {"name": "test", "version": "0"}, "learning_results": {}, "models": {},
    })
    return path


AXES = [
    {"name": "time", "units": "s", "scale": 60.0, "offset": 0.0, "navigate": True},
    {"name": "y", "units": "nm", "scale": 2.5, "offset": 0.0, "navigate": False},
    {"name": "x", "units": "nm", "scale": 2.5, "offset": 0.0, "navigate": False},
]


def test_version(run_cli_process):
    """Through the installed console script (the entry point itself is what is checked)."""
    result = run_cli_process("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"ionscope {__version__}"


def test_info_on_hspy_written_by_rosettasciio(run_cli, tmp_path):
    path = _hspy(tmp_path / "series.hspy", np.zeros((7, 16, 12), np.float32), AXES)
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "dims (time, y, x), shape (7, 16, 12), dtype float32, units 1" in text
    assert "time      size 7      s" in text
    assert "y         size 16     nm" in text and "x         size 12     nm" in text
    assert "step 60 s" in text and "step 2.5 nm" in text
    assert "beam energy: 200.0 kV" in text
    assert "ionscope.io.load" in text


def test_info_uncalibrated_file_with_dims_override(run_cli, tmp_path):
    np.save(tmp_path / "raw.npy", np.zeros((3, 4, 5)))
    result = run_cli("info", tmp_path / "raw.npy", "--dims", "y,x,energy")
    assert result.returncode == 0
    assert "dims (y, x, energy)" in result.stdout and "energy    size 5      px" in result.stdout


def test_simulate_writes_data_truth_and_cycler_log_deterministically(run_cli, tmp_path):
    args = ["--param", "ny=24", "--param", "nx=16", "--param", "charge_frames=4", "--param", "rest1_frames=2",
            "--param", "discharge_frames=4", "--param", "rest2_frames=2"]
    for name in ("a", "b"):
        result = run_cli("simulate", "licoo2", "--out", tmp_path / f"{name}.zarr", "--seed", "7", *args)
        assert result.returncode == 0, result.stderr
    a, b = io.open_dataset(tmp_path / "a.zarr"), io.open_dataset(tmp_path / "b.zarr")
    assert a.li_fraction.shape == (12, 24, 16) and "li_fraction_true" in a
    np.testing.assert_array_equal(a.li_fraction.values, b.li_fraction.values)
    rows = (tmp_path / "a_cycler.csv").read_text().splitlines()
    assert rows[0] == "time_s,voltage_V,current_A,charge_C" and len(rows) == a.sizes["record"] + 1
    assert float(rows[-1].split(",")[3]) == pytest.approx(float(a.cycler_charge[-1]), rel=1e-6)


def test_convert_to_zarr_and_hspy(run_cli, tmp_path):
    src = _hspy(tmp_path / "s.hspy", np.ones((2, 3, 4), np.float32), AXES)
    assert run_cli("convert", src, "--out", tmp_path / "s.zarr").returncode == 0
    da = io.load(tmp_path / "s.zarr")
    assert da.dims == ("time", "y", "x") and da.x.attrs["units"] == "nm"
    assert run_cli("convert", tmp_path / "s.zarr", "--out", tmp_path / "back.hspy").returncode == 0
    assert io.load(tmp_path / "back.hspy").shape == (2, 3, 4)


# ----------------------------------------------------------------------------- bad input


def test_missing_file(run_cli_process, tmp_path):
    """The real binary's exit status and stderr (the other error tests run main() in-process)."""
    _assert_one_line_error(run_cli_process("info", tmp_path / "nope.dm4"), "no such file")


def test_empty_file(run_cli, tmp_path):
    (tmp_path / "empty.emd").write_bytes(b"")
    _assert_one_line_error(run_cli("info", tmp_path / "empty.emd"), "empty")


def test_truncated_hspy(run_cli, tmp_path):
    full = _hspy(tmp_path / "full.hspy", np.zeros((5, 32, 32), np.float32), AXES)
    cut = tmp_path / "cut.hspy"
    cut.write_bytes(full.read_bytes()[:3000])
    _assert_one_line_error(run_cli("info", cut), "cut.hspy", "truncated")


def test_random_bytes_named_dm4(run_cli, tmp_path):
    (tmp_path / "x.dm4").write_bytes(np.random.default_rng(3).bytes(2048))
    _assert_one_line_error(run_cli("info", tmp_path / "x.dm4"), "DigitalMicrograph")


def test_unknown_extension(run_cli, tmp_path):
    (tmp_path / "x.foo").write_text("hello")
    _assert_one_line_error(run_cli("info", tmp_path / "x.foo"), "unknown file type", ".hspy")


def test_wrong_dimensionality_for_the_command(run_cli, tmp_path):
    image = io.save(signal(np.zeros((8, 8), np.float32), ("y", "x"), name="m", units="1", coords={"y": 1.0, "x": 1.0}), tmp_path / "image.zarr")
    _assert_one_line_error(run_cli("movie", image, "--out", tmp_path / "m.gif"), "(time, y, x)", "(y, x)")


def test_nan_and_inf_in_data(run_cli, tmp_path):
    data = np.zeros((3, 8, 8), np.float32)
    data[1, 2, 3] = np.nan
    data[2, 0, 0] = np.inf
    src = _hspy(tmp_path / "nan.hspy", data, AXES)
    _assert_one_line_error(run_cli("movie", src, "--out", tmp_path / "m.gif"), "2 NaN/inf", "time=1, y=2, x=3")


def test_empty_array(run_cli, tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8), np.float32))
    _assert_one_line_error(run_cli("movie", tmp_path / "empty.npy", "--out", tmp_path / "m.gif"), "empty")


def test_non_uniform_axis(run_cli, tmp_path):
    da = signal(np.zeros((3, 4, 5), np.float32), ("time", "y", "x"), name="li", units="1",
                coords={"time": 60.0, "y": 2.5, "x": np.array([0.0, 1.0, 2.0, 4.0, 8.0])})
    src = tmp_path / "bent.nc"
    da.to_dataset().to_netcdf(src)
    _assert_one_line_error(run_cli("movie", src, "--out", tmp_path / "m.gif"), "'x' axis is not evenly spaced")


@pytest.mark.parametrize("command", ["convert", "simulate"])
def test_existing_output_is_refused_without_overwrite(run_cli, tmp_path, command):
    src = _hspy(tmp_path / "s.hspy", np.ones((2, 3, 4), np.float32), AXES)
    target = tmp_path / "exists.zarr"
    io.save(io.load(src), target)
    before = sorted(p.name for p in target.rglob("*"))
    args = ["convert", src] if command == "convert" else ["simulate", "licoo2", "--param", "ny=8", "--param", "nx=8"]
    _assert_one_line_error(run_cli(*args, "--out", target), "already exists", "--overwrite")
    assert sorted(p.name for p in target.rglob("*")) == before


def test_usage_errors_are_one_line_too(run_cli):
    _assert_one_line_error(run_cli("info"), "Missing argument")
    _assert_one_line_error(run_cli("info", "x.hspy", "--bogus"), "No such option")


def test_debug_shows_the_traceback(run_cli, tmp_path):
    result = run_cli("--debug", "info", tmp_path / "nope.hspy")
    assert result.returncode != 0 and "Traceback" in result.stderr and "FileMissingError" in result.stderr


def test_denoise_keeps_dims_and_beats_raw(run_cli, tmp_path):
    import json

    from ionscope.simulate import simulate

    ds = simulate("licoo2", seed=4, ny=32, nx=32, charge_frames=6, rest1_frames=2, discharge_frames=6,
                  rest2_frames=2, dose=20.0)
    src = io.save(ds, tmp_path / "maps.zarr")
    result = run_cli("denoise", f"{src}:li_fraction", "--method", "sparse", "--patch", "6", "--atoms", "64", "--out", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    den = io.open_dataset(tmp_path / "d" / "result.zarr")["denoised"]
    assert den.dims == ("time", "y", "x") and np.array_equal(den.y.values, ds.y.values)
    truth = ds.li_fraction_true.values
    assert np.mean((den.values - truth) ** 2) < 0.25 * np.mean((ds.li_fraction.values - truth) ** 2)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["method"] == "sparse" and summary["parameters"]["patch"] == 6 and summary["run_time_s"] > 0
    bad = run_cli("denoise", src, "--method", "median", "--out", tmp_path / "e")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "sparse3d" in bad.stderr


def test_main_leaves_no_global_state_behind(tmp_path, capsys):
    """The in-process CLI tests rely on main() changing nothing global between calls: the
    matplotlib backend and rcParams, logging, warning filters, dask's config, numba's and the
    BLAS pools' thread counts."""
    import logging
    import warnings

    import dask
    import matplotlib
    import numba
    from threadpoolctl import threadpool_info

    from ionscope.cli import main

    def state():
        root = logging.getLogger()
        return (matplotlib.get_backend(), dict(matplotlib.rcParams), root.level, list(root.handlers),
                list(warnings.filters), dask.config.config.copy(), numba.get_num_threads(),
                [p["num_threads"] for p in threadpool_info()])

    series = _hspy(tmp_path / "s.hspy", np.random.default_rng(0).random((3, 16, 16), dtype=np.float32), AXES)
    calls = (["info", series], ["movie", series, "--out", tmp_path / "m.gif", "--overwrite"],
             ["denoise", series, "--method", "gaussian", "--out", tmp_path / "d", "--overwrite"],
             ["info", tmp_path / "nope"])
    for argv, code in zip(calls, (0, 0, 0, 2)):  # the first calls import scipy, ... (import-time filters)
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in argv])
        assert exit_.value.code == code, (argv, capsys.readouterr().err)
    before = state()
    for argv in calls:
        with pytest.raises(SystemExit):
            main([str(a) for a in argv])
        assert state() == before, argv
    capsys.readouterr()
