"""Dictionary learning (ionscope.denoise.dictionary): DCT start, K-SVD, online learning."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.denoise.dictionary import (
    ksvd,
    learn_dictionary,
    online_dictionary_learning,
    overcomplete_dct,
)
from ionscope.errors import ConfigError, DimensionError


@pytest.fixture(scope="module")
def planted():
    """Aharon et al.'s synthetic experiment, smaller: 50 random atoms in 20-D, 3 per signal."""
    rng = np.random.default_rng(0)
    n, k_atoms, n_signals, k = 20, 50, 1500, 3
    D0 = rng.normal(size=(k_atoms, n))
    D0 /= np.linalg.norm(D0, axis=1, keepdims=True)
    X = np.zeros((n_signals, k_atoms))
    for i in range(n_signals):
        X[i, rng.choice(k_atoms, k, replace=False)] = rng.normal(size=k)
    Y = X @ D0 + 0.01 * rng.normal(size=(n_signals, n))
    init = rng.normal(size=(k_atoms, n))
    return D0, Y, init, k


def _recovered(D, D0, threshold=0.99):
    """Fraction of planted atoms matched by a learned atom with |correlation| > threshold."""
    return float(np.mean(np.abs(D @ D0.T).max(axis=0) > threshold))


def test_overcomplete_dct_2d_is_elads_16x16_kronecker_dictionary():
    D = overcomplete_dct(8, 256)
    assert D.shape == (256, 64)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    # independent construction: 1-D overcomplete DCT (16 atoms of length 8), Kronecker products
    n, m = np.arange(8), 16
    one = np.cos(np.pi * np.arange(m)[:, None] * n / m)
    one[1:] -= one[1:].mean(axis=1, keepdims=True)
    one /= np.linalg.norm(one, axis=1, keepdims=True)
    kron = np.einsum("ai,bj->abij", one, one).reshape(256, 64)
    # same set of atoms (order may differ): every atom of one is in the other
    match = np.abs(D @ kron.T).max(axis=1)
    np.testing.assert_allclose(match, 1.0, atol=1e-12)
    assert np.allclose(D[0], 1 / 8)                        # DC atom first
    np.testing.assert_allclose(D[1:].sum(axis=1), 0.0, atol=1e-12)  # all others mean-free


@pytest.mark.parametrize(
    "shape, n_atoms",
    [((3, 8, 8), 256), ((2, 8, 8), 256), ((5, 6, 6), 256), ((3, 4, 4), 64), ((4, 4), 16)],
)
def test_overcomplete_dct_spans_all_patches_without_duplicate_atoms(shape, n_atoms):
    D = overcomplete_dct(shape, n_atoms)
    n = int(np.prod(shape))
    assert D.shape == (n_atoms, n)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    assert np.linalg.matrix_rank(D) == min(n, n_atoms)    # every patch is representable
    gram = np.abs(D @ D.T)
    np.fill_diagonal(gram, 0.0)
    assert gram.max() < 0.99                               # no (near-)duplicate atoms


def test_overcomplete_dct_rejects_impossible_requests():
    with pytest.raises(ConfigError):
        overcomplete_dct((0, 4), 16)
    with pytest.raises(ConfigError, match="at most 4 distinct"):
        overcomplete_dct((2, 2), 8)


def test_ksvd_error_decreases_monotonically_and_recovers_planted_dictionary(planted):
    D0, Y, init, k = planted
    result = ksvd(Y, init, n_nonzero=k, iterations=40, seed=0)
    errors = np.asarray(result.errors)
    assert np.all(np.diff(errors) <= 1e-12 * errors[0])
    assert errors[-1] < 0.3 * errors[0]
    assert _recovered(result.dictionary, D0) >= 0.8
    np.testing.assert_allclose(np.linalg.norm(result.dictionary, axis=1), 1.0)
    # codes and dictionary belong together
    assert result.codes.n_signals == len(Y)
    rms = np.sqrt(np.mean((Y - result.codes.reconstruct(result.dictionary)) ** 2))
    assert rms == pytest.approx(errors[-1], rel=1e-8)


def test_approximate_ksvd_also_descends_and_is_deterministic(planted):
    D0, Y, init, k = planted
    a = ksvd(Y, init, n_nonzero=k, iterations=15, approximate=True, seed=3)
    b = ksvd(Y, init, n_nonzero=k, iterations=15, approximate=True, seed=3)
    np.testing.assert_array_equal(a.dictionary, b.dictionary)
    errors = np.asarray(a.errors)
    assert np.all(np.diff(errors) <= 1e-12 * errors[0])
    assert errors[-1] < 0.6 * errors[0]
    start = init / np.linalg.norm(init, axis=1, keepdims=True)
    assert _recovered(a.dictionary, D0) > _recovered(start, D0)


def test_unused_atoms_are_replaced_by_worst_represented_signals(planted):
    D0, Y, init, k = planted
    start = init.copy()
    start[10:20] = start[0]          # ten duplicates of atom 0: OMP never uses them
    result = ksvd(Y, start, n_nonzero=k, iterations=1, seed=0)
    assert result.n_replaced[0] >= 9
    gram = np.abs(result.dictionary @ result.dictionary.T)
    np.fill_diagonal(gram, 0)
    assert gram.max() < 0.99          # no duplicate atoms left


def test_online_learning_reduces_error_and_finds_most_atoms(planted):
    D0, Y, init, k = planted
    result = online_dictionary_learning(Y, init, n_nonzero=k, epochs=20, batch_size=128, seed=0)
    assert result.errors[-1] < 0.5 * result.errors[0]
    assert _recovered(result.dictionary, D0) >= 0.6
    np.testing.assert_allclose(np.linalg.norm(result.dictionary, axis=1), 1.0)


def test_learn_dictionary_entry_point_is_seeded_and_validates():
    rng = np.random.default_rng(1)
    patches = rng.normal(size=(3000, 16))
    a = learn_dictionary(patches, patch_shape=(4, 4), n_atoms=32, n_nonzero=2, iterations=2,
                         max_signals=500, seed=5)
    b = learn_dictionary(patches, patch_shape=(4, 4), n_atoms=32, n_nonzero=2, iterations=2,
                         max_signals=500, seed=5)
    c = learn_dictionary(patches, patch_shape=(4, 4), n_atoms=32, n_nonzero=2, iterations=2,
                         max_signals=500, seed=6)
    np.testing.assert_array_equal(a.dictionary, b.dictionary)
    assert not np.array_equal(a.dictionary, c.dictionary)
    assert a.codes.n_signals == 500
    with pytest.raises(ConfigError, match="unknown dictionary learner"):
        learn_dictionary(patches, patch_shape=4, method="magic")
    with pytest.raises(DimensionError, match="features"):
        learn_dictionary(patches, patch_shape=(5, 5), n_atoms=32, n_nonzero=2)
    with pytest.raises(DimensionError):
        ksvd(patches, np.ones((8, 15)), n_nonzero=2)
