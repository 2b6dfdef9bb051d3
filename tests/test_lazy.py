"""Issue 19: the series functions take dask-backed arrays and return dask-backed results without
computing them (beyond a stated sample), equal to the in-memory path."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
from daskcount import CountingScheduler

from ionscope.data import signal
from ionscope.denoise import sparse_denoise
from ionscope.denoise.methods import denoise
from ionscope.denoise.superres import downsample, super_resolve


@pytest.fixture(scope="module")
def counts():
    """Poisson counts of a drifting edge: 9 frames of 24 x 24."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:24, 0:24]
    truth = np.stack([5 + 30 / (1 + np.exp(-(xx - 8 - 0.6 * t - 0.2 * yy) / 2.0)) for t in range(9)])
    return signal(rng.poisson(truth).astype(np.float32), ("time", "y", "x"), name="counts", units="counts")


@pytest.mark.parametrize("temporal", [1, 3])
def test_sparse_coding_of_a_dask_series_is_lazy_and_equals_the_in_memory_path(counts, temporal):
    kw = {"patch": 5, "atoms": 48, "sparsity": 3, "iterations": 2, "temporal": temporal, "noise": "poisson"}
    eager, info_eager = sparse_denoise(counts, **kw)
    counter = CountingScheduler(max_computes=1)  # one compute: the training sample
    with dask.config.set(scheduler=counter):
        lazy, info_lazy = sparse_denoise(counts.chunk({"time": 2}), **kw)
    assert counter.total == 1 and isinstance(lazy.data, dask.array.Array)
    np.testing.assert_array_equal(info_lazy["dictionary"], info_eager["dictionary"])
    # blocks of 2 frames with temporal - 1 frames of overlap give the whole series' sums
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6, atol=1e-6)
    assert np.abs(eager.values - counts.values).max() > 1.0  # it did denoise


@pytest.mark.parametrize("temporal", [1, 3])
def test_mean_atoms_of_a_lazy_series_comes_with_the_result_in_one_pass_and_equals_the_in_memory_one(counts, temporal):
    kw = {"patch": 5, "atoms": 48, "sparsity": 3, "iterations": 1, "temporal": temporal, "noise": "poisson"}
    _, info_eager = sparse_denoise(counts, **kw)
    calls = []
    import ionscope.denoise.sparse as sparse

    original = sparse.code_aggregate

    def counted(values, **code):
        calls.append(values.shape[0])
        return original(values, **code)

    lazy, info = sparse_denoise(counts.chunk({"time": 3}), **kw)
    assert isinstance(info["mean_atoms"], dask.array.Array)
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter), pytest.MonkeyPatch.context() as mp:
        mp.setattr(sparse, "code_aggregate", counted)
        lazy, info = sparse_denoise(counts.chunk({"time": 3}), **kw)
        counter.total = 0  # the training sample above; now the result and the statistic together
        values, mean_atoms = dask.compute(lazy.data, info["mean_atoms"])
    assert counter.total == 1 and len(calls) == 3  # three blocks, each coded once
    assert float(mean_atoms) == info_eager["mean_atoms"] > 0.2  # measured 0.47 and 0.34 atoms per patch


def test_the_denoise_command_reports_mean_atoms_of_a_lazy_series(run_cli, counts, tmp_path):
    import json

    from ionscope import io

    src = tmp_path / "maps.zarr"
    io.save(counts.chunk({"time": 3}).to_dataset(), src)
    options = ["--method", "sparse3d", "--patch", "5", "--atoms", "48", "--sparsity", "3", "--temporal", "3",
               "--noise", "poisson"]
    result = run_cli("denoise", f"{src}:counts", *options, "--out", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    _, info = denoise(counts, "sparse3d", patch=5, atoms=48, sparsity=3, temporal=3, noise="poisson")
    assert summary["info"]["mean_atoms"] == pytest.approx(info["mean_atoms"], rel=1e-12)


def test_space_time_denoise_with_auto_parameters_chooses_them_on_a_sample(counts):
    counter = CountingScheduler(max_computes=2)  # the split-noise block, the training sample
    with dask.config.set(scheduler=counter):
        lazy, info = denoise(counts.chunk({"time": 3}), "sparse3d", patch=5, atoms=64, sparsity=4,
                             noise="poisson", iterations=1)
    assert counter.total == 2 and isinstance(lazy.data, dask.array.Array)
    eager, info_eager = denoise(counts, "sparse3d", patch=5, atoms=64, sparsity=4, noise="poisson", iterations=1)
    assert info["parameters"]["temporal"] == info_eager["parameters"]["temporal"]
    assert info["criterion"]["scores"] == info_eager["criterion"]["scores"]
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6, atol=1e-6)


def test_super_resolution_of_a_dask_series_is_lazy_and_equals_the_in_memory_path(counts):
    hr = counts / 40.0
    lr = downsample(hr, 2)
    kw = {"atoms": 32, "train_iterations": 2, "iterations": 5}
    eager, info_eager = super_resolve(lr, hr.isel(time=[0, 4]), 2, **kw)
    with dask.config.set(scheduler=CountingScheduler(max_computes=0)):
        lazy, info = super_resolve(lr.chunk({"time": 4}), hr.isel(time=[0, 4]), 2, **kw)
    assert isinstance(lazy.data, dask.array.Array) and lazy.dims == eager.dims
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6, atol=1e-7)
    (consistency,) = dask.compute(info["consistency"])
    assert float(consistency["result"]["max_abs"]) < 1e-12
    assert float(consistency["bicubic"]["rms"]) == pytest.approx(info_eager["consistency"]["bicubic"]["rms"],
                                                                 rel=1e-9)


def test_mean_atoms_of_lazy_super_resolution_is_summed_by_the_tasks_that_super_resolve_the_blocks(counts):
    import ionscope.denoise.superres as superres

    hr = counts / 40.0
    lr = downsample(hr, 2)
    kw = {"atoms": 32, "train_iterations": 2, "iterations": 5}
    _, info_eager = super_resolve(lr, hr.isel(time=[0, 4]), 2, **kw)
    calls = []
    original = superres.superres_stack

    def counted(values, *args, **kwargs):
        calls.append(values.shape[0])
        return original(values, *args, **kwargs)

    lazy, info = super_resolve(lr.chunk({"time": 4}), hr.isel(time=[0, 4]), 2, **kw)
    assert isinstance(info["mean_atoms"], dask.array.Array)
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter), pytest.MonkeyPatch.context() as mp:
        mp.setattr(superres, "superres_stack", counted)
        from ionscope.compat import compute

        _, mean_atoms, consistency = compute(lazy.data, info["mean_atoms"], info["consistency"])
    assert counter.total == 1 and sorted(calls) == [1, 4, 4]  # every block super-resolved once, for all three
    assert float(mean_atoms) == info_eager["mean_atoms"] > 0.5  # atoms per patch (3 at most)
    assert float(consistency["result"]["max_abs"]) < 1e-12


def test_the_superres_command_reports_mean_atoms_of_a_lazy_series(run_cli, counts, tmp_path):
    import json

    from ionscope import io

    hr = (counts / 40.0).rename("maps")
    lr = downsample(hr, 2)
    io.save(lr.chunk({"time": 3}).to_dataset(), tmp_path / "lr.zarr")
    io.save(hr.isel(time=[0, 4]).to_dataset(), tmp_path / "hr.zarr")
    _, info = super_resolve(lr, hr.isel(time=[0, 4]), 2, atoms=32, train_iterations=2, iterations=5)
    counter = CountingScheduler(max_computes=1)  # the result, its residuals and mean_atoms in one pass
    with dask.config.set(scheduler=counter):
        result = run_cli("superres", tmp_path / "lr.zarr", "--train", tmp_path / "hr.zarr", "--factor", "2",
                         "--atoms", "32", "--train-iterations", "2", "--iterations", "5", "--out", tmp_path / "sr")
    assert result.returncode == 0, result.stderr
    assert counter.total == 1
    summary = json.loads((tmp_path / "sr" / "summary.json").read_text())
    assert summary["mean_atoms"] == pytest.approx(info["mean_atoms"], rel=1e-12)
    assert summary["consistency"]["bicubic"]["rms"] == pytest.approx(info["consistency"]["bicubic"]["rms"], rel=1e-9)


def test_eels_lithium_mapping_of_a_dask_series_is_lazy():
    from ionscope.eels.lithium import li_fraction_map
    from ionscope.simulate import simulate

    ds = simulate("eels_licoo2", seed=3, li_params={"ny": 24, "nx": 12}, frames=[0, 60], dose=1e8, channels=320)
    with dask.config.set(scheduler=CountingScheduler(max_computes=0)):
        lazy = li_fraction_map(ds.spectra.chunk({"time": 1}), ds.ref_licoo2, ds.ref_coo2, background=(40, 52),
                               fit_window=(52, 90))
    assert isinstance(lazy.li_fraction.data, dask.array.Array)
    eager = li_fraction_map(ds.spectra, ds.ref_licoo2, ds.ref_coo2, background=(40, 52), fit_window=(52, 90))
    np.testing.assert_allclose(lazy.li_fraction.values, eager.li_fraction.values, rtol=1e-6)


def test_a_streamed_twin_is_written_frame_by_frame_and_equals_the_in_memory_twin(run_cli, tmp_path):
    import json

    from ionscope import io
    from ionscope.simulate import simulate

    kw = {"seed": 5, "li_params": {"ny": 24, "nx": 12}, "frames": [0, 50, 100], "channels": 96, "jitter_eV": 0.05}
    eager = simulate("eels_licoo2", **kw)
    with dask.config.set(scheduler=CountingScheduler(max_computes=0)):
        streamed = simulate("eels_licoo2", stream=True, **kw)
    assert streamed.spectra.data.chunks[0] == (1, 1, 1)
    out = tmp_path / "twin.zarr"
    params = [a for k, v in kw.items() if k != "seed" for a in ("--param", f"{k}={json.dumps(v)}")]
    result = run_cli("simulate", "eels_licoo2", "--seed", "5", *params, "--param", "stream=true", "--out", out)
    assert result.returncode == 0, result.stderr
    stored = io.open_dataset(out)
    np.testing.assert_array_equal(stored.spectra.values, eager.spectra.values)
    np.testing.assert_array_equal(stored.energy_shift_true.values, eager.energy_shift_true.values)
    assert stored.spectra.encoding["chunks"][0] == 1  # written one frame per chunk


def test_compute_keeps_every_result_in_its_place():
    """dask 2026.8 hands back the results of one compute grouped by kind of collection (a Delayed,
    an array, a Delayed -> Delayed, Delayed, array); ionscope.compat.compute keeps them in place,
    nested lists included, and runs shared tasks once."""
    from ionscope.compat import compute

    a = dask.array.arange(10, chunks=5)
    objs = (dask.delayed(np.median)(a), a * 2, dask.delayed(sum)([1, 2]), [a.sum(), a.max()], 7)
    median, doubled, three, pair, seven = compute(*objs)
    assert median == 4.5 and three == 3 and seven == 7 and pair == [45, 9]
    np.testing.assert_array_equal(doubled, np.arange(10) * 2)


def test_compute_runs_the_tasks_its_objects_share_once():
    """ionscope.compat.compute used to wrap every object in its own dask.delayed, which gave each a
    private copy of the graph: a result and a statistic of it (a store and mean_atoms, a
    super-resolved series and its residuals) were each computed twice."""
    from ionscope.blocks import map_blocks_with_total
    from ionscope.compat import compute

    calls = []

    def block(values, info):
        calls.append(info["chunk-location"][0])
        return values * 2, float(values.sum())

    x = dask.array.ones((9, 4), chunks=(3, 4))
    out, total = map_blocks_with_total(block, x, chunks=x.chunks, dtype=np.float64)
    late = dask.delayed(lambda v: v + 1)(7)
    doubled, (summed, squares), eight = compute(out, [total, (out ** 2).sum()], late)
    assert sorted(calls) == [0, 1, 2]  # each block once, for all three results
    np.testing.assert_array_equal(doubled, np.full((9, 4), 2.0))
    assert summed == 36.0 and squares == 144.0 and eight == 8


def test_a_lazy_result_written_with_its_statistics_codes_every_block_once(tmp_path, monkeypatch):
    """io.write_result(compute_with=...) of a lazy sparse coding and its mean_atoms: every block is
    coded once (dask optimizes xarray's store and a separate array apart; the statistic rides in
    the store as a temporary variable, removed before the manifest)."""
    import ionscope.denoise.sparse as sparse_module
    from ionscope import io

    calls = []
    original = sparse_module.code_aggregate
    monkeypatch.setattr(sparse_module, "code_aggregate", lambda *a, **k: calls.append(1) or original(*a, **k))
    rng = np.random.default_rng(5)
    series = signal(rng.poisson(5.0, (60, 16, 16)).astype(np.float32), ("time", "y", "x"), name="c", units="counts")
    out, info = sparse_denoise(series.chunk({"time": 60}), patch=4, atoms=16, sparsity=2, temporal=3, iterations=1)
    n_blocks = out.data.rechunk({0: sparse_module.block_frames(60, 2, (60,))}).numblocks[0]
    assert n_blocks > 1 and not calls
    io.write_result(tmp_path / "o", out.rename("denoised").to_dataset(), lambda v: {"mean_atoms": float(v)},
                    compute_with=info["mean_atoms"])
    assert len(calls) == n_blocks
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    stored = io.open_dataset(tmp_path / "o" / "result.zarr")
    assert list(stored.data_vars) == ["denoised"]          # no temporary variable left behind
    eager, info_eager = sparse_denoise(series, patch=4, atoms=16, sparsity=2, temporal=3, iterations=1)
    assert summary["mean_atoms"] == pytest.approx(info_eager["mean_atoms"])
    np.testing.assert_allclose(stored["denoised"].values, eager.values, rtol=1e-6, atol=1e-6)
