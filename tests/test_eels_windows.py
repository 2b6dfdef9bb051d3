"""Window integrals, edge maps and the S_A/S_B Li-K / Co-M ratio method (ionscope.eels.windows)."""

from __future__ import annotations

import json

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr
from scipy.special import erf

from daskcount import CountingScheduler

from ionscope.data import provenance, signal
from ionscope.eels.background import MASK_NONPOSITIVE, MASK_OK, MASK_RATIO_UNDEFINED
from ionscope.eels.windows import (
    edge_integrals,
    ratio_kernel,
    sasb_calibration,
    sasb_li_fraction,
    sasb_ratio,
    window_integral,
    window_map,
    window_weights,
)
from ionscope.errors import ConfigError, InputError

E = 35 + 0.1 * np.arange(500)  # 35-84.9 eV
WA, WB, BG = (55.0, 62.0), (68.0, 82.0), (44.0, 53.0)


def components(dose: float = 1.0):
    """Power-law background, Co-M2,3 edge and Li-K edge (counts per channel)."""
    bg = 4e7 * E**-3.0
    co = 2500 * 0.5 * (1 + erf((E - 59.5) / 1.0)) * np.exp(-np.clip(E - 59.5, 0, None) / 25)
    li = 1500 * 0.5 * (1 + erf((E - 55.5) / 0.6)) * np.exp(-np.clip(E - 55.5, 0, None) / 2.5)
    return dose * bg, dose * co, dose * li


def mixture(x, dose: float = 1.0):
    """LixCoO2: Co-M from every formula unit, Li-K proportional to x."""
    bg, co, li = components(dose)
    return bg + co + np.multiply.outer(np.asarray(x, dtype=np.float64), li)


def spectrum_image(values, dims=("y", "x", "energy")):
    return signal(values, dims, name="eels", units="counts", coords={"energy": E})


# --------------------------------------------------------------------------- integrals


def test_window_integral_handles_fractional_channels_exactly():
    e = np.arange(10.0)  # channel i covers [i - 0.5, i + 0.5]
    y = np.arange(10.0) ** 2
    # [2.25, 5.0]: 1/4 of channel 2, channels 3 and 4 whole, 1/2 of channel 5
    expected = 0.25 * 4 + 9 + 16 + 0.5 * 25
    assert float(window_integral(e, y, (2.25, 5.0))) == pytest.approx(expected)
    assert float(window_integral(e, y, (1.5, 4.5))) == pytest.approx(4 + 9 + 16)  # channels 2-4 whole
    assert float(window_integral(e, y, (-0.5, 9.5))) == pytest.approx(y.sum())
    np.testing.assert_allclose(window_weights(e, (2.25, 5.0))[1:7], [0, 0.25, 1, 1, 0.5, 0])


def test_window_integral_is_vectorised_and_additive():
    rng = np.random.default_rng(0)
    y = rng.random((3, 4, E.size))
    whole = window_integral(E, y, (50.03, 60.07))
    parts = window_integral(E, y, (50.03, 55.55)) + window_integral(E, y, (55.55, 60.07))
    assert whole.shape == (3, 4)
    np.testing.assert_allclose(whole, parts)


@pytest.mark.parametrize(
    ("window", "message"),
    [((20, 40), "outside the data"), ((50, 50.15), "at least 2 channels"), ((55, 50), "lo < hi")],
)
def test_window_integral_rejects_bad_windows(window, message):
    with pytest.raises(ConfigError, match=message):
        window_integral(E, np.ones(E.size), window)


def test_signal_windows_must_not_overlap_the_background_window():
    with pytest.raises(ConfigError, match="overlaps the background window"):
        edge_integrals(E, mixture(1.0), [(50, 60)], (44, 53))


def test_background_subtracted_integral_recovers_the_edge():
    s, cov, mask, chi2 = edge_integrals(E, mixture([0.0, 1.0]), [WA, WB], BG)
    _, co, li = components()
    np.testing.assert_allclose(s[1], [window_integral(E, co + li, w) for w in (WA, WB)], rtol=1e-6)
    np.testing.assert_allclose(s[0], [window_integral(E, co, w) for w in (WA, WB)], rtol=1e-6)
    assert cov.shape == (2, 2, 2) and np.all(mask == MASK_OK) and np.all(chi2 < 1e-9)


# --------------------------------------------------------------------------- S_A / S_B


def test_sasb_linear_calibration_recovers_known_mixtures():
    r0 = float(ratio_kernel(E, mixture(0.0), WA, WB, BG)[0])
    r1 = float(ratio_kernel(E, mixture(1.0), WA, WB, BG)[0])
    x = np.linspace(0, 1, 11)
    ratio = ratio_kernel(E, mixture(x), WA, WB, BG)[0]
    np.testing.assert_allclose(sasb_li_fraction(ratio, r0, r1), x, atol=2e-3)

    rng = np.random.default_rng(1)  # with Poisson noise: within 3 propagated sigma
    noisy = rng.poisson(mixture(np.repeat(x, 5))).astype(np.float64)
    ratio, ratio_error, *_, mask = ratio_kernel(E, noisy, WA, WB, BG)
    assert np.all(mask == MASK_OK)
    z = (sasb_li_fraction(ratio, r0, r1) - np.repeat(x, 5)) / (ratio_error / (r1 - r0))
    assert np.abs(z).max() < 4 and abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.3


@pytest.mark.parametrize("method", ["fit", "two-window"])
def test_ratio_error_propagation_matches_monte_carlo(method):
    rng = np.random.default_rng(2)
    noisy = rng.poisson(np.broadcast_to(mixture(0.6), (3000, E.size))).astype(np.float64)
    ratio, ratio_error, sa, sa_error, sb, sb_error, chi2, mask = ratio_kernel(E, noisy, WA, WB, BG, method)
    assert np.all(mask == MASK_OK) and chi2.mean() == pytest.approx(1.0, abs=0.05)
    assert ratio.std() == pytest.approx(np.median(ratio_error), rel=0.1)
    assert sa.std() == pytest.approx(np.median(sa_error), rel=0.1)
    assert sb.std() == pytest.approx(np.median(sb_error), rel=0.1)


def test_ratio_masks_pixels_with_a_reason():
    spectra = np.stack([mixture(0.5), mixture(0.5), np.zeros(E.size), mixture(0.5)])
    spectra[1] = components()[0]  # background only: S_B ~ 0 (and may be negative)
    spectra[1, E > 65] -= 5.0  # make S_B clearly negative
    spectra[3, 100] = 0.0  # dead channel in the background window (45 eV)
    ratio, ratio_error, *_, mask = ratio_kernel(E, spectra, WA, WB, BG)
    np.testing.assert_array_equal(mask, [MASK_OK, MASK_RATIO_UNDEFINED, MASK_NONPOSITIVE, MASK_NONPOSITIVE])
    assert np.isfinite(ratio[0]) and np.all(np.isnan(ratio[1:])) and np.all(np.isnan(ratio_error[1:]))


def test_sasb_wrappers_from_references_to_li_fraction():
    x = np.array([[0.0, 0.25], [0.5, 1.0]])
    da = spectrum_image(mixture(x))
    rich = signal(mixture(1.0), ("energy",), name="lco", units="counts", coords={"energy": E})
    poor = spectrum_image(np.broadcast_to(mixture(0.0), (2, 2, E.size)) / 4)  # summed over pixels
    r0, r1 = sasb_calibration(rich, poor, WA, WB, BG)
    assert r1 > r0 > 0
    ratio = sasb_ratio(da, WA, WB, BG)
    assert set(ratio.data_vars) == {"ratio", "ratio_error", "S_A", "S_A_error", "S_B", "S_B_error",
                                    "chi2", "mask"}
    assert ratio["ratio"].dims == ("y", "x") and ratio["S_A"].attrs["units"] == "counts"
    out = sasb_li_fraction(ratio, r0, r1)
    np.testing.assert_allclose(out["li_fraction"].values, x, atol=2e-3)
    assert out["li_fraction"].attrs["units"] == "1"
    np.testing.assert_allclose(out["li_fraction_error"].values, out["ratio_error"].values / (r1 - r0))
    steps = [s["step"] for s in provenance(out)]
    assert steps == ["ionscope.eels.sasb_ratio", "ionscope.eels.sasb_li_fraction"]
    assert provenance(out)[0]["params"]["window_a_eV"] == list(WA)
    as_array = sasb_li_fraction(ratio["ratio"], r0, r1)
    assert isinstance(as_array, xr.DataArray) and as_array.name == "li_fraction"


def test_sasb_calibration_rejects_unusable_references():
    good = signal(mixture(1.0), ("energy",), name="lco", units="counts", coords={"energy": E})
    dead = mixture(0.0)
    dead[100] = 0.0
    bad = signal(dead, ("energy",), name="coo", units="counts", coords={"energy": E})
    with pytest.raises(InputError, match="Li-poor reference"):
        sasb_calibration(good, bad, WA, WB, BG)
    with pytest.raises(InputError, match="same ratio"):
        sasb_calibration(good, good, WA, WB, BG)
    with pytest.raises(InputError, match="must be finite and different"):
        sasb_li_fraction(np.ones(3), 1.0, 1.0)


def test_sasb_ratio_and_window_map_stay_lazy():
    rng = np.random.default_rng(3)
    da = spectrum_image(rng.poisson(mixture(rng.random((4, 6)))).astype(np.float32))
    lazy = da.chunk({"y": 2, "x": 3})
    with dask.config.set(scheduler=CountingScheduler(0)):
        ratio = sasb_ratio(lazy, WA, WB, BG)
        maps = window_map(lazy, WA, background=BG)
        frac = sasb_li_fraction(ratio, 0.3, 0.5)
    assert all(isinstance(v.data, dask.array.Array) for v in [*ratio.data_vars.values(), *maps.data_vars.values()])
    assert isinstance(frac["li_fraction"].data, dask.array.Array)
    np.testing.assert_allclose(ratio["ratio"].compute().values, sasb_ratio(da, WA, WB, BG)["ratio"].values)


def test_window_map_with_and_without_background():
    x = np.array([[0.2, 0.8]])
    da = spectrum_image(mixture(x))
    raw = window_map(da, WA)
    np.testing.assert_allclose(raw["integral"].values, window_integral(E, mixture(x), WA))
    net = window_map(da, WA, background=BG, method="two-window")
    _, co, li = components()
    expected = [window_integral(E, co + xi * li, WA) for xi in x[0]]
    np.testing.assert_allclose(net["integral"].values[0], expected, rtol=1e-6)
    assert np.all(net["integral_error"].values > raw["integral_error"].values)  # background adds error
    assert net["mask"].dtype == np.int8 and net["integral"].attrs["units"] == "counts"
    assert np.all(np.isnan(raw["chi2"].values)) and np.all(net["chi2"].values < 1e-9)
    step = json.loads(net.attrs["provenance"])[-1]
    assert step["params"]["background_eV"] == list(BG) and step["params"]["method"] == "two-window"
    with pytest.raises(ConfigError, match="overlaps"):
        window_map(da, (50, 60), background=BG)
