"""Issue 19: Li motion of a dask-backed series computes its summary statistics in one pass over the
time chunks (the first frame aside), never the whole series in one task, equal to the in-memory path."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pytest
from daskcount import CountingScheduler

import ionscope.transport.workflow as workflow
from ionscope.simulate import simulate
from ionscope.transport import li_motion

CHUNK = 5  # frames per time chunk of the lazy series: 18 frames -> 4 chunks (5, 5, 5, 3)


@pytest.fixture(scope="module")
def series():
    """A noisy licoo2 twin (counts / dose): 18 frames of 16 x 12 px, three cell states."""
    twin = simulate("licoo2", seed=1, ny=16, nx=16, n_domains=3, layer_thickness_nm=5, charge_frames=8,
                    rest1_frames=4, discharge_frames=6, rest2_frames=0)
    return twin["li_fraction"].assign_coords(state=twin["state"]).isel(x=slice(0, 12))


def _lazy(series):
    """The series with dask-backed maps in time chunks of CHUNK frames (the coordinates, as the
    cell state, stay in memory: a dask-backed state coordinate is one more, small, compute)."""
    return series.copy(data=dask.array.from_array(series.values, chunks=(CHUNK, -1, -1)))


def _assert_same_summary(got, want, path="summary"):
    """Every number of the summaries equal to float tolerance (the noise: its binned median)."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            if key != "compute_time_s":
                _assert_same_summary(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same_summary(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        rel = 1e-5 if path.startswith("summary.noise") else 1e-9
        assert got == pytest.approx(want, rel=rel, abs=1e-15), path
    else:
        assert got == want, path


@pytest.mark.parametrize("electrolyte", ["top", "right"])
def test_lazy_motion_computes_its_statistics_in_one_pass_equal_to_the_in_memory_ones(series, electrolyte):
    eager, want = li_motion(series, electrolyte=electrolyte)
    counter = CountingScheduler(max_computes=2)  # the first frame, then the per-frame statistics
    with dask.config.set(scheduler=counter):
        lazy, got = li_motion(_lazy(series), electrolyte=electrolyte)
    assert counter.total == 2
    assert lazy["flux_y"].chunks[0] == (5, 5, 5, 3)  # the fields stay lazy
    assert got["noise"]["map_sd"] > 0.01  # a noisy series: the noise estimate is exercised
    _assert_same_summary(got, want)
    lazy = lazy.compute()
    assert set(lazy.data_vars) == set(eager.data_vars)
    for name in eager.data_vars:
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, atol=1e-12, err_msg=name)
    assert lazy["front_position_nm"].shape == (18, 12 if electrolyte == "top" else 16)
    if electrolyte == "top":  # the twin's electrolyte: its front crosses nearly every column
        assert np.isfinite(lazy["front_position_nm"].values).mean() > 0.9


def test_no_task_of_the_statistics_pass_receives_the_whole_series(series, monkeypatch):
    frames = {"depth": [], "noise": [], "flux": []}
    for name, key in (("front_depth", "depth"), ("_second_differences", "noise"), ("_motion_kernel", "flux")):
        original = getattr(workflow, name)

        def counted(x, *args, _original=original, _key=key, **kw):
            if np.size(x):  # not dask's call on empty arrays (the output's type)
                frames[_key].append(np.shape(x)[0])
            return _original(x, *args, **kw)

        monkeypatch.setattr(workflow, name, counted)
    with dask.config.set(scheduler="sync"):
        li_motion(_lazy(series))
    # one call per time chunk: the depth of its frames, the second differences with one frame on
    # either side, the flux with the rate fit's halo of (window - 1) / 2 = 2 frames
    assert sorted(frames["depth"]) == [3, 5, 5, 5]
    assert sorted(frames["noise"]) == [4, 6, 7, 7]
    assert sorted(frames["flux"]) == [5, 7, 9, 9]


def test_binned_median_of_second_differences():
    rng = np.random.default_rng(0)
    runs = np.zeros(9, dtype=int)
    for x, exact in ((rng.normal(size=(9, 8, 8)), False),  # continuous: within the bin width
                     (rng.poisson(20.0, size=(9, 8, 8)) / 40.0, True)):  # discrete (counts / dose): ties, exact
        d2 = workflow._second_differences(x, runs)
        # two blocks: centre frames 1-3 and 4-7, each with a frame on either side
        bins = workflow._d2_bins(x[0:5], runs[0:5], slice(1, 4))
        other = workflow._d2_bins(x[3:9], runs[3:9], slice(1, 5))
        merged = (bins[0, 0] + other[0, 0], np.minimum(bins[0, 1], other[0, 1]), np.maximum(bins[0, 2], other[0, 2]))
        assert merged[0].sum() == d2.size == 7 * 64  # an even count: the mean of the two middle values
        got, want = workflow._median_from_bins(*merged), float(np.median(d2))
        assert got == pytest.approx(want, rel=1.2e-3)
        if exact:  # the ties are equal to rounding (d2 of different frames)
            assert got == pytest.approx(want, rel=1e-12)
    empty = workflow._d2_bins(np.zeros((2, 4, 4)), np.zeros(2, dtype=int), slice(1, 1))  # two frames: none
    assert empty[0, 0].sum() == 0 and np.isnan(workflow._median_from_bins(*empty[0]))
