"""``ionscope motion``: the outputs docs/cli.rst names on a small twin, and careless input refused with one
line, exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from test_careless_input import _error_line

from ionscope import io
from ionscope.data import signal
from ionscope.simulate import simulate

SMALL = dict(ny=24, nx=16, layer_thickness_nm=4, layer_roughness_nm=1, charge_frames=12, rest1_frames=10,
             discharge_frames=10, rest2_frames=0, dose=None)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    io.save(simulate("licoo2", seed=2, **SMALL), root / "twin.zarr")
    coords = {"time": 60.0, "y": 2.0, "x": 2.0}
    io.save(signal(np.full((1, 8, 8), 0.5), ("time", "y", "x"), name="li", units="1", coords=coords),
            root / "one.zarr")
    io.save(signal(np.random.default_rng(0).random((4, 8, 8)), ("time", "y", "x"), name="v", units="V",
                   coords=coords), root / "volts.zarr")
    io.save(signal(np.random.default_rng(0).random((4, 8, 2)), ("time", "y", "x"), name="li", units="1",
                   coords=coords), root / "narrow.zarr")
    io.save(xr.DataArray(np.random.default_rng(0).random((4, 8, 8)), dims=("time", "y", "x"), name="li",
                         attrs={"units": "1"}), root / "notime.zarr")
    yx = {"y": 2.5, "x": 2.5}
    io.save(signal(np.ones((24, 8)), ("y", "x"), name="m", units="1", coords=yx), root / "narrowmap.zarr")
    for name, bad in (("nanmap", np.nan), ("zeromap", 0.0), ("negmap", -1.0)):
        m = np.ones((24, 16))
        m[3, 3] = bad
        io.save(signal(m, ("y", "x"), name="m", units="1", coords=yx), root / f"{name}.zarr")
    return root


def test_motion_writes_the_contract_outputs_per_cell_state(stores, run_cli, tmp_path):
    res = run_cli("motion", stores / "twin.zarr", "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    ds = xr.open_zarr(tmp_path / "out" / "result.zarr")
    for name in ("flux_y", "flux_x", "velocity_y", "velocity_x"):
        assert ds[name].dims == ("time", "y", "x") and ds[name].attrs["units"] == "nm/s"
    assert ds["front_position_nm"].dims == ("time", "along")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["command"] == "motion"
    assert set(summary["states"]) == {"charge", "rest", "discharge"}  # the store's state variable
    for state in summary["states"].values():
        assert {"in_plane_fraction", "in_plane_fraction_error", "front_velocity_nm_per_s",
                "front_velocity_nm_per_s_error"} <= set(state)
    # Li leaves towards the electrolyte (top) on charge: the flux below the layer points up
    charge = float(ds["flux_y"].isel(time=slice(2, 10), y=slice(6, None)).mean())
    assert charge < 0


def test_motion_with_a_boundary_mask_fits_the_mobilities_and_writes_the_map(stores, run_cli, tmp_path):
    res = run_cli("motion", stores / "twin.zarr", "--boundaries", f"{stores}/twin.zarr:boundary", "--out",
                  tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "fitted D_bulk" in res.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    mob = summary["mobility"]
    assert mob["source"] == "fitted from the boundary mask"
    assert mob["d_boundary_nm2_s"] > 5 * mob["d_bulk_nm2_s"] > 0 and mob["d_boundary_nm2_s_error"] > 0
    assert set(mob["fit_by_state"]) == {"charge", "rest", "discharge"}
    ds = xr.open_zarr(tmp_path / "out" / "result.zarr")
    boundary = xr.open_zarr(stores / "twin.zarr")["boundary"].values.astype(bool)
    assert ds["mobility"].dims == ("y", "x") and ds["mobility"].values[boundary].max() > ds["mobility"].values.min()
    # a given mobility map is used as it is
    res = run_cli("motion", stores / "twin.zarr", "--mobility", f"{stores}/zeromap.zarr", "--out", tmp_path / "o2")
    assert "<= 0" in _error_line(res)


@pytest.mark.parametrize("extra, match", [
    (("--boundaries", "narrowmap.zarr"), "24 x 8 px"),
    (("--mobility", "narrowmap.zarr"), "24 x 8 px"),
    (("--mobility", "nanmap.zarr"), "NaN"),
    (("--mobility", "negmap.zarr"), "<= 0"),
    (("--boundaries", "twin.zarr:domain"), "0 / 1"),
    (("--boundaries", "twin.zarr:li_fraction"), "dims"),
    (("--mobility", "zeromap.zarr", "--boundaries", "twin.zarr:boundary"), "not both"),
])
def test_careless_mobility_one_error_line_nothing_written(stores, run_cli, tmp_path, extra, match):
    args = [a if a.startswith("--") else f"{stores}/{a}" for a in extra]
    res = run_cli("motion", stores / "twin.zarr", *args, "--out", tmp_path / "out")
    assert res.returncode == 2 and match in _error_line(res)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec, extra, match", [
    ("one.zarr", (), "at least two frames"),
    ("volts.zarr", (), "not a Li fraction"),
    ("narrow.zarr", ("--electrolyte", "left"), "--electrolyte left"),
    ("notime.zarr", (), "time"),
    ("twin.zarr:domain", (), "no 'time'"),
])
def test_careless_series_one_error_line_nothing_written(stores, run_cli, tmp_path, spec, extra, match):
    res = run_cli("motion", f"{stores}/{spec}", *extra, "--out", tmp_path / "out")
    assert match in _error_line(res)
    assert not (tmp_path / "out").exists()
