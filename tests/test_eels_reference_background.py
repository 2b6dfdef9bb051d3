"""References with their own background and energy range (issue 17, item 1): the decision
kernel, the resampling kernel and ``li_fraction_map(reference_background=...)`` on the twin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.eels import li_fraction_map, subtract_powerlaw
from ionscope.eels.background import reference_background_decision
from ionscope.eels.energy import resample_spectrum
from ionscope.errors import InputError
from ionscope.simulate import simulate

TWIN = {"li_params": {"ny": 24, "nx": 16}, "frames": [0, 60], "dose": 1e8, "reference_dose": 1e10}
#: The references' own energy axis: finer (0.1 eV) and from 35 eV, where the image has 0.25 eV from 30 eV.
OWN_AXIS = {"energy_start_eV": 35.0, "dispersion_eV": 0.1, "channels": 700}
PHASES = ("licoo2", "coo2", "co3o4")


@pytest.fixture(scope="module")
def twin():
    """The raw spectrum image and, from a second run of the twin on another energy axis (other
    seed: independent reference noise), its measured references (with background)."""
    ds = simulate("eels_licoo2", seed=2, **TWIN)
    own = simulate("eels_licoo2", seed=5, li_params=TWIN["li_params"], frames=[0],
                   reference_dose=TWIN["reference_dose"], **OWN_AXIS)
    return ds, own


def _subtracted(raw, lo=None, hi=None):
    """A reference as a database holds it: its own pre-edge power law removed, then cut."""
    signal = subtract_powerlaw(raw, (40.0, 52.0))["signal"]
    return signal.sel(energy=slice(lo, hi))


def _mae(result, ds):
    return float(np.nanmean(np.abs(result["li_fraction"].values - ds["li_fraction_true"].values)))


# --------------------------------------------------------------------------- kernels


def test_a_raw_power_law_pre_edge_is_fitted_and_its_exponent_reported():
    e = np.arange(35.0, 95.0, 0.25)
    edge = 1e4 * np.clip((e - 55) / 5, 0, 1)
    raw = 3e9 * e**-3.5 + edge
    out = reference_background_decision(e, raw, (40, 52))
    assert out.decision == "fit" and out.r == pytest.approx(3.5, abs=1e-9) and "r = 3.5" in out.why
    pre = raw[(e >= 40) & (e <= 52)].mean()
    assert out.pre_edge_fraction == pytest.approx(pre / raw[e > 52].max(), rel=1e-12)


@pytest.mark.parametrize("case, words", [
    ("zeros", "flat around zero"),
    ("noise", "flat around zero"),
    ("offset_with_negatives", "<= 0"),
    ("rising", "does not decay"),
    ("short", "not the background window"),
])
def test_a_background_free_pre_edge_is_used_as_given(case, words):
    rng = np.random.default_rng(0)
    e = np.arange(35.0, 95.0, 0.25)
    edge = 1e4 * np.clip((e - 55) / 5, 0, 1)
    values = {
        "zeros": edge,
        "noise": edge + rng.normal(0, 30, e.size),  # shot noise of a subtracted background
        "offset_with_negatives": edge + 400 + rng.normal(0, 300, e.size),
        "rising": edge + 300 + 20 * (e - 40),  # a residual that grows: not a background
    }.get(case)
    if case == "short":
        e, values = e[e >= 50], edge[e >= 50]
    out = reference_background_decision(e, values, (40, 52))
    assert out.decision == "none" and words in out.why, out


def test_fit_and_none_are_taken_as_told_and_no_window_means_none():
    e = np.arange(35.0, 95.0, 0.25)
    assert reference_background_decision(e, e * 0 + 1.0, (40, 52), "fit").decision == "fit"
    assert reference_background_decision(e, 1e9 * e**-3.0, (40, 52), "none").decision == "none"
    assert reference_background_decision(e, 1e9 * e**-3.0, None).decision == "none"


def test_a_finer_spectrum_is_rebinned_keeping_counts_per_ev():
    """A flat density of 100 counts/eV recorded in 0.1 eV channels (10 counts each) holds 25
    counts per 0.25 eV channel; a line density keeps its values at the channel centres."""
    e = 35.0 + 0.1 * np.arange(700)
    target = 30.0 + 0.25 * np.arange(256)
    target = target[(target >= 53) & (target <= 90)]
    assert np.allclose(resample_spectrum(e, np.full(e.size, 10.0), target), 25.0, rtol=1e-12)
    line = 0.1 * (3 * e + 7)  # density 3 E + 7 counts/eV
    assert np.allclose(resample_spectrum(e, line, target), 0.25 * (3 * target + 7), rtol=1e-12)


def test_a_coarser_spectrum_is_interpolated_and_a_much_coarser_one_refused():
    e = 50.0 + 0.4 * np.arange(120)
    target = 52.0 + 0.25 * np.arange(100)
    line = 0.4 * (2 * e + 1)
    assert np.allclose(resample_spectrum(e, line, target), 0.25 * (2 * target + 1), rtol=1e-12)
    with pytest.raises(InputError, match=r"reference x has a dispersion of 1 eV/channel, 4x coarser"):
        resample_spectrum(50.0 + np.arange(50), np.ones(50), target, what="reference x")


def test_a_spectrum_that_does_not_cover_the_target_says_what_it_covers_and_what_is_needed():
    e = 53.0 + 0.1 * np.arange(170)  # 53-69.9 eV
    with pytest.raises(InputError) as info:
        resample_spectrum(e, np.ones(e.size), 52.0 + 0.25 * np.arange(153), what="reference li_poor (poor.msa)",
                          onto="the fit window of the spectrum image (si.zarr)")
    assert str(info.value).startswith("reference li_poor (poor.msa) covers 53-69.9 eV but the fit window of the "
                                      "spectrum image (si.zarr) needs 52-90 eV")


# --------------------------------------------------------------------------- li_fraction_map


def test_background_free_references_on_their_own_range_give_the_li_fraction(twin):
    """The target: raw image, background-free references cut to 53-99 eV at 0.1 eV (the image:
    30-93.75 eV at 0.25 eV), the default ``auto``; MAE <= 0.02 against the twin's truth, as good
    as noiseless edge-only references on the image's own axis (the noise floor of this dose)."""
    ds, own = twin
    refs = {k: _subtracted(own[f"ref_{k}"], 53.0, 99.0) for k in PHASES}
    result = li_fraction_map(ds["spectra"], refs["licoo2"], refs["coo2"], co_extra={"co3o4": refs["co3o4"]},
                             background=(40.0, 52.0), fit_window=(54.0, 90.0))
    decisions = json.loads(result.attrs["reference_background"])
    assert {v["decision"] for v in decisions.values()} == {"none"}
    assert "not the background window" in decisions["li_rich"]["why"]
    assert decisions["li_rich"]["covers_eV"] == [53.0, 99.0] and decisions["li_rich"]["dispersion_eV"] == 0.1
    mae = _mae(result, ds)
    floor = _mae(li_fraction_map(ds["spectra"], ds["ref_licoo2_edge"], ds["ref_coo2_edge"],
                                 co_extra={"co3o4": ds["ref_co3o4_edge"]}, background=(40.0, 52.0),
                                 fit_window=(54.0, 90.0), reference_background="none"), ds)
    assert mae <= 0.02
    assert abs(mae - floor) < 0.002


def test_background_free_references_that_cover_the_window_are_not_fitted_again(twin):
    """Before this option their flat pre-edge was fitted again: NaN, 'reference holds NaN'."""
    ds, _ = twin
    refs = {k: _subtracted(ds[f"ref_{k}"]) for k in PHASES}  # image's axis, pre-edge = noise around 0
    result = li_fraction_map(ds["spectra"], refs["licoo2"], refs["coo2"], co_extra={"co3o4": refs["co3o4"]},
                             fit_window=(52.0, 90.0))
    decisions = json.loads(result.attrs["reference_background"])
    assert [v["decision"] for v in decisions.values()] == ["none"] * 3
    assert all("flat around zero" in v["why"] for v in decisions.values())
    assert _mae(result, ds) <= 0.02


def test_raw_references_still_get_the_fit_bit_for_bit(twin):
    ds, _ = twin
    refs = (ds["ref_licoo2"], ds["ref_coo2"])
    auto = li_fraction_map(ds["spectra"], *refs, co_extra={"co3o4": ds["ref_co3o4"]}, fit_window=(52.0, 90.0))
    fit = li_fraction_map(ds["spectra"], *refs, co_extra={"co3o4": ds["ref_co3o4"]}, fit_window=(52.0, 90.0),
                          reference_background="fit")
    decisions = json.loads(auto.attrs["reference_background"])
    assert [v["decision"] for v in decisions.values()] == ["fit"] * 3
    assert all(v["r"] == pytest.approx(3.5, abs=0.05) for v in decisions.values())  # the twin's r0
    np.testing.assert_array_equal(auto["li_fraction"].values, fit["li_fraction"].values)
    assert _mae(auto, ds) <= 0.02


def test_raw_references_on_their_own_range_are_fitted_there_then_resampled(twin):
    ds, own = twin
    refs = {k: own[f"ref_{k}"].sel(energy=slice(38.0, 99.0)) for k in PHASES}
    result = li_fraction_map(ds["spectra"], refs["licoo2"], refs["coo2"], co_extra={"co3o4": refs["co3o4"]},
                             fit_window=(54.0, 90.0))
    assert {v["decision"] for v in json.loads(result.attrs["reference_background"]).values()} == {"fit"}
    assert _mae(result, ds) <= 0.02


def test_sasb_calibrates_on_background_free_references_of_their_own_range(twin):
    """R0 and R1 from background-free references on their own axis agree with those of the
    twin's noiseless edge-only references (truth) within 2 % of R1 - R0, and the bulk maps are
    as good as with raw references on the image's axis."""
    ds, own = twin
    windows = {"method": "sasb", "window_a": (54.0, 60.0), "window_b": (64.0, 85.0)}
    truth = li_fraction_map(ds["spectra"], ds["ref_licoo2_edge"], ds["ref_coo2_edge"], **windows)
    raw = li_fraction_map(ds["spectra"], ds["ref_licoo2"], ds["ref_coo2"], **windows)
    free = li_fraction_map(ds["spectra"], _subtracted(own["ref_licoo2"], 53.0), _subtracted(own["ref_coo2"], 53.0),
                           **windows)
    assert {v["decision"] for v in json.loads(free.attrs["reference_background"]).values()} == {"none"}
    span = truth.attrs["R1"] - truth.attrs["R0"]
    assert free.attrs["R0"] == pytest.approx(truth.attrs["R0"], abs=0.02 * span)
    assert free.attrs["R1"] == pytest.approx(truth.attrs["R1"], abs=0.02 * span)
    bulk = ds["region"].values == 0

    def bulk_mae(result):
        return float(np.nanmean(np.abs(result["li_fraction"].values - ds["li_fraction_true"].values)[:, bulk]))

    assert bulk_mae(free) < 0.05 and abs(bulk_mae(free) - bulk_mae(raw)) < 0.005
