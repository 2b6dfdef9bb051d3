"""`ionscope holo ...`: output contracts, numbers against the twins, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.simulate import simulate

SMALL = dict(ny=160, nx=160, pixel_nm=0.5, vacuum_height_nm=20.0, interface_position_nm=36.0)
STATS = ("sideband_position_px", "aperture_px", "fringe_spacing_nm", "fringe_sampling_px",
         "fringe_contrast", "carrier_frequency_per_nm")


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def _summary(path):
    return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def chain(tmp_path_factory, run_cli):
    """A small unbiased twin, reconstructed, converted and profiled by the CLI once."""
    root = tmp_path_factory.mktemp("holo")
    ds = simulate("holography", seed=4, **SMALL)
    io.save(ds, root / "twin.zarr")

    def run(*args):
        res = run_cli(*args)
        assert res.returncode == 0, res.stderr
        return res

    run("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--reference", f"{root}/twin.zarr:reference",
        "--out", root / "rec")
    row = 100  # y = 50 nm, beyond the edge ramp
    t_nm = float(ds["thickness_nm"].values[row, 60])
    run("holo", "potential", root / "rec", "--kv", "300", "--thickness", f"{t_nm}", "--out", root / "pot")
    run("holo", "profile", root / "pot", "--from", f"{row},12", "--to", f"{row},148", "--width", "24",
        "--model", "erfc", "--step", "--side", "end", "--eps-r", "50", "--out", root / "prof")
    return root, ds, t_nm


def test_reconstruct_summary_matches_the_twin(chain):
    root, ds, _ = chain
    s = _summary(root / "rec")
    assert set(STATS) <= set(s)
    assert np.allclose(s["sideband_position_px"], ds.attrs["sideband_true_px"], atol=0.05)
    assert s["fringe_spacing_subpixel_nm"] == pytest.approx(ds.attrs["fringe_spacing_nm"], rel=2e-3)
    assert s["fringe_sampling_subpixel_px"] == pytest.approx(ds.attrs["fringe_sampling_px"], rel=2e-3)
    assert s["carrier_frequency_subpixel_per_nm"] == pytest.approx(ds.attrs["carrier_frequency_per_nm"], rel=2e-3)
    # FFT-pixel convention (HoloWorks, holospy): within half an FFT pixel of the carrier
    assert s["fringe_spacing_nm"] == pytest.approx(ds.attrs["fringe_spacing_nm"], rel=0.02)
    assert s["fringe_visibility"] == pytest.approx(ds.attrs["effective_contrast"], rel=0.1)
    assert s["fringe_contrast"] == pytest.approx(ds.attrs["effective_contrast"] / np.sqrt(2), rel=0.1)
    ky, kx = ((v + 80) % 160 - 80 for v in s["sideband_position_px"])  # signed FFT frequencies
    assert s["aperture_px"] == pytest.approx(np.hypot(ky, kx) / 3, rel=0.02)  # default: 1/3 of the carrier
    res = io.open_dataset(root / "rec" / "result.zarr")
    assert res["phase"].attrs["units"] == "rad" and res["phase"].dims == ("y", "x")
    assert "amplitude" in res
    err = res["phase"].values - ds["phase_true"].values
    inner = (slice(20, 140), slice(20, 140))
    assert np.std(err[inner]) < 0.25  # unwrapped, reference-divided phase
    # the twin's phase sideband is the one HyperSpy/holospy's default reconstruction cuts out
    assert s["phase_sign_convention"].startswith("holospy/HyperSpy default")
    assert ds.attrs["sideband_side"] == "upper"


def test_potential_with_uniform_thickness(chain):
    root, ds, t_nm = chain
    s = _summary(root / "pot")
    res = io.open_dataset(root / "pot" / "result.zarr")
    pot = res["potential"]
    assert pot.attrs["units"] == "V"
    electrode = np.zeros(pot.shape, bool)
    electrode[95:105, 15:55] = True  # x 7.5-27.5 nm, left of the interface at 36 nm
    assert float(np.median(pot.values[electrode])) == pytest.approx(19.0, rel=0.03)  # the MIP
    assert s["vacuum"].startswith("detected") and s["vacuum_pixels"] > 1000
    flat = s["vacuum_flatness"]
    assert flat["slope_rad_per_nm"] < 2e-3 and flat["rms_about_plane_rad"] < 0.15  # unbiased: flat
    assert s["interaction_constant_rad_per_V_nm"] == pytest.approx(6.53e-3, rel=2e-3)
    assert res.attrs["resolution_cutoff_per_nm"] > 0 and res.attrs["phase_per_volt_rad"] == pytest.approx(
        s["interaction_constant_rad_per_V_nm"] * t_nm)


def test_profile_outputs_and_the_space_charge_drop(chain):
    root, ds, _ = chain
    s = _summary(root / "prof")
    for key in ("drop_V", "w90_nm", "position_nm", "drop_V_error", "w90_nm_error", "position_nm_error"):
        assert np.isfinite(s[key]) and (not key.endswith("error") or s[key] > 0)
    # interface at x = 36 nm, i.e. 30 nm from the start at x = 6 nm
    assert abs(s["position_nm"] - 30.0) < max(3 * s["position_nm_error"], 0.3)
    assert abs(s["drop_V"] - ds.attrs["psi0_V"]) < 3 * s["drop_V_error"] + 0.1
    assert abs(s["w90_nm"] - ds.attrs["w90_nm"]) < 3 * s["w90_nm_error"] + 0.5
    assert s["jump"] == pytest.approx(19.0 - 14.0, abs=0.6)  # the mean-inner-potential step
    assert s["blur"].startswith("low-pass")  # the reconstruction aperture, wave-filtered
    assert s["areal_charge_C_per_m2"] > 0
    assert min(s["plateau_samples"].values()) > 10  # both levels measured on many points
    res = io.open_dataset(root / "prof" / "result.zarr")
    for name in ("profile", "profile_sigma", "fit"):
        assert res[name].dims == ("position",)
    assert res["position"].attrs["units"] == "nm" and res["profile"].attrs["units"] == "V"
    assert np.all(res["profile_sigma"].values > 0)
    assert len(res["profile_sigma"].attrs["noise_correlation"]) >= 1
    assert np.nanstd(res["profile"].values - res["fit"].values) < 0.3


def test_profile_across_a_detected_interface(chain, run_cli, tmp_path):
    root, ds, _ = chain
    out = tmp_path / "auto"
    r = run_cli("holo", "profile", root / "pot", "--width", "16", "--half-length", "50", "--blur", "none",
                "--out", out)
    assert r.returncode == 0, r.stderr
    s = _summary(out)
    assert s["endpoints"] == "detected"
    # the strongest straight edge is the vacuum edge or the interface; either way the profile
    # is normal to it and the fitted position lies on it
    iy, ix = s["interface_px"]
    on_interface = abs(ix * 0.5 - 36.0) < 2.0
    on_edge = abs(iy * 0.5 - 20.0) < 3.0
    assert on_interface or on_edge


def test_phase_shifting_writes_phase_amplitude_and_r2(run_cli, tmp_path):
    ds = simulate("holography_ps", seed=0, ny=96, nx=96, frames=6, pixel_nm=0.5,
                  vacuum_height_nm=16.0, interface_position_nm=24.0, dose=1000.0)
    io.save(ds, tmp_path / "ps.zarr")
    out = tmp_path / "ps"
    r = run_cli("holo", "phase-shifting", f"{tmp_path}/ps.zarr:stack", "--reference",
                f"{tmp_path}/ps.zarr:reference_stack", "--out", out)
    assert r.returncode == 0, r.stderr
    s = _summary(out)
    assert set(STATS) <= set(s) and s["frames"] == 6
    assert s["vacuum_box"] == [int(v) for v in ds.attrs["vacuum_box"]]
    assert s["fringe_spacing_subpixel_nm"] == pytest.approx(ds.attrs["fringe_spacing_nm"], rel=5e-3)
    assert 0.5 < s["r2_median"] <= 1.0
    assert s["drift_matched_reference"] is True
    assert s["phase_sign_convention"].startswith("holospy/HyperSpy default")
    # a 96 px stack of 6 frames: the drift along x (across the interface, nearly along the
    # fringes) is measured within 0.14 nm (0.3 px)
    np.testing.assert_allclose(s["drift_nm"]["x"], ds["drift_x_true"].values, atol=0.16)
    np.testing.assert_allclose(s["drift_nm"]["y"], ds["drift_y_true"].values, atol=0.1)
    res = io.open_dataset(out / "result.zarr")
    assert {"phase", "amplitude", "r2"} <= set(res.data_vars)
    err = res["phase"].values - ds["phase_true"].values
    inner = (slice(10, 86), slice(10, 86))
    err = err[inner] - np.median(err[inner])
    assert np.median(np.abs(err)) < 0.2


def test_potential_with_leakage_subtraction_on_a_biased_twin(run_cli, tmp_path):
    ds = simulate("holography", seed=5, bias_V=4.0, **SMALL)
    io.save(ds, tmp_path / "b.zarr")
    assert run_cli("holo", "reconstruct", f"{tmp_path}/b.zarr:hologram", "--reference",
                   f"{tmp_path}/b.zarr:reference", "--out", tmp_path / "rec").returncode == 0
    # rows 0-39 are vacuum (20 nm); the strong stray gradients defeat the amplitude detection
    r = run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "80", "--leakage",
                "--vacuum", "4:30,8:152", "--out", tmp_path / "pot")
    assert r.returncode == 0, r.stderr
    s = _summary(tmp_path / "pot")
    leak = s["leakage"]
    assert leak["degree"] >= 1 and leak["removed_fraction"] > 0.8
    assert leak["erode_px"] == 4  # the given box, eroded by the default 4 px
    before, after = s["vacuum_flatness"], s["vacuum_flatness_after_leakage"]
    assert after["rms_about_mean_rad"] < 0.3 * before["rms_about_mean_rad"]
    res = io.open_dataset(tmp_path / "pot" / "result.zarr")
    assert "stray_phase" in res and "vacuum" in res
    # the model's uncertainty grows away from the fitted vacuum
    err = res["stray_phase_error"].values
    assert np.median(err[10:25, 20:140]) < np.median(err[60:, 20:140]) and np.isfinite(err).all()
    assert 0 < leak["specimen_error_rad"]["median"] <= leak["specimen_error_rad"]["max"]


def test_a_sideband_position_off_the_peak_is_a_warning_line(chain, run_cli, tmp_path):
    root, ds, _ = chain
    r = run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--reference", f"{root}/twin.zarr:reference",
                "--sideband", "30,60", "--out", tmp_path / "off")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: the sideband position (30, 60) lies ")
    assert "--sideband auto" in lines[0] and (tmp_path / "off" / "summary.json").exists()
    # the twin's own sideband, given: no warning
    y, x = ds.attrs["sideband_true_px"]
    r = run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--reference", f"{root}/twin.zarr:reference",
                "--sideband", f"{round(y)},{round(x)}", "--out", tmp_path / "on")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_potential_warns_about_a_non_flat_vacuum_and_the_leakage_fit_silences_it(run_cli, tmp_path):
    ds = simulate("holography", seed=5, bias_V=4.0, **SMALL)
    io.save(ds, tmp_path / "b.zarr")
    assert run_cli("holo", "reconstruct", f"{tmp_path}/b.zarr:hologram", "--reference",
                   f"{tmp_path}/b.zarr:reference", "--out", tmp_path / "rec").returncode == 0
    r = run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "80",
                "--vacuum", "4:30,8:152", "--out", tmp_path / "plain")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: the vacuum phase is not flat")
    assert "--leakage" in lines[0] and "--vacuum" in lines[0]
    r = run_cli("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", "80", "--leakage",
                "--vacuum", "4:30,8:152", "--out", tmp_path / "fitted")
    assert r.returncode == 0 and "not flat" not in r.stderr, r.stderr


def test_profile_refuses_a_plateau_in_a_nan_vacuum(run_cli, tmp_path):
    """A potential defined only in the specimen (NaN in vacuum, as from the mean inner
    potential) that rises across the specimen's edge: a profile from the vacuum into the
    specimen would report the vacuum-side level of a step fitted to the specimen side alone -
    refused, nothing written. A profile inside the specimen reports how many points each
    plateau rests on."""
    from scipy.special import erf

    from ionscope.data import signal

    y, x = np.mgrid[0:96, 0:96] * 0.5
    v = 10.0 + 5.0 * erf((y - 16.0) / 2.0) + 2.0 * (x > 24.0)  # edge at y = 16 nm, step at x = 24 nm
    v[y < 16.0] = np.nan
    pot = signal(v, ("y", "x"), name="potential", units="V", coords={"y": 0.5, "x": 0.5})
    io.save(pot, tmp_path / "pot.zarr")
    line = _error_line(run_cli("holo", "profile", tmp_path / "pot.zarr", "--from", "4,20", "--to", "90,20",
                               "--width", "8", "--blur", "none", "--out", tmp_path / "edge"))
    assert "start plateau holds no finite point of 'potential'" in line and "--from/--to" in line
    assert not (tmp_path / "edge").exists()
    r = run_cli("holo", "profile", tmp_path / "pot.zarr", "--from", "70,4", "--to", "70,92", "--width", "8",
                "--blur", "none", "--out", tmp_path / "inside")
    assert r.returncode == 0, r.stderr
    s = _summary(tmp_path / "inside")
    assert s["drop_V"] == pytest.approx(-2.0, abs=0.05)
    assert s["plateau_samples"]["start"] >= 30 and s["plateau_samples"]["end"] >= 30


def test_one_line_errors(run_cli, tmp_path, chain):
    root, _, _ = chain
    assert "exactly one of --thickness" in _error_line(
        run_cli("holo", "potential", root / "rec", "--kv", "300", "--out", tmp_path / "a"))
    assert "Y,X" in _error_line(
        run_cli("holo", "profile", root / "pot", "--from", "1;2", "--to", "3,4", "--out", tmp_path / "b"))
    assert "leaves" in _error_line(
        run_cli("holo", "profile", root / "pot", "--from", "5,5", "--to", "5,150", "--width", "40",
                "--out", tmp_path / "d"))
    assert "sideband" in _error_line(
        run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--sideband", "up", "--out", tmp_path / "e")).lower()
    for spec, msg in (("lorentzian:x", "lorentzian:FC"), (str(tmp_path / "none.csv"), "does not exist"),
                      ("lorentzian:-1", "positive")):
        assert msg in _error_line(run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--mtf", spec,
                                          "--out", tmp_path / "f"))
    assert "--leakage-erode" in _error_line(run_cli("holo", "potential", root / "rec", "--kv", "300", "--thickness", "80",
                                                   "--leakage", "--vacuum", "4:30,8:152", "--leakage-erode", "-1",
                                                   "--out", tmp_path / "h"))
    # refused after the output folder was prepared: the folder is removed again
    assert not (tmp_path / "h").exists() and not (tmp_path / "d").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("f,m\n0,1\n0.5,0.5\n")
    assert "frequency_per_px,mtf" in _error_line(run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram",
                                                         "--mtf", bad, "--out", tmp_path / "g"))


def test_reconstruct_with_the_detector_mtf_divided_out(chain, run_cli, tmp_path):
    """``--mtf lorentzian:0.5`` (the twin's detector) and the same MTF as a measured radial table
    give the same phase; the summary records the correction."""
    from ionscope.holography.detector import lorentzian_mtf

    root, _, _ = chain
    f = np.linspace(0, 0.75, 400)
    table = tmp_path / "mtf.csv"
    # the twin's MTF along the carrier direction (radial tables cannot hold the sinc's anisotropy)
    m = lorentzian_mtf(0.5)(f * np.sin(np.radians(80)), f * np.cos(np.radians(80)))
    table.write_text("frequency_per_px,mtf\n" + "".join(f"{a:.6f},{b:.8f}\n" for a, b in zip(f, m)))
    phases = []
    for spec, name in (("lorentzian:0.5", "m1"), (str(table), "m2")):
        r = run_cli("holo", "reconstruct", f"{root}/twin.zarr:hologram", "--reference", f"{root}/twin.zarr:reference",
                    "--mtf", spec, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
        assert _summary(tmp_path / name)["mtf_corrected"] is True
        phases.append(io.open_dataset(tmp_path / name / "result.zarr")["phase"].values)
    d = (phases[0] - phases[1])[16:-16, 16:-16]
    assert np.std(d - np.median(d)) < 0.01
    assert _summary(root / "rec")["mtf_corrected"] is False


def test_reconstruct_with_a_reference_stack(run_cli, tmp_path):
    """``--reference FILE:reference_stack`` (shift, y, x): the stack mode, recorded in the summary."""
    ds = simulate("holography", seed=6, reference_frames=4, **SMALL)
    io.save(ds, tmp_path / "t.zarr")
    r = run_cli("holo", "reconstruct", f"{tmp_path}/t.zarr:hologram", "--reference", f"{tmp_path}/t.zarr:reference_stack",
                "--out", tmp_path / "rec")
    assert r.returncode == 0, r.stderr
    s = _summary(tmp_path / "rec")
    assert s["reference_frames"] == 4 and set(STATS) <= set(s)
    res = io.open_dataset(tmp_path / "rec" / "result.zarr")
    err = (res["phase"].values - ds["phase_true"].values)[16:-16, 16:-16]
    assert np.median(np.abs(err - np.median(err))) < 0.2
    two = tmp_path / "two.zarr"
    io.save(ds.isel(shift=slice(0, 2)), two)
    assert "frames" in _error_line(run_cli("holo", "reconstruct", f"{tmp_path}/t.zarr:hologram", "--reference",
                                           f"{two}:reference_stack", "--out", tmp_path / "bad"))


def test_the_profile_keeps_the_raw_holograms_sha256(chain, run_cli, tmp_path):
    """Provenance through the whole chain: hologram file -> reconstruct -> potential -> profile."""
    import hashlib

    from ionscope.data import provenance

    root, ds, t_nm = chain
    for name in ("hologram", "reference"):
        io.export(io.load(root / "twin.zarr", variable=name), tmp_path / f"{name}.hspy")
    hologram = "sha256:" + hashlib.sha256((tmp_path / "hologram.hspy").read_bytes()).hexdigest()
    for args in (("holo", "reconstruct", tmp_path / "hologram.hspy", "--reference", tmp_path / "reference.hspy",
                  "--out", tmp_path / "rec"),
                 ("holo", "potential", tmp_path / "rec", "--kv", "300", "--thickness", f"{t_nm}",
                  "--out", tmp_path / "pot"),
                 ("holo", "profile", tmp_path / "pot", "--from", "100,12", "--to", "100,148", "--width", "24",
                  "--out", tmp_path / "prof")):
        assert run_cli(*args).returncode == 0
    steps = provenance(io.load(tmp_path / "prof"))
    names = [s["step"] for s in steps]
    assert "ionscope.io.load" in names and names[-1].startswith("ionscope.holography")
    assert any("reconstruct" in n for n in names) and any("potential" in n for n in names)
    # the main chain starts from the hologram file's sha256 (side inputs, such as the reference,
    # are recorded by the lineage digest of their own chain)
    load = steps[names.index("ionscope.io.load")]
    assert load["inputs"] == [hologram]
