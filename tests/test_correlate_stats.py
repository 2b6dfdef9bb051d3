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


def test_frames_and_states_are_paired_by_name_index_charge_or_default():
    from ionscope.correlate import default_pairs, pairs_by_charge, parse_pairs
    import ionscope.correlate.pairs as module
    import doctest

    frames, states = [f"{60 * k} s" for k in range(10)], ["pristine", "charge1", "discharge1"]
    assert parse_pairs("0:pristine,540 s:charge1", frames, states) == [(0, 0), (9, 1)]
    assert parse_pairs("0:0, -1:2", frames, states) == [(0, 0), (9, 2)]
    with pytest.raises(InputError, match="no state 'charge9'"):
        parse_pairs("0:pristine,9:charge9", frames, states)
    with pytest.raises(InputError, match="frame 10 does not exist"):
        parse_pairs("0:pristine,10:charge1", frames, states)
    for bad in ("0:pristine", "0-pristine,1:charge1", "0:pristine,0:charge1"):
        with pytest.raises(ConfigError):
            parse_pairs(bad, frames, states)
    assert default_pairs(10, 3) == [(0, 0), (9, 1)]
    with pytest.raises(InputError, match="two frames and two states"):
        default_pairs(1, 3)
    assert pairs_by_charge(np.linspace(0, 0.05, 10), np.array([0.0, 0.05, 0.2])) == [(0, 0), (9, 1)]
    with pytest.raises(InputError, match="--pairs"):
        pairs_by_charge(np.linspace(0, 0.05, 10), np.array([0.3, 0.4]))
    assert doctest.testmod(module).failed == 0
