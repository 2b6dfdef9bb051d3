"""Tests of the EELS twins (ionscope.simulate.eels): eels_licoo2 and eels_sr."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.data import provenance
from ionscope.errors import ConfigError, InputError
from ionscope.simulate import TWINS, simulate
from ionscope.simulate.eels import (
    EDGES,
    LICOO2_WINDOWS,
    expected_counts,
    k_edge,
    phase_edge,
    resolution_matrix,
    spectrum_image,
)

#: A small licoo2 run: 24 x 16 px (the layer needs depth), 7 frames.
LI = dict(ny=24, nx=16, charge_frames=3, rest1_frames=1, discharge_frames=2, rest2_frames=1,
          c_rate_per_h=3.0)
N_FRAMES = 7
#: Reference and pixel doses (defaults).
DOSE, REF_DOSE = 1e6, 1e8


@pytest.fixture(scope="module")
def ds():
    return simulate("eels_licoo2", seed=3, li_params=LI)


@pytest.fixture(scope="module")
def clean():
    """Noiseless, background-free, drift-free spectra of the same sample."""
    return simulate("eels_licoo2", seed=3, li_params=LI, noise=False, background=False)


@pytest.fixture(scope="module")
def expected(ds):
    """Noiseless spectra with background: the Poisson means of ``ds``."""
    return simulate("eels_licoo2", seed=3, li_params=LI, noise=False)


def _pixels(ds, name="spectra"):
    da = ds[name]
    return da.values.astype(np.float64).reshape(da.sizes["time"], -1, da.sizes["energy"])


# --------------------------------------------------------------------------- schema


def test_twins_are_registered():
    assert "eels_licoo2" in TWINS and "eels_sr" in TWINS


def test_shapes_dtypes_units_and_coords(ds):
    assert ds.attrs["primary"] == "spectra" and ds.attrs["twin"] == "eels_licoo2"
    sp = ds["spectra"]
    assert sp.dims == ("time", "y", "x", "energy")
    assert sp.shape == (N_FRAMES, 24, 16, 256) and sp.dtype == np.float32
    assert sp.attrs["units"] == "counts"
    np.testing.assert_allclose(ds["energy"].values, 30.0 + 0.25 * np.arange(256))
    assert ds["energy"].attrs["units"] == "eV"
    assert ds["y"].attrs["units"] == "nm" and ds["time"].attrs["units"] == "s"
    np.testing.assert_allclose(ds["y"].values, 2.5 * np.arange(24))
    for name in ("li_fraction_true", "energy_shift_true"):
        assert ds[name].dims == ("time", "y", "x")
    assert ds["energy_shift_true"].attrs["units"] == "eV"
    for name in ("region", "thickness_true", "background_a_true", "background_r_true",
                 "co3o4_fraction_true"):
        assert ds[name].dims == ("y", "x")
    for name in ("voltage", "current", "charge", "state"):
        assert ds[name].dims == ("time",)
    assert ds["voltage"].attrs["units"] == "V"
    assert ds["state"].attrs["flag_meanings"] == "rest charge discharge"
    for phase in ("licoo2", "coo2", "co3o4", "electrolyte"):
        for name in (f"ref_{phase}", f"ref_{phase}_edge"):
            assert ds[name].dims == ("energy",) and ds[name].attrs["units"] == "counts"
    assert ds.attrs["dose"] == DOSE
    windows = json.loads(ds.attrs["windows"])
    assert set(windows) >= {"background", "fit", "S_A", "S_B"}
    params = json.loads(ds.attrs["parameters"])
    assert params["li_params"] == LI and params["frames"] == "all"
    assert np.all(sp.values >= 0) and np.all(sp.values == np.round(sp.values))


def test_li_field_is_the_licoo2_twin_truth(ds):
    li = simulate("licoo2", seed=3, dose=None, **LI)
    np.testing.assert_array_equal(ds["li_fraction_true"].values, li["li_fraction_true"].values)
    np.testing.assert_array_equal(ds["region"].values, li["region"].values)
    np.testing.assert_array_equal(ds["voltage"].values, li["voltage"].values)
    steps = [s["step"] for s in provenance(ds["spectra"])]
    assert steps == ["ionscope.simulate.licoo2", "ionscope.simulate.eels_licoo2"]
    # region 1 holds Co3O4, the bulk none
    co = ds["co3o4_fraction_true"].values
    assert np.all(co[ds["region"].values == 0] == 0)
    np.testing.assert_allclose(co[ds["region"].values == 1], 0.6)


def test_same_seed_identical_different_seed_different(ds):
    again = simulate("eels_licoo2", seed=3, li_params=LI)
    np.testing.assert_array_equal(again["spectra"].values, ds["spectra"].values)
    np.testing.assert_array_equal(again["ref_licoo2"].values, ds["ref_licoo2"].values)
    other = simulate("eels_licoo2", seed=4, li_params=LI, frames=[0])
    assert not np.array_equal(other["spectra"].values[0], ds["spectra"].values[0])


def test_a_frame_does_not_depend_on_which_frames_are_rendered(ds):
    sub = simulate("eels_licoo2", seed=3, li_params=LI, frames=[2, 5])
    np.testing.assert_array_equal(sub["spectra"].values, ds["spectra"].values[[2, 5]])
    np.testing.assert_array_equal(sub["time"].values, ds["time"].values[[2, 5]])
    np.testing.assert_array_equal(sub["state"].values, ds["state"].values[[2, 5]])


def test_single_frame_series_and_spectrum_image(ds):
    one = simulate("eels_licoo2", seed=3, li_params=LI, frames=[4])
    assert one.sizes["time"] == 1
    image = spectrum_image(one, 0)
    assert image.dims == ("y", "x", "energy")
    np.testing.assert_array_equal(image.values, ds["spectra"].values[4])
    np.testing.assert_array_equal(spectrum_image(ds, -1).values, ds["spectra"].values[-1])
    with pytest.raises(ConfigError, match="frame"):
        spectrum_image(one, 1)
    with pytest.raises(InputError, match="spectra"):
        spectrum_image(one.drop_vars("spectra"), 0)


def test_progress_is_called_per_frame():
    calls = []
    simulate("eels_licoo2", seed=0, li_params=LI, frames=[0, 1, 6], channels=32,
             progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# --------------------------------------------------------------------------- edge shapes


def test_li_k_onset_near_55_ev_and_near_edge_peak_near_62(ds):
    e = np.arange(40.0, 90.0, 0.01)
    li_k = k_edge(e, EDGES["Li-K"])
    assert abs(e[np.argmax(np.gradient(li_k))] - 55.0) < 0.3  # steepest rise = onset
    assert abs(e[np.argmax(li_k)] - 62.0) < 0.5
    assert li_k[e < 53.0].max() < 1e-3 * li_k.max()
    # in the measured-like references: the Li-rich one rises at ~55 eV, the Li-free one not
    energy = ds["energy"].values
    rich, poor = ds["ref_licoo2_edge"].values, ds["ref_coo2_edge"].values
    first_rich = energy[np.argmax(rich > 0.05 * rich.max())]
    assert 54.0 <= first_rich <= 56.0
    assert poor[energy < 57.0].max() < 0.01 * poor.max()


def test_co_m_maximum_is_delayed_and_shifts_with_valence(ds):
    energy = ds["energy"].values
    for name in ("ref_coo2_edge", "ref_co3o4_edge"):
        ref = ds[name].values
        onset = energy[np.argmax(ref > 0.1 * ref.max())]
        assert 57.0 <= onset <= 60.5, name
        assert energy[np.argmax(ref)] - onset >= 7.0, name  # broad delayed maximum
    e = np.arange(50.0, 90.0, 0.01)
    onsets = {}
    for name in ("Co-M Co3+", "Co-M Co4+", "Co-M Co8/3+"):
        shape = phase_edge(e, {"Co-M Co3+": "licoo2", "Co-M Co4+": "coo2",
                               "Co-M Co8/3+": "co3o4"}[name])
        if name == "Co-M Co3+":
            shape = shape - k_edge(e, EDGES["Li-K"])
        onsets[name] = e[np.argmax(shape > 0.1 * shape.max())]
        assert 7.0 <= e[np.argmax(shape)] - onsets[name] <= 14.0
    # higher valence -> higher onset: Co8/3+ < Co3+ < Co4+
    assert onsets["Co-M Co8/3+"] < onsets["Co-M Co3+"] < onsets["Co-M Co4+"]


def test_references_equal_edges_plus_background_within_poisson_noise(ds):
    for phase in ("licoo2", "coo2", "co3o4", "electrolyte"):
        lam = ds[f"ref_{phase}_edge"].values + ds["ref_background"].values
        z = (ds[f"ref_{phase}"].values - lam) / np.sqrt(lam)
        assert abs(z.mean()) < 0.3 and 0.7 < z.std() < 1.3, phase
        assert np.sqrt(lam).max() / ds[f"ref_{phase}_edge"].values.max() < 0.2  # high S/N


# --------------------------------------------------------------------------- noise


def test_noise_is_poisson_at_the_stated_dose(ds, expected):
    counts, lam = _pixels(ds), _pixels(expected)
    z = (counts - lam) / np.sqrt(lam)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    # the mean scales with the dose: background at 50 eV is dose * dispersion * A * t
    a = ds["background_a_true"].values.ravel()
    i50 = int(np.argmin(np.abs(ds["energy"].values - 50.0)))
    bg_only = simulate("eels_licoo2", seed=3, li_params=LI, frames=[0], noise=False,
                       resolution_eV=0.0, edge_scale_per_eV=0.0)
    np.testing.assert_allclose(_pixels(bg_only)[0, :, i50], DOSE * 0.25 * a, rtol=1e-5)


def test_low_dose_counts_have_variance_equal_to_mean():
    kw = dict(seed=5, li_params=LI, frames=[0, 1, 2], dose=2e3, resolution_eV=0.0)
    counts = _pixels(simulate("eels_licoo2", **kw))
    lam = _pixels(simulate("eels_licoo2", noise=False, **kw))
    assert 0.2 < lam.mean() < 5.0
    assert abs(counts.mean() / lam.mean() - 1) < 0.01
    assert abs(((counts - lam) ** 2).mean() / lam.mean() - 1) < 0.02


# --------------------------------------------------------------------------- linear mixture


def test_bulk_pixels_are_a_linear_mix_of_the_two_references(clean):
    spectra = _pixels(clean)
    x = clean["li_fraction_true"].values.reshape(N_FRAMES, -1).astype(np.float64)
    bulk = clean["region"].values.ravel() == 0
    refs = np.stack([clean["ref_licoo2_edge"].values, clean["ref_coo2_edge"].values], axis=1)
    coef = np.linalg.lstsq(refs, spectra[:, bulk].reshape(-1, refs.shape[0]).T, rcond=None)[0]
    a_rich, a_poor = coef.reshape(2, N_FRAMES, -1)
    np.testing.assert_allclose(a_rich / (a_rich + a_poor), x[:, bulk], rtol=0, atol=1e-6)
    t = clean["thickness_true"].values.ravel()[bulk]
    np.testing.assert_allclose(a_rich + a_poor, np.broadcast_to(DOSE / REF_DOSE * t, a_rich.shape),
                               rtol=1e-5)
    assert x[:, bulk].max() - x[:, bulk].min() > 0.02  # the test sees Li move


def test_layer_pixels_need_the_co3o4_reference_but_keep_their_li_fraction(clean):
    spectra = _pixels(clean)
    x = clean["li_fraction_true"].values.reshape(N_FRAMES, -1).astype(np.float64)
    layer = clean["region"].values.ravel() == 1
    assert layer.sum() > 10
    y = spectra[:, layer].reshape(-1, spectra.shape[-1]).T
    three = np.stack([clean[f"ref_{p}_edge"].values for p in ("licoo2", "coo2", "co3o4")], 1)
    coef = np.linalg.lstsq(three, y, rcond=None)[0]
    np.testing.assert_allclose(coef[0] / coef.sum(0), x[:, layer].ravel(), atol=1e-6)
    assert np.all(coef[2] > 0.5 * coef.sum(0))  # 60 % of the layer's Co is in Co3O4
    # with only the two end members the layer leaves a clear, systematic residual
    two = three[:, :2]
    c2 = np.linalg.lstsq(two, y, rcond=None)[0]
    rel = np.linalg.norm(two @ c2 - y, axis=0) / np.linalg.norm(y, axis=0)
    assert rel.min() > 0.02
    bulk = ~layer
    yb = spectra[:, bulk].reshape(-1, spectra.shape[-1]).T
    cb = np.linalg.lstsq(two, yb, rcond=None)[0]
    assert (np.linalg.norm(two @ cb - yb, axis=0) / np.linalg.norm(yb, axis=0)).max() < 1e-6


def test_expected_counts_is_linear_in_the_phase_amounts():
    e = np.arange(40.0, 100.0, 0.2)
    kw = dict(background_a=None, background_r=None, shift_eV=None, resolution_eV=1.0,
              counts_per_density=1.0, edge_scale_per_eV=1.0)
    amounts = np.array([[0.3, 0.7, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = expected_counts(e, ("licoo2", "coo2", "co3o4"), amounts, **kw)
    np.testing.assert_allclose(out[0], 0.3 * out[1] + 0.7 * out[2], rtol=1e-12)
    # resolution 0 is the plain evaluation; the kernel conserves counts away from the ends
    raw = expected_counts(e, ("licoo2",), np.ones((1, 1)), **{**kw, "resolution_eV": 0.0})
    np.testing.assert_allclose(raw[0], phase_edge(e, "licoo2"), rtol=1e-12)
    pad, k = resolution_matrix(300, 0.2, 1.0)
    np.testing.assert_allclose(k.sum(axis=0), 1.0)
    assert pad == int(np.ceil(5 * 1.0 / 2.3548 / 0.2))


def test_suggested_windows_calibrate_the_ratio_method(clean):
    """R = S_A / S_B from the suggested windows is linear in x between R0 and R1 (bulk)."""
    energy = clean["energy"].values
    w = json.loads(clean.attrs["windows"])
    assert w == LICOO2_WINDOWS
    sa = (energy >= w["S_A"][0]) & (energy < w["S_A"][1])
    sb = (energy >= w["S_B"][0]) & (energy < w["S_B"][1])

    def ratio(s):
        return s[..., sa].sum(-1) / s[..., sb].sum(-1)

    r1, r0 = ratio(clean["ref_licoo2_edge"].values), ratio(clean["ref_coo2_edge"].values)
    assert (r1 - r0) / r0 > 1.0  # sensitive to Li
    bulk = clean["region"].values.ravel() == 0
    x_est = (ratio(_pixels(clean)[:, bulk]) - r0) / (r1 - r0)
    x = clean["li_fraction_true"].values.reshape(N_FRAMES, -1)[:, bulk]
    np.testing.assert_allclose(x_est, x, atol=2e-3)
    # the background window lies below every edge of the film
    bw = (energy >= w["background"][0]) & (energy < w["background"][1])
    assert clean["ref_licoo2_edge"].values[bw].max() < 1e-3 * clean["ref_licoo2_edge"].max()


# --------------------------------------------------------------------------- drift


def test_drift_ground_truth_is_applied():
    kw = dict(seed=7, li_params=LI, noise=False, background=False, dispersion_eV=0.1,
              channels=512, frames=[0, 3, 6])
    drifted = simulate("eels_licoo2", drift_eV=1.5, jitter_eV=0.1, **kw)
    still = simulate("eels_licoo2", **kw)
    truth = drifted["energy_shift_true"].values
    assert np.abs(still["energy_shift_true"].values).max() == 0.0
    assert np.abs(truth).max() <= 1.5 + 0.6 and np.ptp(truth) > 0.3
    # cross-correlate each drifted spectrum with its drift-free self (sub-channel peak)
    a = np.gradient(_pixels(drifted).reshape(-1, 512), axis=1)
    b = np.gradient(_pixels(still).reshape(-1, 512), axis=1)
    lags = np.arange(-30, 31)
    cc = np.stack([np.sum(a * np.roll(b, lag, axis=1), axis=1) for lag in lags], axis=1)
    i = np.clip(np.argmax(cc, axis=1), 1, lags.size - 2)
    rows = np.arange(cc.shape[0])
    c0, c1, c2 = cc[rows, i - 1], cc[rows, i], cc[rows, i + 1]
    peak = lags[i] + 0.5 * (c0 - c2) / (c0 - 2 * c1 + c2)
    np.testing.assert_allclose(peak * 0.1, truth.ravel(), atol=0.02)
    # the per-frame part is common to all pixels of a frame, the jitter is ~0.1 eV
    frame_mean = truth.reshape(3, -1).mean(axis=1)
    assert 0.07 < (truth.reshape(3, -1) - frame_mean[:, None]).std() < 0.13


def test_drift_is_smooth_over_the_series():
    ds = simulate("eels_licoo2", seed=1, li_params=dict(LI, charge_frames=40), noise=False,
                  drift_eV=1.0, channels=16, energy_start_eV=40.0)
    d = ds["energy_shift_true"].values[:, 0, 0]
    assert np.abs(d).max() <= 1.0 + 1e-12
    assert np.abs(np.diff(d)).max() < 0.25
    assert np.all(ds["energy_shift_true"].values == d[:, None, None])  # no jitter by default


# --------------------------------------------------------------------------- SR-EELS


@pytest.fixture(scope="module")
def sr():
    return simulate("eels_sr", seed=2)


def _half_crossing(pos, values, level):
    """First position where ``values`` falls below ``level`` (linear interpolation)."""
    j = int(np.argmax(values < level))
    frac = (values[j - 1] - level) / (values[j - 1] - values[j])
    return pos[j - 1] + frac * (pos[j] - pos[j - 1])


def test_sr_shapes_units_and_truth(sr):
    assert sr.attrs["primary"] == "spectra" and sr["spectra"].dims == ("position", "energy")
    assert sr["spectra"].shape == (160, 256) and sr["spectra"].dtype == np.float32
    np.testing.assert_allclose(sr["position"].values, 0.5 * np.arange(160))
    assert sr["position"].attrs["units"] == "nm" and sr["energy"].attrs["units"] == "eV"
    assert sr.attrs["interface_position_nm"] == 30.0 and sr.attrs["enrichment_width_nm"] == 13.0
    pos, li = sr["position"].values, sr["li_profile_true"].values
    phi = sr["electrolyte_fraction_true"].values
    assert li[pos < 25].max() < 1e-3 and abs(li[-1] - 1.0) < 1e-6
    assert abs(li.max() - 1.5) < 1e-3
    assert abs(_half_crossing(pos, 1 - phi, 0.5) - 30.0) < 0.05
    excess = li - phi
    assert abs(_half_crossing(pos[pos > 30], excess[pos > 30], 0.25) - 43.0) < 0.05


def test_sr_noiseless_rows_decompose_into_cu_electrolyte_and_li(sr):
    clean = simulate("eels_sr", seed=2, noise=False, background=False)
    li_k = clean["ref_li_k_edge"].values
    refs = np.stack([clean["ref_cu_edge"].values, clean["ref_electrolyte_edge"].values - li_k,
                     li_k], axis=1)
    coef = np.linalg.lstsq(refs, clean["spectra"].values.astype(np.float64).T, rcond=None)[0]
    scale = 1e8 / 1e9 * clean["thickness_true"].values
    np.testing.assert_allclose(coef[2] / scale, clean["li_profile_true"].values, atol=1e-5)
    np.testing.assert_allclose(coef[1] / scale, clean["electrolyte_fraction_true"].values,
                               atol=1e-5)


def test_sr_li_k_window_profile_recovers_interface_and_enrichment_width(sr):
    """The plain window method on the noisy image finds the interface and the 13 nm width."""
    e, pos = sr["energy"].values, sr["position"].values
    s = sr["spectra"].values.astype(np.float64)
    w = json.loads(sr.attrs["windows"])

    def mask(name):
        return (e >= w[name][0]) & (e < w[name][1])

    def edge_signal(background_window, edge_window):
        bw = mask(background_window)
        fit = np.polyfit(np.log(e[bw]), np.log(s[:, bw]).T, 1)  # per-row power law
        background = np.exp(fit[1][:, None] + fit[0][:, None] * np.log(e)[None, :])
        return (s - background)[:, mask(edge_window)].sum(axis=1)

    ti = np.convolve(edge_signal("ti_background", "ti_m"), np.ones(5) / 5, mode="same")
    li_signal = edge_signal("background", "li_k")
    ti_bulk = np.median(ti[pos > 55])
    assert abs(_half_crossing(pos[::-1], ti[::-1], 0.5 * ti_bulk) - 30.0) < 1.0
    li = np.convolve(li_signal, np.ones(5) / 5, mode="same")
    bulk, peak = np.median(li[pos > 55]), np.median(li[(pos > 34) & (pos < 40)])
    assert peak > 1.15 * bulk  # Li-K enriched next to the Cu
    side = (pos > 36) & (pos < 77)
    width = _half_crossing(pos[side], li[side], 0.5 * (peak + bulk)) - 30.0
    assert abs(width - 13.0) < 1.5


def test_sr_determinism_and_enrichment_parameter():
    a = simulate("eels_sr", seed=9, positions=100, enrichment_width_nm=5.0)
    b = simulate("eels_sr", seed=9, positions=100, enrichment_width_nm=5.0)
    np.testing.assert_array_equal(a["spectra"].values, b["spectra"].values)
    flat = simulate("eels_sr", seed=9, positions=100, enrichment=1.0)
    np.testing.assert_allclose(flat["li_profile_true"].values,
                               flat["electrolyte_fraction_true"].values)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(channels=0), "channels"),
        (dict(channels=100.5), "channels"),
        (dict(dispersion_eV=-0.1), "dispersion_eV"),
        (dict(dose=0.0), "dose"),
        (dict(dose=float("nan")), "dose"),
        (dict(drift_eV=-1.0), "drift_eV"),
        (dict(resolution_eV=None), "resolution_eV"),
        (dict(noise="yes"), "noise"),
        (dict(background=1), "background"),
        (dict(background_r=1.0, background_r_spread=0.8), "background_r"),
        (dict(energy_start_eV=3.0, resolution_eV=2.0), "energy_start_eV"),
        (dict(frames="some"), "frames"),
        (dict(frames=[]), "frames"),
        (dict(frames=[3, 1]), "frames"),
        (dict(frames=[0, 157]), "frames"),
        (dict(frames=[0.5]), "frames"),
        (dict(li_params={"dose": 10.0}), "dose"),
        (dict(li_params={"bogus": 1}), "bogus"),
        (dict(li_params={"ny": 2}), "li_params"),
        (dict(li_params=[("ny", 16)]), "li_params"),
        (dict(unknown=1), "unknown"),
    ],
)
def test_bad_licoo2_parameters_raise_config_error(params, match):
    with pytest.raises(ConfigError, match=match):
        simulate("eels_licoo2", **params)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(positions=4), "positions"),
        (dict(interface_position_nm=75.0), "interface"),
        (dict(interface_position_nm=1.0), "interface"),
        (dict(enrichment=-1.0), "enrichment"),
        (dict(noise=None), "noise"),
        (dict(drift_eV=1.0), "drift_eV"),
    ],
)
def test_bad_sr_parameters_raise_config_error(params, match):
    with pytest.raises(ConfigError, match=match):
        simulate("eels_sr", **params)
