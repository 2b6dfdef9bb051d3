"""`ionscope spacecharge ...`: output contracts (docs/cli.rst) and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.data import signal
from ionscope.spacecharge.fit import interface_profile

C0 = 6e27


def _error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def _profiles(theta=0.95, psi0=-1.3, seed=0):
    x = np.arange(-10.0, 30.0, 0.1)
    rng = np.random.default_rng(seed)
    kw = dict(psi0_V=psi0, theta=theta, eps_r=50.0, c0_m3=C0)
    v = interface_profile(x, x0_nm=0.3, psf_nm=0.5, offset=0.1, **kw) + rng.normal(0, 0.01, x.size)
    li = interface_profile(x, x0_nm=0.3, psf_nm=0.7, quantity="li", offset=0.05, scale=0.8, **kw)
    return x, v, li + rng.normal(0, 0.01, x.size)


def _write_csv(path, x, v, sigma=None):
    with open(path, "w") as fh:
        fh.write("position_nm,value" + (",sigma" if sigma is not None else "") + "\n")
        for i in range(x.size):
            fh.write(f"{x[i]:.6f},{v[i]:.8f}" + (f",{sigma:.6f}" if sigma is not None else "") + "\n")
    return path


def test_profile_command_reproduces_the_methods_table(run_cli, tmp_path):
    out = tmp_path / "p"
    result = run_cli("spacecharge", "profile", "--psi0", "-1.3", "--theta", "0.99", "--eps-r", "50",
                     "--c0", "6e27", "--temperature", "298", "--length", "40", "--out", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["w90_nm"] == pytest.approx(7.7, rel=0.03)
    assert summary["debye_length_nm"] == pytest.approx(1.09, rel=0.03)
    assert summary["surface_charge_C_per_m2"] < 0
    ds = io.open_dataset(out / "result.zarr")
    assert ds["psi"].attrs["units"] == "V" and ds["c_li"].attrs["units"] == "m^-3"
    assert ds["position"].values[-1] == pytest.approx(40.0)
    assert float(ds["psi"][0]) == pytest.approx(-1.3)


def test_bias_command_reports_both_interfaces(run_cli, tmp_path):
    out = tmp_path / "b"
    result = run_cli("spacecharge", "bias", "--bias", "2.0", "--thickness", "200", "--theta", "0.99",
                     "--eps-r", "50", "--c0", "6e27", "--out", out)
    assert result.returncode == 0, result.stderr
    s = json.loads((out / "summary.json").read_text())
    left, right = s["left"], s["right"]
    assert left["interface_potential_V"] - right["interface_potential_V"] == pytest.approx(2.0)
    assert left["surface_charge_C_per_m2"] == pytest.approx(-right["surface_charge_C_per_m2"], rel=1e-9)
    assert right["w90_nm"] > 3 * left["w90_nm"]  # the wide layer is at the negative electrode
    assert s["positive_electrode"] == "left" and abs(s["space_charge_C_per_m2"]) < 1e-9


def test_fit_command_on_csv_profiles(run_cli, tmp_path):
    x, v, li = _profiles()
    pot = _write_csv(tmp_path / "v.csv", x, v, 0.01)
    li_csv = _write_csv(tmp_path / "li.csv", x, li, 0.01)
    out = tmp_path / "fit"
    result = run_cli("spacecharge", "fit", pot, "--li", li_csv, "--side", "right", "--out", out)
    assert result.returncode == 0, result.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["parameters"]["psi0_V"] == pytest.approx(-1.3, rel=0.05)
    assert abs(s["parameters"]["theta"] - 0.95) < 0.01
    assert set(s["standard_errors"]) == set(s["free"])
    assert s["correlation"]["theta"]["theta"] == pytest.approx(1.0)
    assert "w90_nm" in s and s["absolute_sigma"] is True
    ds = io.open_dataset(out / "result.zarr")
    assert {"potential", "potential_fit", "li", "li_fit", "correlation"} <= set(ds.data_vars)


def test_fit_command_reads_a_holo_profile_result(run_cli, tmp_path):
    x, v, _ = _profiles(theta=0.99, seed=1)
    ds = signal(v, ("position",), name="profile", units="V", coords={"position": x}).to_dataset()
    ds["profile_sigma"] = signal(np.full_like(v, 0.01), ("position",), name="profile_sigma",
                                 units="V", coords={"position": x})
    ds["fit"] = ds["profile"] * 0
    holo = tmp_path / "holo"
    io.write_result(holo, ds, {"drop_V": 1.3, "w90_nm": 7.0, "position_nm": 0.3})
    out = tmp_path / "fit"
    result = run_cli("spacecharge", "fit", holo, "--side", "right", "--out", out)
    assert result.returncode == 0, result.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["parameters"]["psi0_V"] == pytest.approx(-1.3, rel=0.05)
    assert abs(s["parameters"]["theta"] - 0.99) < 0.01
    assert s["absolute_sigma"] is True


def test_fit_command_refuses_unidentifiable_parameters(run_cli, tmp_path):
    x, v, _ = _profiles()
    pot = _write_csv(tmp_path / "v.csv", x, v)
    line = _error_line(run_cli("spacecharge", "fit", pot, "--side", "right", "--free",
                               "psi0_V,theta,eps_r,c0_m3,x0_nm,psf_nm,v_offset_V",
                               "--out", tmp_path / "o"))
    assert "not identifiable" in line and "eps_r" in line


@pytest.mark.parametrize("args, match", [
    (("spacecharge", "profile", "--psi0", "1", "--theta", "1.2", "--eps-r", "50", "--c0", "6e27"),
     "--theta must be a number in (0, 1)"),
    (("spacecharge", "bias", "--bias", "1", "--thickness", "1", "--theta", "0.9", "--eps-r", "50",
      "--c0", "6e27", "--stern", "0.6"), "no electrolyte"),
    (("spacecharge", "fit", "missing.csv"), "does not exist"),
    (("spacecharge", "fit", "v.csv", "--blur", "lowpass:x"), "lowpass:CUTOFF"),
    (("spacecharge", "fit", "v.csv", "--noise", "white"), "--noise"),
])
def test_bad_input_is_one_line(run_cli, tmp_path, args, match):
    x, v, _ = _profiles()
    _write_csv(tmp_path / "v.csv", x, v, 0.01)
    line = _error_line(run_cli(*args, "--out", tmp_path / "o", cwd=tmp_path))
    assert match in line
    assert not (tmp_path / "o").exists()  # a refused command leaves no output folder behind


def test_bad_csv_header(run_cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n0,1\n")
    line = _error_line(run_cli("spacecharge", "fit", bad, "--out", tmp_path / "o"))
    assert "position_nm,value" in line


# --------------------------------------------------------------------------- holography chain

HOLO = dict(ny=160, nx=160, pixel_nm=0.5, vacuum_height_nm=20.0, interface_position_nm=36.0)
ROW = 100  # y = 50 nm, beyond the edge ramp
X0_TRUE = 30.0  # the interface (x = 36 nm) from the profile start (x = 6 nm)


@pytest.fixture(scope="module")
def holo_profile(tmp_path_factory):
    """simulate('holography') -> holo reconstruct -> holo potential -> holo profile through the
    console entry point (in this process, to spare three interpreter starts), noise-free and at
    the twin's dose (made once each). Returns (profile dir, twin, the wave's amplitude ratio
    electrode / electrolyte measured on the reconstructed amplitude)."""
    from ionscope.cli import main

    root = tmp_path_factory.mktemp("holo_chain")
    made = {}

    def run(*args):
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        assert done.value.code == 0, args

    def make(noise: bool):
        if noise not in made:
            from ionscope.simulate import simulate

            d = root / ("dose" if noise else "noise_free")
            d.mkdir()
            ds = simulate("holography", seed=4, noise=noise, **HOLO)
            io.save(ds, d / "twin.zarr")
            run("holo", "reconstruct", f"{d}/twin.zarr:hologram", "--reference",
                f"{d}/twin.zarr:reference", "--out", d / "rec")
            t_nm = float(ds["thickness_nm"].values[ROW, 60])
            run("holo", "potential", d / "rec", "--kv", "300", "--thickness", f"{t_nm}", "--out", d / "pot")
            run("holo", "profile", d / "pot", "--from", f"{ROW},12", "--to", f"{ROW},148", "--width", "24",
                "--model", "erfc", "--step", "--side", "end", "--out", d / "prof")
            amp = io.open_dataset(d / "rec" / "result.zarr")["amplitude"].values[ROW - 12 : ROW + 12]
            ratio = float(np.median(amp[:, 20:50]) / np.median(amp[:, 100:150]))
            made[noise] = (d / "prof", ds, ratio)
        return made[noise]

    return make


@pytest.mark.slow
def test_fit_command_on_a_noise_free_holo_profile(run_cli, holo_profile, tmp_path):
    """The known MIP step (19 - 14 V), the recorded aperture (+ the measured amplitude ratio):
    psi0 within 5 % (it is within 1 %), theta within its error, the interface within 0.1 nm."""
    prof, twin, ratio = holo_profile(False)
    out = tmp_path / "fit"
    r = run_cli("spacecharge", "fit", prof, "--c0", "1e26", "--step", "5.0", "--amplitude-ratio",
                f"{ratio}", "--out", out)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    p, e = s["parameters"], s["standard_errors"]
    assert p["psi0_V"] == pytest.approx(1.3, rel=0.05)
    assert abs(p["psi0_V"] - 1.3) < 2 * e["psi0_V"]
    assert abs(p["theta"] - 0.99) < 2 * e["theta"]
    assert p["x0_nm"] == pytest.approx(X0_TRUE, abs=0.1) and s["side"] == "right"
    assert s["w90_nm"] == pytest.approx(float(twin.attrs["w90_nm"]), rel=0.05)
    assert p["step_V"] == 5.0 and "step_V" in s["fixed"] and s["step"] == "fixed (given)"
    assert "recorded aperture" in s["blur"] and f"amplitude ratio {ratio:.4g}" in s["resolution"]
    assert s["noise_model"] == "sandwich"
    ds = io.open_dataset(out / "result.zarr")
    assert np.nanstd(ds["potential_residual"].values) < 0.05  # V, against a 6.3 V drop


@pytest.mark.slow
def test_fit_command_at_the_twins_dose(run_cli, holo_profile, tmp_path):
    """At the twin's dose (1000 e/px) psi0 lies within two of its standard errors (which carry
    the noise correlation; over 16 seeds they are ~2x the scatter, the errors of independent
    points ~0.5x) - with theta known: from the potential alone a depleted layer shows theta only
    in its Debye tail. Left free (--step auto), the MIP step is fitted from the holo profile's
    jump and psi0 stays within its (larger) error."""
    prof, _, ratio = holo_profile(True)
    out = tmp_path / "fit"
    args = ("spacecharge", "fit", prof, "--c0", "1e26", "--fix", "theta=0.99", "--amplitude-ratio", f"{ratio}",
            "--side", "right")
    r = run_cli(*args, "--step", "5.0", "--out", out)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    p, e = s["parameters"], s["standard_errors"]
    assert abs(p["psi0_V"] - 1.3) < 2 * e["psi0_V"] and 0.01 < e["psi0_V"] < 0.1
    assert abs(p["x0_nm"] - X0_TRUE) < max(3 * e["x0_nm"], 0.1)
    assert s["noise_model"] == "sandwich" and "theta" in s["fixed"]
    r = run_cli(*args, "--out", tmp_path / "auto")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "auto" / "summary.json").read_text())
    p, e = s["parameters"], s["standard_errors"]
    assert s["step"].startswith("fitted (auto") and "step_V" in s["free"]
    assert abs(p["step_V"] - 5.0) < 3 * e["step_V"] and abs(p["psi0_V"] - 1.3) < 3 * e["psi0_V"]
    assert e["psi0_V"] > 1.3 * json.loads((out / "summary.json").read_text())["standard_errors"]["psi0_V"]
