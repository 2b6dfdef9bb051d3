"""TOF-SIMS readers (issue 14): imzML files written by pyimzML's own ImzMLWriter read by ionscope
and compared with pyimzML's own parser; ionscope's imzML writer read back by pyimzML; Tofwerk .h5
files made by RosettaSciIO's own test-file generator compared with RosettaSciIO's reader; the
IONTOF extra missing; ion-image stacks with an ``ion`` dim."""

from __future__ import annotations

import re
import sys
import uuid
import warnings

import numpy as np
import pytest

from ionscope import io
from ionscope.errors import (
    ConfigError, DimensionError, FileMissingError, FormatError, InputError, IonscopeWarning, MissingReaderError,
)

pyimzml = pytest.importorskip("pyimzml")
from pyimzml.compression import ZlibCompression  # noqa: E402
from pyimzml.ImzMLParser import ImzMLParser  # noqa: E402
from pyimzml.ImzMLWriter import ImzMLWriter  # noqa: E402

NY, NX = 4, 5


def _pyimzml_file(path, *, mode, spec_type, empty=(), seed=0, **kwargs):
    """Write a (NY, NX) map with pyimzML's ImzMLWriter, leaving out the pixels ``empty`` (y, x);
    returns {(y, x): (mz, intensities)} as written."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(1.0, 60.0, 9)
    written = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ImzMLWriter(str(path), mode=mode, spec_type=spec_type, **kwargs) as w:
            for y in range(NY):
                for x in range(NX):
                    if (y, x) in empty:
                        continue
                    if mode == "continuous":
                        mz = axis
                    else:
                        mz = np.sort(rng.uniform(1, 60, int(rng.integers(1, 7))))
                    ints = rng.poisson(4, mz.size).astype(np.float32)
                    w.addSpectrum(mz, ints, (x + 1, y + 1))  # imzML positions are 1-based (x, y)
                    written[(y, x)] = (np.asarray(mz, np.float64), ints)
    return written


def _compare_with_pyimzml(path, ds):
    parser = ImzMLParser(str(path))
    try:
        for i, (x, y, _) in enumerate(parser.coordinates):
            mz, ints = parser.getspectrum(i)
            got = ds.counts.values[y - 1, x - 1]
            if "peak_mass" in ds.coords:
                np.testing.assert_array_equal(got[: ints.size], ints)
                assert np.all(got[ints.size:] == 0)
                masses = ds.peak_mass.values[y - 1, x - 1]
                np.testing.assert_array_equal(masses[: mz.size], mz)
                assert np.all(np.isnan(masses[mz.size:]))
            else:
                np.testing.assert_array_equal(got, ints)
                np.testing.assert_array_equal(ds.mass.values, mz)
    finally:
        parser.m.close()
    return parser


@pytest.mark.parametrize("mode,spec_type", [("continuous", "profile"), ("processed", "centroid"),
                                            ("processed", "profile"), ("continuous", "centroid")])
def test_imzml_written_by_pyimzml_matches_pyimzml_parser(tmp_path, mode, spec_type):
    path = tmp_path / "map.imzML"
    empty = {(0, 3), (2, 1), (3, 4)}  # SurfaceLab leaves empty pixels out
    written = _pyimzml_file(path, mode=mode, spec_type=spec_type, empty=empty)
    with pytest.warns(IonscopeWarning, match="no pixel size"):
        ds = io.open_dataset(path)
    _compare_with_pyimzml(path, ds)
    mass_dim = "mass" if mode == "continuous" else "peak"
    assert ds.counts.dims == ("y", "x", mass_dim)
    assert ds.attrs["imzml_mode"] == mode and ds.attrs["spectrum_type"] == spec_type
    assert ds.attrs["empty_pixels"] == len(empty) and ds.attrs["primary"] == "counts"
    assert ds.attrs["source_format"] == "imzML" and uuid.UUID(ds.attrs["uuid"].strip("{}"))
    for y, x in empty:
        assert np.all(ds.counts.values[y, x] == 0)
    # orientation: position y = 1 is row 0, x = 1 column 0
    np.testing.assert_array_equal(ds.counts.values[1, 2][: written[(1, 2)][1].size], written[(1, 2)][1])
    assert ds.y.attrs["units"] == "px"
    if mode == "continuous":
        assert ds.mass.attrs["units"] == "u" and ds.mass.dtype == np.float64
    else:
        assert ds.peak_mass.attrs["units"] == "u" and ds.peak_mass.dims == ("y", "x", "peak")
    with pytest.warns(IonscopeWarning):
        steps = io.load(path).attrs["provenance"]
    assert "ionscope.io.load" in steps and steps.count("sha256:") == 2  # .imzML and .ibd


def test_imzml_lazy_equals_eager(tmp_path):
    path = tmp_path / "lazy.imzML"
    _pyimzml_file(path, mode="processed", spec_type="centroid", empty={(1, 1)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IonscopeWarning)
        eager = io.open_dataset(path)
        lazy = io.open_dataset(path, lazy=True)
    assert lazy.counts.chunks is not None and lazy.peak_mass.chunks is not None
    np.testing.assert_array_equal(lazy.counts.values, eager.counts.values)
    np.testing.assert_array_equal(lazy.peak_mass.values, eager.peak_mass.values)


def test_imzml_pyimzml_fallback_for_other_layouts(tmp_path):
    """Attributes in another order (value before accession): the fast index steps aside and
    pyimzML's parser indexes the file - same result."""
    path = tmp_path / "odd.imzML"
    _pyimzml_file(path, mode="processed", spec_type="centroid")
    text = path.read_text(encoding="latin-1")
    # move each offset's value before its accession
    text = re.sub(r'<cvParam accession="IMS:1000102" cvRef="IMS" name="external offset" value="(\d+)"/>',
                  r'<cvParam value="\1" cvRef="IMS" name="external offset" accession="IMS:1000102"/>', text)
    path.write_text(text, encoding="latin-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IonscopeWarning)
        ds = io.open_dataset(path)
    _compare_with_pyimzml(path, ds)


def test_write_imzml_read_back_by_pyimzml(tmp_path):
    rng = np.random.default_rng(3)
    n = rng.integers(0, 5, (3, 4))
    mass = np.full((3, 4, 5), np.nan)
    counts = np.zeros((3, 4, 5), dtype=np.int64)
    for (y, x), k in np.ndenumerate(n):
        mass[y, x, :k] = np.sort(rng.uniform(5, 200, k))
        counts[y, x, :k] = rng.integers(1, 50, k)
    xml, ibd = io.write_imzml(tmp_path / "w.imzML", mass, counts, pixel_size_um=(0.1, 0.2), skip_empty=True,
                              start_time="2025-06-02T10:04:00")
    assert xml.exists() and ibd.exists() and ibd.name == "w.ibd"
    # the acquisition time is the mzML run's startTimeStamp, as an XML parser sees it
    import xml.etree.ElementTree as ET

    run = ET.parse(xml).getroot().find("{http://psi.hupo.org/ms/mzml}run")
    assert run is not None and run.get("startTimeStamp") == "2025-06-02T10:04:00"
    parser = ImzMLParser(str(xml))
    try:
        listed = {(y - 1, x - 1): i for i, (x, y, _) in enumerate(parser.coordinates)}
        assert set(listed) == {(y, x) for (y, x), k in np.ndenumerate(n) if k > 0}
        for (y, x), i in listed.items():
            mz, ints = parser.getspectrum(i)
            np.testing.assert_array_equal(mz, mass[y, x, : n[y, x]])
            np.testing.assert_array_equal(ints, counts[y, x, : n[y, x]])
        assert parser.imzmldict["pixel size x"] == pytest.approx(0.2)
        assert parser.imzmldict["pixel size y"] == pytest.approx(0.1)
        assert parser.spectrum_mode == "centroid"
        assert "processed" in parser.metadata.file_description
    finally:
        parser.m.close()
    ds = io.open_dataset(xml)  # and ionscope reads its own files: y, x in nm
    np.testing.assert_allclose(ds.x.values, np.arange(4) * 200.0)
    np.testing.assert_allclose(ds.y.values, np.arange(3) * 100.0)
    assert ds.attrs["empty_pixels"] == int(np.count_nonzero(n == 0))
    assert ds.attrs["start_time"] == "2025-06-02T10:04:00"
    got = np.zeros_like(counts)
    got[..., : ds.sizes["peak"]] = ds.counts.values
    np.testing.assert_array_equal(got, counts)


def test_write_imzml_continuous_profile(tmp_path):
    axis = np.linspace(1, 100, 7)
    counts = np.random.default_rng(1).random((2, 3, 7)).astype(np.float32)
    xml, _ = io.write_imzml(tmp_path / "c.imzML", axis, counts, mode="continuous", spectrum_type="profile",
                            pixel_size_um=0.5)
    parser = ImzMLParser(str(xml))
    try:
        assert parser.spectrum_mode == "profile" and "continuous" in parser.metadata.file_description
        for i, (x, y, _) in enumerate(parser.coordinates):
            mz, ints = parser.getspectrum(i)
            np.testing.assert_array_equal(mz, axis)
            np.testing.assert_array_equal(ints, counts[y - 1, x - 1])
    finally:
        parser.m.close()
    ds = io.open_dataset(xml)
    assert ds.counts.dims == ("y", "x", "mass") and ds.attrs["imzml_mode"] == "continuous"
    np.testing.assert_array_equal(ds.mass.values, axis)
    with pytest.raises(OSError):  # refuses to overwrite (OutputExistsError)
        io.write_imzml(xml, axis, counts, mode="continuous")


def test_write_imzml_validates(tmp_path):
    good = np.ones((2, 2, 3))
    with pytest.raises(ConfigError, match="mode"):
        io.write_imzml(tmp_path / "a.imzML", good, good, mode="both")
    with pytest.raises(ConfigError, match="pixel_size_um"):
        io.write_imzml(tmp_path / "a.imzML", good, good, pixel_size_um=-1)
    with pytest.raises(DimensionError, match="continuous mode"):
        io.write_imzml(tmp_path / "a.imzML", good, good, mode="continuous")
    with pytest.raises(InputError, match="negative"):
        io.write_imzml(tmp_path / "a.imzML", good, -good)
    with pytest.raises(InputError, match="NaN masses"):
        io.write_imzml(tmp_path / "a.imzML", np.full((2, 2, 3), np.nan), good)
    with pytest.raises(InputError, match=".imzML"):
        io.write_imzml(tmp_path / "a.h5", good, good)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- careless input


@pytest.fixture
def small_imzml(tmp_path):
    path = tmp_path / "s.imzML"
    io.write_imzml(path, np.array([1.0, 2.0, 3.0]), np.ones((2, 2, 3)), mode="continuous", pixel_size_um=1)
    return path


def test_imzml_missing_ibd(small_imzml, run_cli):
    small_imzml.with_suffix(".ibd").unlink()
    with pytest.raises(FileMissingError, match=r"s\.ibd is missing"):
        io.load(small_imzml)
    result = run_cli("info", small_imzml)
    assert result.returncode == 2 and result.stderr.startswith("error:") and result.stderr.count("\n") == 1


def test_imzml_uuid_mismatch(small_imzml, tmp_path):
    other = tmp_path / "o.imzML"
    io.write_imzml(other, np.array([1.0, 2.0, 3.0]), np.ones((2, 2, 3)), mode="continuous")
    small_imzml.with_suffix(".ibd").write_bytes(other.with_suffix(".ibd").read_bytes())
    with pytest.raises(FormatError, match="does not belong to it.*different exports"):
        io.load(small_imzml)


def test_imzml_truncated_ibd(small_imzml):
    ibd = small_imzml.with_suffix(".ibd")
    ibd.write_bytes(ibd.read_bytes()[:-10])
    with pytest.raises(FormatError, match="beyond its end.*truncated"):
        io.load(small_imzml)


def test_imzml_truncated_xml(small_imzml):
    data = small_imzml.read_bytes()
    small_imzml.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(FormatError, match="truncated"):
        io.load(small_imzml)


def test_imzml_compressed_refused(tmp_path):
    path = tmp_path / "z.imzML"
    _pyimzml_file(path, mode="processed", spec_type="centroid", intensity_compression=ZlibCompression())
    with pytest.raises(FormatError, match="zlib compression.*uncompressed"):
        io.load(path)


def test_imzml_not_imzml(tmp_path, run_cli):
    path = tmp_path / "junk.imzML"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    path.with_suffix(".ibd").write_bytes(b"\0" * 32)
    with pytest.raises(FormatError, match="not an imzML file"):
        io.load(path)
    path.write_text('<?xml version="1.0"?><mzML xmlns="http://psi.hupo.org/ms/mzml"><run><spectrumList/></run></mzML>')
    with pytest.raises(FormatError, match="not an imzML file"):
        io.load(path)
    result = run_cli("info", path)
    assert result.returncode == 2 and result.stderr.startswith("error:")


def test_imzml_info_and_dims(small_imzml, run_cli):
    result = run_cli("info", small_imzml)
    assert result.returncode == 0, result.stderr
    assert "counts" in result.stdout and "mass" in result.stdout
    with pytest.raises(DimensionError, match="drop --dims"):
        io.load(small_imzml, dims="x,y,mass")
    assert io.load(f"{small_imzml}:counts").dims == ("y", "x", "mass")


# --------------------------------------------------------------------------- ion-image stacks


def test_ion_image_stack_dims_npy_tif_hspy(tmp_path):
    """``--dims ion,y,x`` names an ion-image stack in uncalibrated files (it used to be refused)."""
    from ionscope.data import signal

    stack = np.random.default_rng(0).integers(0, 9, (3, 6, 5)).astype(np.float32)
    np.save(tmp_path / "ions.npy", stack)
    da = io.load(tmp_path / "ions.npy", dims="ion,y,x")
    assert da.dims == ("ion", "y", "x") and da.ion.attrs["units"] == "1"
    np.testing.assert_array_equal(da.values, stack)
    states = io.load(tmp_path / "ions.npy", dims="state,y,x")
    assert states.dims == ("state", "y", "x")
    with pytest.raises(DimensionError, match="ion-image"):
        io.load(tmp_path / "ions.npy", dims="ions,y,x")
    image = signal(stack, ("time", "y", "x"), name="stack", units="counts", coords={"y": 100.0, "x": 100.0})
    for ext in (".tif", ".hspy"):
        io.export(image, tmp_path / f"ions{ext}")
        da = io.load(tmp_path / f"ions{ext}", dims="ion,y,x")
        assert da.dims == ("ion", "y", "x"), ext
        np.testing.assert_array_equal(da.values, stack)
        assert da.x.attrs["units"] == "nm" and float(da.x[1]) == pytest.approx(100.0)


def test_ion_coordinate_round_trips_through_zarr(tmp_path):
    from ionscope.data import signal

    stack = signal(np.ones((3, 2, 2), np.float32), ("ion", "y", "x"), name="counts", units="counts",
                   coords={"ion": np.array(["7Li+", "6Li+", "59Co+"]), "y": 100.0, "x": 100.0})
    stack = stack.assign_coords(ion_mass=("ion", np.array([7.01546, 6.01457, 58.93265]), {"units": "u"}))
    io.save(stack, tmp_path / "ions.zarr")
    back = io.load(tmp_path / "ions.zarr")
    assert back.dims == ("ion", "y", "x") and back.ion.dtype.kind == "U"
    assert list(back.ion.values) == ["7Li+", "6Li+", "59Co+"]
    np.testing.assert_array_equal(back.ion_mass.values, stack.ion_mass.values)
    assert back.ion_mass.attrs["units"] == "u"
    assert io.load(tmp_path / "ions.zarr", dims="ion,y,x").dims == ("ion", "y", "x")


# --------------------------------------------------------------------------- Tofwerk .h5


@pytest.fixture(scope="module")
def tofwerk_files(tmp_path_factory):
    gen = pytest.importorskip("rsciio.tests.generate_tofwerk_test_files")
    folder = tmp_path_factory.mktemp("tofwerk")
    gen.make_opened_fixture(folder / "opened.h5")
    gen.make_raw_fixture(folder / "raw.h5")
    return folder


@pytest.mark.parametrize("name", ["opened.h5", "raw.h5"])
def test_tofwerk_matches_rosettasciio(tofwerk_files, name):
    from rsciio.tofwerk import file_reader

    path = tofwerk_files / name
    ref = {s["metadata"]["General"]["title"].split("(")[1].rstrip(")"): s for s in file_reader(
        str(path), signal=["sum_spectrum", "nominal_peak_data", "fib_images"], show_progressbar=False)}
    ds = io.open_dataset(path)
    assert ds.attrs["primary"] == "counts" and ds.attrs["source_format"] == "Tofwerk"
    peaks = ref["nominal peak data"]
    assert ds.counts.dims == ("depth", "y", "x", "ion")
    np.testing.assert_array_equal(ds.counts.values, peaks["data"])
    assert list(ds.ion.values) == [p["label"] for p in peaks["metadata"]["Signal"]["peak_table"]]
    np.testing.assert_array_equal(ds.ion_mass.values, peaks["axes"][3]["axis"])
    assert ds.ion_mass.attrs["units"] == "u"
    y_axis = peaks["axes"][1]
    assert y_axis["units"] == "µm"
    np.testing.assert_allclose(ds.y.values, np.arange(y_axis["size"]) * y_axis["scale"] * 1e3)
    assert ds.x.attrs["units"] == "nm"
    spectrum = ref["sum spectrum"]
    np.testing.assert_array_equal(ds.sum_spectrum.values, spectrum["data"])
    np.testing.assert_array_equal(ds.mass.values, spectrum["axes"][0]["axis"])
    fib = io.load(f"{path}:fib_images")
    assert fib.dims == ("depth", "y", "x")
    np.testing.assert_array_equal(fib.values, ref["FIB SE images"]["data"])
    np.testing.assert_allclose(float(fib.x[1]), ref["FIB SE images"]["axes"][2]["scale"] * 1e3)
    assert io.load(f"{path}:sum_spectrum").dims == ("mass",)
    assert io.load(path).name == "counts"
    lazy = io.open_dataset(path, lazy=True)
    assert lazy.counts.chunks is not None
    np.testing.assert_array_equal(lazy.counts.values, ds.counts.values)


def test_tofwerk_info_and_bad_variable(tofwerk_files, run_cli):
    path = tofwerk_files / "opened.h5"
    result = run_cli("info", path)
    assert result.returncode == 0, result.stderr
    assert "counts" in result.stdout and "sum_spectrum" in result.stdout
    with pytest.raises(InputError, match="fib_images"):
        io.load(f"{path}:event_list")


# --------------------------------------------------------------------------- IONTOF .ita (pySPM)


@pytest.mark.parametrize("ext", [".ita", ".itm"])
def test_iontof_without_pyspm_names_the_extra(tmp_path, monkeypatch, run_cli, ext):
    """No IONTOF file ships on the package index: only the missing-extra path is tested."""
    monkeypatch.setitem(sys.modules, "pySPM", None)  # import pySPM -> ModuleNotFoundError
    path = tmp_path / f"measurement{ext}"
    path.write_bytes(b"ITStrF01" + bytes(100))
    with pytest.raises(MissingReaderError, match=r"pip install 'ionscope\[iontof\]'"):
        io.load(path)
    result = run_cli("info", path)
    assert result.returncode != 0 and "ionscope[iontof]" in result.stderr
