"""The ``li_fronts`` twin (ionscope.simulate.li_fronts): sharp two-phase fronts moving at the
speed it was given, Poisson counts at its dose."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.errors import ConfigError
from ionscope.simulate import simulate
from ionscope.simulate.li_fronts import LiFrontsParams, front_clock


@pytest.fixture(scope="module")
def fast():
    return simulate("li_fronts", seed=3)


def _crossing(profile: np.ndarray, level: float) -> float:
    """Sub-pixel row where a column profile first rises through ``level`` (NaN if it does not)."""
    above = np.flatnonzero((profile[:-1] < level) & (profile[1:] >= level))
    if not above.size:
        return np.nan
    k = above[0]
    return k + (level - profile[k]) / (profile[k + 1] - profile[k])


def test_dims_units_protocol_and_truth(fast):
    p = LiFrontsParams()
    assert fast["li_fraction"].dims == ("time", "y", "x") and fast.sizes["time"] == p.n_frames == 50
    assert fast["li_fraction"].attrs["dose"] == 12.0 and fast["li_fraction"].attrs["units"] == "1"
    assert fast["y"].attrs["units"] == "nm" and fast["time"].attrs["units"] == "s"
    np.testing.assert_array_equal(fast["front_clock"].values, front_clock(p))
    assert fast["front_clock"].values.max() == 24 and fast["front_clock"].values[-1] == 1
    assert list(np.unique(fast["state"].values)) == [0, 1, 2]
    truth = fast["li_fraction_true"].values
    assert truth.min() >= 0 and truth.max() <= 1
    # Poisson counts at the dose: unbiased, with the Poisson variance
    counts = fast["li_fraction"].values * 12.0
    assert np.allclose(counts, np.rint(counts))
    mean_rate = truth * 12.0
    z = (counts.sum() - mean_rate.sum()) / np.sqrt(mean_rate.sum())
    assert abs(z) < 4
    resid = (counts - mean_rate)[mean_rate > 3]
    assert np.var(resid) == pytest.approx(np.mean(mean_rate[mean_rate > 3]), rel=0.05)


def test_the_front_moves_at_the_speed_it_was_given(fast):
    """Away from the domain boundaries, the Li-rich/Li-poor mid-level moves down 2.5 px per
    charge frame and back up during the discharge."""
    p = LiFrontsParams()
    truth = fast["li_fraction_true"].values
    arrival = fast["front_arrival_frame"].values
    mid = 0.5 * (p.x_rich + p.x_poor)
    depth_only = np.nanargmax(np.nanmean(arrival, axis=0))  # the column that the bulk front reaches last
    speeds = []
    for k in range(2, 12):
        a, b = (_crossing(truth[f, :, depth_only], mid) for f in (k, k + 1))
        speeds.append(b - a)
    assert np.nanmedian(speeds) == pytest.approx(p.front_speed_px, abs=0.3)
    back = [(_crossing(truth[f + 1, :, depth_only], mid) - _crossing(truth[f, :, depth_only], mid))
            for f in range(30, 38)]
    assert np.nanmedian(back) == pytest.approx(-p.front_speed_px, abs=0.3)
    # the truth is the model: frames with the same front clock are the same field
    clock = fast["front_clock"].values
    k1, k2 = np.flatnonzero(clock == 10)[:2]
    np.testing.assert_array_equal(truth[k1], truth[k2])


def test_a_slow_twin_and_bad_parameters():
    slow = simulate("li_fronts", seed=3, front_speed_px=0.25, ny=32, nx=32)
    change = np.abs(np.diff(slow["li_fraction_true"].values, axis=0)).mean()
    fast = simulate("li_fronts", seed=3, ny=32, nx=32)
    assert np.abs(np.diff(fast["li_fraction_true"].values, axis=0)).mean() > 3 * change  # the small field fills early
    with pytest.raises(ConfigError, match="at least one frame"):
        simulate("li_fronts", charge_frames=0, rest_frames=0, discharge_frames=0)
    with pytest.raises(ConfigError, match="front_speed_px"):
        simulate("li_fronts", front_speed_px=-1.0)


def test_the_docstring_examples_run():
    import doctest

    from ionscope.simulate import li_fronts

    result = doctest.testmod(li_fronts, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
