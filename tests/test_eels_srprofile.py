"""SR-EELS Li-K profiles and interface/width fits (ionscope.eels.srprofile)."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pytest
from scipy.special import erf

from daskcount import CountingScheduler

from ionscope.data import provenance, signal
from ionscope.eels.background import MASK_NONPOSITIVE
from ionscope.eels.srprofile import (
    _exp_model,
    _layer_model,
    _layer_w90,
    fit_interface,
    interface_and_width,
    sr_profile,
)
from ionscope.errors import ConfigError, ConvergenceError, DimensionError, InputError
from ionscope.simulate import simulate

E = 40 + 0.2 * np.arange(200)  # 40-79.8 eV
POS = np.arange(0, 80, 0.5)  # nm
WINDOW, BACKGROUND = (54.0, 66.0), (45.0, 53.0)
S0, LAMBDA, BLUR = 30.0, 13.0, 1.0


def li_fraction(side: str = "right"):
    """Li-free metal (0.05) | electrolyte (0.3) with Li enriched within ~LAMBDA of the interface."""
    sign = 1.0 if side == "right" else -1.0
    outside, inside = (0.05, 0.3) if side == "right" else (0.3, 0.05)
    return _exp_model(sign, BLUR)(POS, outside, inside, 0.7, S0, LAMBDA)


def sr_image(rng, li, dose=1.0):
    bg = 3e7 * E**-3.0
    edge = 800 * 0.5 * (1 + erf((E - 55.5) / 0.6)) * np.exp(-np.clip(E - 55.5, 0, None) / 8)
    counts = rng.poisson(dose * (bg[None, :] + np.multiply.outer(li, edge))).astype(np.float32)
    return signal(counts, ("position", "energy"), name="sr_eels", units="counts",
                  coords={"energy": E, "position": POS})


def test_sr_profile_integrates_the_edge_along_position_with_errors():
    rng = np.random.default_rng(0)
    li = li_fraction()
    prof = sr_profile(sr_image(rng, li), WINDOW, BACKGROUND)
    assert prof.dims == ("position",) and prof.name == "li_k_profile"
    assert prof.attrs["units"] == "counts" and prof["position"].attrs["units"] == "nm"
    assert set(prof.coords) == {"position", "std_error", "mask"}
    slope, offset = np.polyfit(li, prof.values, 1)
    z = (prof.values - (slope * li + offset)) / prof["std_error"].values
    assert 0.7 < z.std() < 1.3  # the propagated error describes the scatter
    assert provenance(prof)[-1]["step"] == "ionscope.eels.window_map"


def test_sr_profile_marks_dead_rows_and_stays_lazy():
    rng = np.random.default_rng(1)
    da = sr_image(rng, li_fraction())
    da.values[10] = 0.0
    prof = sr_profile(da, WINDOW, BACKGROUND)
    assert prof["mask"].values[10] == MASK_NONPOSITIVE and np.isnan(prof.values[10])
    with dask.config.set(scheduler=CountingScheduler(0)):
        lazy = sr_profile(da.chunk({"position": 40}), WINDOW, BACKGROUND)
    assert isinstance(lazy.data, dask.array.Array)
    np.testing.assert_allclose(lazy.compute().values, prof.values, equal_nan=True)
    fit = interface_and_width(prof, model="exponential")  # the masked row is left out
    assert abs(fit["width"].item() - LAMBDA) < 1.5


def test_sr_profile_needs_one_spatial_dim_and_takes_a_lone_y_as_position():
    da = signal(np.ones((3, 2, E.size)), ("y", "x", "energy"), name="s", units="counts",
                coords={"energy": E})
    with pytest.raises(DimensionError, match="one spatial dim"):
        sr_profile(da, WINDOW)
    rng = np.random.default_rng(2)
    image = sr_image(rng, li_fraction()).rename({"position": "y"})
    prof = sr_profile(image, WINDOW, BACKGROUND)
    assert prof.dims == ("position",) and prof["position"].attrs["units"] == "nm"


@pytest.mark.parametrize("side", ["right", "left"])
def test_interface_and_width_recovers_a_known_enrichment_width(side):
    z_width, z_interface = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        prof = sr_profile(sr_image(rng, li_fraction(side)), WINDOW, BACKGROUND)
        fit = interface_and_width(prof, model="exponential")
        width, width_err = fit["width"].item(), fit["width_error"].item()
        assert abs(width - LAMBDA) < 1.0 + 2 * width_err  # within 1 nm at this dose
        assert fit.attrs["side"] == side
        z_width.append((width - LAMBDA) / width_err)
        z_interface.append((fit["interface"].item() - S0) / fit["interface_error"].item())
    assert np.abs(z_width).max() < 3 and np.abs(z_interface).max() < 3.5
    assert fit["width"].attrs["units"] == "nm" and fit["w90"].item() == pytest.approx(width * np.log(10))
    assert fit["fit"].dims == ("position",)
    step = provenance(fit)[-1]
    assert step["step"] == "ionscope.eels.interface_and_width" and step["params"]["model"] == "exponential"


def test_high_dose_width_is_within_1_nm():
    rng = np.random.default_rng(5)
    prof = sr_profile(sr_image(rng, li_fraction(), dose=4.0), WINDOW, BACKGROUND)
    fit = interface_and_width(prof, model="exponential", side="right", blur=BLUR)
    assert abs(fit["width"].item() - LAMBDA) < 1.0
    assert abs(fit["interface"].item() - S0) < 1.0
    assert "blur" not in fit  # fixed, not fitted


def test_erf_step_width_and_error_are_consistent():
    z = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        step = 0.1 + 0.5 * 0.5 * (1 + erf((POS - S0) / (np.sqrt(2) * 3.0)))
        prof = sr_profile(sr_image(rng, step), WINDOW, BACKGROUND)
        fit = interface_and_width(prof, model="erf")
        assert abs(fit["width"].item() - 3.0) < 1.0 and abs(fit["interface"].item() - S0) < 1.0
        z.append((fit["width"].item() - 3.0) / fit["width_error"].item())
    assert np.abs(z).max() < 3
    assert fit["w90"].item() == pytest.approx(2.5631 * fit["width"].item(), rel=1e-4)


def test_fit_interface_without_errors_uses_the_residual_scatter():
    rng = np.random.default_rng(4)
    y = _exp_model(1.0, BLUR)(POS, 0.0, 1.0, 2.0, S0, LAMBDA) + rng.normal(0, 0.05, POS.size)
    fit = fit_interface(POS, y, model="exponential", side="right", blur=BLUR)
    values = dict(zip(fit["names"], fit["values"]))
    errors = dict(zip(fit["names"], fit["errors"]))
    assert abs(values["width"] - LAMBDA) < 3 * errors["width"]
    assert fit["chi2_reduced"] == pytest.approx(0.05**2, rel=0.3)


def test_interface_and_width_rejects_bad_profiles():
    prof = signal(np.linspace(0, 1, 50), ("position",), name="p", units="counts")  # px axis
    with pytest.raises(InputError, match="calibrate it in nm"):
        interface_and_width(prof)
    flat = signal(np.ones(50), ("position",), name="p", units="counts", coords={"position": 0.5})
    with pytest.raises(InputError, match="constant"):
        interface_and_width(flat)
    two_d = signal(np.ones((2, 50)), ("time", "position"), name="p", units="counts")
    with pytest.raises(DimensionError, match="1-D profile"):
        interface_and_width(two_d)
    with pytest.raises(ConfigError, match="unknown interface model"):
        interface_and_width(flat, model="tanh")
    short = signal(np.arange(5.0), ("position",), name="p", units="counts", coords={"position": 1.0})
    with pytest.raises(InputError, match="at least"):
        interface_and_width(short)


def test_position_in_angstrom_is_converted_to_nm():
    rng = np.random.default_rng(6)
    y = 0.1 + 0.5 * 0.5 * (1 + erf((POS - S0) / (np.sqrt(2) * 3.0))) + rng.normal(0, 0.01, POS.size)
    prof = signal(y, ("position",), name="p", units="1", coords={"position": POS * 10},
                  coord_units={"position": "Å"})
    fit = interface_and_width(prof, model="erf")
    assert fit["interface"].item() == pytest.approx(S0, abs=0.5) and fit["interface"].attrs["units"] == "nm"


# --------------------------------------------------------------------------- layer model

W_LAYER = 13.0


def layer_fraction(side: str, f: float):
    """Li-free metal (0.05) | electrolyte (0.6) with a layer of relative Li ``f`` next to it."""
    sign = 1.0 if side == "right" else -1.0
    return _layer_model(sign, BLUR, 1.0)(POS, 0.05, 0.6, f, S0, W_LAYER, BLUR)


@pytest.fixture(scope="module")
def twin_fits():
    fits = []
    for seed in range(5):
        ds = simulate("eels_sr", seed=seed)
        prof = sr_profile(ds["spectra"], (55, 62), (48, 54))  # the twin's Li-K windows
        fits.append((ds.attrs, interface_and_width(prof)))
    return fits


def test_layer_is_the_default_and_recovers_the_twin_enrichment_width(twin_fits):
    z = {"interface": [], "width": [], "enrichment": []}
    for truth, fit in twin_fits:
        assert fit.attrs["model"] == "layer" and fit.attrs["side"] == "right"
        expected = {"interface": truth["interface_position_nm"],
                    "width": truth["enrichment_width_nm"], "enrichment": truth["enrichment"]}
        assert abs(fit["interface"].item() - expected["interface"]) < 0.5
        assert abs(fit["width"].item() - expected["width"]) < 1.0
        assert fit["enrichment"].item() == pytest.approx(expected["enrichment"], rel=0.1)
        for name in z:
            z[name].append((fit[name].item() - expected[name]) / fit[f"{name}_error"].item())
        assert 0.7 < fit.attrs["chi2_reduced"] < 1.3
    assert np.abs(z["width"]).max() < 3 and np.abs(z["enrichment"]).max() < 3
    # seed 1's interface is 3.05 standard errors off (29.84 +/- 0.054 nm); over 40 noise
    # realisations per seed the interface z-scores have sd 0.8-1.0 and means within +/- 0.5
    assert np.abs(z["interface"]).max() < 3.5
    assert np.sqrt(np.mean(np.concatenate(list(z.values())) ** 2)) < 1.5


def test_layer_output_units_w90_and_provenance(twin_fits):
    _, fit = twin_fits[0]
    for name, unit in [("interface", "nm"), ("width", "nm"), ("w90", "nm"), ("blur", "nm"),
                       ("edge_blur", "nm"), ("enrichment", "1"), ("baseline_1", "counts/nm"),
                       ("baseline_3", "counts/nm^3")]:
        assert fit[name].attrs["units"] == unit and fit[f"{name}_error"].attrs["units"] == unit
        assert np.isfinite(fit[f"{name}_error"].item()) and fit[f"{name}_error"].item() > 0
    assert _layer_w90(fit["width"].item(), fit["edge_blur"].item()) == fit["w90"].item()
    assert _layer_w90(W_LAYER, 1e-6) == pytest.approx(0.9 * W_LAYER)
    assert fit["fit"].attrs["long_name"] == "layer interface model"
    step = provenance(fit)[-1]
    assert step["params"]["model"] == "layer" and step["params"]["baseline"] == 3


def test_the_exponential_model_misses_the_twin_layer_width(twin_fits):
    ds = simulate("eels_sr", seed=0)
    prof = sr_profile(ds["spectra"], (55, 62), (48, 54))
    fit = interface_and_width(prof, model="exponential")
    # the wrong model's width is off by 7.7 nm today (not asserted: that is a shortfall, not a
    # requirement); what must hold is that its chi2 says so
    assert np.isfinite(fit["width"].item())
    assert fit.attrs["chi2_reduced"] > 2 * twin_fits[0][1].attrs["chi2_reduced"]


@pytest.mark.parametrize("side", ["right", "left"])
def test_layer_recovers_a_depleted_layer(side):
    z = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        prof = sr_profile(sr_image(rng, layer_fraction(side, 0.3)), WINDOW, BACKGROUND)
        fit = interface_and_width(prof)  # side="auto": the layer goes in the Li-rich material
        assert fit.attrs["side"] == side
        assert abs(fit["interface"].item() - S0) < 0.5
        assert abs(fit["width"].item() - W_LAYER) < 1.0
        assert fit["enrichment"].item() == pytest.approx(0.3, rel=0.1)
        z += [(fit[name].item() - true) / fit[f"{name}_error"].item()
              for name, true in (("interface", S0), ("width", W_LAYER), ("enrichment", 0.3))]
    assert np.abs(z).max() < 3


def test_layer_fit_without_errors_uses_the_residual_scatter_and_reports_the_drift_per_nm():
    rng = np.random.default_rng(3)
    truth = [0.0, 1.0, 1.8, S0, W_LAYER, BLUR, 0.01]  # c, b, f, s0, W, edge blur, drift / nm
    y = _layer_model(1.0, BLUR, 1.0)(POS, *truth) + rng.normal(0, 0.05, POS.size)
    fit = fit_interface(POS, y, model="layer", side="right", blur=BLUR, baseline=1)
    assert fit["names"] == ["level_outside", "level_inside", "enrichment", "interface", "width",
                            "edge_blur", "baseline_1"]
    assert np.all(np.abs(fit["values"] - truth) < 3 * fit["errors"])
    assert fit["chi2_reduced"] == pytest.approx(0.05**2, rel=0.3)


def test_layer_fit_rejects_profiles_without_a_step_or_a_layer():
    rng = np.random.default_rng(7)
    flat = sr_profile(sr_image(rng, np.full(POS.size, 0.3)), WINDOW, BACKGROUND)
    with pytest.raises(InputError, match="shows no step"):
        interface_and_width(flat)
    tilted = flat + 50.0 * POS / POS[-1] * flat["std_error"]  # a drift, still no step
    with pytest.raises(InputError, match="shows no step"):
        interface_and_width(tilted)
    step = 0.1 + 0.5 * 0.5 * (1 + erf((POS - S0) / (np.sqrt(2) * 3.0)))
    plain = sr_profile(sr_image(rng, step), WINDOW, BACKGROUND)
    with pytest.raises(ConvergenceError, match="model='erf'"):
        interface_and_width(plain)
    decaying = sr_profile(sr_image(rng, li_fraction()), WINDOW, BACKGROUND)
    with pytest.raises(ConvergenceError, match="model='exponential'"):
        interface_and_width(decaying)
    with pytest.raises(ConfigError, match="degree 0-3"):
        interface_and_width(plain, baseline=4)
