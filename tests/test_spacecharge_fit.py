"""Joint fit of potential and Li profiles: recovery on simulated data, identifiability, errors,
and the fit of a reconstructed holography profile (aperture low-pass, correlated noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.ndimage import gaussian_filter1d
from scipy.special import sici

from ionscope.data import signal
from ionscope.errors import ConfigError, InputError
from ionscope.profiles import LowPass
from ionscope.simulate import simulate
from ionscope.spacecharge import lattice_gas_potential
from ionscope.spacecharge.fit import (
    IdentifiabilityError,
    fit_profiles,
    fit_spacecharge,
    integrated_time,
    interface_profile,
    recorded_lowpass,
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
    (dict(fixed={"theta": 1.5}), ConfigError, "between 0 and 1"),
    (dict(li_mode="weird"), ConfigError, "li_mode"),
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


@pytest.mark.slow
def test_demo_section_fits_and_shows_the_bias_asymmetry(tmp_path):
    """Without the holography section the fit falls back to simulated profiles, and says so."""
    from ionscope.pipeline.demo import DemoContext
    from ionscope.pipeline.spacecharge_demo import spacecharge_section

    ctx = DemoContext(tmp_path, quick=True, seed=0)
    section = spacecharge_section(ctx)
    assert section.title == "Space-charge layers"
    assert {"spacecharge_bias.png", "spacecharge_fit.png"} <= set(ctx.files)
    store = ctx.summary["spacecharge"]
    assert store["fit"]["source"].startswith("simulated")
    assert any("did not run" in getattr(item, "caption", "") for item in section.items)
    assert store["fit"]["psi0_relative_error"] < 0.05 and store["fit"]["theta_error"] < 0.01
    cells = store["bias"]["cells"]
    ratios = [cells[k]["w90_negative_nm"] / cells[k]["w90_positive_nm"] for k in ("0.9", "0.99", "0.999")]
    assert all(r > 3 for r in ratios)
    widths = [cells[k]["w90_negative_nm"] for k in ("0.9", "0.99", "0.999")]
    assert widths == sorted(widths)  # fewer vacancies, wider layer at the negative electrode
    assert all(abs(c["space_charge_C_per_m2"]) < 1e-6 * c["surface_charge_C_per_m2"] for c in cells.values())


# --------------------------------------------------------------------------- holography profiles

HOLO = dict(ny=160, nx=160, pixel_nm=0.5, vacuum_height_nm=20.0, interface_position_nm=36.0)
ROW = 100  # y = 50 nm, beyond the edge ramp; the profile runs from x = 6 nm to 74 nm
X0_TRUE = 30.0  # the interface (x = 36 nm) from the profile start


def _holography_profile(noise: bool, seed: int = 4):
    """The Fourier-reconstructed twin's potential profile as 'holo potential' + 'holo profile'
    make it, its aperture low-pass with the wave amplitude ratio from the reconstruction."""
    from ionscope.holography import reconstruct_offaxis
    from ionscope.holography.potential import phase_to_potential
    from ionscope.profiles import band_profile

    ds = simulate("holography", seed=seed, noise=noise, **HOLO)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    vacuum = rec["phase"].values[8:32, 16:144]  # rows 0-39 are vacuum (20 nm)
    phase = rec["phase"] - float(np.median(vacuum))
    phase.attrs = dict(rec["phase"].attrs)  # units: xarray < 2025.11 drops attrs in arithmetic
    t_nm = float(ds["thickness_nm"].values[ROW, 60])
    prof = band_profile(phase_to_potential(phase, 300.0, t_nm), (ROW, 12), (ROW, 148), width=24)
    amp = rec["amplitude"].values[ROW - 12 : ROW + 12]
    ratio = float(np.median(amp[:, 20:50]) / np.median(amp[:, 100:150]))  # electrode / electrolyte
    cut = float(rec.attrs["aperture_per_nm"])
    edge = cut * float(rec.attrs["aperture_edge_px"]) / float(rec.attrs["aperture_px"])
    kappa = float(ds.attrs["interaction_constant_rad_per_V_nm"]) * t_nm
    return {"x": prof["position"].values, "y": prof["profile"].values,
            "sigma": prof["profile_sigma"].values,
            "rho": prof["profile_sigma"].attrs["noise_correlation"], "profile": prof,
            "lowpass": LowPass(cut, edge, kappa, amplitude_ratio=ratio), "twin": ds}


@pytest.fixture(scope="module")
def noise_free():
    return _holography_profile(noise=False)


@pytest.fixture(scope="module")
def at_dose():
    return _holography_profile(noise=True)


KNOWN = {"step_V": 19.0 - 14.0, "eps_r": 50.0, "c0_m3": 1e26}  # the twin's MIPs and layer


@pytest.mark.parametrize("side", ["right", "left"])
def test_linear_lowpass_of_a_step_is_the_sine_integral(side):
    """A sharp aperture (linear) turns a unit step into 1/2 -+ Si(2 pi k_c x)/pi."""
    x = np.linspace(-30, 30, 241)
    kc = 0.2
    v = interface_profile(x, 0.0, 0.9, 50, 6e27, step_V=1.0, x0_nm=0.3, side=side,
                          lowpass=LowPass(kc))
    sign = 1.0 if side == "right" else -1.0  # the electrode (level 1) is on the other side
    np.testing.assert_allclose(v, 0.5 - sign * sici(2 * np.pi * kc * (x - 0.3))[0] / np.pi,
                               atol=2e-3)


def test_wave_lowpass_tends_to_the_linear_one_for_small_phases():
    x = np.linspace(-20, 40, 121)
    kw = dict(psi0_V=1.3, theta=0.99, eps_r=50, c0_m3=1e26, step_V=5.0, x0_nm=1.0)
    linear = interface_profile(x, lowpass=LowPass(0.17, 0.01), **kw)
    weak = interface_profile(x, lowpass=LowPass(0.17, 0.01, 1e-4), **kw)
    strong = interface_profile(x, lowpass=LowPass(0.17, 0.01, 0.53), **kw)
    np.testing.assert_allclose(weak, linear, atol=2e-4)
    # a 3.3 rad phase step: the filtered wave rings less than the filtered potential
    overshoot = lambda v: v[x < -3].max() - 6.3  # noqa: E731
    assert overshoot(strong) < 0.5 * overshoot(linear)


def test_lowpass_resolution_describes_a_fourier_holography_profile(noise_free):
    """Noise-free twin: psi0 within 1 % (theta fitted too) and the interface within 0.05 nm; a
    Gaussian PSF in place of the aperture fits several times worse."""
    d = noise_free
    fit = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], lowpass=d["lowpass"],
                          fixed=KNOWN, side="right")
    assert fit.noise_model == "sandwich" and fit.resolution.startswith("low-pass")
    assert fit.values["psi0_V"] == pytest.approx(1.3, rel=0.01)
    assert abs(fit.values["theta"] - 0.99) < 2 * fit.stderr["theta"]
    assert fit.values["x0_nm"] == pytest.approx(X0_TRUE, abs=0.05)
    assert fit.derived["w90_nm"] == pytest.approx(float(d["twin"].attrs["w90_nm"]), rel=0.03)
    assert fit.values["psf_nm"] == pytest.approx(0.25, abs=0.1)  # the twin's interface roughness
    gauss = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], fixed=KNOWN,
                            side="right")
    assert fit.reduced_chi2 < 0.3 * gauss.reduced_chi2


def test_mip_step_is_fitted_when_identifiable(noise_free):
    """With the aperture, the amplitude step and the roughness modelled, a free MIP step is
    identifiable next to the noise-free twin's 1.3 V layer with theta known - also from the
    start value 0 (the whole 6.3 V then first taken for the layer). Its price: psi0's error
    grows (the Mott-Schottky case, where it is refused, is tested above)."""
    d = noise_free
    free = ["psi0_V", "x0_nm", "v_offset_V", "psf_nm", "step_V"]
    fixed = {k: v for k, v in KNOWN.items() if k != "step_V"} | {"theta": 0.99}
    fit = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], lowpass=d["lowpass"],
                          free=free, fixed=fixed, side="right")
    assert fit.values["step_V"] == pytest.approx(5.0, rel=0.02)
    assert abs(fit.values["step_V"] - 5.0) < 3 * fit.stderr["step_V"]
    assert fit.values["psi0_V"] == pytest.approx(1.3, rel=0.05)
    assert abs(fit.values["psi0_V"] - 1.3) < 3 * fit.stderr["psi0_V"]
    known = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], lowpass=d["lowpass"],
                            fixed=KNOWN | {"theta": 0.99}, side="right")
    assert fit.stderr["psi0_V"] > 1.3 * known.stderr["psi0_V"]


def test_errors_carry_the_noise_correlation_at_the_twins_dose(at_dose):
    """At the twin's dose the profile's noise is correlated over ~25 points: the errors that
    ignore it are several times too small; with it (sandwich, or an effective sample size)
    psi0 lies within its error. GLS refuses the near-singular band-limited covariance."""
    d = at_dose
    kw = dict(lowpass=d["lowpass"], fixed=KNOWN | {"theta": 0.99}, side="right")
    fit = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], **kw)
    diag = fit_spacecharge(d["x"], d["y"], d["sigma"], **kw)
    ess = fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], noise_model="ess", **kw)
    assert abs(fit.values["psi0_V"] - 1.3) < 2 * fit.stderr["psi0_V"] < 0.2
    assert fit.stderr["psi0_V"] > 2.5 * diag.stderr["psi0_V"]
    assert ess.values["psi0_V"] == pytest.approx(fit.values["psi0_V"], abs=1e-6)  # same estimate
    tau = integrated_time(d["rho"], d["x"].size)
    assert ess.stderr["psi0_V"] == pytest.approx(np.sqrt(tau) * diag.stderr["psi0_V"], rel=1e-3)
    assert tau > 10
    with pytest.raises(ConfigError, match="nearly singular"):
        fit_spacecharge(d["x"], d["y"], d["sigma"], correlation=d["rho"], noise_model="gls", **kw)


def test_gls_whitens_weakly_correlated_noise():
    """AR(1) noise (rho = 0.5): GLS estimates agree with the sandwich ones within the errors,
    and its chi-squared per degree of freedom is ~1."""
    rng = np.random.default_rng(21)
    x = np.arange(-10.0, 30.0, 0.2)
    e = rng.normal(0, 0.01, x.size)
    noise = np.empty_like(e)
    noise[0] = e[0]
    for i in range(1, x.size):
        noise[i] = 0.5 * noise[i - 1] + np.sqrt(1 - 0.25) * e[i]
    v = interface_profile(x, -1.3, 0.95, 50, 6e27, x0_nm=0.3, psf_nm=0.5, offset=0.1) + noise
    rho = 0.5 ** np.arange(12)
    gls = fit_spacecharge(x, v, 0.01, correlation=rho, noise_model="gls", side="right")
    sand = fit_spacecharge(x, v, 0.01, correlation=rho, side="right")
    assert gls.noise_model == "gls" and 0.8 < gls.reduced_chi2 < 1.2
    assert abs(gls.values["psi0_V"] + 1.3) < 3 * gls.stderr["psi0_V"]
    assert abs(gls.values["theta"] - sand.values["theta"]) < 2 * sand.stderr["theta"]
    assert gls.stderr["theta"] <= 1.05 * sand.stderr["theta"]  # the efficient estimator


def test_a_psf_at_its_bound_is_reported_not_refused():
    """Data with nothing blurring the interface ahead of the aperture: the fitted extra PSF runs
    to 0, where it has no first-order effect; it is reported at 0 (at_bound) and the other
    errors are conditional on it, instead of an identifiability error."""
    lp = LowPass(0.17, 0.01, 0.53)
    x = np.arange(0, 68.5, 0.5)
    v = interface_profile(x, 1.3, 0.99, 50, 1e26, x0_nm=30, step_V=5, offset=12.7, lowpass=lp)
    v = v + np.random.default_rng(2).normal(0, 0.02, x.size)
    fit = fit_spacecharge(x, v, 0.02, side="right", lowpass=lp,
                          fixed={"c0_m3": 1e26, "step_V": 5.0, "theta": 0.99})
    assert fit.at_bound == ("psf_nm",) and fit.values["psf_nm"] == 0 and fit.stderr["psf_nm"] == 0
    assert fit.summary()["at_bound"] == ["psf_nm"]
    assert abs(fit.values["psi0_V"] - 1.3) < 3 * fit.stderr["psi0_V"] < 0.02
    i = fit.free.index("psf_nm")
    assert fit.correlation[i, i] == 1 and not np.any(np.delete(fit.correlation[i], i))


def test_theta_running_to_the_edge_is_refused_with_advice():
    """A fit whose theta ran to 0 or 1 (its logit to infinity) has no information on it: the
    identifiability check names it and says what to do, even if the column is not yet zero."""
    from ionscope.spacecharge.fit import _check_identifiable

    rng = np.random.default_rng(0)
    jac = rng.normal(size=(50, 3))
    free = ("psi0_V", "theta", "x0_nm")
    _check_identifiable(jac, free, False, "at the best fit", values={"theta": 0.99})
    for theta in (1 - 1e-9, 1e-9):
        with pytest.raises(IdentifiabilityError, match="edge of the range.*--fix theta"):
            _check_identifiable(jac, free, False, "at the best fit", values={"theta": theta})
    jac[:, 1] = 0.0
    with pytest.raises(IdentifiabilityError, match="do not depend on theta"):
        _check_identifiable(jac, free, False, "at the start")


def test_fit_profiles_reads_the_noise_correlation_and_the_gaps(at_dose):
    prof = at_dose["profile"]
    kw = dict(lowpass=at_dose["lowpass"], fixed=KNOWN | {"theta": 0.99}, side="right")
    ds = fit_profiles(prof["profile"], potential_sigma=prof["profile_sigma"], **kw)
    summary = json.loads(ds.attrs["fit"])
    assert summary["noise_model"] == "sandwich" and summary["resolution"].startswith("low-pass")
    steps = json.loads(ds.attrs["provenance"])
    assert steps[-1]["params"]["lowpass"]["cutoff_per_nm"] == pytest.approx(at_dose["lowpass"].cutoff_per_nm)
    gap = prof["profile"].copy()
    gap[60] = np.nan  # a masked pixel breaks the lag structure: effective sample size instead
    ds_gap = fit_profiles(gap, potential_sigma=prof["profile_sigma"], **kw)
    s_gap = json.loads(ds_gap.attrs["fit"])
    assert s_gap["noise_model"] == "ess" and np.isnan(ds_gap["potential_fit"][60])
    assert s_gap["standard_errors"]["psi0_V"] > 2 * json.loads(
        fit_profiles(gap, potential_sigma=prof["profile_sigma"], noise_model="diagonal", **kw)
        .attrs["fit"])["standard_errors"]["psi0_V"]


def test_recorded_lowpass_from_attrs_and_provenance():
    lp = recorded_lowpass({"resolution_cutoff_per_nm": 0.2, "resolution_edge_per_nm": 0.01,
                           "phase_per_volt_rad": 0.5, "resolution_amplitude_ratio": 0.8})
    assert (lp.cutoff_per_nm, lp.edge_per_nm, lp.phase_per_unit, lp.amplitude_ratio) == (0.2, 0.01, 0.5, 0.8)
    steps = [{"step": "ionscope.profiles.band_profile", "params": {}},
             {"step": "ionscope.profiles.fit_step",
              "params": {"blur": {"cutoff_per_nm": 0.3, "edge_per_nm": 0.0, "phase_per_unit": None}}}]
    lp = recorded_lowpass({"provenance": json.dumps(steps)})
    assert lp.cutoff_per_nm == 0.3 and lp.phase_per_unit is None
    steps[-1]["params"]["blur"] = "fit"  # a fitted Gaussian: no aperture
    assert recorded_lowpass({"provenance": json.dumps(steps)}) is None
    with pytest.raises(InputError, match="malformed"):
        recorded_lowpass({"resolution_cutoff_per_nm": -1.0})

