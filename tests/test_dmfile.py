"""The DM3/DM4 test-file writer produces files RosettaSciIO reads back faithfully."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from dmfile import write_dm
from rsciio.digitalmicrograph import file_reader

VERSIONS = [3, 4]


def _axis(name, units, scale, offset):
    return {"name": name, "units": units, "scale": scale, "offset": offset}


def _read(path):
    """The single image rsciio finds in ``path``."""
    images = file_reader(str(path))
    assert len(images) == 1
    return images[0]


def _image_tags(image):
    return image["original_metadata"]["ImageList"]["TagGroup0"]["ImageTags"]


def _beam_energy_kV(image):
    """Beam energy through rsciio's own metadata mapping of the Voltage tag."""
    key = "ImageList.TagGroup0.ImageTags.Microscope Info.Voltage"
    target, convert = image["mapping"][key]
    assert target == "Acquisition_instrument.TEM.beam_energy"
    return convert(_image_tags(image)["Microscope Info"]["Voltage"])


def _check_axes(found, expected, names):
    assert [a["name"] for a in found] == names
    for got, want in zip(found, expected):
        assert got["units"] == want["units"]
        assert got["scale"] == pytest.approx(want["scale"], rel=1e-6)  # stored as float32
        assert got["offset"] == pytest.approx(want["offset"], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("version", VERSIONS)
def test_spectrum_1d(tmp_path, version):
    data = np.random.default_rng(1).random(50).astype(np.float32)
    axes = [_axis("Energy loss", "eV", 0.25, -10.0)]
    path = tmp_path / f"spectrum.dm{version}"
    write_dm(path, data, version=version, axes=axes, title="EELS spectrum",
             beam_energy_kV=200.0, signal_type="EELS")
    image = _read(path)
    assert image["data"].dtype == np.float32
    np.testing.assert_array_equal(image["data"], data)
    _check_axes(image["axes"], axes, ["Energy loss"])
    assert [a["navigate"] for a in image["axes"]] == [False]
    assert image["metadata"]["General"]["title"] == "EELS spectrum"
    assert image["metadata"]["Signal"]["signal_type"] == "EELS"
    assert _image_tags(image)["Meta Data"] == {"Format": "Spectrum", "Signal": "EELS"}
    assert _beam_energy_kV(image) == 200.0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64])
def test_image_2d(tmp_path, version, dtype):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 1000, size=(7, 9)).astype(dtype)
    axes = [_axis("y", "nm", 0.5, 1.5), _axis("x", "µm", 0.125, 0.0)]
    path = tmp_path / f"image.dm{version}"
    write_dm(path, data, version=version, axes=axes, beam_energy_kV=300.0)
    image = _read(path)
    assert image["data"].dtype == dtype
    np.testing.assert_array_equal(image["data"], data)
    _check_axes(image["axes"], axes, ["y", "x"])
    assert image["metadata"]["General"]["title"] == ""
    assert image["metadata"]["Signal"]["signal_type"] == ""
    assert _beam_energy_kV(image) == 300.0


@pytest.mark.parametrize("version", VERSIONS)
def test_stack_3d(tmp_path, version):
    """A (time, y, x) stack keeps numpy order; rsciio calls the axes z, y, x."""
    data = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6) - 60
    axes = [_axis("time", "s", 60.0, 0.0), _axis("y", "nm", 2.5, 0.0), _axis("x", "nm", 2.5, -5.0)]
    path = tmp_path / f"stack.dm{version}"
    write_dm(path, data, version=version, axes=axes, beam_energy_kV=80.0)
    image = _read(path)
    np.testing.assert_array_equal(image["data"], data)
    _check_axes(image["axes"], axes, ["z", "y", "x"])
    assert [a["navigate"] for a in image["axes"]] == [True, False, False]
    assert len(image["post_process"]) == 1  # squeeze only, no spectrum transpose
    assert _beam_energy_kV(image) == 80.0


@pytest.mark.parametrize("version", VERSIONS)
def test_spectrum_image_3d(tmp_path, version):
    """A (y, x, energy) EELS spectrum image is stored the DM way, energy slowest.

    rsciio returns it as (energy, y, x) and flags it as a spectrum image (the
    ``Meta Data.Format`` tag, and a to_signal1D post-process step).
    """
    data = np.random.default_rng(3).normal(size=(3, 4, 20))
    axes = [_axis("y", "nm", 1.0, 0.0), _axis("x", "nm", 2.0, 10.0), _axis("E", "eV", 0.1, 395.0)]
    path = tmp_path / f"si.dm{version}"
    write_dm(path, data, version=version, axes=axes, beam_energy_kV=200.0, signal_type="EELS")
    image = _read(path)
    assert image["data"].dtype == np.float64
    np.testing.assert_array_equal(image["data"], np.moveaxis(data, -1, 0))
    np.testing.assert_array_equal(np.moveaxis(image["data"], 0, -1), data)
    _check_axes(image["axes"], [axes[2], axes[0], axes[1]], ["Energy loss", "y", "x"])
    assert [a["navigate"] for a in image["axes"]] == [True, False, False]
    assert _image_tags(image)["Meta Data"] == {"Format": "Spectrum image", "Signal": "EELS"}
    assert len(image["post_process"]) == 2  # to_signal1D, then squeeze
    assert image["metadata"]["Signal"]["signal_type"] == "EELS"
    assert _beam_energy_kV(image) == 200.0


@pytest.mark.parametrize("version", VERSIONS)
def test_header_and_no_optional_tags(tmp_path, version):
    path = tmp_path / f"plain.dm{version}"
    write_dm(path, np.zeros((2, 3), np.float32), version=version)
    raw = path.read_bytes()
    assert struct.unpack(">l", raw[:4])[0] == version
    if version == 3:
        assert struct.unpack(">ll", raw[4:12]) == (len(raw) - 16, 1)
    else:
        assert struct.unpack(">ql", raw[4:16]) == (len(raw) - 24, 1)
    assert raw.endswith(bytes(8))
    image = _read(path)
    assert _image_tags(image) == {}
    assert [(a["units"], a["scale"], a["offset"]) for a in image["axes"]] == [("", 1.0, 0.0)] * 2


def test_rejects_unsupported_input(tmp_path):
    with pytest.raises(TypeError):
        write_dm(tmp_path / "a.dm4", np.zeros(3, np.complex64))
    with pytest.raises(ValueError):
        write_dm(tmp_path / "a.dm4", np.zeros(3, np.float32), version=5)
    with pytest.raises(ValueError):
        write_dm(tmp_path / "a.dm4", np.zeros((2, 2), np.float32), axes=[{}])
