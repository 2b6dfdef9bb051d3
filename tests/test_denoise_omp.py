"""Batch-OMP (ionscope.denoise.omp) against scikit-learn's orthogonal_mp_gram."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ionscope.denoise.omp import SparseCodes, batch_omp, batch_omp_codes, sparse_code
from ionscope.errors import ConfigError, DimensionError

sklearn_omp = pytest.importorskip("sklearn.linear_model").orthogonal_mp_gram


def _problem(seed, n_features=24, n_atoms=48, n_signals=300, k_true=4, noise=0.05,
             dtype=np.float64):
    """Random unit-norm dictionary and signals that are sparse in it plus noise."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(n_atoms, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = np.zeros((n_signals, n_atoms))
    for i in range(n_signals):
        X[i, rng.choice(n_atoms, k_true, replace=False)] = rng.normal(size=k_true)
    Y = X @ D + noise * rng.normal(size=(n_signals, n_features))
    return D.astype(dtype), Y.astype(dtype)


def _sklearn(G, dty, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return sklearn_omp(G, dty.T, **kw).T


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-5, 1e-10), (np.float32, 1e-4, 1e-5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparsity_stopping_equals_sklearn(dtype, rtol, atol, seed):
    D, Y = _problem(seed, dtype=dtype)
    G, dty = D @ D.T, Y @ D.T
    for k in (1, 3, 6):
        ours = batch_omp(G, dty, n_nonzero=k)
        ref = _sklearn(G, dty, n_nonzero_coefs=k)
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours != 0, ref != 0)   # same supports
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)
        assert np.all(np.count_nonzero(ours, axis=1) == k)


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-5, 1e-10), (np.float32, 1e-4, 1e-5)])
@pytest.mark.parametrize("seed", [3, 4])
def test_tolerance_stopping_equals_sklearn(dtype, rtol, atol, seed):
    D, Y = _problem(seed, noise=0.2, dtype=dtype)
    G, dty = D @ D.T, Y @ D.T
    yty = np.einsum("ij,ij->i", Y, Y)
    # squared-norm targets between "one atom" and "many atoms"; every signal starts above
    for frac in (0.5, 0.1, 0.02):
        tol = float(frac * np.median(yty))
        keep = yty > tol          # ours gives no atom to signals already within tol
        ours = batch_omp(G, dty[keep], tol=tol, yty=yty[keep])
        ref = _sklearn(G, dty[keep], tol=tol, norms_squared=yty[keep])
        np.testing.assert_array_equal(ours != 0, ref != 0)
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)
        # and the target is really met: the squared residual is at most tol
        # (float32 rounding of the residual of many-atom codes: relative slack)
        resid = Y[keep].astype(np.float64) - ours.astype(np.float64) @ D.astype(np.float64)
        slack = 1e-9 if dtype == np.float64 else 1e-3
        assert np.all((resid**2).sum(axis=1) <= tol * (1 + slack) + slack)


def test_both_limits_stop_at_whichever_comes_first():
    D, Y = _problem(5, noise=0.2)
    G, dty = D @ D.T, Y @ D.T
    yty = np.einsum("ij,ij->i", Y, Y)
    tol = float(0.01 * np.median(yty))
    only_tol = batch_omp(G, dty, tol=tol, yty=yty)
    both = batch_omp(G, dty, n_nonzero=3, tol=tol, yty=yty)
    n_tol = np.count_nonzero(only_tol, axis=1)
    n_both = np.count_nonzero(both, axis=1)
    np.testing.assert_array_equal(n_both, np.minimum(n_tol, 3))
    # the signals capped by the sparsity limit get exactly the k-sparse OMP solution
    capped = n_tol > 3
    assert capped.any()
    np.testing.assert_allclose(both[capped], batch_omp(G, dty[capped], n_nonzero=3), rtol=1e-10)


def test_signal_already_within_tolerance_gets_no_atom():
    D, Y = _problem(6)
    G = D @ D.T
    Y[0] = 0.0
    Y[1] *= 1e-3
    yty = np.einsum("ij,ij->i", Y, Y)
    codes = batch_omp(G, Y @ D.T, tol=1e-4, yty=yty)
    assert not codes[0].any() and not codes[1].any()
    assert np.all(np.count_nonzero(codes[2:], axis=1) > 0)


def test_exact_sparse_signals_are_recovered():
    rng = np.random.default_rng(7)
    D = rng.normal(size=(40, 64))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = np.zeros((50, 40))
    for i in range(50):
        X[i, rng.choice(40, 3, replace=False)] = rng.uniform(1, 2, 3) * rng.choice([-1, 1], 3)
    codes = batch_omp(D @ D.T, (X @ D) @ D.T, n_nonzero=3)
    np.testing.assert_allclose(codes, X, atol=1e-10)


def test_one_dimensional_input_and_zero_signal():
    D, Y = _problem(8)
    G = D @ D.T
    one = batch_omp(G, Y[0] @ D.T, n_nonzero=2)
    assert one.shape == (D.shape[0],)
    np.testing.assert_allclose(one, batch_omp(G, Y[:1] @ D.T, n_nonzero=2)[0])
    zero = batch_omp(G, np.zeros(D.shape[0]), n_nonzero=2)
    assert not zero.any()


def test_sparse_code_chunks_match_one_batch_and_sparse_form_is_consistent():
    D, Y = _problem(9, n_signals=257)
    whole = sparse_code(Y, D, n_nonzero=4, chunk_size=10_000)
    chunked = sparse_code(Y, D, n_nonzero=4, chunk_size=50)
    np.testing.assert_array_equal(whole.indices, chunked.indices)
    np.testing.assert_allclose(whole.values, chunked.values, rtol=1e-12)
    dense = whole.to_dense()
    np.testing.assert_allclose(whole.reconstruct(D), dense @ D, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(whole.to_csr().toarray(), dense)
    np.testing.assert_array_equal(whole.counts, np.count_nonzero(dense, axis=1))
    both = SparseCodes.concatenate([whole.take(slice(0, 100)), whole.take(slice(100, None))])
    np.testing.assert_array_equal(both.indices, whole.indices)


def test_invalid_arguments_raise_clear_errors():
    D, Y = _problem(10)
    G, dty = D @ D.T, Y @ D.T
    with pytest.raises(ConfigError, match="yty"):
        batch_omp(G, dty, tol=0.1)
    with pytest.raises(ConfigError, match="exceeds the number of atoms"):
        batch_omp(G, dty, n_nonzero=D.shape[0] + 1)
    with pytest.raises(ConfigError, match="at least 1"):
        batch_omp(G, dty, n_nonzero=0)
    with pytest.raises(ConfigError, match="tol"):
        batch_omp(G, dty, tol=-1.0, yty=np.ones(len(Y)))
    with pytest.raises(DimensionError, match="dty must have shape"):
        batch_omp(G, dty[:, :-1], n_nonzero=2)
    with pytest.raises(DimensionError, match="same number of features"):
        sparse_code(Y[:, :-1], D, n_nonzero=2)
    with pytest.raises(DimensionError):
        batch_omp_codes(G[:, :-1], dty, n_nonzero=2)
