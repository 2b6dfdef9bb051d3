"""``ionscope spacecharge``: lattice-gas space-charge layers - profile, bias, fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ionscope.cli._app import OverwriteOption, _timer, app, out

spacecharge_app = typer.Typer(
    help="Space-charge layers: lattice-gas Poisson-Boltzmann profiles, biased cells, joint fits.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(spacecharge_app, name="spacecharge")

OutOption = Annotated[Path, typer.Option("--out", help="Output folder (result.zarr, summary.json).")]
ThetaOption = Annotated[float, typer.Option("--theta", help="Bulk site occupancy of Li+ c0/c_max, in (0, 1).")]
EpsOption = Annotated[float, typer.Option("--eps-r", help="Relative permittivity of the electrolyte.")]
C0Option = Annotated[float, typer.Option("--c0", help="Bulk mobile-Li+ concentration (m^-3), e.g. 6e27.")]
TempOption = Annotated[float, typer.Option("--temperature", help="Temperature (K).")]
SternOption = Annotated[float, typer.Option("--stern", help="Charge-free Stern / core layer thickness (nm).")]
SternEpsOption = Annotated[Optional[float], typer.Option("--stern-eps-r", help="Permittivity of the Stern layer (default --eps-r).")]
DefectOption = Annotated[Optional[str], typer.Option(
    "--defect", help="Second mobile defect C0:THETA:CHARGE, e.g. 1e25:0.5:-1.")]


def _defect(text: str | None):
    from ionscope.errors import ConfigError
    from ionscope.spacecharge import MobileDefect

    if text is None:
        return None
    try:
        c0, theta, charge = text.split(":")
        return MobileDefect(float(c0), float(theta), int(charge))
    except ValueError:
        raise ConfigError(f"--defect {text!r} is not C0:THETA:CHARGE (e.g. 1e25:0.5:-1)") from None


def _finite(value: float) -> float | None:
    import math

    return float(value) if math.isfinite(value) else None


@spacecharge_app.command("profile")
def spacecharge_profile(
    psi0: Annotated[float, typer.Option("--psi0", help="Interface potential relative to the bulk (V); >0 depletes Li+, <0 accumulates.")],
    theta: ThetaOption,
    eps_r: EpsOption,
    c0: C0Option,
    out_dir: OutOption,
    temperature: TempOption = 298.15,
    length: Annotated[Optional[float], typer.Option("--length", help="Profile length (nm); default max(5 w90, 10 L_D).")] = None,
    points: Annotated[int, typer.Option("--points", help="Number of positions.")] = 2000,
    stern: SternOption = 0.0,
    stern_eps_r: SternEpsOption = None,
    defect: DefectOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """One space-charge layer: psi, c_Li, rho, E along x; w90, Debye length, surface charge."""
    from ionscope import io
    from ionscope.spacecharge import accumulation_width_nm, depletion_width_nm, lattice_gas_profile

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    ds = lattice_gas_profile(psi0, theta, eps_r, c0, temperature, length_nm=length, points=points,
                             second_defect=_defect(defect), stern_nm=stern, stern_eps_r=stern_eps_r)
    summary = {
        "command": "spacecharge profile", "psi0_V": psi0, "theta": theta, "eps_r": eps_r,
        "c0_m3": c0, "temperature_K": temperature, "length_nm": float(ds.attrs["length_nm"]),
        "points": points, "stern_nm": stern, "stern_eps_r": stern_eps_r, "defect": defect,
        "w90_nm": float(ds["w90"]), "debye_length_nm": float(ds["debye_length"]),
        "surface_charge_C_per_m2": float(ds["surface_charge"]),
        "capacitance_F_per_m2": float(ds["capacitance"]),
        "interface_field_V_per_m": float(ds["interface_field"]),
        "psi_diffuse_V": float(ds["psi_diffuse"]),
        "mott_schottky_width_nm": (depletion_width_nm(psi0, eps_r, c0) if psi0 > 0
                                   else accumulation_width_nm(psi0, theta, eps_r, c0)),
        "run_time_s": elapsed(),
    }
    io.write_result(out_dir, ds, summary, overwrite=overwrite)
    out.print(f"w90 {summary['w90_nm']:.4g} nm, Debye length {summary['debye_length_nm']:.4g} nm, "
              f"surface charge {summary['surface_charge_C_per_m2']:.4g} C/m^2; wrote {out_dir}")


@spacecharge_app.command("bias")
def spacecharge_bias(
    bias: Annotated[float, typer.Option("--bias", help="Potential of the electrode at x = 0 relative to the one at x = L (V).")],
    thickness: Annotated[float, typer.Option("--thickness", help="Electrode-to-electrode distance (nm).")],
    theta: ThetaOption,
    eps_r: EpsOption,
    c0: C0Option,
    out_dir: OutOption,
    temperature: TempOption = 298.15,
    points: Annotated[int, typer.Option("--points", help="Mesh nodes (graded towards both electrodes).")] = 2000,
    stern: SternOption = 0.0,
    stern_eps_r: SternEpsOption = None,
    defect: DefectOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """A finite electrolyte between two blocking electrodes under bias: both interfaces."""
    from ionscope import io
    from ionscope.spacecharge.bias import bias_profile

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    ds = bias_profile(bias, thickness, theta, eps_r, c0, temperature, points=points,
                      second_defect=_defect(defect), stern_nm=stern, stern_eps_r=stern_eps_r)
    sides = {}
    for side in ("left", "right"):
        sel = ds.sel(side=side)
        sides[side] = {
            "electrode_potential_V": float(sel["electrode_potential"]),
            "interface_potential_V": float(sel["interface_potential"]),
            "w90_nm": _finite(float(sel["w90"])),
            "surface_charge_C_per_m2": float(sel["surface_charge"]),
            "capacitance_F_per_m2": float(sel["capacitance"]),
        }
    positive, negative = ("left", "right") if bias >= 0 else ("right", "left")
    summary = {
        "command": "spacecharge bias", "bias_V": bias, "thickness_nm": thickness, "theta": theta,
        "eps_r": eps_r, "c0_m3": c0, "temperature_K": temperature, "points": points,
        "stern_nm": stern, "stern_eps_r": stern_eps_r, "defect": defect,
        "left": sides["left"], "right": sides["right"],
        "positive_electrode": positive, "negative_electrode": negative,
        "bulk_potential_V": float(ds["bulk_potential"]),
        "space_charge_C_per_m2": float(ds["space_charge"]),
        "cell_capacitance_F_per_m2": float(ds["cell_capacitance"]),
        "debye_length_nm": float(ds["debye_length"]),
        "newton_iterations": int(ds["newton_iterations"]),
        "run_time_s": elapsed(),
    }
    io.write_result(out_dir, ds, summary, overwrite=overwrite)
    left, right = sides["left"], sides["right"]
    out.print(f"drops {left['interface_potential_V']:+.4g} V (left) / {right['interface_potential_V']:+.4g} V "
              f"(right), w90 {left['w90_nm']} / {right['w90_nm']} nm; wrote {out_dir}")


# --------------------------------------------------------------------------- fit input


@dataclass
class ProfileInput:
    """A 1-D profile read by :func:`read_profile`."""

    values: Any  #: DataArray along ``position`` (nm)
    sigma: Any  #: its standard errors (DataArray) or None; attrs may hold ``noise_correlation``
    kind: str  #: "csv" or "result"
    attrs: dict = field(default_factory=dict)  #: the result Dataset's attrs (resolution, provenance)
    jump: float | None = None  #: the sharp step an ``ionscope holo profile --step`` fit found


def read_profile(spec: str | Path, what: str) -> ProfileInput:
    """A 1-D profile from a CSV (``position_nm,value[,sigma]``) or an ionscope result.

    A result is a folder holding ``result.zarr`` (or the ``.zarr`` itself) with a ``profile``
    variable along ``position`` and optionally ``profile_sigma`` (an ``ionscope holo profile``
    / ``ionscope eels profile`` result).
    """
    import numpy as np

    from ionscope import io
    from ionscope.data import signal
    from ionscope.errors import FileMissingError, FormatError, InputError

    path = Path(spec)
    if not path.exists():
        raise FileMissingError(f"{what} {path} does not exist")
    if path.is_dir() and (path / "result.zarr").exists():
        path = path / "result.zarr"
    if path.suffix.lower() in (".csv", ".txt"):
        import csv

        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
        if not rows:
            raise FormatError(f"{what} {path} is empty")
        header = [h.strip().lower() for h in rows[0]]
        if header[:2] != ["position_nm", "value"] or len(header) > 3 or (len(header) == 3 and header[2] != "sigma"):
            raise FormatError(
                f"{what} {path}: the header must be position_nm,value[,sigma], got {','.join(rows[0])}"
            )
        try:
            table = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
        except ValueError as exc:
            raise FormatError(f"{what} {path}: a value is not a number ({exc})") from None
        if table.ndim != 2 or table.shape[1] != len(header):
            raise FormatError(f"{what} {path}: every row needs {len(header)} numbers")
        order = np.argsort(table[:, 0])
        table = table[order]
        values = signal(table[:, 1], ("position",), name="profile", units="",
                        coords={"position": table[:, 0]})
        values.attrs["units"] = "unknown"
        sigma = None
        if table.shape[1] == 3:
            sigma = signal(table[:, 2], ("position",), name="profile_sigma", units="",
                           coords={"position": table[:, 0]})
        return ProfileInput(values, sigma, "csv")
    ds = io.open_dataset(path)
    if "profile" not in ds:
        raise InputError(
            f"{what} {path} has no 'profile' variable (has {sorted(ds.data_vars)}); give an "
            "'ionscope holo profile' / 'ionscope eels profile' result or a CSV"
        )
    values = ds["profile"].load()
    sigma = ds["profile_sigma"].load() if "profile_sigma" in ds else None
    if values.dims != ("position",):
        raise InputError(f"{what} {path}: 'profile' must be 1-D along 'position', got {values.dims}")
    jump = float(ds["jump"]) if "jump" in ds and ds["jump"].ndim == 0 else None
    return ProfileInput(values, sigma, "result", dict(ds.attrs), jump)


def _parse_fix(text: str | None) -> dict[str, float]:
    from ionscope.errors import ConfigError

    fixed = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        try:
            name, value = item.split("=")
            fixed[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--fix {item!r} is not NAME=VALUE (e.g. --fix eps_r=30,c0_m3=6e27)") from None
    return fixed


def _resolution(text: str, prof: ProfileInput, amplitude_ratio: float | None):
    """``--blur`` -> (LowPass or None, fixed Gaussian PSF in nm or None for a fitted one, text)."""
    import dataclasses

    from ionscope.errors import ConfigError
    from ionscope.profiles import LowPass
    from ionscope.spacecharge.fit import recorded_lowpass

    key = text.strip().lower()
    lowpass = None
    if key == "auto":
        lowpass = recorded_lowpass(prof.attrs)
        how = "recorded aperture" if lowpass is not None else "no aperture recorded"
    elif key.startswith("lowpass:"):
        parts = key.split(":")[1:]
        try:
            nums = [float(v) for v in parts]
            if not 1 <= len(nums) <= 3:
                raise ValueError
            lowpass = LowPass(nums[0], nums[1] if len(nums) > 1 else 0.0, nums[2] if len(nums) > 2 else None)
        except ValueError:
            raise ConfigError(f"--blur {text!r}: give lowpass:CUTOFF[:EDGE[:KAPPA]] (1/nm, 1/nm, rad/V)") from None
        how = "given aperture"
    if key in ("auto",) or key.startswith("lowpass:"):
        if lowpass is not None and amplitude_ratio is not None:
            if not lowpass.phase_per_unit:
                raise ConfigError("--amplitude-ratio needs a wave-filtering low-pass (with KAPPA, rad/V)")
            lowpass = dataclasses.replace(lowpass, amplitude_ratio=float(amplitude_ratio))
        if lowpass is None:
            return None, None, "fitted Gaussian PSF (" + how + ")"
        return lowpass, None, f"{lowpass.describe()} ({how}) + fitted Gaussian PSF"
    if amplitude_ratio is not None:
        raise ConfigError("--amplitude-ratio applies to a low-pass resolution only (--blur auto or lowpass:...)")
    if key == "fit":
        return None, None, "fitted Gaussian PSF"
    if key == "none":
        return None, 0.0, "none"
    try:
        sigma = float(key)
    except ValueError:
        raise ConfigError(f"--blur {text!r}: use auto, fit, none, a Gaussian sigma in nm or lowpass:CUTOFF[:EDGE[:KAPPA]]") from None
    if not sigma >= 0:
        raise ConfigError(f"--blur {text!r}: a Gaussian sigma must be >= 0 nm")
    return None, sigma, f"Gaussian PSF sigma {sigma:g} nm"


def _step(text: str, prof: ProfileInput) -> tuple[float | None, str]:
    """``--step`` -> (fixed value in V, or None to fit it; how it was chosen)."""
    from ionscope.errors import ConfigError

    key = text.strip().lower()
    if key == "auto":
        if prof.jump is not None:
            return None, (f"fitted (auto: the holo profile fit found a sharp step of "
                          f"{prof.jump:.4g} V; give --step V with the known mean inner potentials "
                          "for a firmer psi0)")
        return 0.0, "fixed at 0 (auto: no step recorded)"
    if key == "fit":
        return None, "fitted"
    try:
        return float(key), "fixed (given)"
    except ValueError:
        raise ConfigError(f"--step {text!r}: use auto, fit or the step in V (electrode minus electrolyte mean inner potential)") from None


@spacecharge_app.command("fit")
def spacecharge_fit(
    profile: Annotated[Path, typer.Argument(metavar="PROFILE", help="Potential profile: CSV position_nm,value[,sigma] (V) or an 'ionscope holo profile' result.")],
    out_dir: OutOption,
    li: Annotated[Optional[Path], typer.Option("--li", help="Li profile: CSV or an 'ionscope eels profile' result.")] = None,
    li_mode: Annotated[Optional[str], typer.Option("--li-mode", help="relative (free scale/offset), absolute (m^-3) or occupancy (Li per site); default from the units.")] = None,
    free: Annotated[Optional[str], typer.Option("--free", help="Comma-separated parameters to fit (default psi0_V,theta,x0_nm,psf_nm,v_offset_V + Li scale/offset/psf).")] = None,
    fix: Annotated[Optional[str], typer.Option("--fix", help="NAME=VALUE,... for fixed parameters, e.g. theta=0.99.")] = None,
    eps_r: Annotated[float, typer.Option("--eps-r", help="Relative permittivity (fixed unless in --free).")] = 50.0,
    c0: Annotated[float, typer.Option("--c0", help="Bulk mobile-Li+ concentration, m^-3 (fixed unless in --free).")] = 6e27,
    theta: Annotated[Optional[float], typer.Option("--theta", help="Start value of theta.")] = None,
    side: Annotated[str, typer.Option("--side", help="auto, right or left: where the electrolyte is.")] = "auto",
    units: Annotated[str, typer.Option("--units", help="Unit of a CSV potential profile: V or mV.")] = "V",
    temperature: TempOption = 298.15,
    li_electrode_level: Annotated[float, typer.Option("--li-electrode-level", help="Li level of the electrode relative to the electrolyte bulk.")] = 0.0,
    step: Annotated[str, typer.Option("--step", help="Sharp step at the interface: the electrode's minus the electrolyte's mean inner potential in V (e.g. 5.0), 'fit', or 'auto' (fitted if the holo profile fitted one, else 0).")] = "auto",
    blur: Annotated[str, typer.Option("--blur", help="Resolution of the potential profile: auto (the aperture low-pass recorded by holo potential / holo profile plus a fitted Gaussian, else a fitted Gaussian), fit, none, SIGMA_NM or lowpass:CUTOFF[:EDGE[:KAPPA]].")] = "auto",
    amplitude_ratio: Annotated[Optional[float], typer.Option("--amplitude-ratio", help="Wave amplitude on the profile's start side over its end side (low-pass resolution only), e.g. from the reconstructed amplitude.")] = None,
    noise: Annotated[str, typer.Option("--noise", help="Noise correlation of the profile (profile_sigma's noise_correlation): auto (= sandwich), sandwich, ess, gls or diagonal (ignore it).")] = "auto",
    overwrite: OverwriteOption = False,
) -> None:
    """Joint weighted fit of a potential profile (and a Li profile) to the lattice-gas model."""
    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.spacecharge.fit import _LI_FREE, _POTENTIAL_FREE, NOISE_MODELS, fit_profiles

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    if units not in ("V", "mV"):
        raise ConfigError(f"--units {units!r}: use V or mV")
    if noise not in NOISE_MODELS:
        raise ConfigError(f"--noise {noise!r}: use one of {', '.join(NOISE_MODELS)}")
    prof = read_profile(profile, "PROFILE")
    pot, pot_sigma = prof.values, prof.sigma
    if prof.kind == "csv":
        pot.attrs["units"] = units
    li_da = li_sigma = None
    if li is not None:
        li_prof = read_profile(li, "--li")
        li_da, li_sigma = li_prof.values, li_prof.sigma
        if li_prof.kind == "csv":
            li_da.attrs["units"] = "m^-3" if li_mode == "absolute" else "1"
    user_fixed = _parse_fix(fix)
    if "step_V" in user_fixed and step.strip().lower() != "auto":
        raise ConfigError("give the step either as --step or as --fix step_V=..., not both")
    lowpass, psf, resolution = _resolution(blur, prof, amplitude_ratio)
    step_value, step_how = (user_fixed["step_V"], "fixed (--fix)") if "step_V" in user_fixed else _step(step, prof)
    fixed = {"eps_r": eps_r, "c0_m3": c0}
    fixed.update(user_fixed)
    kwargs = {"side": side, "temperature_K": temperature, "li_electrode_level": li_electrode_level,
              "noise_model": noise, "lowpass": lowpass}
    if li_mode is not None:
        kwargs["li_mode"] = li_mode
    initial = {"theta": theta} if theta is not None else {}
    if free is not None:
        free_list = [f.strip() for f in free.split(",") if f.strip()]
    else:
        free_list = list(_POTENTIAL_FREE)
        if li_da is not None:
            mode = li_mode or ("absolute" if li_da.attrs.get("units") in ("m^-3", "1/m^3") else "relative")
            free_list += [n for n in _LI_FREE if mode == "relative" or n == "li_psf_nm"]
        free_list = [n for n in free_list if n not in user_fixed]
    if psf is not None:  # --blur none / SIGMA: the Gaussian PSF is fixed
        if "psf_nm" in free_list and free is not None:
            raise ConfigError(f"--blur {blur} fixes the PSF; do not list psf_nm in --free")
        free_list = [n for n in free_list if n != "psf_nm"]
        fixed["psf_nm"] = psf
    if "step_V" in free_list:  # listed in --free
        if step.strip().lower() not in ("auto", "fit"):
            raise ConfigError("--step gives a value but --free lists step_V; choose one")
        step_value, step_how = None, "fitted (--free)"
    elif step_value is None:
        free_list.append("step_V")
    else:
        fixed["step_V"] = step_value
    if step_value is None and prof.jump is not None:
        initial.setdefault("step_V", prof.jump)
    for name in free_list:
        fixed.pop(name, None)
    result = fit_profiles(pot, li_da, potential_sigma=pot_sigma, li_sigma=li_sigma, free=free_list,
                          fixed=fixed, initial=initial, **kwargs)
    import json

    fit = json.loads(result.attrs["fit"])
    summary = {"command": "spacecharge fit", "profile": str(profile), "li": None if li is None else str(li),
               **fit, "step": step_how, "blur": resolution, "run_time_s": elapsed()}
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    p, e = fit["parameters"], fit["standard_errors"]

    def show(name: str, unit: str = "") -> str:
        if name in e:
            return f"{p[name]:.4g} +/- {e[name]:.2g}{unit}"
        return f"{p[name]:.4g}{unit} (fixed)"

    out.print(f"psi0 {show('psi0_V', ' V')}, theta {show('theta')}, step {show('step_V', ' V')}, "
              f"reduced chi2 {fit['reduced_chi2']:.3g} ({fit['noise_model']} errors); wrote {out_dir}")
