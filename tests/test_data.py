"""The array model: dims, units, validation and provenance."""

from __future__ import annotations

import json

import dask.array
import numpy as np
import pytest
import xarray as xr

from ionscope import __version__
from ionscope.data import (
    axis_calibration,
    input_digest,
    provenance,
    require_dims,
    require_finite,
    require_nonempty,
    signal,
    with_provenance,
)
from ionscope.errors import (
    DimensionError,
    EmptyDataError,
    IonscopeError,
    NonFiniteError,
    NonUniformAxisError,
)


def test_signal_puts_units_on_data_and_every_coordinate(series):
    assert series.attrs["units"] == "1"
    assert {d: series[d].attrs["units"] for d in series.dims} == {"time": "s", "y": "nm", "x": "nm"}
    assert series.y.values[1] == pytest.approx(2.5)
    assert provenance(series) == []


def test_uncalibrated_dims_get_pixel_units():
    da = signal(np.zeros((3, 4)), ("y", "x"), name="m", units="counts")
    assert da.y.attrs["units"] == "px" and da.x.values.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("dims", [("t", "y"), ("y", "y")])
def test_signal_rejects_names_outside_the_vocabulary(dims):
    with pytest.raises(DimensionError):
        signal(np.zeros((2, 2)), dims, name="m", units="1")


def test_signal_rejects_dim_count_mismatch():
    with pytest.raises(DimensionError, match="2 dimensions but 3"):
        signal(np.zeros((2, 2)), ("time", "y", "x"), name="m", units="1")


def test_axis_calibration_and_non_uniform_axis(series):
    assert axis_calibration(series, "x") == (0.0, 2.5, "nm")
    bent = series.assign_coords(x=("x", [0, 1, 2, 4, 8], {"units": "nm"}))
    with pytest.raises(NonUniformAxisError, match="not evenly spaced"):
        axis_calibration(bent, "x")


def test_require_dims_names_what_was_expected(series):
    require_dims(series, ("time", "y", "x"))
    with pytest.raises(DimensionError, match=r"needs an array with dims \(y, x, energy\)"):
        require_dims(series, ("y", "x", "energy"))


def test_require_finite_reports_where(series):
    bad = series.copy(data=series.values.copy())
    bad[1, 2, 3] = np.nan
    with pytest.raises(NonFiniteError, match="time=1, y=2, x=3"):
        require_finite(bad)
    assert isinstance(NonFiniteError("x"), IonscopeError)


def test_require_finite_stays_lazy_and_raises_on_compute(series):
    bad = series.copy(data=series.values.copy())
    bad[0, 0, 0] = np.inf
    lazy = bad.chunk({"time": 1})
    checked = require_finite(lazy)  # no compute happens here
    assert checked.chunks is not None
    with pytest.raises(NonFiniteError):
        checked.compute()
    assert float(require_finite(series.chunk({"time": 2})).sum()) == pytest.approx(float(series.sum()))


def test_require_nonempty():
    with pytest.raises(EmptyDataError, match="empty"):
        require_nonempty(signal(np.zeros((0, 3)), ("y", "x"), name="m", units="1"))


def test_provenance_appends_steps_with_version_params_and_input_hashes(series, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"counts")
    one = with_provenance(series, "ionscope.test.first", {"window": (50.0, 60.0), "k": np.int64(3)}, inputs=[raw])
    two = with_provenance(one, "ionscope.test.second", {"alpha": 0.1}, inputs=[one])
    steps = provenance(two)
    assert [s["step"] for s in steps] == ["ionscope.test.first", "ionscope.test.second"]
    assert steps[0]["version"] == __version__
    assert steps[0]["params"] == {"window": [50.0, 60.0], "k": 3}
    # sha256 of b"counts"
    assert steps[0]["inputs"] == ["sha256:cdd93696b72b3de32dd12e38bdcae2eaf5a95080af38cbe347f3195ef9d56bf7"]
    assert steps[1]["inputs"] == [input_digest(one)]
    assert provenance(series) == []  # the input is not modified
    json.loads(two.attrs["provenance"])


def test_input_digest_is_content_based_and_lazy_safe(series):
    assert input_digest(series) == input_digest(series.copy(deep=True))
    assert input_digest(series) != input_digest(series + 1)
    lazy = xr.DataArray(dask.array.ones((4, 4), chunks=2), dims=("y", "x"))
    assert input_digest(lazy).startswith("dask:")
    assert input_digest(lazy) == input_digest(lazy)


def test_processed_arrays_are_identified_by_lineage_not_rehashed(series):
    step = with_provenance(series, "ionscope.test.load", {"path": "a.dm4"})
    other = with_provenance(series, "ionscope.test.load", {"path": "b.dm4"})
    assert input_digest(step).startswith("lineage-sha256:")
    assert input_digest(step) != input_digest(other)
    assert input_digest(step) == input_digest(step.copy(deep=True))
    assert input_digest(step) != input_digest(step.astype("float64"))


def test_provenance_on_a_dataset_can_be_shared_with_its_variables(series):
    ds = xr.Dataset({"a": series, "b": series * 2})
    out = with_provenance(ds, "ionscope.test.step", {"k": 1}, inputs=[series], variables=("a",))
    assert provenance(out)[-1]["step"] == "ionscope.test.step"
    assert provenance(out["a"]) == provenance(out)
    assert provenance(out["b"]) == provenance(series)  # not named: untouched
    every = with_provenance(ds, "ionscope.test.step", variables=True)
    assert all(provenance(every[n]) == provenance(every) for n in every.data_vars)
    assert provenance(ds["a"]) == provenance(series)  # the input is not modified
