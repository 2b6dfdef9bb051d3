"""ionscope.io: every format in, Zarr out, atomically, without touching raw data."""

from __future__ import annotations

import hashlib
import json

import dask
import numpy as np
import pytest
import xarray as xr

from ionscope import io
from ionscope.data import provenance, signal, with_provenance
from ionscope.errors import (
    DimensionError,
    FileMissingError,
    FormatError,
    InputError,
    OutputExistsError,
)
from ionscope.io._axes import assign_dims


def _rsciio_dict(data, axes, *, quantity="Intensity (counts)", beam_energy=None, title="t"):
    """A signal dict as RosettaSciIO writers take it."""
    metadata = {"General": {"title": title}, "Signal": {"signal_type": "", "quantity": quantity}}
    if beam_energy is not None:
        metadata["Acquisition_instrument"] = {"TEM": {"beam_energy": beam_energy}}
    return {
        "data": data,
        "axes": [dict(a, size=n) for a, n in zip(axes, data.shape)],
        "metadata": metadata,
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "package_info": {"name": "test", "version": "0"},
        "learning_results": {},
        "models": {},
    }


TIME_Y_X = [
    {"name": "Time", "units": "s", "scale": 60.0, "offset": 0.0, "navigate": True},
    {"name": "y", "units": "nm", "scale": 2.5, "offset": 0.0, "navigate": False},
    {"name": "x", "units": "nm", "scale": 2.5, "offset": 5.0, "navigate": False},
]


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ext", [".hspy", ".hdf5"])
def test_hspy_written_by_rosettasciio(tmp_path, ext):
    from rsciio.hspy import file_writer

    data = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    path = tmp_path / f"series{ext}"
    file_writer(str(path), _rsciio_dict(data, TIME_Y_X, quantity="Li fraction (1)", beam_energy=200.0))
    before = _sha(path)
    da = io.load(path)
    assert da.dims == ("time", "y", "x")
    np.testing.assert_array_equal(da.values, data)
    assert [da[d].attrs["units"] for d in da.dims] == ["s", "nm", "nm"]
    np.testing.assert_allclose(da.x.values, 5.0 + 2.5 * np.arange(5))
    assert da.attrs["units"] == "1" and da.attrs["long_name"] == "Li fraction"
    assert da.attrs["beam_energy_kV"] == 200.0
    step = provenance(da)[-1]
    assert step["step"] == "ionscope.io.load" and step["inputs"] == [f"sha256:{before}"]
    assert _sha(path) == before  # raw input untouched


def test_msa_spectrum_energy_axis_in_ev(tmp_path):
    from rsciio.msa import file_writer

    counts = np.linspace(100, 10, 200).astype(np.float64)
    path = tmp_path / "ref.msa"
    axes = [{"name": "Energy loss", "units": "keV", "scale": 0.0005, "offset": 0.040, "navigate": False}]
    file_writer(str(path), _rsciio_dict(counts, axes))
    da = io.load(path)
    assert da.dims == ("energy",) and da.energy.attrs["units"] == "eV"
    np.testing.assert_allclose(da.energy.values[:3], [40.0, 40.5, 41.0])
    np.testing.assert_allclose(da.values, counts, rtol=1e-6)


def test_tiff_image_calibration(tmp_path):
    from rsciio.tiff import file_writer

    image = np.arange(24, dtype=np.uint16).reshape(4, 6)
    axes = [
        {"name": "y", "units": "µm", "scale": 0.002, "offset": 0.0, "navigate": False},
        {"name": "x", "units": "µm", "scale": 0.002, "offset": 0.0, "navigate": False},
    ]
    path = tmp_path / "map.tif"
    file_writer(str(path), _rsciio_dict(image, axes))
    da = io.load(path)
    assert da.dims == ("y", "x") and da.dtype == np.uint16
    np.testing.assert_array_equal(da.values, image)
    assert da.x.attrs["units"] == "nm"
    np.testing.assert_allclose(da.x.values[1], 2.0, rtol=1e-5)  # 0.002 µm = 2 nm


def test_emd_written_by_rosettasciio(tmp_path):
    from rsciio.emd import file_writer

    data = np.random.default_rng(1).random((3, 4, 5)).astype(np.float32)
    path = tmp_path / "frames.emd"
    file_writer(str(path), _rsciio_dict(data, TIME_Y_X))
    da = io.load(path)
    assert da.dims == ("time", "y", "x")
    np.testing.assert_array_equal(da.values, data)
    assert da.y.attrs["units"] == "nm"


def test_npy_default_dims_and_override(tmp_path):
    path = tmp_path / "frames.npy"
    np.save(path, np.zeros((2, 3, 4), dtype=np.float32))
    assert io.load(path).dims == ("time", "y", "x")
    da = io.load(path, dims="y,x,energy")
    assert da.dims == ("y", "x", "energy") and da.energy.attrs["units"] == "px"
    with pytest.raises(DimensionError, match="names 2 axes"):
        io.load(path, dims="y,x")
    with pytest.raises(DimensionError, match="distinct names"):
        io.load(path, dims="y,y,x")


def test_netcdf(tmp_path, series):
    path = tmp_path / "series.nc"
    series.to_dataset().to_netcdf(path)
    da = io.load(path)
    xr.testing.assert_identical(da, series)


def test_zarr_round_trip_is_exact_including_complex(tmp_path, series):
    wave = signal(
        (series.values + 1j * series.values[::-1]).astype(np.complex64), series.dims, name="wave",
        units="1", coords={d: series[d].values for d in series.dims}, attrs={"beam_energy_kV": 300.0},
    )
    wave = with_provenance(wave, "ionscope.test.reconstruct", {"aperture_px": 12.5}, inputs=[series])
    ds = xr.Dataset({"wave": wave, "truth": series})
    ds.attrs = {"primary": "wave", "provenance": wave.attrs["provenance"]}
    path = io.save(ds, tmp_path / "r.zarr")
    back = io.open_dataset(path)
    xr.testing.assert_identical(back, ds)
    assert back.wave.dtype == np.complex64
    loaded = io.load(path)
    assert loaded.name == "wave" and provenance(loaded) == provenance(wave)
    assert io.load(path, variable="truth").attrs["units"] == "1"


def test_lazy_load_stays_lazy_until_written(tmp_path, series):
    from rsciio.hspy import file_writer

    path = tmp_path / "s.hspy"
    file_writer(str(path), _rsciio_dict(series.values, TIME_Y_X))
    computes = []

    with dask.config.set(scheduler="sync"), dask.callbacks.Callback(start=lambda dsk: computes.append(1)):
        da = io.load(path, lazy=True)
        assert da.chunks is not None
        scaled = (da * 2).mean("time")
        assert computes == []
        out = io.save(scaled, tmp_path / "mean.zarr")
    assert len(computes) >= 1
    np.testing.assert_allclose(io.load(out).values, (series.values * 2).mean(0), rtol=1e-6)
    lazy_zarr = io.load(out, lazy=True)
    assert lazy_zarr.chunks is not None


def test_save_refuses_existing_output_and_replaces_atomically(tmp_path, series):
    path = io.save(series, tmp_path / "a.zarr")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        io.save(series, path)
    bad = series.copy()
    bad.attrs["unserialisable"] = object()
    with pytest.raises(TypeError):  # xarray: invalid attribute
        io.save(bad, path, overwrite=True)
    xr.testing.assert_identical(io.load(path), series)  # the old result survives a failed write
    io.save(series * 2, path, overwrite=True)
    np.testing.assert_allclose(io.load(path).values, series.values * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr"]  # no temporary leftovers


def test_save_never_overwrites_the_raw_input(tmp_path, series):
    path = io.save(series, tmp_path / "raw.zarr")
    da = io.load(path)
    da.attrs["source_file"] = str(path)
    with pytest.raises(InputError, match="raw input"):
        io.save(da, path, overwrite=True)


def test_export_hspy_round_trip_keeps_calibration_and_provenance(tmp_path, series):
    step = with_provenance(series, "ionscope.test.step", {"k": 1})
    path = io.export(step, tmp_path / "out.hspy")
    back = io.load(path)
    np.testing.assert_array_equal(back.values, series.values)
    assert [s["step"] for s in provenance(back)] == ["ionscope.test.step", "ionscope.io.load"]
    np.testing.assert_allclose(back.y.values, series.y.values)


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(FileMissingError, match="no such file"):
        io.load(tmp_path / "nope.dm4")


def test_empty_file(tmp_path):
    (tmp_path / "empty.hspy").write_bytes(b"")
    with pytest.raises(FormatError, match="empty"):
        io.load(tmp_path / "empty.hspy")


def test_truncated_hspy(tmp_path, series):
    from rsciio.hspy import file_writer

    path = tmp_path / "full.hspy"
    file_writer(str(path), _rsciio_dict(series.values, TIME_Y_X))
    cut = tmp_path / "cut.hspy"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match="truncated"):
        io.load(cut)


def test_random_bytes_named_dm4(tmp_path):
    path = tmp_path / "noise.dm4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FormatError, match="DigitalMicrograph"):
        io.load(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("1 2 3")
    with pytest.raises(FormatError, match=r"unknown file type '\.xyz'.*\.dm4"):
        io.load(path)


def test_truncated_zarr_store(tmp_path, series):
    path = io.save(series, tmp_path / "s.zarr")
    for meta in path.rglob("zarr.json"):
        meta.unlink()
    for meta in path.rglob(".z*"):
        meta.unlink()
    with pytest.raises(FormatError, match="Zarr"):
        io.load(path)


# ----------------------------------------------------------------------------- axis mapping


def _axes(*specs):
    return [{"name": n, "units": u, "scale": 1.0, "offset": 0.0, "size": 4} for n, u in specs]


def test_axes_map_by_units_not_position():
    named = assign_dims(_axes(("a", "nm"), ("b", "nm"), ("c", "eV")))
    assert [a["dim"] for a in named] == ["y", "x", "energy"]
    named = assign_dims(_axes(("frame", "min"), ("b", "µm"), ("c", "µm")))
    assert [a["dim"] for a in named] == ["time", "y", "x"]
    assert named[0]["scale"] == 60.0 and named[1]["scale"] == 1000.0


def test_single_length_axis_is_a_position_and_spectra_lines_work():
    named = assign_dims(_axes(("p", "nm"), ("E", "eV")))
    assert [a["dim"] for a in named] == ["position", "energy"]


def test_ambiguous_axes_ask_for_dims():
    with pytest.raises(DimensionError, match="--dims"):
        assign_dims(_axes(("a", "nm"), ("b", "nm"), ("c", "nm")))
    with pytest.raises(DimensionError, match="--dims"):
        assign_dims(_axes(("", ""), ("E", "eV")))


def test_override_keeps_calibration_of_matching_axes():
    named = assign_dims(_axes(("", ""), ("b", "nm"), ("c", "nm")), ["time", "y", "x"])
    assert [a["units"] for a in named] == ["px", "nm", "nm"]


def test_supported_extensions_cover_the_field():
    exts = set(io.supported_extensions())
    assert {".hspy", ".hdf5", ".dm3", ".dm4", ".emd", ".msa", ".tif", ".npy", ".zarr", ".nc"} <= exts
    assert json.dumps(sorted(exts))


# ----------------------------------------------------------------------------- DigitalMicrograph


@pytest.mark.parametrize("version", [3, 4])
def test_dm_spectrum_image_energy_last_in_ev(tmp_path, version):
    from dmfile import write_dm

    data = np.random.default_rng(version).random((4, 5, 32))
    axes = [
        {"name": "y", "units": "nm", "scale": 0.5, "offset": 0.0},
        {"name": "x", "units": "nm", "scale": 0.5, "offset": 0.0},
        {"name": "E", "units": "eV", "scale": 0.25, "offset": 40.0},
    ]
    path = tmp_path / f"si.dm{version}"
    write_dm(path, data, version=version, axes=axes, title="LCO SI", beam_energy_kV=200.0, signal_type="EELS")
    da = io.load(path)
    assert da.dims == ("y", "x", "energy")
    np.testing.assert_array_equal(da.values, data)
    np.testing.assert_allclose(da.energy.values[[0, 1]], [40.0, 40.25], rtol=1e-6)
    assert da.energy.attrs["units"] == "eV" and da.x.attrs["units"] == "nm"
    assert da.attrs["beam_energy_kV"] == pytest.approx(200.0)
    assert da.attrs["source_format"] == "DigitalMicrograph"


@pytest.mark.parametrize("version", [3, 4])
def test_dm_time_series_of_images(tmp_path, version):
    from dmfile import write_dm

    data = np.arange(3 * 4 * 6, dtype=np.int32).reshape(3, 4, 6)
    axes = [
        {"name": "t", "units": "s", "scale": 60.0, "offset": 0.0},
        {"name": "y", "units": "µm", "scale": 0.0025, "offset": 0.0},
        {"name": "x", "units": "µm", "scale": 0.0025, "offset": 0.0},
    ]
    path = tmp_path / f"frames.dm{version}"
    write_dm(path, data, version=version, axes=axes)
    da = io.load(path, lazy=True)
    assert da.chunks is not None and da.dims == ("time", "y", "x")
    np.testing.assert_array_equal(da.values, data)
    np.testing.assert_allclose(da.y.values[1], 2.5, rtol=1e-6)
    np.testing.assert_allclose(da.time.values[2], 120.0, rtol=1e-6)


def test_write_result_writes_both_and_refuses_a_second_run(tmp_path, series):
    out = tmp_path / "run"
    zarr_path, json_path = io.write_result(out, series.to_dataset(), {"mean": np.float32(0.5), "n": np.int64(3)})
    assert json.loads(json_path.read_text()) == {"mean": 0.5, "n": 3}
    xr.testing.assert_identical(io.open_dataset(zarr_path)["li_fraction"], series)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        io.prepare_out_dir(out)
    io.write_result(out, series.to_dataset(), {"n": 4}, overwrite=True)
    assert json.loads(json_path.read_text()) == {"n": 4}


def test_zarr_round_trip_of_string_labels(tmp_path, series):
    ds = xr.Dataset(
        {"coefficients": (("component", "x"), np.ones((2, 5)), {"units": "1"})},
        coords={"component": ("component", ["li_rich", "co3o4"], {"units": "1"}), "x": series.x},
    )
    ds.attrs["provenance"] = "[]"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.save(ds, tmp_path / "labels.zarr")
        back = io.open_dataset(tmp_path / "labels.zarr")
    xr.testing.assert_identical(back, ds)
    assert back.component.dtype.kind == "U"
