"""Careless and odd inputs (issue 12): one line, exit 2, nothing written, inputs untouched - and
files that must open do."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope import io
from ionscope.data import signal
from ionscope.simulate import simulate


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("careless")
    da = signal(np.random.default_rng(0).random((3, 16, 16)), ("time", "y", "x"), name="li", units="1",
                coords={"time": 60.0, "y": 2.0, "x": 2.0})
    io.save(da, root / "series.zarr")
    return root


def test_a_spectrum_written_as_msa_opens_lazily_in_info_convert_and_eels(run_cli, tmp_path):
    spectrum = signal(np.linspace(100.0, 50.0, 200), ("energy",), name="s", units="counts",
                      coords={"energy": 40.0 + 0.25 * np.arange(200)})
    io.export(spectrum, tmp_path / "s.msa")
    lazy = io.load(tmp_path / "s.msa", lazy=True)  # MSA has no lazy reader: eager read, wrapped in dask
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, spectrum.values)
    np.testing.assert_allclose(lazy["energy"].values, spectrum["energy"].values)
    result = run_cli("info", tmp_path / "s.msa")
    assert result.returncode == 0 and "dims (energy)" in result.stdout, result.stderr
    assert run_cli("convert", tmp_path / "s.msa", "--out", tmp_path / "s.zarr").returncode == 0
    np.testing.assert_allclose(io.load(tmp_path / "s.zarr").values, spectrum.values)


def test_formats_that_cannot_hold_the_data_are_refused(run_cli, series, tmp_path):
    # what RosettaSciIO's writers declare they hold: MSA one spectrum, TIFF images and stacks
    assert "a .msa file holds data of 1 dims, the data has 3" in _error_line(
        run_cli("convert", series / "series.zarr", "--out", tmp_path / "a.msa"))
    four_d = signal(np.zeros((2, 3, 4, 5)), ("time", "y", "x", "energy"), name="s", units="counts")
    io.save(four_d, tmp_path / "four.zarr")
    assert "a .tif file holds data of 2 or 3 dims, the data has 4" in _error_line(
        run_cli("convert", tmp_path / "four.zarr", "--out", tmp_path / "a.tif"))
    assert not (tmp_path / "a.msa").exists() and not (tmp_path / "a.tif").exists()


@pytest.mark.parametrize("fps", ["0", "nan", "-5", "inf", "1e9"])
def test_absurd_frame_rates_are_refused(run_cli, series, tmp_path, fps):
    line = _error_line(run_cli("movie", series / "series.zarr", "--out", tmp_path / "m.gif", "--fps", fps))
    assert line.startswith("error: --fps must be a number in (0, 120]")
    assert not (tmp_path / "m.gif").exists()


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_seeds_outside_what_can_be_reproduced_are_refused(run_cli, tmp_path, seed):
    line = _error_line(run_cli("simulate", "licoo2", "--out", tmp_path / "t.zarr", "--seed", seed))
    assert "--seed must be an integer in [0, 9223372036854775807]" in line
    assert not list(tmp_path.iterdir())


def test_simulate_refuses_to_replace_a_cycler_log_beside_its_output(run_cli, tmp_path):
    log = tmp_path / "t_cycler.csv"
    log.write_text("user's own log\n")
    args = ("simulate", "licoo2", "--out", tmp_path / "t.zarr", "--param", "ny=24", "--param", "nx=16",
            "--param", "layer_thickness_nm=4", "--param", "layer_roughness_nm=1")
    assert "t_cycler.csv" in _error_line(run_cli(*args))
    assert log.read_text() == "user's own log\n" and not (tmp_path / "t.zarr").exists()
    assert run_cli(*args, "--overwrite").returncode == 0
    assert "user's own log" not in log.read_text()  # replaced by the twin's log


def test_malformed_options_of_the_workflows_are_one_line(run_cli, tmp_path):
    ds = simulate("holography", seed=1, ny=96, nx=96, pixel_nm=0.5, vacuum_height_nm=12.0,
                  interface_position_nm=24.0)
    io.save(ds, tmp_path / "h.zarr")
    assert run_cli("holo", "reconstruct", f"{tmp_path}/h.zarr:hologram", "--reference",
                   f"{tmp_path}/h.zarr:reference", "--out", tmp_path / "rec").returncode == 0
    line = _error_line(run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "50",
                               "--leakage", "--leakage-degree", "abc", "--vacuum", "2:20,4:90", "--out", tmp_path / "p"))
    assert "--leakage-degree 'abc'" in line
    assert not (tmp_path / "p").exists()
    csv = tmp_path / "v.csv"
    csv.write_text("position_nm,value\n" + "\n".join(f"{x},{np.tanh(x - 10)}" for x in range(20)) + "\n")
    assert "lowpass:CUTOFF" in _error_line(run_cli("spacecharge", "fit", csv, "--blur", "lowpass:abc",
                                                   "--out", tmp_path / "f"))
    assert not (tmp_path / "f").exists()


def test_a_sideband_off_the_fft_grid_is_refused_not_wrapped(run_cli, tmp_path):
    ds = simulate("holography", seed=1, ny=96, nx=96, pixel_nm=0.5, vacuum_height_nm=12.0,
                  interface_position_nm=24.0)
    io.save(ds, tmp_path / "h.zarr")
    line = _error_line(run_cli("holo", "reconstruct", f"{tmp_path}/h.zarr:hologram", "--sideband", "1000,1000",
                               "--out", tmp_path / "rec"))
    assert "outside the FFT of the 96 x 96 hologram" in line and not (tmp_path / "rec").exists()


def test_complex_maps_are_refused_not_silently_made_real(run_cli, tmp_path):
    wave = signal(np.exp(1j * np.linspace(0, 3, 256)).reshape(16, 16), ("y", "x"), name="wave", units="1",
                  coords={"y": 1.0, "x": 1.0})
    io.save(wave, tmp_path / "wave.zarr")
    line = _error_line(run_cli("denoise", tmp_path / "wave.zarr", "--method", "gaussian", "--out", tmp_path / "d"))
    assert "is complex" in line and "imaginary" in line and not (tmp_path / "d").exists()


def test_an_output_is_never_an_input(run_cli, tmp_path):
    ds = simulate("holography", seed=1, ny=96, nx=96, pixel_nm=0.5, vacuum_height_nm=12.0,
                  interface_position_nm=24.0)
    io.save(ds, tmp_path / "h.zarr")
    before = sorted(p.name for p in (tmp_path / "h.zarr").iterdir())
    # convert onto its own input used to delete every variable but the one it read
    line = _error_line(run_cli("convert", tmp_path / "h.zarr", "--variable", "hologram", "--out",
                               tmp_path / "h.zarr", "--overwrite"))
    assert "would replace the input" in line
    assert sorted(p.name for p in (tmp_path / "h.zarr").iterdir()) == before
    assert set(io.open_dataset(tmp_path / "h.zarr").data_vars) == set(ds.data_vars)
    # a command whose --out is the result folder it reads
    assert run_cli("holo", "reconstruct", f"{tmp_path}/h.zarr:hologram", "--out", tmp_path / "rec").returncode == 0
    line = _error_line(run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "50",
                               "--vacuum", "2:20,4:90", "--out", tmp_path / "rec", "--overwrite"))
    assert "would replace the input" in line
    assert {"phase", "amplitude"} <= set(io.open_dataset(tmp_path / "rec" / "result.zarr").data_vars)
    assert "would replace the input" in _error_line(
        run_cli("movie", tmp_path / "h.zarr", "--variable", "hologram", "--out", tmp_path / "h.zarr", "--overwrite"))
    # a different folder is fine
    assert run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "50",
                   "--vacuum", "2:20,4:90", "--out", tmp_path / "pot").returncode == 0


def test_a_write_killed_with_sigkill_leaves_nothing_the_next_write_does_not_clean(tmp_path):
    import os
    import subprocess
    import sys

    target = tmp_path / "result.zarr"
    code = (
        "import os, signal, sys; from ionscope import io\n"
        "with io.atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.mkdir(); (tmp / 'chunk').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(target)]).returncode == -9
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".result.tmp-")
    (tmp_path / ".result.tmp-0badc0de.zarr").mkdir()  # the pid-less name of earlier versions
    alive = tmp_path / f".result.tmp-{os.getpid()}-12345678.zarr"
    alive.mkdir()  # a write still running (this process): left alone
    io.save(signal(np.zeros((4, 4)), ("y", "x"), name="z", units="1"), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "result.zarr"])


@pytest.mark.parametrize(("args", "message"), [
    (("profile", "--psi0", "1000"), "--psi0 must be a number in [-10, 10] V"),
    (("profile", "--psi0", "1", "--length", "1e12"), "--length must be a number in (0, 100000] nm"),
    (("profile", "--psi0", "1", "--points", "2"), "--points must be an integer in [16, 1000000]"),
    (("profile", "--psi0", "1", "--points", "1000000000"), "--points must be an integer in [16, 1000000]"),
    (("bias", "--bias", "1", "--thickness", "50", "--points", "3"), "--points must be an integer"),
    (("bias", "--bias", "1e6", "--thickness", "50"), "--bias must be a number in [-20, 20] V"),
])
def test_absurd_space_charge_parameters_are_refused(run_cli, tmp_path, args, message):
    line = _error_line(run_cli("spacecharge", *args, "--theta", "0.9", "--eps-r", "50", "--c0", "6e27",
                               "--out", tmp_path / "o"))
    assert message in line and not (tmp_path / "o").exists()


def test_unreadable_csv_and_an_output_under_a_file_are_one_line(run_cli, tmp_path):
    bad = tmp_path / "v.csv"
    bad.write_bytes(b"position_nm,value\n1,\xff\xfe2\n")
    assert "not UTF-8 text" in _error_line(run_cli("spacecharge", "fit", bad, "--out", tmp_path / "o"))
    (tmp_path / "afile").write_text("x")
    line = _error_line(run_cli("spacecharge", "profile", "--psi0", "1", "--theta", "0.9", "--eps-r", "50",
                               "--c0", "6e27", "--out", tmp_path / "afile" / "sub"))
    assert "is a file, not a folder" in line and (tmp_path / "afile").read_text() == "x"


def test_a_length_unit_with_the_greek_mu_keeps_its_calibration():
    from ionscope.io._axes import assign_dims

    axes = [{"name": "y", "units": "\u03bcm", "scale": 0.002, "offset": 0.0, "size": 4},
            {"name": "x", "units": "\u03bcm", "scale": 0.002, "offset": 0.0, "size": 5}]
    named = assign_dims(axes)
    assert [a["units"] for a in named] == ["nm", "nm"] and named[0]["scale"] == pytest.approx(2.0)


def test_a_movie_of_values_beyond_float32_is_not_blank(tmp_path):
    import warnings

    from PIL import Image, ImageSequence

    from ionscope.report.movie import map_series_movie

    ramp = np.linspace(0, 1, 64).reshape(8, 8)
    da = signal(np.stack([ramp, ramp ** 2, 1 - ramp]) * 1e39, ("time", "y", "x"), name="big", units="1",
                coords={"time": 1.0, "y": 1.0, "x": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        map_series_movie(da, tmp_path / "m.gif", fps=2)
    frames = [np.asarray(f.convert("RGB"), dtype=float) for f in ImageSequence.Iterator(Image.open(tmp_path / "m.gif"))]
    assert len(frames) == 3
    assert np.abs(frames[1] - frames[0]).mean() > 1 and np.abs(frames[2] - frames[0]).mean() > 1


def test_a_truncated_tiff_is_refused_by_info_not_described(run_cli, tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "ok.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    data = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    assert run_cli("info", tmp_path / "ok.tif").returncode == 0
    assert "truncated" in _error_line(run_cli("info", tmp_path / "cut.tif"))
    assert "truncated" in _error_line(run_cli("convert", tmp_path / "cut.tif", "--out", tmp_path / "c.zarr"))
    assert not (tmp_path / "c.zarr").exists()


def test_integer_adc_values_are_not_taken_for_counts():
    """`noise="auto"` tests the Poisson hypothesis on integer data instead of assuming it."""
    from ionscope.denoise.stabilise import resolve_noise

    rng = np.random.default_rng(0)
    x = np.mgrid[:96, :96][1]
    truth = 20 + 10 * np.sin(x / 6.0)
    counts = signal(rng.poisson(truth).astype(float), ("y", "x"), name="c", units="counts")
    adc = signal(np.round(8.0 * rng.poisson(truth)), ("y", "x"), name="a", units="counts")  # 8 ADC units per e-
    noise, dose, source = resolve_noise(counts, "auto", None)
    assert (noise, dose) == ("poisson", 1.0) and "1 expected" in source
    noise, dose, source = resolve_noise(adc, "auto", None)
    assert noise == "gaussian" and dose is None and "not counts at dose 1" in source
    assert resolve_noise(adc, "auto", 0.125)[:2] == ("poisson", 0.125)  # the dose says what they are


def test_the_interface_blur_grid_is_bounded_wherever_the_optimiser_goes():
    """A position or PSF far outside the data used to ask for an unbounded convolution grid
    (24 GB and a killed process in a space-charge fit)."""
    import tracemalloc

    from ionscope.spacecharge.interface import interface_profile

    x = np.linspace(0, 60, 120)
    tracemalloc.start()
    try:
        for x0, psf in [(-1e9, 1.0), (30.0, 1e7), (1e8, 50.0)]:
            assert np.isfinite(interface_profile(x, 1.3, 0.99, 50, 6e27, x0_nm=x0, psf_nm=psf)).all()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300e6


def test_the_li_fraction_maps_carry_their_whole_chain(run_cli, tmp_path):
    """Provenance as the README promises: the maps say how they were made, from the file on."""
    import json

    ds = simulate("eels_licoo2", seed=2, li_params={"ny": 24, "nx": 16}, frames=[0, 60], dose=1e8)
    io.save(ds, tmp_path / "e.zarr")
    e = tmp_path / "e.zarr"
    assert run_cli("eels", "lithium", e, "--li-rich", f"{e}:ref_licoo2", "--li-poor", f"{e}:ref_coo2",
                   "--co-extra", f"{e}:ref_co3o4", "--fit-window", "52:90", "--out", tmp_path / "li").returncode == 0
    li = io.load(tmp_path / "li", variable="li_fraction")
    steps = [s["step"] for s in json.loads(li.attrs["provenance"])]
    assert steps[:2] == ["ionscope.simulate.licoo2", "ionscope.simulate.eels_licoo2"]
    assert steps[2:] == ["ionscope.eels.subtract_powerlaw", "ionscope.eels.mlls_fit", "ionscope.eels.li_fraction_map"]


def test_a_provenance_that_is_not_json_is_one_line(run_cli, tmp_path):
    da = signal(np.ones((3, 4, 4)), ("time", "y", "x"), name="li", units="1", coords={"time": 1.0, "y": 1.0, "x": 1.0})
    da.attrs["provenance"] = "not json {"
    io.save(da, tmp_path / "bad.zarr")
    for args in (("info", tmp_path / "bad.zarr"),
                 ("denoise", tmp_path / "bad.zarr", "--method", "gaussian", "--out", tmp_path / "o")):
        result = run_cli(*args)
        assert "provenance recorded on li is not a JSON list of steps" in _error_line(result)
        assert result.stdout == ""
    assert not (tmp_path / "o").exists()


def test_an_unreadable_side_input_is_named_by_its_option(run_cli, series, tmp_path):
    """Which of a command's inputs could not be read: the option comes first in the message."""
    line = _error_line(run_cli("eels", "lithium", series / "series.zarr", "--li-rich", tmp_path / "rich.msa",
                               "--li-poor", tmp_path / "poor.msa", "--out", tmp_path / "o"))
    assert line.startswith(f"error: --li-rich: {tmp_path / 'rich.msa'}: no such file")
    hologram = signal(np.ones((32, 32)), ("y", "x"), name="h", units="counts", coords={"y": 1.0, "x": 1.0})
    io.save(hologram, tmp_path / "holo.zarr")
    line = _error_line(run_cli("holo", "reconstruct", tmp_path / "holo.zarr", "--reference", tmp_path / "ref.zarr",
                               "--out", tmp_path / "o"))
    assert line.startswith(f"error: --reference: {tmp_path / 'ref.zarr'}: no such file")
    assert not (tmp_path / "o").exists()
