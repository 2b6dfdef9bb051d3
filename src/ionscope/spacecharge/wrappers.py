"""The space-charge package's labelled wrappers: the lattice-gas layer as a Dataset with units
(:func:`lattice_gas_profile`, over the kernels of :mod:`~ionscope.spacecharge.model`) and the
joint fit of labelled profiles (:func:`fit_profiles`, over
:func:`~ionscope.spacecharge.fit.fit_spacecharge`). Both compute (they take and give in-memory
arrays).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import xarray as xr

from ionscope.data import provenance, signal, units_of, with_provenance
from ionscope.errors import ConfigError, InputError
from ionscope.profiles import LowPass
from ionscope.spacecharge.fit import fit_spacecharge
from ionscope.spacecharge.interface import PARAMETERS
from ionscope.constants import E_CHARGE, EPSILON_0
from ionscope.spacecharge.model import (
    MAX_INTERFACE_POTENTIAL_V,
    MAX_LENGTH_NM,
    MAX_EPS_R,
    MAX_POINTS,
    MobileDefect,
    _check_scalar,
    _gamma,
    _occupancy,
    _profile_u,
    _rho_over,
    material_constraints,
    _system,
    differential_capacitance,
    stern_diffuse_potential,
    surface_charge,
    w90_nm,
)
from ionscope.units import require_length_to_nm
from ionscope.validation import Interval, validate_params

__all__ = ["lattice_gas_profile", "fit_profiles"]


# --------------------------------------------------------------------------- the layer


@validate_params({
    "psi0_V": [Interval(float, -MAX_INTERFACE_POTENTIAL_V, MAX_INTERFACE_POTENTIAL_V, unit="V")],
    "length_nm": [Interval(float, 0, MAX_LENGTH_NM, closed="right", unit="nm"), None],
    "points": [Interval(int, 16, MAX_POINTS)],
    "stern_nm": [Interval(float, 0, MAX_LENGTH_NM, unit="nm")],
    "stern_eps_r": [Interval(float, 1, MAX_EPS_R), None],
    **material_constraints(),
})
def lattice_gas_profile(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    *, length_nm: float | None = None, points: int = 2000,
    second_defect: MobileDefect | None = None, stern_nm: float = 0.0,
    stern_eps_r: float | None = None,
) -> xr.Dataset:
    r"""Space-charge layer at one interface as a Dataset with units.

    Parameters
    ----------
    psi0_V, theta, eps_r, c0_m3, temperature_K, second_defect, stern_nm, stern_eps_r
        As in :func:`lattice_gas_potential`.
    length_nm : float, optional
        Extent of the profile (nm); default ``max(5 w90, 10 L_D)``.
    points : int
        Number of positions (>= 2), evenly spaced from 0 to ``length_nm``.

    Returns
    -------
    xarray.Dataset
        Along ``position`` (nm, distance from the interface): ``psi`` (V), ``c_li`` (m^-3),
        ``rho`` (C/m^3), ``field`` (V/m) and, for a second defect, ``c_defect`` (m^-3); scalar
        variables ``w90`` (nm), ``debye_length`` (nm), ``surface_charge`` (C/m^2),
        ``capacitance`` (F/m^2), ``interface_field`` (V/m), ``psi_diffuse`` (V); the
        parameters in ``attrs``; one provenance step.

    Computes: solves the layer in memory and returns a numpy-backed Dataset.
    """
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    if psi0_V == 0:
        raise ConfigError("psi0_V = 0 gives a flat profile; give a non-zero interface potential")
    points = int(points)
    if points < 2:
        raise ConfigError(f"points = {points} must be >= 2")
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    ld = sy.ell_nm / sy.kappa
    kw = dict(second_defect=second_defect)
    w90 = w90_nm(psi0_V, theta, eps_r, c0_m3, temperature_K, stern_nm=stern_nm,
                 stern_eps_r=stern_eps_r, **kw)
    if length_nm is None:
        length_nm = max(5 * w90, 10 * ld, stern_nm + 5 * ld)
    length_nm = _check_scalar(length_nm, "length_nm", positive=True)
    if length_nm < w90:
        raise ConfigError(
            f"length_nm = {length_nm:.4g} nm is shorter than w90 = {w90:.4g} nm; the profile would "
            "not reach the bulk - give a longer --length"
        )
    x = np.linspace(0.0, length_nm, points)
    psi_d = stern_diffuse_potential(psi0_V, theta, eps_r, c0_m3, stern_nm, stern_eps_r,
                                    temperature_K, second_defect)
    u = _profile_u(x, psi_d, sy, stern_nm)
    psi = sy.vt * u
    c_li = sy.c_ref * sy.weight[0] * _occupancy(u, sy.theta[0])
    rho = E_CHARGE * sy.c_ref * _rho_over(u, sy)
    field = np.sign(u) * np.sqrt(2 * E_CHARGE * sy.c_ref * sy.vt * _gamma(u, sy) / sy.eps)
    core = x < stern_nm
    if core.any():
        eps_s = EPSILON_0 * (eps_r if stern_eps_r is None else stern_eps_r)
        psi[core] = psi0_V + (psi_d - psi0_V) * x[core] / stern_nm
        c_li[core] = 0.0
        rho[core] = 0.0
        field[core] = sy.eps * field[~core][0] / eps_s if (~core).any() else np.nan
    sigma = surface_charge(psi_d, theta, eps_r, c0_m3, temperature_K, second_defect)
    cap = differential_capacitance(psi_d, theta, eps_r, c0_m3, temperature_K, second_defect)
    if stern_nm > 0:  # series capacitance of the Stern layer
        eps_s = EPSILON_0 * (eps_r if stern_eps_r is None else stern_eps_r)
        cap = 1.0 / (1.0 / cap + stern_nm * 1e-9 / eps_s)
    pos = {"position": x}
    data_vars = {
        "psi": signal(psi, ("position",), name="psi", units="V", coords=pos,
                      long_name="potential relative to the bulk"),
        "c_li": signal(c_li, ("position",), name="c_li", units="m^-3", coords=pos,
                       long_name="mobile cation (Li+) concentration"),
        "rho": signal(rho, ("position",), name="rho", units="C/m^3", coords=pos,
                      long_name="space-charge density"),
        "field": signal(field, ("position",), name="field", units="V/m", coords=pos,
                        long_name="electric field -dpsi/dx"),
    }
    if second_defect is not None:
        c_def = sy.c_ref * sy.weight[1] * _occupancy(sy.charge[1] * u, sy.theta[1])
        if core.any():
            c_def[core] = 0.0
        data_vars["c_defect"] = signal(c_def, ("position",), name="c_defect", units="m^-3",
                                       coords=pos, long_name="second mobile defect concentration")
    ds = xr.Dataset(data_vars)
    ds["position"].attrs.update(units="nm", long_name="distance from the interface")
    scalars = {
        "w90": (w90, "nm", "distance holding 90 % of the potential drop"),
        "debye_length": (ld, "nm", "lattice-gas Debye length"),
        "surface_charge": (sigma, "C/m^2", "electrode-side surface charge"),
        "capacitance": (cap, "F/m^2", "differential capacitance"),
        "interface_field": (sigma / sy.eps, "V/m", "field at the diffuse-layer boundary"),
        "psi_diffuse": (psi_d, "V", "potential at the diffuse-layer boundary"),
    }
    for name, (value, units, long) in scalars.items():
        ds[name] = xr.DataArray(float(value), attrs={"units": units, "long_name": long})
    params = dict(psi0_V=psi0_V, theta=float(theta), eps_r=float(eps_r), c0_m3=float(c0_m3),
                  temperature_K=float(temperature_K), length_nm=length_nm, points=points,
                  stern_nm=float(stern_nm),
                  stern_eps_r=None if stern_eps_r is None else float(stern_eps_r))
    if second_defect is not None:
        params["second_defect"] = dict(c0_m3=second_defect.c0_m3, theta=second_defect.theta,
                                       charge=second_defect.charge)
    ds.attrs.update({k: v for k, v in params.items() if v is not None and k != "second_defect"})
    ds.attrs["primary"] = "psi"
    return with_provenance(ds, "ionscope.spacecharge.lattice_gas_profile", params)


# --------------------------------------------------------------------------- the fit


def _profile_arrays(da: xr.DataArray, what: str):
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray along 'position'")
    if da.dims != ("position",):
        raise InputError(
            f"{what} must be 1-D along 'position' (nm), got dims {da.dims}; extract a line "
            "profile first (ionscope holo profile / ionscope eels profile)"
        )
    factor = require_length_to_nm(units_of(da["position"]), f"{what}: the position axis")
    return np.asarray(da["position"].values, dtype=np.float64) * factor, np.asarray(da.values, dtype=np.float64)


def _correlation_attr(sigma: xr.DataArray | None):
    """``noise_correlation`` of a ``profile_sigma`` (list or JSON text), or None."""
    if sigma is None or "noise_correlation" not in sigma.attrs:
        return None
    raw = sigma.attrs["noise_correlation"]
    try:
        return [float(v) for v in (json.loads(raw) if isinstance(raw, str) else np.atleast_1d(raw))]
    except (TypeError, ValueError):
        raise InputError(f"profile_sigma's noise_correlation {str(raw)[:40]!r} is not a list of numbers") from None


def _valid_points(x, y, sigma, what: str):
    """Indices of the finite points (and positive sigma); whether they are contiguous."""
    ok = np.isfinite(y) & np.isfinite(x)
    if sigma is not None:
        ok &= np.isfinite(sigma) & (sigma > 0)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        raise InputError(f"{what} holds no finite points")
    return idx, bool(idx[-1] - idx[0] + 1 == idx.size)


def fit_profiles(
    potential: xr.DataArray, li: xr.DataArray | None = None, *,
    potential_sigma: xr.DataArray | None = None, li_sigma: xr.DataArray | None = None,
    **kwargs,
) -> xr.Dataset:
    """Labelled wrapper of :func:`fit_spacecharge`.

    Parameters
    ----------
    potential : xarray.DataArray
        Potential along ``position`` (nm), units ``"V"`` or ``"mV"``, e.g. the ``profile`` of
        an ``ionscope holo profile`` result. NaN points are left out.
    li : xarray.DataArray, optional
        Li profile along ``position`` (nm); units ``"m^-3"`` select ``li_mode="absolute"``
        unless ``li_mode`` is given.
    potential_sigma, li_sigma : xarray.DataArray, optional
        Standard errors on the same positions. A ``noise_correlation`` attribute (as
        :func:`ionscope.profiles.band_profile` writes) is passed on as the profile's
        ``correlation`` / ``li_correlation`` unless given in ``kwargs``; with gaps inside the
        profile the default noise model becomes ``"ess"`` (the lag structure is broken).
    **kwargs
        Passed to :func:`fit_spacecharge` (``lowpass``, ``noise_model``, ``fixed``, ...).

    Returns
    -------
    xarray.Dataset
        Along ``position`` (the union of both profiles' positions, NaN where a profile has no
        point): ``potential``, ``potential_fit``, ``potential_residual`` (V) [, ``li``,
        ``li_fit``, ``li_residual``]; for every fitted parameter a scalar variable and
        ``<name>_stderr``; ``correlation`` (``parameter`` x ``parameter_j``); the summary as
        JSON in ``attrs["fit"]``; one provenance step.

    Computes: loads the profiles and returns a numpy-backed Dataset.
    """
    x_all, y_all = _profile_arrays(potential, "potential profile")
    unit = units_of(potential)
    if unit not in ("V", "mV"):
        raise InputError(
            f"the potential profile is in {unit!r}; the fit needs volts - convert a phase "
            "profile to potential first (ionscope holo potential, then ionscope holo profile)"
        )
    scale = 1e-3 if unit == "mV" else 1.0
    y_all = y_all * scale
    sv_all = None if potential_sigma is None else np.asarray(potential_sigma.values, np.float64) * scale
    idx, contiguous = _valid_points(x_all, y_all, sv_all, "the potential profile")
    x, y = x_all[idx], y_all[idx]
    sv = None if sv_all is None else sv_all[idx]
    gaps = not contiguous
    if sv is not None and "correlation" not in kwargs:
        kwargs["correlation"] = _correlation_attr(potential_sigma)
    xl = yl = sl = None
    if li is not None:
        xl_all, yl_all = _profile_arrays(li, "Li profile")
        sl_all = None if li_sigma is None else np.asarray(li_sigma.values, dtype=np.float64)
        idx_l, contiguous_l = _valid_points(xl_all, yl_all, sl_all, "the Li profile")
        xl, yl = xl_all[idx_l], yl_all[idx_l]
        sl = None if sl_all is None else sl_all[idx_l]
        gaps |= not contiguous_l
        if sl is not None and "li_correlation" not in kwargs:
            kwargs["li_correlation"] = _correlation_attr(li_sigma)
        if units_of(li) in ("m^-3", "1/m^3", "m-3") and "li_mode" not in kwargs:
            kwargs["li_mode"] = "absolute"
    if gaps and kwargs.get("noise_model", "auto") == "auto" and (
            kwargs.get("correlation") is not None or kwargs.get("li_correlation") is not None):
        kwargs["noise_model"] = "ess"
    fit = fit_spacecharge(x, y, sv, li_position_nm=xl, li=yl, li_sigma=sl, **kwargs)
    grid = np.unique(np.concatenate([x_all] + ([xl_all] if li is not None else [])))

    def on_grid(pos, values):
        out = np.full(grid.shape, np.nan)
        out[np.searchsorted(grid, pos)] = values
        return xr.DataArray(out, dims=("position",))

    ds = xr.Dataset(coords={"position": ("position", grid, {"units": "nm"})})
    ds["potential"] = on_grid(x_all, y_all)
    ds["potential_fit"] = on_grid(x, fit.potential_fit)
    ds["potential_residual"] = on_grid(x, y - fit.potential_fit)
    for name in ("potential", "potential_fit", "potential_residual"):
        ds[name].attrs["units"] = "V"
    if xl is not None:
        li_unit = units_of(li)
        ds["li"] = on_grid(xl_all, yl_all)
        ds["li_fit"] = on_grid(xl, fit.li_fit)
        ds["li_residual"] = on_grid(xl, yl - fit.li_fit)
        for name in ("li", "li_fit", "li_residual"):
            ds[name].attrs["units"] = li_unit
    for name, value in fit.values.items():
        unit = PARAMETERS[name]["unit"]
        ds[name] = xr.DataArray(value, attrs={"units": unit, "fitted": int(name in fit.free)})
        if name in fit.free:
            ds[name + "_stderr"] = xr.DataArray(fit.stderr[name], attrs={"units": unit})
    ds["correlation"] = xr.DataArray(
        fit.correlation, dims=("parameter", "parameter_j"),
        coords={"parameter": list(fit.free), "parameter_j": list(fit.free)}, attrs={"units": "1"},
    )
    derived_units = {"debye_length_nm": "nm", "w90_nm": "nm", "vacancy_density_m3": "m^-3",
                     "effective_carrier_density_m3": "m^-3", "surface_charge_C_per_m2": "C/m^2"}
    for name, value in fit.derived.items():
        ds[name] = xr.DataArray(value, attrs={"units": derived_units[name]})
    summary = fit.summary()
    ds.attrs["fit"] = json.dumps(summary)
    params = {k: v for k, v in kwargs.items() if k not in ("initial", "correlation", "li_correlation")}
    if isinstance(params.get("lowpass"), LowPass):
        params["lowpass"] = dataclasses.asdict(params["lowpass"])
    params["noise_model"] = fit.noise_model
    history = provenance(potential) + (provenance(li) if li is not None else [])
    inputs = [potential] + ([li] if li is not None else [])
    ds.attrs["primary"] = "potential_fit"
    return with_provenance(ds, "ionscope.spacecharge.fit_profiles", params, inputs=inputs,
                           history=history)
