"""The TOF-SIMS kernels on numpy arrays: ions and windows, integration, mass calibration, dead
time, normalisation with counting errors (checked against analytic values and Monte Carlo)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from ionscope.errors import ConfigError, DimensionError, InputError, IonscopeError
from ionscope.sims import (
    ION_TABLE, LI7_LI6, apply_calibration, bin_pixels, deadtime_correct, integrate_peaks, integrate_windows,
    ion_windows, isotope_check, locate_peaks, near_saturation, normalise, parse_ions, ratio_with_error,
    refine_calibration, relative_to_reference,
)

# --------------------------------------------------------------------------- ions and windows


def test_ion_masses_are_the_atoms_minus_one_electron():
    assert ION_TABLE["7Li"] == pytest.approx(7.01546, abs=1e-5)
    assert ION_TABLE["6Li"] == pytest.approx(6.01457, abs=1e-5)
    assert ION_TABLE["59Co"] == pytest.approx(58.93319429 - 5.48579909e-4, abs=1e-6)
    assert LI7_LI6 == 12.2


def test_parse_ions_grammar_and_user_ions():
    assert list(parse_ions("7Li+, 6Li,59Co")) == ["7Li", "6Li", "59Co"]
    assert parse_ions(["48Ti", "CoO+=74.928"]) == {"48Ti": ION_TABLE["48Ti"], "CoO": 74.928}
    assert parse_ions({"X": 12.5}) == {"X": 12.5}


@pytest.mark.parametrize("spec, match", [
    ("Li7", "did you mean 7Li"), ("Co", "give the isotope: 59Co"), ("8Li", "known ions: 6Li, 7Li"),
    ("X=-3", "NAME=MASS"), ("7Li,7Li+", "twice"), (" , ", "no ion"),
])
def test_parse_ions_refuses_unknown_names_with_the_way_out(spec, match):
    with pytest.raises(InputError, match=match):
        parse_ions(spec)


def test_windows_in_u_and_in_peak_widths_and_overlaps_refused():
    lo, hi = ion_windows({"7Li": 7.0, "59Co": 59.0}, window_u=0.4)
    np.testing.assert_allclose(hi - lo, 0.4)
    lo, hi = ion_windows([7.0, 59.0], widths=3, resolution=1000)
    np.testing.assert_allclose(hi - lo, [0.021, 0.177])
    with pytest.raises(ConfigError, match=r"N2 \[6.8510, 7.1510\) and 7Li .* overlap"):
        ion_windows({"7Li": 7.01546, "N2": 7.0010}, window_u=0.3)
    with pytest.raises(ConfigError, match="both widths and resolution"):
        ion_windows([7.0], widths=2)
    with pytest.raises(ConfigError, match="positive width"):
        ion_windows([7.0], window_u=0)


def test_integrate_windows_equals_a_sum_over_channels_and_accepts_a_decreasing_axis():
    rng = np.random.default_rng(0)
    mass = np.linspace(1.0, 120.0, 5000)
    counts = rng.poisson(2.0, (2, 3, 4, mass.size))
    lo, hi = ion_windows(ION_TABLE, window_u=0.3)
    out = integrate_windows(counts, mass, lo, hi)
    assert out.shape == (len(ION_TABLE), 2, 3, 4)
    for i in range(lo.size):
        inside = (mass >= lo[i]) & (mass < hi[i])
        np.testing.assert_array_equal(out[i], counts[..., inside].sum(-1))
    np.testing.assert_array_equal(integrate_windows(counts[..., ::-1], mass[::-1], lo, hi), out)
    with pytest.raises(DimensionError):
        integrate_windows(counts, mass[:-1], lo, hi)


def test_integrate_peaks_equals_a_loop_over_pixels_and_ignores_padding():
    rng = np.random.default_rng(1)
    ions = parse_ions("6Li,7Li,27Al,31P,48Ti,59Co,106Pd")
    lo, hi = ion_windows(ions, window_u=0.3)
    shape = (3, 5, 7, 12)  # (state, y, x, peak)
    centres = np.array(list(ions.values()) + [15.0, 40.0])  # two peaks outside every window
    pm = rng.choice(centres, shape) + rng.normal(0, 0.05, shape)
    pm[rng.random(shape) < 0.3] = np.nan  # padding
    pm[0, 0, 0, :] = [lo[1], hi[1], np.nan] + [np.nan] * 9  # the window is [lo, hi)
    counts = np.where(np.isnan(pm), 0, rng.integers(1, 50, shape))
    out = integrate_peaks(counts, pm, lo, hi)
    assert out.shape == (7, 3, 5, 7)
    expected = np.zeros(out.shape)
    for idx in np.ndindex(shape[:-1]):
        for m, c in zip(pm[idx], counts[idx], strict=True):
            hit = np.flatnonzero((m >= lo) & (m < hi))
            if hit.size:
                expected[(hit[0],) + idx] += c
    np.testing.assert_array_equal(out, expected)
    assert out[1, 0, 0, 0] == counts[0, 0, 0, 0]


# --------------------------------------------------------------------------- calibration


def _shifted(true, a=0.004, b=0.9998):
    """Measured masses of a calibration that is off: sqrt(true) = a + b sqrt(measured)."""
    return ((np.sqrt(true) - a) / b) ** 2


def test_calibration_recovers_the_offset_from_a_dense_profile_spectrum_with_background():
    ions = parse_ions("6Li,7Li,27Al,48Ti,59Co,106Pd")
    true = np.array(list(ions.values()))
    mass = np.arange(4.0, 110.0, 0.001)
    spectrum = np.full(mass.size, 3.0)
    for m, h in zip(_shifted(true), [50, 600, 200, 300, 400, 100], strict=True):
        spectrum += h * np.exp(-0.5 * ((mass - m) / (m / 3000)) ** 2)
    found, n = locate_peaks(mass, spectrum, true, tolerance_u=0.3)
    np.testing.assert_allclose(found, _shifted(true), atol=2e-4)
    cal = refine_calibration(found, true, n)
    assert cal.a == pytest.approx(0.004, abs=2e-4) and cal.b == pytest.approx(0.9998, abs=5e-5)
    assert np.all(np.abs(cal.residual_ppm) < 20) and cal.residual_mu.shape == (6,)
    np.testing.assert_allclose(cal.apply(_shifted(true)), true, rtol=2e-5)


def test_calibration_from_pooled_centroid_peaks():
    rng = np.random.default_rng(2)
    true = np.array([ION_TABLE["7Li"], ION_TABLE["59Co"], ION_TABLE["106Pd"]])
    pm = np.repeat(_shifted(true)[None], 500, 0) + rng.normal(0, 0.002, (500, 3))
    counts = rng.poisson(20, pm.shape)
    found, n = locate_peaks(pm, counts, true)
    np.testing.assert_allclose(found, _shifted(true), atol=3e-4)
    np.testing.assert_allclose(n, counts.sum(0))
    cal = refine_calibration(found, true, n)
    np.testing.assert_allclose(apply_calibration(_shifted(true), cal.a, cal.b), true, atol=3e-4)


def test_calibration_needs_two_peaks():
    found, _ = locate_peaks([7.03, 30.0], [100, 100], [ION_TABLE["7Li"], ION_TABLE["59Co"]])
    assert np.isnan(found[1])
    with pytest.raises(InputError, match="at least two peaks.*1 of 2 were found"):
        refine_calibration(found, [ION_TABLE["7Li"], ION_TABLE["59Co"]])
    with pytest.raises(InputError, match="negative"):
        apply_calibration(np.array([-1.0]), 0.0, 1.0)


# --------------------------------------------------------------------------- dead time


def test_deadtime_correction_is_unbiased_and_its_error_matches_the_scatter():
    rng = np.random.default_rng(3)
    pulses = 64 * 40  # shots per pixel x scans
    for true in (200.0, 1500.0, 3000.0):  # 0.08, 0.59, 1.17 ions per pulse
        observed = rng.binomial(pulses, 1 - np.exp(-true / pulses), 20000)
        corrected, err = deadtime_correct(observed, pulses)
        assert corrected.mean() == pytest.approx(true, rel=3e-3)
        assert corrected.std() == pytest.approx(err.mean(), rel=0.03)
        if true > 1000:
            assert corrected.mean() > 1.3 * observed.mean()


def test_deadtime_refuses_saturated_pixels_and_bad_pulse_counts():
    with pytest.raises(InputError, match="2 pixels .* at or above the 100 pulses.*largest 120"):
        deadtime_correct([10, 100, 120], 100)
    for bad in (0, -5, 2.5, True, "100", np.nan):
        with pytest.raises(ConfigError, match="positive whole number"):
            deadtime_correct([1], bad)
    n, e = deadtime_correct([3.0], 100.0)  # a float pulse count that is whole is fine
    assert n[0] == pytest.approx(-100 * np.log(0.97)) and e[0] == pytest.approx(np.sqrt(300 / 97))
    mask, count = near_saturation(np.array([[10, 51], [50, 99]]), 100)
    assert count == 2 and mask.tolist() == [[False, True], [False, True]]


def test_isotope_check_the_corrected_7li_matches_12_2_x_6li_where_7li_saturates():
    rng = np.random.default_rng(4)
    pulses = 2000
    li6_true = rng.uniform(20, 250, 5000)
    li7_true = LI7_LI6 * li6_true  # up to 1.5 ions per pulse
    li7 = rng.binomial(pulses, 1 - np.exp(-li7_true / pulses))
    li6 = rng.binomial(pulses, 1 - np.exp(-li6_true / pulses))
    saturated, count = near_saturation(li7, pulses)
    assert count > 1000
    raw = isotope_check(li7, li6, mask=saturated)
    assert raw.summary < 0.8  # uncorrected: saturation shows
    li7c, err7 = deadtime_correct(li7, pulses)
    li6c, _ = deadtime_correct(li6, pulses)
    check = isotope_check(li7c, li6c, mask=saturated, li7_err=err7)
    assert check.summary == pytest.approx(1.0, abs=0.03) and check.pixels == count
    assert abs(check.summary - 1) < 4 * check.summary_err < 0.03
    assert np.isnan(check.ratio_map[li6c < 10]).all()
    assert np.nanmedian(check.ratio_map) == pytest.approx(1.0, abs=0.05)


# --------------------------------------------------------------------------- normalisation


def test_binomial_and_poisson_ratio_errors_match_monte_carlo():
    rng = np.random.default_rng(5)
    li = rng.poisson(300, 40000)
    rest = rng.poisson(900, 40000)
    r, e = ratio_with_error(li, li + rest, part=True)
    assert r.std() == pytest.approx(np.median(e), rel=0.03)
    co = rng.poisson(500, 40000)
    r, e = ratio_with_error(li, co)
    assert r.std() == pytest.approx(np.median(e), rel=0.03)
    # the binomial error is smaller than treating the total as independent
    assert ratio_with_error(300, 1200, part=True)[1] < ratio_with_error(300, 1200)[1]
    r, e = ratio_with_error([0.0, 5.0], [0.0, 10.0])
    assert np.isnan(r[0]) and np.isnan(e[0]) and np.isfinite(e[1])


def test_normalise_by_total_by_ion_and_none():
    counts = np.array([[300.0, 30.0], [500.0, 50.0], [200.0, 20.0]])  # 7Li, 59Co, 48Ti x 2 pixels
    ions = ["7Li", "59Co", "48Ti"]
    v, e = normalise(counts, ions, by="total")
    np.testing.assert_allclose(v, 0.3)
    np.testing.assert_allclose(e, np.sqrt(0.3 * 0.7 / np.array([1000.0, 100.0])))
    v, e = normalise(counts, ions, by="59Co")
    np.testing.assert_allclose(v, 0.6)
    np.testing.assert_allclose(e, 0.6 * np.sqrt(1 / counts[0] + 1 / counts[1]))
    v, e = normalise(counts, ions, by="none")
    np.testing.assert_allclose(e, np.sqrt(counts[0]))
    with pytest.raises(InputError, match="'total', 'none' or one of"):
        normalise(counts, ions, by="197Au")
    with pytest.raises(InputError, match="not among"):
        normalise(counts, ions, target="6Li")


def test_relative_to_pristine_propagates_both_errors():
    li = np.array([[100.0, 60.0, 90.0], [0.5, 0.4, 0.6]])
    err = np.array([[5.0, 4.0, 5.0], [1.0, 1.0, 1.0]])
    rel, rerr = relative_to_reference(li, err, axis=1)
    np.testing.assert_allclose(rel[0], [1.0, 0.6, 0.9])
    assert rerr[0, 0] == 0 and rerr[0, 1] == pytest.approx(0.6 * np.hypot(4 / 60, 5 / 100))
    assert rerr[1, 1] > 1  # a phase without Li: a meaningless ratio, visibly so


# --------------------------------------------------------------------------- binning and the package


def test_bin_pixels_sums_blocks_of_numpy_and_xarray():
    import xarray as xr

    c = np.arange(2 * 5 * 7).reshape(2, 5, 7)
    b = bin_pixels(c, 2)
    assert b.shape == (2, 2, 3) and b[1, 0, 0] == c[1, :2, :2].sum()
    assert b.sum() == c[:, :4, :6].sum()
    da = xr.DataArray(c, dims=("state", "y", "x"), coords={"y": np.arange(5) * 100.0, "x": np.arange(7) * 100.0},
                      attrs={"units": "counts"})
    bd = bin_pixels(da, 2)
    np.testing.assert_array_equal(bd.values, b)
    assert bd.y.values.tolist() == [50.0, 250.0] and bd.attrs["units"] == "counts"
    with pytest.raises(ConfigError):
        bin_pixels(c, 0)
    with pytest.raises(InputError, match="no 6 x 6 block"):
        bin_pixels(c, 6)


def test_every_refusal_is_an_ionscope_error():
    for call in (lambda: parse_ions("Xx"), lambda: deadtime_correct([5], 0), lambda: ion_windows([1.0, 1.1]),
                 lambda: integrate_peaks(np.ones((2, 3)), np.ones((2, 4)), [1.0], [2.0])):
        with pytest.raises(IonscopeError):
            call()


@pytest.mark.parametrize("module", ["ionscope.sims", "ionscope.sims.ions", "ionscope.sims.calibration",
                                    "ionscope.sims.deadtime", "ionscope.sims.normalise", "ionscope.sims.quantify"])
def test_the_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
