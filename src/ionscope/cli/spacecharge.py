"""``ionscope spacecharge``: lattice-gas space-charge layers - profile, bias, fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

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


def read_profile(spec: str | Path, what: str):
    """A 1-D profile from a CSV (``position_nm,value[,sigma]``) or an ionscope result.

    Returns ``(values, sigma)``: DataArrays along ``position`` (nm); ``sigma`` may be None. A
    result is a folder holding ``result.zarr`` (or the ``.zarr`` itself) with a ``profile``
    variable along ``position`` and optionally ``profile_sigma``.
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
        return values, sigma, "csv"
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
    return values, sigma, "result"


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
    fix: Annotated[Optional[str], typer.Option("--fix", help="NAME=VALUE,... for fixed parameters, e.g. step_V=0.")] = None,
    eps_r: Annotated[float, typer.Option("--eps-r", help="Relative permittivity (fixed unless in --free).")] = 50.0,
    c0: Annotated[float, typer.Option("--c0", help="Bulk mobile-Li+ concentration, m^-3 (fixed unless in --free).")] = 6e27,
    theta: Annotated[Optional[float], typer.Option("--theta", help="Start value of theta.")] = None,
    side: Annotated[str, typer.Option("--side", help="auto, right or left: where the electrolyte is.")] = "auto",
    units: Annotated[str, typer.Option("--units", help="Unit of a CSV potential profile: V or mV.")] = "V",
    temperature: TempOption = 298.15,
    li_electrode_level: Annotated[float, typer.Option("--li-electrode-level", help="Li level of the electrode relative to the electrolyte bulk.")] = 0.0,
    overwrite: OverwriteOption = False,
) -> None:
    """Joint weighted fit of a potential profile (and a Li profile) to the lattice-gas model."""
    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.spacecharge.fit import _LI_FREE, _POTENTIAL_FREE, fit_profiles

    elapsed = _timer()
    io.prepare_out_dir(out_dir, overwrite=overwrite)
    if units not in ("V", "mV"):
        raise ConfigError(f"--units {units!r}: use V or mV")
    pot, pot_sigma, kind = read_profile(profile, "PROFILE")
    if kind == "csv":
        pot.attrs["units"] = units
    li_da = li_sigma = None
    if li is not None:
        li_da, li_sigma, li_kind = read_profile(li, "--li")
        if li_kind == "csv":
            li_da.attrs["units"] = "m^-3" if li_mode == "absolute" else "1"
    fixed = {"eps_r": eps_r, "c0_m3": c0}
    fixed.update(_parse_fix(fix))
    kwargs = {"side": side, "temperature_K": temperature, "li_electrode_level": li_electrode_level}
    if li_mode is not None:
        kwargs["li_mode"] = li_mode
    if free is not None:
        free_list = [f.strip() for f in free.split(",") if f.strip()]
    else:
        free_list = list(_POTENTIAL_FREE)
        if li_da is not None:
            mode = li_mode or ("absolute" if li_da.attrs.get("units") in ("m^-3", "1/m^3") else "relative")
            free_list += [n for n in _LI_FREE if mode == "relative" or n == "li_psf_nm"]
    for name in free_list:
        fixed.pop(name, None)
    initial = {"theta": theta} if theta is not None else {}
    result = fit_profiles(pot, li_da, potential_sigma=pot_sigma, li_sigma=li_sigma, free=free_list,
                          fixed=fixed, initial=initial, **kwargs)
    import json

    fit = json.loads(result.attrs["fit"])
    summary = {"command": "spacecharge fit", "profile": str(profile), "li": None if li is None else str(li),
               **fit, "run_time_s": elapsed()}
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    p, e = fit["parameters"], fit["standard_errors"]
    out.print(f"psi0 {p['psi0_V']:.4g} +/- {e.get('psi0_V', 0):.2g} V, theta {p['theta']:.4g} +/- "
              f"{e.get('theta', 0):.2g}, reduced chi2 {fit['reduced_chi2']:.3g}; wrote {out_dir}")
