"""NMF (HALS, soft orthogonality) and PCA of spectrum images: invariants, not non-unique factors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.optimize

from ionscope.data import signal
from ionscope.eels.decomposition import nmf, nmf_hals, pca, pca_svd, randomized_svd
from ionscope.errors import ConfigError, InputError, NonFiniteError

ENERGY = np.arange(40.0, 90.0, 0.25)  # 200 channels


def _gauss(e, centre, width):
    return np.exp(-0.5 * ((e - centre) / width) ** 2)


def _separated_sources(ny=24, nx=20, seed=0):
    """Three phases with pure pixels and spectra with channels of their own."""
    rng = np.random.default_rng(seed)
    spectra = np.stack([_gauss(ENERGY, 52, 2.0), _gauss(ENERGY, 65, 2.5), _gauss(ENERGY, 79, 2.0)], axis=1)
    yy, xx = np.mgrid[0:ny, 0:nx]
    maps = np.stack([
        np.clip(1.0 - xx / (nx / 2), 0, 1),          # left
        np.clip(1.0 - np.abs(xx - nx / 2) / (nx / 3), 0, 1) * (0.5 + 0.5 * yy / ny),
        np.clip((xx - nx / 2) / (nx / 2), 0, 1),     # right
    ], axis=-1).reshape(-1, 3) * 200.0
    maps += rng.uniform(0, 5, maps.shape) * (maps > 0)
    return maps, spectra


def _noisy(maps, spectra, seed=1):
    return np.random.default_rng(seed).poisson(maps @ spectra.T + 1.0).astype(np.float64)


def _match(est, true):
    """Best column permutation by correlation; returns the matched correlations."""
    corr = np.corrcoef(est.T, true.T)[: est.shape[1], est.shape[1]:]
    rows, cols = scipy.optimize.linear_sum_assignment(-corr)
    return corr[rows, cols]


def _image(x, ny=24, nx=20, dtype=np.float64):
    return signal(x.reshape(ny, nx, -1).astype(dtype), ("y", "x", "energy"), name="eels", units="counts",
                  coords={"y": 1.5, "x": 1.5, "energy": ENERGY})


# --------------------------------------------------------------------------- NMF kernel


@pytest.mark.filterwarnings("ignore:NMF stopped after")
@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "random"])
def test_nmf_is_nonnegative_and_objective_never_increases(init):
    maps, spectra = _separated_sources()
    x = _noisy(maps, spectra)
    c, s, info = nmf_hals(x, 3, init=init, max_iter=300, tol=1e-9, seed=3)
    assert c.shape == (x.shape[0], 3) and s.shape == (x.shape[1], 3)
    assert np.all(c >= 0) and np.all(s >= 0)
    obj = np.asarray(info["objective"])
    assert np.all(np.diff(obj) <= 1e-10 * obj[0])
    np.testing.assert_allclose(s.max(axis=0), 1.0)
    np.testing.assert_allclose(info["reconstruction_error"], np.linalg.norm(x - c @ s.T), rtol=1e-9)
    np.testing.assert_allclose(0.5 * info["reconstruction_error"] ** 2, obj[-1], rtol=1e-8)


def test_nmf_with_orthogonality_is_nonnegative_and_converges():
    maps, spectra = _separated_sources()
    x = _noisy(maps, spectra)
    c, s, info = nmf_hals(x, 3, orthogonality=0.1, max_iter=3000, tol=1e-8)
    assert info["converged"]
    assert np.all(c >= 0) and np.all(s >= 0)
    np.testing.assert_allclose(s.max(axis=0), 1.0)
    assert np.all(_match(s, spectra) > 0.99)  # well-separated phases survive the constraint


@pytest.mark.filterwarnings("ignore:NMF stopped after", "ignore:Maximum number of iterations")
def test_nmf_reconstruction_error_matches_scikit_learn():
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    maps, spectra = _separated_sources(seed=4)
    x = _noisy(maps, spectra, seed=5)
    for k in (3, 5):
        _, _, info = nmf_hals(x, k, max_iter=2000, tol=1e-8)
        model = sklearn_decomposition.NMF(n_components=k, init="nndsvd", solver="cd", max_iter=2000,
                                          tol=1e-8)
        model.fit(x)
        assert info["reconstruction_error"] == pytest.approx(model.reconstruction_err_, rel=0.05)


def test_nmf_recovers_well_separated_sources():
    maps, spectra = _separated_sources(seed=6)
    x = maps @ spectra.T
    c, s, info = nmf_hals(x, 3, max_iter=3000, tol=1e-10)
    assert np.all(_match(s, spectra) > 0.99)
    assert np.all(_match(c, maps) > 0.99)
    noisy = _noisy(maps, spectra, seed=7)
    c, s, _ = nmf_hals(noisy, 3, max_iter=3000, tol=1e-9)
    assert np.all(_match(s, spectra) > 0.99)
    assert np.all(_match(c, maps) > 0.99)


@pytest.mark.filterwarnings("ignore:NMF stopped after")
def test_nmf_float32_matches_float64():
    maps, spectra = _separated_sources(seed=8)
    x = _noisy(maps, spectra, seed=9)
    # float32 objectives are only good to ~1e-6, so a float32 run cannot resolve a smaller tol
    c64, s64, i64 = nmf_hals(x, 3, max_iter=300, tol=1e-5)
    c32, s32, i32 = nmf_hals(x.astype(np.float32), 3, max_iter=300, tol=1e-5)
    assert c32.dtype == np.float32 and s32.dtype == np.float32
    assert i32["reconstruction_error"] == pytest.approx(i64["reconstruction_error"], rel=1e-4)
    np.testing.assert_allclose(s32, s64, atol=1e-3)
    np.testing.assert_allclose(c32, c64, rtol=1e-3, atol=1e-3 * c64.max())


def _overlap(c):
    cn = c / np.linalg.norm(c, axis=0)
    g = cn.T @ cn
    return float(g.sum() - np.trace(g))


def test_orthogonality_weight_reduces_map_overlap():
    # overlapping spectra and mixed maps: plain NMF spreads phases over each other's pixels
    rng = np.random.default_rng(10)
    spectra = np.stack([_gauss(ENERGY, 60, 6) + 0.3 * _gauss(ENERGY, 70, 5),
                        _gauss(ENERGY, 66, 6) + 0.3 * _gauss(ENERGY, 55, 5)], axis=1)
    maps = rng.dirichlet([0.6, 0.6], size=600) * 300.0
    x = rng.poisson(maps @ spectra.T).astype(np.float64)
    overlaps = []
    errors = []
    for w in (0.0, 0.1, 0.3):
        c, s, info = nmf_hals(x, 2, orthogonality=w, max_iter=3000, tol=1e-9)
        overlaps.append(_overlap(c))
        errors.append(info["reconstruction_error"])
        assert np.all(np.linalg.norm(c, axis=0) > 0.2 * np.linalg.norm(c))  # no component emptied
    assert overlaps[0] > overlaps[1] > overlaps[2]
    assert errors[0] < errors[1] < errors[2]  # the price: a slightly worse fit


def test_nmf_rejects_bad_input():
    x = np.ones((10, 8))
    with pytest.raises(InputError, match="non-negative data, but the minimum is -1"):
        nmf_hals(x - 2 * np.eye(10, 8), 2)
    with pytest.raises(ConfigError, match="n_components must be an integer from 1 to"):
        nmf_hals(x, 9)
    with pytest.raises(InputError, match="NaN/inf"):
        nmf_hals(np.full((4, 4), np.nan), 1)
    with pytest.raises(ConfigError, match="init must be one of"):
        nmf_hals(x, 1, init="svd")
    with pytest.raises(ConfigError, match=r"orthogonality must be a weight in \[0, 1\]"):
        nmf_hals(x, 1, orthogonality=2.0)


# --------------------------------------------------------------------------- PCA kernel


def _low_rank(n=400, e=120, rank=4, noise=0.05, seed=11):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, rank)) * [10, 5, 3, 2][:rank]) @ rng.standard_normal((rank, e))
    return x + 3.0 + noise * rng.standard_normal((n, e))


def test_pca_matches_scikit_learn():
    sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
    x = _low_rank()
    scores, comps, info = pca_svd(x, 4)
    ref = sklearn_decomposition.PCA(n_components=4, svd_solver="full").fit(x)
    np.testing.assert_allclose(info["explained_variance"], ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(info["explained_variance_ratio"], ref.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(comps.T @ ref.components_.T), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(comps.T @ comps, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(scores, (x - info["mean"]) @ comps, atol=1e-9)
    assert np.all(comps[np.argmax(np.abs(comps), axis=0), np.arange(4)] > 0)


def test_randomized_pca_agrees_with_full():
    x = _low_rank(n=800, e=600)
    s_full, c_full, i_full = pca_svd(x, 4, method="full")
    s_rand, c_rand, i_rand = pca_svd(x, 4, method="randomized", seed=1)
    assert i_rand["method"] == "randomized"
    np.testing.assert_allclose(i_rand["explained_variance"], i_full["explained_variance"], rtol=1e-6)
    np.testing.assert_allclose(c_rand, c_full, atol=1e-5)
    u, s, vt = randomized_svd(x, 3, center=x.mean(axis=0))
    np.testing.assert_allclose(s, np.linalg.svd(x - x.mean(axis=0), compute_uv=False)[:3], rtol=1e-8)


def test_pca_float32_matches_float64():
    x = _low_rank()
    _, c64, i64 = pca_svd(x, 3)
    _, c32, i32 = pca_svd(x.astype(np.float32), 3)
    np.testing.assert_allclose(i32["explained_variance"], i64["explained_variance"], rtol=1e-4)
    np.testing.assert_allclose(c32, c64, atol=1e-4)


# --------------------------------------------------------------------------- wrappers


def test_nmf_wrapper_labels_maps_and_spectra():
    maps, spectra = _separated_sources()
    da = _image(_noisy(maps, spectra))
    ds = nmf(da, 3, window=(45.0, 85.0), max_iter=500)
    assert ds.maps.dims == ("component", "y", "x") and ds.spectra.dims == ("component", "energy")
    assert ds.spectra.energy.values[0] == pytest.approx(45.0) and ds.spectra.energy.values[-1] == pytest.approx(85.0)
    assert ds.maps.attrs["units"] == "counts" and ds.y.attrs["units"] == "nm"
    assert float(ds.reconstruction_error) > 0
    step = json.loads(ds.attrs["provenance"])[-1]
    assert step["step"] == "ionscope.eels.nmf" and step["params"]["window_eV"] == [45.0, 85.0]
    assert np.all(_match(ds.maps.values.reshape(3, -1).T, maps) > 0.99)


def test_nmf_wrapper_lazy_input_stays_lazy_and_is_near_the_eager_result():
    # 480 spectra: the lazy path's sample is all of them, so it starts from the in-memory HALS
    # components; its passes and exact non-negative least-squares maps barely move them
    maps, spectra = _separated_sources()
    da = _image(_noisy(maps, spectra), dtype=np.float32)
    eager = nmf(da, 3, max_iter=100, tol=1e-6)
    lazy = nmf(da.chunk({"y": 8}), 3, max_iter=100, tol=1e-6)
    assert lazy.maps.chunks is not None and lazy.attrs["n_sample"] == 480
    np.testing.assert_allclose(lazy.maps.values, eager.maps.values, atol=1e-3 * float(eager.maps.max()))
    np.testing.assert_allclose(lazy.spectra.values, eager.spectra.values, atol=1e-3)
    assert eager.maps.dtype == np.float32 and lazy.maps.dtype == np.float32


def test_nmf_wrapper_rejects_negative_and_non_finite_data():
    maps, spectra = _separated_sources()
    x = _noisy(maps, spectra) - 5.0
    with pytest.raises(InputError, match=r"clip small negative noise \(da.clip\(min=0\)\)"):
        nmf(_image(x), 2)
    x = _noisy(maps, spectra)
    x[3, 7] = np.inf
    with pytest.raises(NonFiniteError):
        nmf(_image(x), 2)


def test_pca_wrapper():
    x = _low_rank(n=24 * 20, e=ENERGY.size)
    ds = pca(_image(x), 4)
    assert ds.maps.dims == ("component", "y", "x")
    assert ds.explained_variance_ratio.dims == ("component",)
    assert float(ds.explained_variance_ratio.sum()) > 0.99
    recon = np.einsum("kyx,ke->yxe", ds.maps.values, ds.spectra.values) + ds.mean_spectrum.values
    np.testing.assert_allclose(recon, x.reshape(24, 20, -1), atol=0.5)
    assert json.loads(ds.attrs["provenance"])[-1]["step"] == "ionscope.eels.pca"
