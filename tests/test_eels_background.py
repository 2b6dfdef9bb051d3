"""Power-law background estimation and subtraction (ionscope.eels.background)."""

from __future__ import annotations

import json

import dask
import dask.array
import numpy as np
import pytest
from scipy.special import erf

from daskcount import CountingScheduler

from ionscope.data import provenance, signal
from ionscope.eels.background import (
    MASK_FIT_FAILED,
    MASK_NONPOSITIVE,
    MASK_OK,
    powerlaw_fit,
    powerlaw_model,
    powerlaw_two_window,
    subtract_powerlaw,
)
from ionscope.errors import ConfigError, NonFiniteError

E = 30 + 0.1 * np.arange(400)  # 30-69.9 eV
WINDOW = (40.0, 52.0)
A0, R0 = 5e8, 3.4  # ~1800 counts/channel at 40 eV, ~730 at 52 eV


def powerlaw(A=A0, r=R0):
    return A * E**-r


def li_edge():
    return 600 * 0.5 * (1 + erf((E - 55.5) / 0.6)) * np.exp(-np.clip(E - 55.5, 0, None) / 8)


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "estimate",
    [lambda e, y, w: powerlaw_fit(e, y, w), lambda e, y, w: powerlaw_fit(e, y, w, weighted=False),
     powerlaw_two_window],
    ids=["fit-weighted", "fit-unweighted", "two-window"],
)
def test_noiseless_power_laws_are_recovered_exactly(estimate, dtype):
    params = [(5e8, 3.4), (2e6, 2.0), (1e10, 5.5), (3e4, 1.0)]
    spectra = np.stack([powerlaw(A, r) for A, r in params]).astype(dtype)
    law = estimate(E, spectra, WINDOW)
    np.testing.assert_allclose(law.r, [r for _, r in params], rtol=1e-6)
    np.testing.assert_allclose(law.A, [A for A, _ in params], rtol=1e-6 if dtype == np.float64 else 2e-6)
    assert law.mask.dtype == np.int8 and np.all(law.mask == MASK_OK)
    assert np.all(law.quality < 1e-6)


def test_fit_and_two_window_agree_on_noiseless_data_and_closed_form_is_close():
    spectra = np.stack([powerlaw(), powerlaw(2e6, 2.5)])
    fit, two = powerlaw_fit(E, spectra, WINDOW), powerlaw_two_window(E, spectra, WINDOW)
    np.testing.assert_allclose(fit.r, two.r, rtol=1e-9)
    np.testing.assert_allclose(fit.A, two.A, rtol=1e-8)
    closed = powerlaw_two_window(E, spectra, WINDOW, exact=False)
    np.testing.assert_allclose(closed.r, fit.r, rtol=0.01)  # Egerton's approximation


def test_kernels_keep_leading_shape():
    spectra = np.broadcast_to(powerlaw(), (2, 3, E.size))
    law = powerlaw_fit(E, spectra, WINDOW)
    assert law.A.shape == (2, 3) and law.cov.shape == (2, 3, 2, 2) and law.mask.shape == (2, 3)
    assert powerlaw_model(E, law.A, law.r).shape == (2, 3, E.size)


@pytest.mark.parametrize("method", ["fit", "two-window"])
def test_poisson_noise_gives_nearly_unbiased_r_and_calibrated_errors(method):
    rng = np.random.default_rng(7)
    y = rng.poisson(np.broadcast_to(powerlaw(), (3000, E.size))).astype(np.float64)
    law = powerlaw_fit(E, y, WINDOW) if method == "fit" else powerlaw_two_window(E, y, WINDOW)
    assert np.all(law.mask == MASK_OK)
    assert abs(law.r.mean() - R0) < 0.01  # far inside the 0.05 requirement
    assert abs(np.log(law.A).mean() - np.log(A0)) < 0.05
    predicted_r, predicted_lna = np.sqrt(np.median(law.cov[:, 1, 1])), np.sqrt(np.median(law.cov[:, 0, 0]))
    assert law.r.std() == pytest.approx(predicted_r, rel=0.1)
    assert np.log(law.A).std() == pytest.approx(predicted_lna, rel=0.1)
    assert law.quality.mean() == pytest.approx(1.0, abs=0.05)  # reduced chi^2 of Poisson data


def test_single_spectra_at_realistic_counts_are_within_0_05_in_r():
    rng = np.random.default_rng(11)  # ~2e4 counts per channel at 40 eV: sigma_r ~ 0.011
    y = rng.poisson(np.broadcast_to(powerlaw(10 * A0), (50, E.size))).astype(np.float64)
    for method in (powerlaw_fit, powerlaw_two_window):
        assert np.abs(method(E, y, WINDOW).r - R0).max() < 0.05


def test_zero_and_negative_counts_are_masked_with_a_reason_not_silently_nan():
    spectra = np.stack([powerlaw(), powerlaw(), powerlaw(), np.zeros(E.size)])
    spectra[1, 150] = 0.0  # one dead channel inside the window (45 eV)
    spectra[2, 120] = -3.0  # negative after dark subtraction (42 eV)
    fit = powerlaw_fit(E, spectra, WINDOW)
    np.testing.assert_array_equal(fit.mask, [MASK_OK, MASK_NONPOSITIVE, MASK_NONPOSITIVE, MASK_NONPOSITIVE])
    assert np.isfinite(fit.r[0]) and np.all(np.isnan(fit.r[1:])) and np.all(np.isnan(fit.A[1:]))
    assert fit.r[0] == pytest.approx(R0)
    two = powerlaw_two_window(E, spectra, WINDOW)  # half-window sums stay positive
    np.testing.assert_array_equal(two.mask, [MASK_OK, MASK_OK, MASK_OK, MASK_NONPOSITIVE])


def test_non_finite_results_are_flagged_as_failed_fits():
    spectra = np.stack([powerlaw(), powerlaw()])
    spectra[1, 130] = np.inf
    law = powerlaw_fit(E, spectra, WINDOW)
    np.testing.assert_array_equal(law.mask, [MASK_OK, MASK_FIT_FAILED])
    assert np.isnan(law.r[1]) and np.all(np.isnan(law.cov[1]))


def test_kernel_window_checks():
    with pytest.raises(ConfigError, match="outside the data"):
        powerlaw_fit(E, powerlaw()[None], (20, 40))
    with pytest.raises(ConfigError, match="at least 2 channels"):
        powerlaw_fit(E, powerlaw()[None], (40, 40.15))
    with pytest.raises(ConfigError, match="at least 3"):
        powerlaw_fit(E, powerlaw()[None], (40.02, 40.22))
    e0 = np.arange(-2.0, 10.0, 0.5)
    with pytest.raises(ConfigError, match="energies > 0"):
        powerlaw_two_window(e0, np.ones((1, e0.size)), (-1.0, 3.0))


# --------------------------------------------------------------------------- wrapper


def spectrum_image(values, dims=("y", "x", "energy")):
    return signal(values, dims, name="eels", units="counts", coords={"energy": E})


def edge_image():
    clean = powerlaw() + li_edge()
    values = np.broadcast_to(clean, (2, 3, E.size)).copy()
    values[1, 2] = 0.0  # a dead pixel
    return spectrum_image(values), clean


@pytest.mark.parametrize("method", ["fit", "two-window"])
def test_subtract_powerlaw_leaves_the_edge_and_reports_the_dead_pixel(method):
    da, _ = edge_image()
    ds = subtract_powerlaw(da, WINDOW, method=method)
    assert set(ds.data_vars) == {"signal", "A", "r", "A_error", "r_error", "quality", "mask"}
    assert ds["signal"].dims == ("y", "x", "energy") and ds["r"].dims == ("y", "x")
    good = ds["signal"].values[0, 0]
    above = E >= WINDOW[0]
    np.testing.assert_allclose(good[above], li_edge()[above], atol=1e-6 * powerlaw()[100])
    assert np.all(good[~above] == 0)  # zero-filled below the window
    assert ds["r"].values[0, 0] == pytest.approx(R0, rel=1e-6)
    assert ds["mask"].values[1, 2] == MASK_NONPOSITIVE and ds["mask"].values.sum() == MASK_NONPOSITIVE
    assert np.all(np.isnan(ds["signal"].values[1, 2])) and np.isnan(ds["r"].values[1, 2])
    assert ds["mask"].attrs["flag_values"] == [0, 1, 2, 3]
    assert "nonpositive_counts_in_background_window" in ds["mask"].attrs["flag_meanings"]
    assert ds["signal"].attrs["units"] == "counts"
    step = json.loads(ds.attrs["provenance"])[-1]
    assert step["step"] == "ionscope.eels.subtract_powerlaw" and step["params"]["method"] == method


def test_subtract_powerlaw_without_zero_fill_subtracts_everywhere():
    da, _ = edge_image()
    ds = subtract_powerlaw(da, WINDOW, zero_fill=False)
    np.testing.assert_allclose(ds["signal"].values[0, 0], li_edge(), atol=1e-6 * powerlaw()[100])


def test_subtract_powerlaw_keeps_float32_and_history():
    da, _ = edge_image()
    da = da.astype(np.float32)
    da.attrs["provenance"] = json.dumps([{"step": "load", "version": "0", "params": {}, "inputs": []}])
    ds = subtract_powerlaw(da, WINDOW)
    assert ds["signal"].dtype == np.float32
    assert [s["step"] for s in provenance(ds)] == ["load", "ionscope.eels.subtract_powerlaw"]


def test_subtract_powerlaw_stays_lazy_and_matches_eager():
    rng = np.random.default_rng(0)
    da = spectrum_image(rng.poisson(np.broadcast_to(powerlaw() + li_edge(), (4, 5, E.size))).astype(np.float32))
    lazy = da.chunk({"y": 2, "x": 2, "energy": 100})
    with dask.config.set(scheduler=CountingScheduler(0)):
        ds = subtract_powerlaw(lazy, WINDOW)
    assert isinstance(ds["signal"].data, dask.array.Array) and isinstance(ds["r"].data, dask.array.Array)
    eager = subtract_powerlaw(da, WINDOW)
    for name in ("signal", "A", "r", "quality", "mask"):
        np.testing.assert_allclose(ds[name].compute().values, eager[name].values, rtol=1e-6)


def test_subtract_powerlaw_rejects_bad_input():
    da, _ = edge_image()
    with pytest.raises(ConfigError, match="parameter 'method' must be one of 'fit', 'two-window'"):
        subtract_powerlaw(da, WINDOW, method="linear")
    with pytest.raises(ConfigError, match="outside the data"):
        subtract_powerlaw(da, (10, 45))
    bad = da.copy(data=da.values.copy())
    bad.values[0, 0, 5] = np.nan
    with pytest.raises(NonFiniteError):
        subtract_powerlaw(bad, WINDOW)
    lazy_bad = bad.chunk({"y": 1})
    ds = subtract_powerlaw(lazy_bad, WINDOW)  # lazy: the NaN check runs at compute time
    with pytest.raises(NonFiniteError):
        ds.compute()
