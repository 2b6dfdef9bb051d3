"""Issue 19: the baseline denoisers take dask-backed series and return dask-backed results, computing
only stated samples, equal to the in-memory path for the same parameters; pca takes one streamed
pass; the global ones (tv3d, bm4d) compute in one task that holds the series."""

from __future__ import annotations

import json
import sys
import types

import dask
import dask.array as dsa
import numpy as np
import pytest
from daskcount import CountingScheduler
from scipy import ndimage

from ionscope.compat import compute
from ionscope.data import signal
from ionscope.denoise import baselines
from ionscope.denoise.baselines import gaussian_radius
from ionscope.denoise.methods import denoise
from ionscope.denoise.stabilise import middle_frames


def _edge(n_frames, seed):
    """Poisson counts of a drifting edge: ``n_frames`` frames of 20 x 20."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:20, 0:20]
    truth = np.stack([5 + 30 / (1 + np.exp(-(xx - 6 - 0.3 * t - 0.2 * yy) / 2.0)) for t in range(n_frames)])
    return signal(rng.poisson(truth).astype(np.float32), ("time", "y", "x"), name="counts", units="counts")


@pytest.fixture(scope="module")
def long_counts():
    """40 frames: longer than the 32-frame sample the lazy path chooses widths on."""
    return _edge(40, 4)


@pytest.fixture(scope="module")
def short_counts():
    """12 frames: the whole series is the sample."""
    return _edge(12, 5)


def _lazy(func, da, max_computes, **kw):
    """``func(da, **kw)`` built under a scheduler that allows ``max_computes`` computes; the result,
    the info and how many computes building it took."""
    counter = CountingScheduler(max_computes=max_computes)
    with dask.config.set(scheduler=counter):
        out, info = func(da, **kw)
    assert isinstance(out.data, dsa.Array)
    return out, info, counter.total


def _computed(*objs):
    """The objects computed together in one pass (the scheduler proves it)."""
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        values = compute(*objs)
    assert counter.total == 1
    return values


def test_gaussian_of_a_dask_series_chooses_the_width_on_the_middle_frames_and_equals_the_in_memory_filter(
        long_counts):
    lazy, info, computes = _lazy(baselines.gaussian_denoise, long_counts.chunk({"time": 5}), 1, noise="poisson")
    assert computes == 1  # the sample the width is chosen on
    frames = middle_frames(40)
    assert info["sample_frames"] == [frames.start, frames.stop] == [4, 36] and "middle 32 frames" in info["rule"]
    # the width is the one the in-memory SURE choice gives on those frames
    _, on_sample = baselines.gaussian_denoise(long_counts.isel(time=frames), noise="poisson")
    assert info["width_px"] == on_sample["width_px"] > 0.5 and info["time_width_frames"] == 0.0
    eager, info_eager = baselines.gaussian_denoise(long_counts, noise="poisson", width=info["width_px"])
    values, sure = _computed(lazy.data, info["sure_per_pixel"])
    np.testing.assert_allclose(values, eager.values, rtol=1e-12, atol=1e-12)
    assert float(sure) == pytest.approx(info_eager["sure_per_pixel"], rel=1e-10)
    assert np.abs(eager.values - long_counts.values).max() > 5.0  # it did smooth


@pytest.mark.parametrize("chunk, time_width", [(5, None), (5, 3.0), (16, 0.5)])
def test_gaussian3d_of_a_dask_series_overlaps_blocks_by_the_truncation_radius_and_equals_the_in_memory_filter(
        long_counts, chunk, time_width):
    kw = {"space_time": True, "noise": "poisson", "time_width": time_width}
    lazy, info, computes = _lazy(baselines.gaussian_denoise, long_counts.chunk({"time": chunk}), 1, **kw)
    assert computes == 1  # the sample the (space, and time unless given) widths are chosen on
    tw = info["time_width_frames"]
    assert tw > 0 and (time_width is None or tw == time_width)
    assert lazy.data.numblocks[0] > 1 and min(lazy.data.chunks[0]) >= gaussian_radius(tw)
    eager, info_eager = baselines.gaussian_denoise(long_counts, space_time=True, noise="poisson",
                                                   width=info["width_px"], time_width=tw)
    values, sure = _computed(lazy.data, info["sure_per_pixel"])
    np.testing.assert_allclose(values, eager.values, rtol=1e-12, atol=1e-12)
    assert float(sure) == pytest.approx(info_eager["sure_per_pixel"], rel=1e-10)


def test_gaussian3d_with_given_widths_computes_nothing_and_the_short_series_choice_is_the_in_memory_one(
        short_counts):
    lazy, info, computes = _lazy(baselines.gaussian_denoise, short_counts.chunk({"time": 3}), 0, space_time=True,
                                 noise="poisson", width=1.0, time_width=1.2)
    assert computes == 0 and info["rule"] == "fixed width" and gaussian_radius(1.2) == 5
    eager, _ = baselines.gaussian_denoise(short_counts, space_time=True, noise="poisson", width=1.0, time_width=1.2)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12, atol=1e-12)
    # 12 frames: the sample is the whole series, so the lazy choice is the in-memory one
    lazy, info, _ = _lazy(denoise, short_counts.chunk({"time": 3}), 1, method="gaussian3d", noise="poisson")
    eager, info_eager = denoise(short_counts, "gaussian3d", noise="poisson")
    assert (info["width_px"], info["time_width_frames"]) == (info_eager["width_px"], info_eager["time_width_frames"])
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12, atol=1e-12)


def test_tv_of_a_dask_series_fits_the_weight_on_the_in_memory_frames_and_equals_the_in_memory_path(long_counts):
    kw = {"noise": "poisson", "max_num_iter": 30}
    lazy, info, computes = _lazy(baselines.tv_denoise, long_counts.chunk({"time": 8}), 1, **kw)
    assert computes == 1  # the evenly spaced frames the weight is fitted on (32 of the 40)
    eager, info_eager = baselines.tv_denoise(long_counts, **kw)
    assert info["weight"] == info_eager["weight"] > 0  # the same frames, so the same weight
    values, residual_var = _computed(lazy.data, info["residual_var"])
    np.testing.assert_allclose(values, eager.values, rtol=1e-12, atol=1e-12)
    assert float(residual_var) == pytest.approx(info_eager["residual_var"], rel=1e-10)
    assert 0.8 < float(residual_var) < 1.2  # the discrepancy principle: about sigma^2 = 1 (Anscombe)
    # a given weight: nothing is computed
    _, info_fixed, computes = _lazy(baselines.tv_denoise, long_counts.chunk({"time": 8}), 0, weight=0.5, **kw)
    assert computes == 0 and info_fixed["weight"] == 0.5


def test_nlmeans_of_a_dask_series_takes_h_from_the_sample_sigma_and_equals_the_in_memory_path(short_counts):
    gaussian = short_counts.astype(np.float64) / 10  # Gaussian model: sigma (hence h) from the MAD of a sample
    lazy, info, computes = _lazy(baselines.nlmeans_denoise, gaussian.chunk({"time": 3}), 1, noise="gaussian",
                                 patch_size=3, patch_distance=3)
    assert computes == 1  # the middle frames of the MAD estimate: all 12 here
    eager, info_eager = baselines.nlmeans_denoise(gaussian, noise="gaussian", patch_size=3, patch_distance=3)
    assert info["h"] == info_eager["h"] == pytest.approx(0.8 * info_eager["sigma"], rel=1e-12)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12, atol=1e-12)
    _, _, computes = _lazy(baselines.nlmeans_denoise, short_counts.chunk({"time": 3}), 0, noise="poisson",
                           patch_size=3, patch_distance=3)
    assert computes == 0  # Poisson counts: sigma 1 after the Anscombe transform, nothing to estimate


def test_bm3d_of_a_dask_series_runs_per_frame_on_compute_and_equals_the_in_memory_path(short_counts, monkeypatch):
    calls = []

    def fake_bm3d(frame, sigma_psd, **kw):
        calls.append((frame.shape, sigma_psd, kw))
        return ndimage.uniform_filter(frame, 3)

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d=fake_bm3d, __version__="fake"))
    lazy, info, computes = _lazy(baselines.bm3d_denoise, short_counts.chunk({"time": 4}), 0, noise="poisson",
                                 profile="np")
    assert computes == 0 and calls == [] and info["sigma_psd"] == 1.0
    (values,) = _computed(lazy.data)
    assert len(calls) == 12 and calls[0] == ((20, 20), 1.0, {"profile": "np"})
    eager, _ = baselines.bm3d_denoise(short_counts, noise="poisson", profile="np")
    np.testing.assert_allclose(values, eager.values, rtol=1e-12, atol=1e-12)


def test_tv3d_of_a_dask_series_fits_the_weight_on_the_middle_frames_and_filters_the_volume_in_one_task(long_counts):
    lazy, info, computes = _lazy(denoise, long_counts.chunk({"time": 7}), 1, method="tv3d", noise="poisson")
    assert computes == 1  # the middle frames the weight is fitted on
    values, residual = _computed(lazy.data, info["residual_var"])
    eager, info_eager = denoise(long_counts, "tv3d", noise="poisson")
    assert info["weight"] == info_eager["weight"]
    assert float(residual) == pytest.approx(info_eager["residual_var"], rel=1e-12)
    np.testing.assert_allclose(values, eager.values, rtol=1e-12, atol=1e-12)
    assert lazy.data.numblocks == (1, 1, 1)  # one task: the 3-D ROF model couples every voxel


def test_bm4d_of_a_dask_series_computes_nothing_and_runs_the_library_in_one_task(short_counts):
    pytest.importorskip("bm4d")
    lazy, info, computes = _lazy(denoise, short_counts.chunk({"time": 3}), 0, method="bm4d", noise="poisson")
    assert computes == 0 and info["sigma_psd"] == 1.0
    (values,) = _computed(lazy.data)
    eager, _ = denoise(short_counts, "bm4d", noise="poisson")
    # bm4d's own binary is not bit-reproducible: two in-memory runs of this series differ by up to
    # 8e-3 counts (of 7-35; measured over 7 runs); the tolerance is 3x that, a real difference is > 1
    np.testing.assert_allclose(values, eager.values, rtol=0, atol=0.025)
    assert np.abs(eager.values - short_counts.values).max() > 1  # it did denoise


@pytest.mark.parametrize(("chunks", "options"), [({"time": 3}, {}), ({"time": 5}, {"mode": "patches", "patch": 4}),
                                                  ({"time": 4}, {"rank": 2})])
def test_pca_of_a_dask_series_takes_one_pass_and_projects_lazily_as_the_in_memory_truncation(
        long_counts, chunks, options):
    """One computed pass (the Gram matrix over time, or the patch covariance), then a dask result
    that projects every block: the in-memory SVD's rank, spectrum and values."""
    lazy, info, computes = _lazy(denoise, long_counts.chunk(chunks), 1, method="pca", noise="poisson", **options)
    assert computes == 1
    eager, info_eager = denoise(long_counts, "pca", noise="poisson", **options)
    assert 0 < info["rank"] == info_eager["rank"] < 20 and info["threshold"] == pytest.approx(info_eager["threshold"])
    assert info["criterion"] == info_eager["criterion"]
    # the Gram matrix resolves singular values down to ~sqrt(eps) of the largest (the zero one of centring)
    np.testing.assert_allclose(info["spectrum"], info_eager["spectrum"], rtol=1e-9,
                               atol=1e-7 * info_eager["spectrum"][0])
    (values,) = _computed(lazy.data)
    np.testing.assert_allclose(values, eager.values, rtol=1e-9, atol=1e-9)
    assert np.abs(eager.values - long_counts.values).max() > 1  # it did denoise


def test_pca_of_a_dask_series_reads_each_block_once_per_pass(long_counts):
    """Each input block is read once by the Gram pass and once more as the result is computed:
    nothing is kept from one pass to the next."""
    calls = []

    def read(block):
        if block.size:  # not dask's meta probe
            calls.append(block.shape)
        return block

    data = long_counts.chunk({"time": 40, "y": 4})
    tagged = data.copy(data=data.data.map_blocks(read, dtype=data.dtype))
    out, _ = denoise(tagged, "pca", noise="poisson")
    assert len(calls) == 5
    assert np.isfinite(out.values).all()
    assert len(calls) == 10


def _command(run_cli, counts, frames, method, tmp_path):
    """``ionscope denoise`` of ``counts`` stored in chunks of ``frames``: its summary and result values."""
    from ionscope import io

    src = tmp_path / "maps.zarr"
    io.save(counts.chunk({"time": frames}).to_dataset(), src)
    result = run_cli("denoise", f"{src}:counts", "--method", method, "--noise", "poisson", "--out", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "d" / "summary.json").read_text()), io.load(tmp_path / "d" / "result.zarr").values


def test_the_denoise_command_reports_pca_rank_and_spectrum_of_a_lazy_series(run_cli, long_counts, tmp_path):
    summary, values = _command(run_cli, long_counts, 8, "pca", tmp_path)
    eager, info = denoise(long_counts, "pca", noise="poisson")
    assert summary["info"]["rank"] == info["rank"]
    np.testing.assert_allclose(summary["info"]["spectrum"], info["spectrum"], rtol=1e-9, atol=1e-7 * info["spectrum"][0])
    np.testing.assert_allclose(values, eager.values, rtol=1e-6, atol=1e-6)


def test_the_denoise_command_reports_the_statistics_of_a_lazy_baseline(run_cli, short_counts, tmp_path):
    summary, _ = _command(run_cli, short_counts, 3, "tv", tmp_path)
    _, info = denoise(short_counts, "tv", noise="poisson")
    assert summary["info"]["weight"] == info["weight"]
    assert summary["info"]["residual_var"] == pytest.approx(info["residual_var"], rel=1e-10)


@pytest.mark.parametrize("method", ["gaussian", "nlmeans", "tv"])
def test_a_single_dask_map_stays_lazy_and_equals_the_in_memory_map(short_counts, method):
    frame = short_counts.isel(time=5)
    lazy, info, computes = _lazy(denoise, frame.chunk({"y": 10}), 1, method=method, noise="poisson")
    assert computes == (0 if method == "nlmeans" else 1) and lazy.dims == ("y", "x")
    eager, info_eager = denoise(frame, method, noise="poisson")
    assert info.get("width_px") == info_eager.get("width_px") and info.get("weight") == info_eager.get("weight")
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12, atol=1e-12)
