"""Real measured files that public packages ship, fetched by the test setup (conftest.real_file),
read by ionscope and compared with HyperSpy, the field's reference reader (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope import io
from ionscope.errors import DimensionError

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
