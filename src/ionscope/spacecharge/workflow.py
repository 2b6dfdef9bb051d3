"""The space-charge fit of measured profiles, as a library function.

``ionscope spacecharge fit`` (and the demo) call :func:`fit_measured_profiles` on profiles read
by :func:`read_profile`, and add nothing but argument parsing and printing, so Python and CLI
users get the same numbers. The resolution of a holography profile is taken from what the
holography chain recorded (:func:`~ionscope.spacecharge.fit.recorded_lowpass`), and a sharp
mean-inner-potential step from what ``holo profile --step`` fitted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import signal, units_of
from ionscope.errors import ConfigError, FileMissingError, FormatError, InputError, NonFiniteError
from ionscope.profiles import LowPass
from ionscope.spacecharge.fit import NOISE_MODELS, default_free, recorded_lowpass
from ionscope.spacecharge.model import material_constraints
from ionscope.spacecharge.wrappers import fit_profiles
from ionscope.validation import Interval, Options, validate_params

__all__ = ["ProfileInput", "read_profile", "profile_resolution", "step_choice", "fit_measured_profiles"]


@dataclass
class ProfileInput:
    """A 1-D profile read by :func:`read_profile`."""

    values: xr.DataArray  #: along ``position`` (nm)
    sigma: xr.DataArray | None  #: its standard errors; attrs may hold ``noise_correlation``
    kind: str  #: "csv" or "result"
    attrs: dict = field(default_factory=dict)  #: the result Dataset's attrs (resolution, provenance)
    jump: float | None = None  #: the sharp step an ``ionscope holo profile --step`` fit found


def read_profile(spec: str | Path, what: str = "profile", *, units: str = "unknown") -> ProfileInput:
    """A 1-D profile from a CSV (``position_nm,value[,sigma]``) or an ionscope result.

    Parameters
    ----------
    spec : str or Path
        A CSV file, or a result folder holding ``result.zarr`` (or the ``.zarr`` itself) with a
        ``profile`` variable along ``position`` and optionally ``profile_sigma`` (an
        ``ionscope holo profile`` / ``ionscope eels profile`` result).
    what : str
        How messages name the input (e.g. ``"PROFILE"``, ``"--li"``).
    units : str
        Units of a CSV's values (a result carries its own).

    Returns
    -------
    ProfileInput
    """
    from ionscope import io

    path = Path(spec)
    if not path.exists():
        raise FileMissingError(f"{what} {path} does not exist")
    path = io.data_path(path)  # a result folder: its result.zarr
    if path.suffix.lower() in (".csv", ".txt"):
        rows = io.read_table(path, what)
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
        bad = np.flatnonzero(~np.isfinite(table).all(axis=1))
        if bad.size:
            raise NonFiniteError(
                f"{what} {path}: {bad.size} row(s) hold NaN/inf (the first: {','.join(rows[bad[0] + 1])}); "
                "drop or interpolate them first"
            )
        if table.shape[1] == 3 and np.any(table[:, 2] <= 0):
            raise InputError(f"{what} {path}: every sigma must be positive (a standard error)")
        table = table[np.argsort(table[:, 0])]
        position = {"position": table[:, 0]}
        values = signal(table[:, 1], ("position",), name="profile", units=units, coords=position)
        sigma = None
        if table.shape[1] == 3:
            sigma = signal(table[:, 2], ("position",), name="profile_sigma", units=units, coords=position)
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


def profile_resolution(blur: Any, attrs: dict, amplitude_ratio: float | None = None
                       ) -> tuple[LowPass | None, float | None, str]:
    """The resolution of a potential profile for the space-charge fit.

    Parameters
    ----------
    blur : "auto", "fit", "none", float or "lowpass:CUTOFF[:EDGE[:KAPPA]]" or LowPass
        ``"auto"``: the low-pass the holography chain recorded (:func:`recorded_lowpass`) plus a
        fitted Gaussian PSF, else a fitted Gaussian; ``"fit"``: a fitted Gaussian PSF;
        ``"none"``: none; a number: a fixed Gaussian sigma (nm).
    attrs : dict
        Attributes of the profile's result.
    amplitude_ratio : float, optional
        Wave amplitude on the profile's start side over its end side (low-pass only).

    Returns
    -------
    lowpass : LowPass or None
    psf_nm : float or None
        A fixed Gaussian PSF (nm), or None when it is fitted.
    description : str
    """
    if isinstance(blur, LowPass):
        lowpass, how = blur, "given aperture"
        key = "lowpass"
    else:
        key = str(blur).strip().lower()
        lowpass = None
        if key == "auto":
            lowpass = recorded_lowpass(attrs)
            how = "recorded aperture" if lowpass is not None else "no aperture recorded"
        elif key.startswith("lowpass:"):
            lowpass, how = LowPass.parse(key), "given aperture"
    if key == "auto" or key.startswith("lowpass"):
        if lowpass is not None and amplitude_ratio is not None:
            if not lowpass.phase_per_unit:
                raise ConfigError("an amplitude ratio needs a wave-filtering low-pass (with KAPPA, rad/V)")
            lowpass = dataclasses.replace(lowpass, amplitude_ratio=float(amplitude_ratio))
        if lowpass is None:
            return None, None, "fitted Gaussian PSF (" + how + ")"
        return lowpass, None, f"{lowpass.describe()} ({how}) + fitted Gaussian PSF"
    if amplitude_ratio is not None:
        raise ConfigError("an amplitude ratio applies to a low-pass resolution only (blur auto or lowpass:...)")
    if key == "fit":
        return None, None, "fitted Gaussian PSF"
    if key == "none":
        return None, 0.0, "none"
    try:
        sigma = float(key)
    except ValueError:
        raise ConfigError(f"blur {blur!r}: use auto, fit, none, a Gaussian sigma in nm or "
                          "lowpass:CUTOFF[:EDGE[:KAPPA]]") from None
    if not sigma >= 0:
        raise ConfigError(f"blur {blur!r}: a Gaussian sigma must be >= 0 nm")
    return None, sigma, f"Gaussian PSF sigma {sigma:g} nm"


def step_choice(step: Any, jump: float | None) -> tuple[float | None, str]:
    """The sharp step at the interface (electrode minus electrolyte mean inner potential, V):
    a fixed value, or None to fit it; and how it was chosen.

    ``"auto"`` fits it when the holography profile fit found one (``jump``), else fixes it at 0;
    ``"fit"`` fits it; a number fixes it.
    """
    key = str(step).strip().lower()
    if key == "auto":
        if jump is not None:
            return None, (f"fitted (auto: the holo profile fit found a sharp step of {jump:.4g} V; give "
                          "--step V with the known mean inner potentials for a firmer psi0)")
        return 0.0, "fixed at 0 (auto: no step recorded)"
    if key == "fit":
        return None, "fitted"
    try:
        return float(key), "fixed (given)"
    except ValueError:
        raise ConfigError(f"step {step!r}: use auto, fit or the step in V (electrode minus electrolyte "
                          "mean inner potential)") from None


@validate_params({
    "li_mode": [Options({"relative", "absolute", "occupancy"}), None],
    **material_constraints("c0"),
    "theta": [Interval(float, 0, 1, closed="neither"), None],  # a start value, or None
    "side": [Options({"auto", "left", "right"})],
    "noise": [Options(NOISE_MODELS)],
    "amplitude_ratio": [Interval(float, 0, None, closed="neither"), None],
})
def fit_measured_profiles(
    potential: ProfileInput,
    li: ProfileInput | None = None,
    *,
    li_mode: str | None = None,
    free: list[str] | None = None,
    fixed: dict[str, float] | None = None,
    eps_r: float = 50.0,
    c0: float = 6e27,
    theta: float | None = None,
    side: str = "auto",
    temperature_K: float = 298.15,
    li_electrode_level: float = 0.0,
    step: Any = "auto",
    blur: Any = "auto",
    amplitude_ratio: float | None = None,
    noise: str = "auto",
) -> xr.Dataset:
    """Joint weighted fit of a measured potential profile (and a Li profile) to the lattice-gas
    layer: the chain of ``ionscope spacecharge fit``.

    Parameters
    ----------
    potential, li : ProfileInput
        Profiles from :func:`read_profile` (potential in V or mV; Li relative, m^-3 or occupancy).
    li_mode : {"relative", "absolute", "occupancy"}, optional
        Default: ``"absolute"`` for a Li profile in m^-3, else ``"relative"``.
    free : list of str, optional
        Parameters to fit (default :func:`~ionscope.spacecharge.fit.default_free` less ``fixed``).
    fixed : dict, optional
        Fixed parameter values (``step_V`` here fixes the step; not together with ``step``).
    eps_r, c0 : float
        Permittivity and bulk Li+ concentration (m^-3), fixed unless in ``free``.
    theta : float, optional
        Start value of the bulk occupancy.
    side, temperature_K, li_electrode_level :
        As in :func:`~ionscope.spacecharge.fit_spacecharge`.
    step : "auto", "fit" or float
        The sharp step at the interface (:func:`step_choice`).
    blur : "auto", "fit", "none", float or "lowpass:..."
        Resolution of the potential profile (:func:`profile_resolution`).
    amplitude_ratio : float, optional
        Wave amplitude ratio across the interface (low-pass resolution only).
    noise : {"auto", "sandwich", "ess", "gls", "diagonal"}
        Noise model for a correlated profile.

    Returns
    -------
    xarray.Dataset
        :func:`~ionscope.spacecharge.fit_profiles`'s result; attrs add ``step_choice`` and
        ``resolution_choice`` (how the step and the resolution were chosen).

    Computes: loads the profiles and returns a numpy-backed Dataset.
    """
    if not isinstance(potential, ProfileInput) or (li is not None and not isinstance(li, ProfileInput)):
        raise InputError("potential and li must be profiles read by ionscope.spacecharge.read_profile")
    user_fixed = dict(fixed or {})
    step_given = str(step).strip().lower() != "auto"
    if "step_V" in user_fixed and step_given:
        raise ConfigError("give the step either as step (--step) or as fixed step_V (--fix step_V=...), not both")
    lowpass, psf, resolution = profile_resolution(blur, potential.attrs, amplitude_ratio)
    step_value, step_how = ((user_fixed["step_V"], "fixed (--fix)") if "step_V" in user_fixed
                            else step_choice(step, potential.jump))
    fixed_all = {"eps_r": float(eps_r), "c0_m3": float(c0), **user_fixed}
    li_da = None if li is None else li.values
    if li_mode is None and li_da is not None and units_of(li_da) in ("m^-3", "1/m^3", "m-3"):
        mode = "absolute"
    else:
        mode = li_mode or "relative"
    free_list = ([str(f) for f in free] if free is not None
                 else default_free(has_li=li is not None, li_mode=mode, fixed=user_fixed))
    if psf is not None:  # blur none / SIGMA: the Gaussian PSF is fixed
        if "psf_nm" in free_list and free is not None:
            raise ConfigError(f"blur {blur} fixes the PSF; do not list psf_nm as free")
        free_list = [n for n in free_list if n != "psf_nm"]
        fixed_all["psf_nm"] = psf
    initial = {"theta": float(theta)} if theta is not None else {}
    if "step_V" in free_list:
        if str(step).strip().lower() not in ("auto", "fit"):
            raise ConfigError("step gives a value but step_V is listed as free; choose one")
        step_value, step_how = None, "fitted (--free)"
    elif step_value is None:
        free_list.append("step_V")
    else:
        fixed_all["step_V"] = step_value
    if step_value is None and potential.jump is not None:
        initial.setdefault("step_V", potential.jump)
    for name in free_list:
        fixed_all.pop(name, None)
    kwargs: dict[str, Any] = {"side": side, "temperature_K": temperature_K,
                              "li_electrode_level": li_electrode_level, "noise_model": noise, "lowpass": lowpass}
    if li_mode is not None:
        kwargs["li_mode"] = li_mode
    result = fit_profiles(potential.values, li_da, potential_sigma=potential.sigma,
                          li_sigma=None if li is None else li.sigma, free=free_list, fixed=fixed_all,
                          initial=initial, **kwargs)
    result.attrs["step_choice"] = step_how
    result.attrs["resolution_choice"] = resolution
    return result
