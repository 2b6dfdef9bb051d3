"""Per-particle correlation with bootstrap and Fisher-z intervals (ionscope.correlate.stats)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ionscope.correlate import bootstrap_pearson, pearson_kernel
from ionscope.errors import ConfigError, InputError


def test_the_coefficient_is_scipys_and_vectorised():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 30)), rng.normal(size=(5, 30))
    expected = [stats.pearsonr(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(pearson_kernel(x, y), expected, rtol=1e-12)
    assert np.isnan(pearson_kernel(np.ones(4), np.arange(4.0)))


def test_the_intervals_cover_the_true_coefficient_at_their_level():
    """Over 200 samples of 25 pairs from a bivariate normal with rho = -0.6, the 90 % bootstrap and
    Fisher intervals contain rho about 90 % of the time (the bootstrap's percentile interval is
    known to run a little short at n = 25)."""
    rho, n, trials = -0.6, 25, 200
    cov = [[1.0, rho], [rho, 1.0]]
    hits_boot = hits_fisher = 0
    for k in range(trials):
        x, y = np.random.default_rng(k).multivariate_normal([0, 0], cov, size=n).T
        c = bootstrap_pearson(x, y, resamples=400, level=0.9, seed=k)
        hits_boot += c.ci_low <= rho <= c.ci_high
        hits_fisher += c.fisher_low <= rho <= c.fisher_high
    assert 0.80 <= hits_boot / trials <= 0.97
    assert 0.84 <= hits_fisher / trials <= 0.96


def test_nan_pairs_are_left_out_and_bad_input_is_refused():
    x = np.array([1.0, 2, 3, np.nan, 5, 6])
    y = np.array([2.0, 4, 6, 1, np.nan, 12])
    c = bootstrap_pearson(x, y)
    assert c.n == 4 and c.r == pytest.approx(1.0) and c.as_dict()["r"] == pytest.approx(1.0)
    few = bootstrap_pearson([1.0, 2, 3], [1.0, 3, 2])
    assert few.n == 3 and few.as_dict()["ci_low"] is None
    with pytest.raises(InputError, match="at least 3"):
        bootstrap_pearson([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(InputError, match="constant"):
        bootstrap_pearson([1.0, 1, 1, 1], [1.0, 2, 3, 4])
    with pytest.raises(InputError, match="one length"):
        bootstrap_pearson([1.0, 2, 3], [1.0, 2])
    with pytest.raises(ConfigError):
        bootstrap_pearson([1.0, 2, 3, 4], [1.0, 2, 3, 5], level=1.5)


def test_the_docstring_examples_run():
    import doctest

    import ionscope.correlate.stats as module

    assert doctest.testmod(module).failed == 0
