"""The compiled single-pass MLLS sums (ionscope.eels.mlls_sums) against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.eels.mlls_sums import poisson_weighted_rows, project_rows, upper_products


def _basis(e: int, k: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((e, k)))
    return q


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_projection_and_norm_equal_numpy_in_float64(dtype):
    q = _basis(300, 4)
    s = (np.random.default_rng(1).poisson(500.0, (50, 300)) - 3.0).astype(dtype)
    c, sq = np.empty((50, 4)), np.empty(50)
    project_rows(s, np.ascontiguousarray(q.T), c, sq)
    s64 = s.astype(np.float64)
    np.testing.assert_allclose(c, s64 @ q, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sq, np.sum(s64**2, axis=1), rtol=1e-13)


@pytest.mark.parametrize("k", [1, 2, 4, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_normal_equations_solved_per_row(k, dtype):
    e, n = 200, 40
    q = _basis(e, k, seed=k)
    rng = np.random.default_rng(k)
    s = rng.poisson(rng.uniform(0.2, 400.0, (n, 1)), (n, e)).astype(dtype)
    s[0, :10] = 0.0  # zero counts: weight 1
    qprod_t, iu, ju = upper_products(q)
    a_q, g_inv, wsq = np.empty((n, k)), np.empty((n, k, k)), np.empty(n)
    poisson_weighted_rows(s, np.ascontiguousarray(q.T), qprod_t, iu, ju, a_q, g_inv, wsq)
    s64 = s.astype(np.float64)
    w = 1.0 / np.maximum(s64, 1.0)
    for i in range(n):
        g = q.T @ (w[i, :, None] * q)
        b = q.T @ (w[i] * s64[i])
        a = np.linalg.solve(g, b)
        np.testing.assert_allclose(a_q[i], a, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g_inv[i], np.linalg.inv(g), rtol=1e-10, atol=1e-12)
        r = s64[i] - q @ a
        np.testing.assert_allclose(wsq[i], np.sum(w[i] * r * r), rtol=1e-9)


def test_a_fit_window_cut_from_longer_spectra_fits_like_a_copy():
    """The kernels copy non-contiguous blocks (a window of longer spectra) to contiguous rows
    before the compiled sums: same coefficients and chi^2 as fitting a contiguous copy."""
    from ionscope.eels.mlls import mlls_unweighted, mlls_weighted

    e = np.linspace(40.0, 100.0, 160)
    refs = np.stack([np.exp(-((e - 60) / 4) ** 2) + 0.1, np.exp(-((e - 70) / 6) ** 2)], axis=1)
    full = np.random.default_rng(5).poisson(refs @ [400.0, 300.0], (30, 160)).astype(np.float32)
    window = full[:, 20:120]
    assert not window.flags.c_contiguous
    for kernel in (mlls_unweighted, mlls_weighted):
        a = kernel(window, refs[20:120])
        b = kernel(np.ascontiguousarray(window), refs[20:120])
        np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-12)
        np.testing.assert_allclose(a.chi2, b.chi2, rtol=1e-10)
