"""``ionscope spacecharge``: lattice-gas space-charge layers - profile, bias, fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import OutOption, OverwriteOption, app, options_named, out, start_run

spacecharge_app = typer.Typer(
    help="Space-charge layers: lattice-gas Poisson-Boltzmann profiles, biased cells, joint fits.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(spacecharge_app, name="spacecharge")

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
        values = float(c0), float(theta), int(charge)
    except ValueError:
        raise ConfigError(f"--defect {text!r} is not C0:THETA:CHARGE (e.g. 1e25:0.5:-1)") from None
    try:
        return MobileDefect(*values)
    except ConfigError as exc:  # the numbers parse but make no defect: say why
        raise ConfigError(f"--defect {text!r}: {exc}") from None


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
    """One space-charge layer: psi, c_Li, rho, E along x; w90, Debye length, surface charge.

    Writes DIR/result.zarr with psi (V), c_li (m^-3), rho (C/m^3) and field (V/m) along position
    (nm) and DIR/summary.json with w90_nm, debye_length_nm and surface_charge_C_per_m2.
    """
    from ionscope import io
    from ionscope.spacecharge import accumulation_width_nm, depletion_width_nm, lattice_gas_profile

    elapsed = start_run(out_dir, overwrite)
    with options_named(psi0_V="--psi0", length_nm="--length", stern_nm="--stern", c0_m3="--c0",
                       temperature_K="--temperature"):
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
    """A finite electrolyte between two blocking electrodes under bias: both interfaces.

    Writes DIR/result.zarr with phi, psi, c_li, rho and field along position and per interface
    (side) w90, surface charge and capacitance, and DIR/summary.json with both interfaces.
    """
    from ionscope import io
    from ionscope.spacecharge.bias import bias_profile

    elapsed = start_run(out_dir, overwrite)
    with options_named(bias_V="--bias", thickness_nm="--thickness", stern_nm="--stern", c0_m3="--c0",
                       temperature_K="--temperature"):
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
    """Joint weighted fit of a potential profile (and a Li profile) to the lattice-gas model.

    Writes DIR/result.zarr with potential, potential_fit and potential_residual (and li, li_fit with
    --li), the parameters with their standard errors and correlation, and DIR/summary.json with
    parameters, standard errors, correlations, w90_nm and how the step and the resolution were
    chosen.
    """
    import json

    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.spacecharge import fit_measured_profiles, read_profile

    if units not in ("V", "mV"):
        raise ConfigError(f"--units {units!r}: use V or mV")
    user_fixed = _parse_fix(fix)
    elapsed = start_run(out_dir, overwrite, inputs=(profile, li))
    prof = read_profile(profile, "PROFILE", units=units)
    li_prof = None if li is None else read_profile(li, "--li", units="m^-3" if li_mode == "absolute" else "1")
    free_list = None if free is None else [f.strip() for f in free.split(",") if f.strip()]
    with options_named(temperature_K="--temperature", c0="--c0", eps_r="--eps-r"):
        result = fit_measured_profiles(prof, li_prof, li_mode=li_mode, free=free_list, fixed=user_fixed, eps_r=eps_r,
                                       c0=c0, theta=theta, side=side, temperature_K=temperature,
                                       li_electrode_level=li_electrode_level, step=step, blur=blur,
                                       amplitude_ratio=amplitude_ratio, noise=noise)
    fit = json.loads(result.attrs["fit"])
    summary = {"command": "spacecharge fit", "profile": str(profile), "li": None if li is None else str(li),
               **fit, "step": result.attrs["step_choice"], "blur": result.attrs["resolution_choice"],
               "run_time_s": elapsed()}
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    p, e = fit["parameters"], fit["standard_errors"]

    def show(name: str, unit: str = "") -> str:
        if name in e:
            return f"{p[name]:.4g} +/- {e[name]:.2g}{unit}"
        return f"{p[name]:.4g}{unit} (fixed)"

    out.print(f"psi0 {show('psi0_V', ' V')}, theta {show('theta')}, step {show('step_V', ' V')}, "
              f"reduced chi2 {fit['reduced_chi2']:.3g} ({fit['noise_model']} errors); wrote {out_dir}")
