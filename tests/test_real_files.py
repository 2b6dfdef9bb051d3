"""Real measured files that public packages ship, fetched by the test setup (conftest.real_file),
read by ionscope and compared with HyperSpy, the field's reference reader (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope import io
from ionscope.errors import DimensionError, InputError, IonscopeWarning

HYPERSPY = "hyperspy==1.7.6"
EELS_SI = "hyperspy/tests/io/dm4_3D_data/EELS_SI.dm4"
CL_SI = "hyperspy/tests/io/dm4_2D_data/test-MonarcCL_spectrum-SI.dm4"


@pytest.fixture(scope="module")
def eels_si(real_file):
    return real_file(HYPERSPY, EELS_SI)


@pytest.mark.filterwarnings("ignore:Importing")  # HyperSpy's own deprecations of its plugin imports
def test_a_dm_eels_spectrum_image_matches_hyperspy(eels_si):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.load(eels_si)
    da = io.load(eels_si)
    assert da.dims == ("y", "x", "energy")
    np.testing.assert_array_equal(da.values, np.asarray(s.data))  # HyperSpy: navigation (y, x), signal last
    energy = s.axes_manager.signal_axes[0]
    np.testing.assert_allclose(da["energy"].values, energy.axis)
    y = s.axes_manager.navigation_axes[1]
    assert y.units == "µm" and da["y"].attrs["units"] == "nm"
    np.testing.assert_allclose(da["y"].values, 1000.0 * y.axis)


def test_dims_follow_the_order_info_shows_and_contradictions_are_refused(eels_si, run_cli):
    shown = run_cli("info", eels_si).stdout
    assert "dims (y, x, energy)" in shown
    # the file stores energy first; --dims names the axes as info shows them
    named = io.load(eels_si, dims="y,x,energy")
    np.testing.assert_array_equal(named.values, io.load(eels_si).values)
    assert named["energy"].attrs["units"] == "eV" and named.sizes["energy"] == 2048
    with pytest.raises(DimensionError, match="Energy loss axis .* 'x', but eV is a unit of energy"):
        io.load(eels_si, dims="energy,y,x")
    result = run_cli("info", eels_si, "--dims", "energy,y,x")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_wavelength_axis_is_not_taken_for_a_place(real_file):
    path = real_file(HYPERSPY, CL_SI)
    with pytest.raises(DimensionError, match="'Wavelength' axis .* spectral wavelength"):
        io.load(path)


def test_a_real_msa_spectrum_opens_lazily_in_info_and_convert(real_file, run_cli, tmp_path):
    """exSpy's core-loss spectrum: MSA has no lazy reader, and the commands load lazily."""
    rsciio_msa = pytest.importorskip("rsciio.msa")
    path = real_file("exspy==0.3.2", "exspy/tests/components/coreloss_spectrum.msa")
    reference = rsciio_msa.file_reader(str(path))[0]
    lazy = io.load(path, lazy=True)
    assert lazy.chunks is not None and lazy.dims == ("energy",)
    np.testing.assert_allclose(lazy.values, reference["data"])
    axis = reference["axes"][0]
    np.testing.assert_allclose(lazy["energy"].values, axis["offset"] + axis["scale"] * np.arange(axis["size"]))
    info = run_cli("info", path)
    assert info.returncode == 0 and "dims (energy)" in info.stdout, info.stderr
    assert run_cli("convert", path, "--out", tmp_path / "s.zarr").returncode == 0
    np.testing.assert_allclose(io.load(tmp_path / "s.zarr").values, reference["data"])


# --------------------------------------------------------------------------- files holding several signals

MULTI_DM3 = "hyperspy/tests/io/dm3_2D_data/multi_signal.dm3"
VELOX_SI = "hyperspy/tests/io/emd_files/fei_emd_files.zip/fei_emd_si.emd"


@pytest.mark.filterwarnings("ignore:Importing")
def test_every_signal_of_a_dm_file_is_its_own_variable(real_file, run_cli, tmp_path):
    """HyperSpy's multi_signal.dm3: a HAADF image and an uncalibrated plot; only the first was kept."""
    hs = pytest.importorskip("hyperspy.api")
    path = real_file(HYPERSPY, MULTI_DM3)
    haadf, plot = hs.load(path)
    ds = io.open_dataset(path, lazy=True)
    assert list(ds.data_vars) == ["HAADF", "Plot"] and ds.attrs["signals"] == ["HAADF", "Plot"]
    np.testing.assert_array_equal(ds["HAADF"].values, np.asarray(haadf.data))
    np.testing.assert_allclose(ds["x"].values, haadf.axes_manager[0].axis)
    np.testing.assert_array_equal(ds["Plot"].values, np.asarray(plot.data))
    # one variable line per signal in info
    shown = run_cli("info", path)
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.startswith("variable ")]
    assert lines[0].startswith("variable HAADF: dims (y, x), shape (512, 512)")
    assert lines[1].startswith("variable Plot: dims (position), shape (512,)")
    # FILE:VARIABLE and FILE:N pick one, in every command (convert here) and in Python
    np.testing.assert_array_equal(io.load(f"{path}:1").values, np.asarray(plot.data))
    np.testing.assert_array_equal(io.load(path, variable="HAADF").values, np.asarray(haadf.data))
    assert run_cli("convert", f"{path}:Plot", "--out", tmp_path / "plot.zarr").returncode == 0
    assert io.load(tmp_path / "plot.zarr").dims == ("position",)
    # an ambiguous choice says which signals there are
    with pytest.raises(InputError, match=r"holds 2 signals: HAADF \(y 512, x 512\), Plot \(position 512\)"):
        io.load(path)
    refused = run_cli("holo", "reconstruct", path, "--out", tmp_path / "r")
    assert refused.returncode == 2 and "holds 2 signals: HAADF" in refused.stderr
    assert not (tmp_path / "r").exists()
    with pytest.raises(InputError, match="no variable 'HADF'; it holds 2: HAADF"):
        io.load(f"{path}:HADF")


@pytest.mark.filterwarnings("ignore:Importing")
@pytest.mark.filterwarnings("ignore:RosettaSciIO")  # the file's own note, checked in the CLI below
def test_a_velox_emd_gives_its_haadf_and_its_eds_spectrum_image(real_file, run_cli, tmp_path):
    """A Velox EMD with a HAADF image and an EDS spectrum image (sparse-stored; the `velox` extra)."""
    pytest.importorskip("sparse")
    hs = pytest.importorskip("hyperspy.api")
    path = real_file(HYPERSPY, VELOX_SI)
    signals = {s.metadata.General.title: s for s in hs.load(path, lazy=False)}
    ds = io.open_dataset(path)
    assert set(ds.data_vars) == {"HAADF", "EDS"} == set(signals)
    np.testing.assert_array_equal(ds["EDS"].values, np.asarray(signals["EDS"].data))
    np.testing.assert_array_equal(ds["HAADF"].values, np.asarray(signals["HAADF"].data))
    energy = signals["EDS"].axes_manager.signal_axes[0]
    assert energy.units == "keV" and ds["energy"].attrs["units"] == "eV"
    np.testing.assert_allclose(ds["energy"].values, 1000.0 * energy.axis)
    shown = run_cli("info", path)
    assert shown.returncode == 0
    assert "variable EDS: dims (y, x, energy), shape (16, 16, 4096)" in shown.stdout
    assert "variable HAADF: dims (y, x), shape (16, 16)" in shown.stdout
    # RosettaSciIO's log lines (colour codes on stdout) become one warning line on stderr
    assert "\x1b[" not in shown.stdout + shown.stderr and "RosettaSciIO" not in shown.stdout
    assert [line for line in shown.stderr.splitlines() if line] == [
        "warning: RosettaSciIO (rsciio.emd._emd_velox): The file contains only one spectrum stream"]
    assert run_cli("convert", path, "--out", tmp_path / "both.zarr").returncode == 0
    assert set(io.open_dataset(tmp_path / "both.zarr").data_vars) == {"HAADF", "EDS"}


def test_a_missing_optional_reader_is_named_and_the_file_not_blamed(real_file):
    """Without `sparse` the Velox EDS reader cannot run: the error names the package and the extra."""
    import subprocess
    import sys

    path = real_file(HYPERSPY, VELOX_SI)
    code = ("import sys; sys.modules['sparse'] = None\n"  # as if not installed: importing it fails
            "from ionscope import io\n"
            f"try:\n    io.load({str(path)!r}, variable='EDS')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert shown.startswith("MissingReaderError ")
    assert "needs the optional package 'sparse'" in shown and "pip install 'ionscope[velox]'" in shown
    assert "corrupt" not in shown and "truncated" not in shown


def test_a_scale_without_a_unit_is_not_dropped_silently(tmp_path, run_cli):
    rsciio_hspy = pytest.importorskip("rsciio.hspy")
    axes = [{"name": "x", "units": "", "scale": 0.25, "offset": 3.0, "size": 8, "navigate": False}]
    rsciio_hspy.file_writer(str(tmp_path / "a.hspy"), {
        "data": np.arange(8.0), "axes": axes, "metadata": {"General": {"title": "t"}, "Signal": {}},
        "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False}, "learning_results": {}, "models": {},
        "package_info": {"name": "test", "version": "0"}})
    with pytest.warns(IonscopeWarning, match=r"kept as pixel indices: x \(position, size 8: scale 0.25, offset 3"):
        da = io.load(tmp_path / "a.hspy")
    assert da["position"].attrs["units"] == "px"
    assert da["position"].attrs["file_scale"] == 0.25 and da["position"].attrs["file_offset"] == 3.0
    shown = run_cli("info", tmp_path / "a.hspy")  # the CLI says it in one warning line on stderr
    assert shown.returncode == 0
    [line] = shown.stderr.strip().splitlines()
    assert line.startswith("warning: axis calibration without a unit ionscope knows, kept as pixel indices: x")


def test_a_lazily_loaded_file_is_identified_by_its_sha256(eels_si):
    import hashlib

    from ionscope.data import provenance

    expected = "sha256:" + hashlib.sha256(eels_si.read_bytes()).hexdigest()
    for lazy in (True, False):
        assert provenance(io.load(eels_si, lazy=lazy))[0]["inputs"] == [expected]


def test_large_files_are_hashed_once_and_again_when_they_change(tmp_path, monkeypatch):
    import hashlib

    from ionscope import data

    monkeypatch.setenv("IONSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "DIGEST_CACHE_MIN_BYTES", 0)
    f = tmp_path / "frames.bin"
    f.write_bytes(b"a" * 1000)
    first = data.file_sha256(f)
    assert first == "sha256:" + hashlib.sha256(b"a" * 1000).hexdigest()
    [entry] = list((tmp_path / "cache" / "sha256").iterdir())
    assert entry.read_text() == first and data.file_sha256(f) == first
    f.write_bytes(b"b" * 1001)  # new content, new size: a new key, never the stale digest
    assert data.file_sha256(f) == "sha256:" + hashlib.sha256(b"b" * 1001).hexdigest()
