"""Issue 19: NMF of spectrum images larger than memory - components learned in passes over the
chunks, maps dask-backed - and its quality against the EELS twin's truth next to the in-memory
NMF's."""

from __future__ import annotations

import json

import dask
import dask.array
import numpy as np
import pytest
import scipy.optimize
from daskcount import CountingScheduler

from ionscope import io
from ionscope.blocks import map_blocks_with_total
from ionscope.eels import nmf, prepare_for_nmf
from ionscope.eels.decomposition import nmf_lazy, nnls_rows
from ionscope.errors import ConfigError, InputError
from ionscope.simulate import simulate

WINDOW = (52.0, 90.0)
BACKGROUND = (40.0, 52.0)
PHASES = ("licoo2", "coo2", "co3o4")  # the twin's three Co phases (LiCoO2, CoO2, Co3O4 in the layer)


@pytest.fixture(scope="module")
def twin():
    """Noisy and noiseless eels_licoo2 twins (2 frames of 32 x 24, 320 channels), prepared for NMF."""
    kw = {"seed": 3, "li_params": {"ny": 32, "nx": 24}, "frames": [0, 90], "channels": 320}
    noisy = simulate("eels_licoo2", **kw)
    clean = simulate("eels_licoo2", noise=False, **kw)
    prepared = prepare_for_nmf(noisy.spectra, window=WINDOW, background=BACKGROUND)
    truth = prepare_for_nmf(clean.spectra, window=WINDOW, background=BACKGROUND)
    inside = (truth.energy >= WINDOW[0]) & (truth.energy <= WINDOW[1])
    refs = np.stack([noisy[f"ref_{p}_edge"].sel(energy=inside).values for p in PHASES], axis=1)
    prepared = prepared.assign_coords(region=noisy.region)
    return prepared, truth.sel(energy=inside).values.reshape(-1, int(inside.sum())), refs


def twin_layer(prepared):
    return prepared.region.values == 1


def _quality(result, truth, refs):
    """Relative error of the model C S^T against the noiseless spectra, and the largest relative
    residual of a true phase spectrum fitted by a non-negative sum of the components."""
    k = result.sizes["component"]
    c = np.asarray(result.maps.values, dtype=np.float64).reshape(k, -1).T
    s = np.asarray(result.spectra.values, dtype=np.float64).T
    model_error = np.linalg.norm(c @ s.T - truth) / np.linalg.norm(truth)
    span = max(np.linalg.norm(r - s @ scipy.optimize.nnls(s, r)[0]) / np.linalg.norm(r) for r in refs.T)
    return model_error, span


def test_lazy_nmf_reads_the_data_once_per_pass_returns_dask_maps_and_matches_in_memory_quality(twin):
    prepared, truth, refs = twin
    eager = nmf(prepared, 3, window=WINDOW, max_iter=2000, tol=1e-5)
    counter = CountingScheduler(max_computes=3)  # the sample, then 2 passes
    with dask.config.set(scheduler=counter):
        lazy = nmf(prepared.chunk({"time": 1, "y": 16}), 3, window=WINDOW, max_iter=2000, tol=1e-5, passes=2,
                   max_sample=200)
    assert counter.total == 3
    assert isinstance(lazy.maps.data, dask.array.Array) and isinstance(lazy.reconstruction_error.data, dask.array.Array)
    assert lazy.maps.dims == eager.maps.dims and lazy.maps.dtype == eager.maps.dtype
    objective = lazy.attrs["objective_passes"]
    assert len(objective) == 2 and objective[1] <= objective[0]
    lazy = lazy.compute()
    eager_error, eager_span = _quality(eager, truth, refs)
    lazy_error, lazy_span = _quality(lazy, truth, refs)
    # measured: in memory 0.0482 and 0.0566, lazy 0.0487 and 0.0465; the sample alone (passes=0)
    # 0.0509 and 0.0614, so the bounds need the passes
    assert lazy_error <= 1.02 * eager_error and lazy_span <= eager_span + 0.005
    assert float(lazy.reconstruction_error) <= 1.001 * float(eager.reconstruction_error)
    # NMF factors are not unique, their product is: the lazy model is within 2 % of the in-memory
    # one (measured 1.6 %; the sample alone 3.2 %), well inside the 4.8 % both are from the truth
    model_eager = np.einsum("kn,ke->ne", eager.maps.values.reshape(3, -1), eager.spectra.values)
    model_lazy = np.einsum("kn,ke->ne", lazy.maps.values.reshape(3, -1), lazy.spectra.values)
    assert np.linalg.norm(model_lazy - model_eager) / np.linalg.norm(model_eager) < 0.02
    # and a component finds the interfacial layer as well (correlation with its mask: 0.60 in
    # memory, 0.69 lazy)
    layer = np.broadcast_to(twin_layer(prepared), prepared.shape[:-1]).ravel().astype(float)
    best = [max(np.corrcoef(m, layer)[0, 1] for m in r.maps.values.reshape(3, -1)) for r in (eager, lazy)]
    assert best[1] >= best[0] - 0.05


def test_the_sample_alone_misses_the_bound_that_the_passes_meet(twin):
    prepared, truth, refs = twin
    eager_error, _ = _quality(nmf(prepared, 3, window=WINDOW, max_iter=2000, tol=1e-5), truth, refs)
    sample_only = nmf(prepared.chunk({"time": 1}), 3, window=WINDOW, max_iter=2000, tol=1e-5, passes=0,
                      max_sample=200).compute()
    assert _quality(sample_only, truth, refs)[0] > 1.02 * eager_error


def test_lazy_maps_and_their_error_come_from_one_read(twin):
    prepared, _, _ = twin
    lazy = nmf(prepared.chunk({"time": 1}), 2, window=WINDOW, passes=1, max_sample=300)
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        maps, error = dask.compute(lazy.maps.data, lazy.reconstruction_error.data)
    c = maps.reshape(2, -1).T.astype(np.float64)
    x = prepared.sel(energy=lazy.energy).values.reshape(-1, lazy.sizes["energy"]).astype(np.float64)
    s = lazy.spectra.values.T.astype(np.float64)
    assert float(error) == pytest.approx(np.linalg.norm(x - c @ s.T), rel=1e-5)
    # the maps are the exact non-negative least-squares maps against the components
    ref = np.array([scipy.optimize.nnls(s, row)[0] for row in x[::97]])
    np.testing.assert_allclose(c[::97], ref, rtol=1e-4, atol=1e-4 * ref.max())


def test_map_blocks_with_total_runs_each_block_once():
    calls = []

    def double(block, info):
        calls.append(info["chunk-location"])
        return 2 * block, float(block.sum())

    x = dask.array.arange(24.0, chunks=6).reshape(4, 6).rechunk((1, 6))
    out, total = map_blocks_with_total(double, x, chunks=x.chunks, dtype=x.dtype)
    values, number = dask.compute(out, total, scheduler="sync")
    np.testing.assert_array_equal(values, 2 * np.arange(24.0).reshape(4, 6))
    assert float(number) == 276.0 and sorted(calls) == [(i, 0) for i in range(4)]


@pytest.mark.parametrize("k", [3, 8])  # exact by supports, then projected HALS sweeps
def test_nnls_rows_matches_scipy(k):
    rng = np.random.default_rng(k)
    s = rng.random((40, k)) + np.eye(40, k)
    x = rng.standard_normal((30, 40)) + 0.3
    c = nnls_rows(x @ s, s.T @ s)
    ref = np.array([scipy.optimize.nnls(s, row)[0] for row in x])
    np.testing.assert_allclose(c, ref, atol=1e-7)


def test_lazy_nmf_refuses_what_it_cannot_do(twin):
    prepared, _, _ = twin
    with pytest.raises(ConfigError, match="orthogonality=0.1 needs every map at every sweep"):
        nmf(prepared.chunk({"time": 1}), 3, orthogonality=0.1)
    with pytest.raises(ConfigError, match="passes must be a whole number"):
        nmf_lazy(dask.array.from_array(prepared.values, chunks=(1, 32, 24, 320)), 3, passes=-1)
    negative = prepared.chunk({"time": 1}) - 0.01
    with pytest.raises(InputError, match="non-negative data"):
        nmf(negative, 2, window=WINDOW, passes=1).maps.compute()


def test_eels_nmf_command_stays_lazy_on_zarr(run_cli, tmp_path):
    ds = simulate("eels_licoo2", seed=5, li_params={"ny": 24, "nx": 12}, frames=[0, 60], channels=320)
    path = tmp_path / "twin.zarr"
    io.save(ds.spectra.to_dataset(), path)
    result = run_cli("eels", "nmf", path, "--components", "3", "--window", "52:90", "--background", "40:52",
                     "--passes", "1", "--max-sample", "200", "--out", tmp_path / "nmf")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "nmf" / "summary.json").read_text())
    assert summary["lazy"] and summary["passes"] == 1 and summary["n_sample"] == 200
    stored = io.open_dataset(tmp_path / "nmf" / "result.zarr")
    assert float(stored.reconstruction_error) == pytest.approx(summary["reconstruction_error"], rel=1e-12)
    assert stored.maps.dims == ("component", "time", "y", "x")


def test_lazy_pca_takes_one_pass_and_equals_the_in_memory_svd(twin):
    """PCA of a dask-backed spectrum image: one computed pass (count, mean and scatter per chunk,
    merged), dask score maps; loadings, variances and maps equal the full SVD's within rounding."""
    from ionscope.eels import pca

    prepared, _, _ = twin
    eager = pca(prepared, 4, window=WINDOW, method="full")
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        lazy = pca(prepared.chunk({"time": 1, "y": 10}), 4, window=WINDOW)
    assert counter.total == 1 and isinstance(lazy.maps.data, dask.array.Array)
    assert lazy.attrs["method"] == "covariance" and eager.attrs["method"] == "full"
    np.testing.assert_allclose(lazy.spectra.values, eager.spectra.values, atol=1e-6)
    np.testing.assert_allclose(lazy.explained_variance.values, eager.explained_variance.values, rtol=1e-8)
    np.testing.assert_allclose(lazy.explained_variance_ratio.values, eager.explained_variance_ratio.values, rtol=1e-8)
    np.testing.assert_allclose(lazy.mean_spectrum.values, eager.mean_spectrum.values, rtol=1e-6)
    scale = float(np.abs(eager.maps.values).max())
    np.testing.assert_allclose(lazy.maps.values, eager.maps.values, atol=1e-5 * scale)
    ratio = eager.explained_variance_ratio.values
    assert np.all(np.diff(ratio) < 0) and ratio[0] > 3 / eager.sizes["energy"]  # above white noise's share
    # in memory, the same kernel
    in_memory = pca(prepared, 4, window=WINDOW, method="covariance")
    np.testing.assert_allclose(in_memory.maps.values, lazy.maps.values, atol=1e-5 * scale)


def test_lazy_pca_refuses_the_in_memory_methods(twin):
    from ionscope.eels import pca

    prepared, _, _ = twin
    with pytest.raises(ConfigError, match="needs the spectra in memory"):
        pca(prepared.chunk({"time": 1}), 3, window=WINDOW, method="full")
    with pytest.raises(ConfigError, match="n_components must be an integer from 1"):
        pca(prepared.chunk({"time": 1}), 0, window=WINDOW)
