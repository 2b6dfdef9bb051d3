"""ionscope.holography.potential: phase -> potential, thickness, biased-minus-0 V differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import shift as nd_shift

from ionscope.constants import electron_interaction_constant
from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography.potential import (
    phase_difference,
    phase_to_potential,
    potential_map,
    thickness_from_amplitude,
    thickness_from_phase,
)


def _map(values, name="phase", units="rad", pixel=0.5):
    return signal(np.asarray(values, float), ("y", "x"), name=name, units=units,
                  coords={"y": pixel, "x": pixel})


@pytest.mark.parametrize("kv,c_e", [(80, 1.009e-2), (200, 7.29e-3), (300, 6.53e-3)])
def test_interaction_constant_values_of_the_methods_table(kv, c_e):
    assert electron_interaction_constant(kv) == pytest.approx(c_e, rel=2e-3)


@pytest.mark.parametrize("kv", [80, 200, 300])
def test_uniform_thickness_potential_is_phase_over_ce_t(kv):
    c_e = electron_interaction_constant(kv)
    v_true = np.linspace(-1.3, 20.0, 48).reshape(6, 8)
    phi = _map(c_e * 50.0 * v_true)
    v = phase_to_potential(phi, kv, 50.0)
    assert np.allclose(v.values, v_true, rtol=1e-12)
    assert v.attrs["units"] == "V" and v.attrs["interaction_constant_rad_per_V_nm"] == c_e
    assert provenance(v)[-1]["step"] == "ionscope.holography.phase_to_potential"
    # 200 kV, 50 nm, 0.729 rad -> 2.0 V (the numbers of docs/guide/holography.rst)
    if kv == 200:
        assert float(phase_to_potential(_map(np.full((2, 2), 0.729)), 200, 50.0).mean()) == pytest.approx(2.0, rel=2e-3)


def test_thickness_map_gives_the_local_potential():
    t = np.linspace(20, 120, 40).reshape(5, 8)
    c_e = electron_interaction_constant(300)
    phi = _map(c_e * t * 14.0)
    v = phase_to_potential(phi, 300, _map(t, "thickness", "nm"))
    assert np.allclose(v.values, 14.0)
    t[0, 0] = 0.0  # no specimen: NaN, not inf
    assert np.isnan(phase_to_potential(phi, 300, _map(t, "thickness", "nm")).values[0, 0])
    with pytest.raises(InputError, match="nm"):
        phase_to_potential(phi, 300, _map(t, "thickness", "1"))


def test_thickness_from_amplitude_inverts_the_absorption_law():
    t = np.clip(np.linspace(-60, 150, 60), 0, None).reshape(6, 10)
    amp = 0.97 * np.exp(-t / (2 * 90.0))  # vacuum amplitude 0.97
    vac = t == 0
    rel = thickness_from_amplitude(_map(amp, "amplitude", "counts"), vacuum=vac)
    assert np.allclose(rel.values, t / 90.0, atol=1e-12) and rel.attrs["units"] == "1"
    nm = thickness_from_amplitude(_map(amp / 0.97, "amplitude", "1"), mean_free_path_nm=90.0)
    assert np.allclose(nm.values, t, atol=1e-9) and nm.attrs["units"] == "nm"
    with pytest.raises(InputError, match="vacuum amplitude is unknown"):
        thickness_from_amplitude(_map(amp, "amplitude", "counts"))


def test_thickness_from_phase_and_mean_inner_potential():
    c_e = electron_interaction_constant(200)
    t = np.linspace(0, 100, 50).reshape(5, 10)
    thick = thickness_from_phase(_map(c_e * 17.0 * t), 200, 17.0, min_thickness_nm=1.0)
    assert np.allclose(thick.values[t > 1.0], t[t > 1.0]) and np.all(np.isnan(thick.values[t <= 1.0]))


def test_phase_difference_cancels_mip_and_aligns_drift():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96].astype(float)
    specimen = 1 / (1 + np.exp(-(yy - 40) / 2.0))  # vacuum above row 40
    amp0 = 1 - 0.3 * specimen + 0.05 * np.sin(xx / 5.0) * specimen
    mip_phase = 3.0 * specimen * (1 + 0.2 * np.cos(xx / 9.0))
    bias_phase = 0.4 * specimen * np.tanh((xx - 48) / 4.0)
    shift = (1.3, -0.6)  # the 0 V image drifted
    phase0 = nd_shift(mip_phase, shift, order=3, mode="nearest") + 0.7
    amp0s = nd_shift(amp0, shift, order=3, mode="nearest")
    phase1 = mip_phase + bias_phase - 2.1 + rng.normal(0, 1e-3, yy.shape)
    vac = yy < 30
    diff = phase_difference(_map(phase1), _map(phase0), vacuum=vac,
                            align=(_map(amp0, "amplitude", "1"), _map(amp0s, "amplitude", "1")))
    assert np.allclose(diff.attrs["alignment_shift_px"], [-1.3, 0.6], atol=0.05)
    inner = (slice(10, 86), slice(10, 86))
    assert np.abs(diff.values - bias_phase)[inner].max() < 0.05
    assert abs(np.median(diff.values[vac])) < 1e-9
    with pytest.raises(DimensionError):
        phase_difference(_map(phase1), _map(phase0[:90]))


def test_potential_map_mip_route_without_zero_scales_the_amplitude_thickness():
    """phase = C_E V0 t, amplitude = exp(-t / 2 lambda): lambda comes back and V = V0."""
    kv, v0, lam = 300.0, 16.0, 110.0
    c_e = electron_interaction_constant(kv)
    yy = np.mgrid[0:64, 0:64][0].astype(float)
    t = np.clip((yy - 20) * 3.0, 0, None)
    ds = potential_map(_map(c_e * v0 * t + 0.4), kv, mip_v=v0,
                       amplitude=_map(np.exp(-t / (2 * lam)), "amplitude", "1"), vacuum=t == 0)
    assert ds.attrs["mean_free_path_nm"] == pytest.approx(lam, rel=1e-9)
    spec = t > 10
    assert np.allclose(ds["potential"].values[spec], v0)
    assert np.allclose(ds["thickness"].values[spec], t[spec])


def test_potential_map_biased_minus_zero_on_the_twin():
    """Electrode at +2 V: the biased-minus-0 V potential of the electrode is the bias."""
    from ionscope.holography import reconstruct_offaxis
    from ionscope.simulate import simulate

    common = dict(ny=128, nx=128, pixel_nm=0.5, stray_rad_per_V=0.0, vacuum_height_nm=16.0,
                  interface_position_nm=40.0)
    biased = simulate("holography", seed=1, bias_V=2.0, **common)
    zero = simulate("holography", seed=2, bias_V=0.0, **common)
    r1 = reconstruct_offaxis(biased["hologram"], biased["reference"])
    r0 = reconstruct_offaxis(zero["hologram"], zero["reference"])
    region = biased["region"].values
    vac = np.zeros(region.shape, bool)
    vac[6:26, 8:120] = True  # vacuum rows, away from the borders and the edge
    ds = potential_map(r1["phase"], 300, mip_v=19.0, phase_zero=r0["phase"], vacuum=vac)
    electrode = (region == 1)
    electrode[:50] = False  # below the thin edge
    electrode[:, 60:] = False  # left of the interface at x = 40 nm (px 80)
    electrode[:, :10] = False
    assert float(np.nanmedian(ds["potential"].values[electrode])) == pytest.approx(2.0, abs=0.1)
    t_true = biased["thickness_nm"].values[electrode]
    assert float(np.nanmedian(ds["thickness"].values[electrode] / t_true)) == pytest.approx(1.0, abs=0.03)
    assert ds.attrs["route"].startswith("difference")


def test_potential_map_rejects_bad_options():
    phi = _map(np.zeros((8, 8)))
    with pytest.raises(ConfigError, match="exactly one"):
        potential_map(phi, 300, thickness_nm=50, mip_v=15)
    with pytest.raises(ConfigError, match="exactly one"):
        potential_map(phi, 300)
    with pytest.raises(ConfigError, match="kV"):
        potential_map(phi, -5, thickness_nm=50)
    with pytest.raises(ConfigError, match="positive"):
        potential_map(phi, 300, thickness_nm=-1)
    with pytest.raises(ConfigError, match="vacuum"):
        potential_map(phi, 300, mip_v=15.0)
    with pytest.raises(InputError, match="rad"):
        phase_to_potential(_map(np.zeros((4, 4)), units="V"), 300, 50)


def test_space_charge_drop_through_the_whole_fourier_chain_is_accurate():
    """Noise-free twin: reconstruction -> potential -> band profile -> erfc + step fit with the
    aperture as a wave low-pass recovers the 1.3 V drop within 5 % and w90 within 1 nm (the
    systematic accuracy of the chain; at the default dose the statistical error is ~7 %)."""
    from ionscope.holography import reconstruct_offaxis
    from ionscope.profiles import LowPass, band_profile, fit_step
    from ionscope.simulate import simulate

    ds = simulate("holography", seed=0, noise=False, ny=192, nx=192)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    row, t_nm = 110, float(ds["thickness_nm"].values[110, 96])
    c_e = ds.attrs["interaction_constant_rad_per_V_nm"]
    phase = rec["phase"] - float(np.median(rec["phase"].values[10:50, 20:170]))
    phase.attrs = dict(rec["phase"].attrs)  # units: xarray < 2025.11 drops attrs in arithmetic
    potential = phase_to_potential(phase, 300, t_nm)
    prof = band_profile(potential, (row, 12), (row, 180), width=20)
    cut = rec.attrs["aperture_per_nm"]
    fit = fit_step(prof, "erfc", side="end", step=True, blur=LowPass(cut, 0.05 * cut, c_e * t_nm))
    assert float(fit["drop"]) == pytest.approx(ds.attrs["psi0_V"], rel=0.05)
    assert float(fit["w90"]) == pytest.approx(ds.attrs["w90_nm"], abs=1.0)
    assert float(fit["interface"]) == pytest.approx(48.0 - 6.0, abs=0.2)
    assert float(fit["jump"]) == pytest.approx(19.0 - 14.0, rel=0.05)
