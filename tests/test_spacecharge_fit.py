"""Joint fit of potential and Li profiles: recovery on simulated data, identifiability, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.ndimage import gaussian_filter1d

from ionscope.data import signal
from ionscope.errors import ConfigError, InputError
from ionscope.simulate import simulate
from ionscope.spacecharge import lattice_gas_potential
from ionscope.spacecharge.fit import (
    IdentifiabilityError,
    fit_profiles,
    fit_spacecharge,
    interface_profile,
)

C0 = 6e27
X = np.arange(-10.0, 30.0, 0.1)


def _noisy(psi0, theta, *, seed, eps_r=50.0, c0=C0, x=X, x0=0.3, psf=0.5, li_psf=0.7,
           sigma_v=0.01, sigma_li=0.01):
    rng = np.random.default_rng(seed)
    kw = dict(psi0_V=psi0, theta=theta, eps_r=eps_r, c0_m3=c0)
    v = interface_profile(x, x0_nm=x0, psf_nm=psf, offset=0.1, **kw)
    li = interface_profile(x, x0_nm=x0, psf_nm=li_psf, quantity="li", offset=0.05, scale=0.8,
                           **kw)
    return v + rng.normal(0, sigma_v, x.size), li + rng.normal(0, sigma_li, x.size)


@pytest.mark.parametrize("psf", [0.3, 1.5])
@pytest.mark.parametrize("psi0", [1.3, -1.3])
def test_blurred_profile_is_the_exact_convolution(psi0, psf):
    """Gaussian PSF on the piecewise profile (electrode plateau | layer), against quad."""
    theta, eps_r = 0.95, 40

    def truth(x):
        def integrand(s):
            value = psi0 if s < 0 else lattice_gas_potential([s], psi0, theta, eps_r, C0)[0]
            return value * np.exp(-0.5 * ((x - s) / psf) ** 2) / (psf * np.sqrt(2 * np.pi))

        lo, hi = x - 9 * psf, x + 9 * psf
        pts = [0.0] if lo < 0 < hi else None
        return quad(integrand, lo, hi, points=pts, limit=200, epsabs=1e-12)[0]

    xs = np.array([-2.0, -0.3, 0.0, 0.4, 1.0, 3.0, 8.0])
    ours = interface_profile(xs, psi0, theta, eps_r, C0, psf_nm=psf)
    np.testing.assert_allclose(ours, [truth(x) for x in xs], atol=2e-6)
    # mirrored geometry
    left = interface_profile(-xs, psi0, theta, eps_r, C0, psf_nm=psf, side="left")
    np.testing.assert_allclose(left, ours, atol=1e-12)


@pytest.mark.parametrize("theta", [0.9, 0.95, 0.99, 0.995])
def test_joint_fit_recovers_psi0_and_theta_accumulation(theta):
    v, li = _noisy(-1.3, theta, seed=int(theta * 1000))
    fit = fit_spacecharge(X, v, 0.01, li=li, li_sigma=0.01, side="right")
    assert fit.values["psi0_V"] == pytest.approx(-1.3, rel=0.05)
    assert abs(fit.values["theta"] - theta) < 0.01
    assert abs(fit.values["theta"] - theta) < 4 * fit.stderr["theta"] + 1e-4
    assert fit.values["x0_nm"] == pytest.approx(0.3, abs=0.05)
    assert fit.values["psf_nm"] == pytest.approx(0.5, abs=0.1)
    assert 0.7 < fit.reduced_chi2 < 1.3 and fit.absolute_sigma


@pytest.mark.parametrize("theta", [0.9, 0.99])
def test_joint_fit_depletion_errors_are_honest(theta):
    """At a depleted interface theta shows only in the Debye tail and the Li edge: the fit
    still finds psi0, and its theta is within its own standard errors."""
    v, li = _noisy(1.3, theta, seed=7)
    fit = fit_spacecharge(X, v, 0.01, li=li, li_sigma=0.01, side="right")
    assert fit.values["psi0_V"] == pytest.approx(1.3, rel=0.05)
    assert abs(fit.values["theta"] - theta) < 4 * fit.stderr["theta"]
    assert fit.stderr["theta"] < 0.05


@pytest.mark.parametrize("theta", [0.9, 0.995])
def test_fit_recovers_the_holography_twins_layer(theta):
    """The holography twin's electrostatic potential (blurred 1 nm, 20 mV noise) and a Li profile
    of the same layer (1 nm PSF, 2 % noise): psi0 within 5 %, theta within 0.01."""
    ds = simulate("holography", seed=3, ny=48, nx=256, vacuum_height_nm=8, theta=theta,
                  noise=False)
    row = ds["electrostatic_true"].isel(y=40)
    x, v = row["x"].values, row.values.astype(np.float64)
    truth = json.loads(ds.attrs["parameters"])
    rng = np.random.default_rng(11)
    v = gaussian_filter1d(v, 1.0 / 0.5, mode="nearest") + rng.normal(0, 0.02, x.size)
    kw = dict(psi0_V=truth["psi0_V"], theta=theta, eps_r=truth["eps_r"], c0_m3=truth["c0_m3"])
    li = interface_profile(x, x0_nm=truth["interface_position_nm"], psf_nm=1.0, quantity="li",
                           offset=0.1, **kw) + rng.normal(0, 0.02, x.size)
    fit = fit_spacecharge(x, v, 0.02, li=li, li_sigma=0.02, side="right",
                          fixed={"eps_r": truth["eps_r"], "c0_m3": truth["c0_m3"]})
    assert fit.values["psi0_V"] == pytest.approx(truth["psi0_V"], rel=0.05)
    assert abs(fit.values["theta"] - theta) < 0.01
    assert fit.values["x0_nm"] == pytest.approx(truth["interface_position_nm"], abs=0.2)
    assert fit.derived["w90_nm"] == pytest.approx(float(ds.attrs["w90_nm"]), rel=0.05)


def test_side_auto_finds_an_electrolyte_on_the_left():
    v, li = _noisy(-1.3, 0.95, seed=3)
    fit = fit_spacecharge(-X, v, 0.01, side="auto")
    assert fit.side == "left"
    assert fit.values["x0_nm"] == pytest.approx(-0.3, abs=0.05)
    assert abs(fit.values["theta"] - 0.95) < 0.01


def test_eps_r_and_c0_are_degenerate_without_an_absolute_li_profile():
    v, li = _noisy(-1.3, 0.95, seed=5)
    both = ["psi0_V", "theta", "eps_r", "c0_m3", "x0_nm", "psf_nm", "v_offset_V"]
    with pytest.raises(IdentifiabilityError, match="eps_r.*c0|c0.*eps_r"):
        fit_spacecharge(X, v, 0.01, free=both, side="right")
    with pytest.raises(IdentifiabilityError, match="Debye length"):
        fit_spacecharge(X, v, 0.01, li=li, free=both + ["li_offset", "li_scale", "li_psf_nm"],
                        side="right")
    # an absolute Li profile (m^-3) fixes c0, and the width then fixes eps_r
    rng = np.random.default_rng(9)
    kw = dict(psi0_V=-1.3, theta=0.95, eps_r=40.0, c0_m3=C0)
    v = interface_profile(X, x0_nm=0.3, psf_nm=0.5, **kw) + rng.normal(0, 0.01, X.size)
    li_abs = C0 * interface_profile(X, x0_nm=0.3, psf_nm=0.5, quantity="li", **kw)
    li_abs = li_abs + rng.normal(0, 0.01 * C0, X.size)
    fit = fit_spacecharge(X, v, 0.01, li=li_abs, li_sigma=0.01 * C0, li_mode="absolute",
                          free=both + ["li_psf_nm"], side="right")
    assert fit.values["c0_m3"] == pytest.approx(C0, rel=0.02)
    assert abs(fit.values["eps_r"] - 40.0) < 4 * fit.stderr["eps_r"]
    assert fit.values["eps_r"] == pytest.approx(40, rel=0.1)


def test_interface_step_and_position_are_degenerate_in_a_depletion_parabola():
    """A sharp step (e.g. a mean-inner-potential difference) at the interface trades off against
    psi0 and x0 in a Mott-Schottky parabola: the fit must refuse rather than guess."""
    v, _ = _noisy(4.0, 0.5, seed=2, c0=1e26, psf=0.3)
    with pytest.raises(IdentifiabilityError, match="psi0_V|step_V"):
        fit_spacecharge(X, v, 0.01, side="right", fixed={"c0_m3": 1e26},
                        free=["psi0_V", "theta", "x0_nm", "psf_nm", "v_offset_V", "step_V"])


def test_standard_errors_estimated_without_sigma():
    v, _ = _noisy(-1.3, 0.95, seed=4, sigma_v=0.02)
    fit = fit_spacecharge(X, v, side="right")
    assert not fit.absolute_sigma
    assert 0.8 < fit.reduced_chi2 < 1.25  # the noise estimate from second differences
    with_sigma = fit_spacecharge(X, v, 0.02, side="right")
    assert fit.stderr["psi0_V"] == pytest.approx(with_sigma.stderr["psi0_V"], rel=0.25)
    corr = fit.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)


def test_fit_profiles_wrapper_dataset():
    v, li = _noisy(-1.3, 0.95, seed=6)
    pot = signal(v * 1e3, ("position",), name="profile", units="mV", coords={"position": X})
    li_da = signal(li[::2], ("position",), name="profile", units="1",
                   coords={"position": X[::2]})
    ds = fit_profiles(pot, li_da, potential_sigma=pot * 0 + 10.0, side="right")
    assert ds["psi0_V"].attrs["units"] == "V"
    assert float(ds["psi0_V"]) == pytest.approx(-1.3, rel=0.05)
    assert float(ds["theta_stderr"]) > 0
    assert ds["correlation"].dims == ("parameter", "parameter_j")
    assert ds.sizes["position"] == X.size
    assert int(np.isfinite(ds["li"]).sum()) == X[::2].size
    resid = ds["potential_residual"].values
    assert np.nanstd(resid) == pytest.approx(0.01, rel=0.2)
    summary = json.loads(ds.attrs["fit"])
    assert set(summary["free"]) >= {"psi0_V", "theta", "li_scale"}
    assert json.loads(ds.attrs["provenance"])[-1]["step"] == "ionscope.spacecharge.fit_profiles"


def test_phase_profile_is_refused_with_advice():
    phase = signal(np.linspace(0, 1, 50), ("position",), name="profile", units="rad",
                   coords={"position": 0.5})
    with pytest.raises(InputError, match="holo potential"):
        fit_profiles(phase)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(free=["psi0_V", "bogus"]), ConfigError, "unknown parameter"),
    (dict(free=["psi0_V", "theta"], fixed={"theta": 0.9}), ConfigError, "both free and fixed"),
    (dict(free=["psi0_V", "li_scale"]), ConfigError, "need a Li profile"),
    (dict(fixed={"theta": 1.5}), InputError, "between 0 and 1"),
    (dict(li_mode="weird"), InputError, "li_mode"),
])
def test_bad_fit_configuration(kwargs, error, match):
    v, _ = _noisy(-1.3, 0.95, seed=1)
    with pytest.raises(error, match=match):
        fit_spacecharge(X, v, 0.01, side="right", **kwargs)


def test_too_few_or_bad_points():
    with pytest.raises(InputError, match="too few"):
        fit_spacecharge(X[:5], X[:5])
    bad = np.ones_like(X)
    bad[3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fit_spacecharge(X, bad)


def test_demo_section_fits_and_shows_the_bias_asymmetry(tmp_path):
    from ionscope.pipeline.demo import DemoContext
    from ionscope.pipeline.spacecharge_demo import spacecharge_section

    ctx = DemoContext(tmp_path, quick=True, seed=0)
    section = spacecharge_section(ctx)
    assert section.title == "Space-charge layers"
    assert {"spacecharge_bias.png", "spacecharge_fit.png"} <= set(ctx.files)
    store = ctx.summary["spacecharge"]
    assert store["fit"]["psi0_relative_error"] < 0.05 and store["fit"]["theta_error"] < 0.01
    cells = store["bias"]["cells"]
    ratios = [cells[k]["w90_negative_nm"] / cells[k]["w90_positive_nm"] for k in ("0.9", "0.99", "0.999")]
    assert all(r > 3 for r in ratios)
    widths = [cells[k]["w90_negative_nm"] for k in ("0.9", "0.99", "0.999")]
    assert widths == sorted(widths)  # fewer vacancies, wider layer at the negative electrode
    assert all(abs(c["space_charge_C_per_m2"]) < 1e-6 * c["surface_charge_C_per_m2"] for c in cells.values())
