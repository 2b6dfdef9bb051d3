"""Demo section: space-charge layers under bias and the fit of the holography profile.

Registered with :func:`~ionscope.pipeline.demo.demo_section` and imported by
:func:`~ionscope.pipeline.demo.run_demo` through :data:`~ionscope.pipeline.demo.SECTION_MODULES`.

1. Biased cells (:func:`ionscope.spacecharge.bias.bias_profile`): a 150 nm solid electrolyte
   between two blocking electrodes at 2 V for Li site occupancies theta = 0.9, 0.99, 0.999 -
   the layers at the positive and the negative electrode are asymmetric because Li+ can only
   pile up into vacancies (:doc:`/guide/spacecharge`, the seed's asymmetry).
2. The lattice-gas fit (:func:`ionscope.spacecharge.fit.fit_profiles`) of the demo's Fourier
   holography profile: the holography section (order 60, before this one) saves it as
   ``holography_profile.zarr`` (``profile``, ``profile_sigma`` with its noise correlation,
   ``fit``, the aperture as ``resolution_*`` attrs), exactly what ``ionscope holo profile``
   writes. The mean-inner-potential step is fixed at the twin's known MIP difference, the
   resolution is the recorded aperture (a low-pass on the electron wave) plus a fitted Gaussian
   (interface roughness), and the errors carry the noise correlation (sandwich covariance).
   Only when the holography section did not run (a replacement simulator without the
   holography twins) does it fall back to a potential + Li profile simulated from the
   lattice-gas model - and says so in the caption and in ``summary["spacecharge"]["fit"]``.
"""

from __future__ import annotations

import json

import numpy as np

from ionscope.pipeline.demo import DemoContext, demo_section
from ionscope.report.html import Section, TableItem

#: Biased-cell demo: bias (V), electrode distance (nm), eps_r, c0 (m^-3), occupancies.
BIAS_V = 2.0
THICKNESS_NM = 150.0
EPS_R = 50.0
C0_M3 = 6e27
THETAS = (0.9, 0.99, 0.999)

#: Simulated profiles of the fit demo: pixel (nm), field of view (nm), interface (nm), PSFs
#: (Gaussian sigma, nm), noise (V; relative Li units).
PIXEL_NM = 0.5
FIELD_NM = 128.0
INTERFACE_NM = 48.0
PSF_NM = 1.0
LI_PSF_NM = 1.5
NOISE_V = 0.02
LI_NOISE = 0.02


def _layer_truth() -> dict[str, float]:
    """The holography twin's default space-charge layer."""
    from ionscope.simulate.holography import HolographyParams

    p = HolographyParams()
    return {"psi0_V": p.psi0_V, "theta": p.theta, "eps_r": p.eps_r, "c0_m3": p.c0_m3}


def _bias_part(ctx: DemoContext, store: dict) -> list:
    from ionscope.report.spacecharge_figures import bias_asymmetry_figure
    from ionscope.spacecharge.bias import bias_profile

    points = 1000 if ctx.quick else 2000
    cells = {th: bias_profile(BIAS_V, THICKNESS_NM, th, EPS_R, C0_M3, points=points)
             for th in THETAS}
    rows, record = [], {}
    for th, ds in cells.items():
        left, right = ds.sel(side="left"), ds.sel(side="right")
        w_pos, w_neg = float(left["w90"]), float(right["w90"])
        rows.append([f"{th:g}", float(left["interface_potential"]),
                     float(right["interface_potential"]), w_pos, w_neg, w_neg / w_pos,
                     float(left["surface_charge"]), float(ds["cell_capacitance"])])
        record[f"{th:g}"] = {
            "drop_positive_V": float(left["interface_potential"]),
            "drop_negative_V": float(right["interface_potential"]),
            "w90_positive_nm": w_pos, "w90_negative_nm": w_neg,
            "surface_charge_C_per_m2": float(left["surface_charge"]),
            "cell_capacitance_F_per_m2": float(ds["cell_capacitance"]),
            "space_charge_C_per_m2": float(ds["space_charge"]),
        }
    store["bias"] = {"bias_V": BIAS_V, "thickness_nm": THICKNESS_NM, "eps_r": EPS_R,
                     "c0_m3": C0_M3, "cells": record}
    fig = bias_asymmetry_figure(cells)
    figure = ctx.figure(
        fig, "spacecharge_bias",
        f"Equilibrium of a {THICKNESS_NM:g} nm Li-ion solid electrolyte (c₀ = {C0_M3:.0e} m⁻³, "
        f"ε_r = {EPS_R:g}, 298 K) between two blocking electrodes at {BIAS_V:g} V, for three Li "
        "site occupancies θ (lattice-gas Poisson-Boltzmann, Newton finite-volume solver, Li "
        "number and charge conserved). Top: potential relative to the bulk, ψ (V); bottom: site "
        "occupancy c/c_max. Left: the positive electrode, where Li⁺ leaves; right: the negative "
        "electrode, where Li⁺ can only fill the vacancies (c → c_max), so the layer there is "
        "wider and carries most of the bias, the more so the fewer vacancies (1 − θ). Dotted: "
        "w90, the distance holding 90 % of each interface's drop.",
    )
    table = TableItem(
        rows, header=["θ", "drop at + (V)", "drop at − (V)", "w90 at + (nm)", "w90 at − (nm)",
                      "w90 ratio −/+", "σ (C/m²)", "C_cell (F/m²)"],
        caption="Interface drops, widths, the electrode charge and the differential cell "
                "capacitance of the biased cells above.",
    )
    return [figure, table]


#: The holography section's Fourier profile (written by :mod:`ionscope.pipeline.holography_demo`).
HOLOGRAPHY_PROFILE = "holography_profile.zarr"
#: Parameters of the holography fit shown in the table (fitted ones and derived w90).
_SHOWN = ("psi0_V", "x0_nm", "v_offset_V", "psf_nm")


def _fit_part(ctx: DemoContext, store: dict) -> list:
    """The holography profile's fit, or the simulated fallback if it was not made this run."""
    if HOLOGRAPHY_PROFILE in ctx.files and ctx.path(HOLOGRAPHY_PROFILE).exists():
        return _holography_fit_part(ctx, store)
    return _simulated_fit_part(ctx, store)


def _amplitude_ratio(twin, prof, x0_nm: float) -> float:
    """Wave amplitude on the electrode side over the electrolyte side in the profile band, from
    the twin's known mean free paths (its true amplitude), 5-25 nm either side of the interface."""
    y0, x_start = prof.attrs["start_px"]
    half = int(prof.attrs["width_px"]) // 2
    pixel = float(twin.attrs["pixel_size_nm"])
    amp = np.asarray(twin["amplitude_true"].values, dtype=np.float64)[int(y0) - half:int(y0) + half]
    cols = np.arange(amp.shape[1]) * pixel - (x_start * pixel + x0_nm)
    left = amp[:, (cols < -5) & (cols > -25)]
    right = amp[:, (cols > 5) & (cols < 25)]
    return float(np.median(left) / np.median(right))


def _holography_fit_part(ctx: DemoContext, store: dict) -> list:
    import dataclasses

    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.profiles import band_profile
    from ionscope.report.spacecharge_figures import profile_fit_figure
    from ionscope.spacecharge.fit import IdentifiabilityError, fit_profiles, recorded_lowpass

    prof = io.open_dataset(ctx.path(HOLOGRAPHY_PROFILE)).load()
    twin = ctx.dataset("holography")  # cached: the holography section made it this run
    params = json.loads(twin.attrs["parameters"])
    pixel = float(twin.attrs["pixel_size_nm"])
    start, end = prof.attrs["start_px"], prof.attrs["end_px"]
    x0_true = float(twin.attrs["interface_position_nm"]) - float(start[1]) * pixel
    step_v = float(twin.attrs["mip_electrode_V"]) - float(twin.attrs["mip_electrolyte_V"])
    truth = band_profile(twin["potential_true"], start, end, width=int(prof.attrs["width_px"]))["profile"]
    lowpass = recorded_lowpass(dict(prof.attrs))
    if lowpass is None:  # the holography section records its aperture with the profile
        raise ConfigError(f"{HOLOGRAPHY_PROFILE} records no aperture (resolution_* attrs)")
    ratio_source = "recorded"
    if lowpass.phase_per_unit and getattr(lowpass, "amplitude_ratio", 0.0) is None:
        lowpass = dataclasses.replace(lowpass, amplitude_ratio=_amplitude_ratio(twin, prof, x0_true))
        ratio_source = "from the known mean free paths"
    known = {"step_V": step_v, "eps_r": float(params["eps_r"]), "c0_m3": float(params["c0_m3"])}
    pot, sig = prof["profile"], prof["profile_sigma"]

    def run(**kw):
        ds = fit_profiles(pot, potential_sigma=sig, side="right", **kw)
        return ds, json.loads(ds.attrs["fit"])

    ds, fit = run(fixed={**known, "theta": float(params["theta"])}, lowpass=lowpass)
    _, independent = run(fixed={**known, "theta": float(params["theta"])}, lowpass=lowpass,
                         noise_model="diagonal")
    _, gauss = run(fixed={**known, "theta": float(params["theta"])})
    try:
        _, free_theta = run(fixed=known, lowpass=lowpass)
        theta_free = {"theta": free_theta["parameters"]["theta"],
                      "theta_stderr": free_theta["standard_errors"]["theta"],
                      "psi0_V": free_theta["parameters"]["psi0_V"],
                      "psi0_stderr": free_theta["standard_errors"]["psi0_V"]}
        theta_text = (f"with θ free the fit gives θ = {theta_free['theta']:.3f} ± "
                      f"{theta_free['theta_stderr']:.3f} and ψ₀ = {theta_free['psi0_V']:.3f} ± "
                      f"{theta_free['psi0_stderr']:.3f} V")
    except IdentifiabilityError as exc:
        theta_free = {"error": str(exc)}
        theta_text = "with θ free the fit refuses: θ is not identifiable from this profile alone"
    p, e, e_ind = fit["parameters"], fit["standard_errors"], independent["standard_errors"]
    truth_values = {"psi0_V": float(twin.attrs["psi0_V"]), "x0_nm": x0_true,
                    "v_offset_V": float(twin.attrs["mip_electrolyte_V"]) - float(twin.attrs["psi0_V"]),
                    # the Gaussian the fit adds beyond the interface width the aperture model
                    # already carries (LowPass.blur_nm): 0 when that width is recorded
                    "psf_nm": float(np.sqrt(max(float(params["interface_width_nm"]) ** 2
                                                - float(getattr(lowpass, "blur_nm", None) or 0.0) ** 2, 0.0))),
                    "w90_nm": float(twin.attrs["w90_nm"])}
    store["fit"] = {
        "source": "holography", "profile_file": HOLOGRAPHY_PROFILE, "truth": truth_values,
        "fixed": {**known, "theta": float(params["theta"])},
        "values": {k: p[k] for k in fit["free"]}, "stderr": e, "stderr_independent_points": e_ind,
        "reduced_chi2": fit["reduced_chi2"], "w90_nm": fit.get("w90_nm"),
        "resolution": fit["resolution"], "noise_model": fit["noise_model"],
        "amplitude_ratio": getattr(lowpass, "amplitude_ratio", None), "amplitude_ratio_source": ratio_source,
        "gaussian_psf_only": {"psi0_V": gauss["parameters"]["psi0_V"], "psf_nm": gauss["parameters"]["psf_nm"],
                              "reduced_chi2": gauss["reduced_chi2"]},
        "theta_free": theta_free,
        "psi0_relative_error": abs(p["psi0_V"] / truth_values["psi0_V"] - 1),
        "psi0_error_in_stderr": abs(p["psi0_V"] - truth_values["psi0_V"]) / e["psi0_V"],
    }
    x = np.asarray(ds["position"].values)
    window = (x0_true - 20.0, x0_true + 35.0)
    fig = profile_fit_figure(
        x, np.asarray(ds["potential"].values), np.asarray(ds["potential_fit"].values), None, None,
        truth=(np.asarray(truth.values), None), x0_nm=p["x0_nm"],
        potential_sigma=np.asarray(sig.values), window=window,
        labels={"data": "holography profile (Fourier)", "fit": "lattice-gas fit (aperture low-pass)",
                "truth": "twin's true potential"})
    names = {"psi0_V": "ψ₀ (V)", "x0_nm": "x0, interface (nm)", "v_offset_V": "v_offset (V)",
             "psf_nm": "extra Gaussian blur (nm) beyond the recorded interface width"}
    rows = [[names[name], truth_values[name], p[name], e[name], e_ind[name],
             gauss["parameters"][name]] for name in _SHOWN]
    rows.append(["w90 (nm, derived)", truth_values["w90_nm"], fit["w90_nm"], "-", "-", gauss["w90_nm"]])
    rows.append(["reduced χ²", "-", fit["reduced_chi2"], "-", "-", gauss["reduced_chi2"]])
    figure = ctx.figure(
        fig, "spacecharge_fit",
        "The lattice-gas layer fitted to the holography section's Fourier potential profile "
        f"(the band across the Cu-like | phosphate-like interface; shown {window[1] - window[0]:.0f} nm "
        "around it, the fit uses the whole band). Top: band means (dots) with their standard "
        "errors (shaded), the fit as the map sees it (solid) and the twin's true potential "
        "(dashed; MIP step plus the space-charge layer, no aperture). Bottom: residuals (V). "
        f"The mean-inner-potential step is fixed at the known {step_v:g} V (19 − 14 V; fitted "
        "freely it trades off against ψ₀ and the interface position in a depleted layer); "
        f"ε_r = {known['eps_r']:g}, c₀ = {known['c0_m3']:.0e} m⁻³ and θ = {params['theta']:g} are "
        f"the twin's ({theta_text}). Resolution: the reconstruction aperture as a low-pass on "
        f"the electron wave, amplitude ratio {getattr(lowpass, 'amplitude_ratio', float('nan')):.3f} "
        f"({ratio_source}), interface width {getattr(lowpass, 'blur_nm', None) or 0.0:g} nm, plus a fitted "
        "Gaussian for any further blur. Fitted ψ₀ = "
        f"{p['psi0_V']:.3f} ± {e['psi0_V']:.3f} V (true {truth_values['psi0_V']:g} V), w90 = "
        f"{fit['w90_nm']:.2f} nm (true {truth_values['w90_nm']:.2f} nm); the standard errors "
        "carry the profile's noise correlation (sandwich covariance), "
        f"{e['psi0_V'] / e_ind['psi0_V']:.1f}× those of independent points.",
    )
    table = TableItem(
        rows, header=["parameter", "true", "fit", "± s.e. (correlated noise)",
                      "± s.e. if independent", "Gaussian PSF instead"],
        caption="Fit of the holography profile: the twin's values, the fit with the aperture "
                "low-pass, its standard errors with and without the noise correlation, and a fit "
                "with a Gaussian PSF in place of the aperture (a worse description of a Fourier "
                "map: larger χ²). x0 is measured from the profile start; v_offset is the "
                "electrolyte's bulk potential (its MIP minus ψ₀).",
    )
    return [figure, table]


def _simulated_fit_part(ctx: DemoContext, store: dict) -> list:
    from ionscope.report.spacecharge_figures import profile_fit_figure
    from ionscope.spacecharge.fit import IdentifiabilityError, fit_spacecharge, interface_profile

    truth = _layer_truth()
    rng = np.random.default_rng(ctx.seed)
    x = np.arange(0.0, FIELD_NM, PIXEL_NM)
    v_offset, li_offset, li_scale = -truth["psi0_V"], 0.1, 1.0
    v_true = interface_profile(x, x0_nm=INTERFACE_NM, offset=v_offset, **truth)
    li_true = interface_profile(x, x0_nm=INTERFACE_NM, quantity="li", offset=li_offset,
                                scale=li_scale, **truth)
    v = interface_profile(x, x0_nm=INTERFACE_NM, psf_nm=PSF_NM, offset=v_offset, **truth)
    li = interface_profile(x, x0_nm=INTERFACE_NM, psf_nm=LI_PSF_NM, quantity="li",
                           offset=li_offset, scale=li_scale, **truth)
    v = v + rng.normal(0, NOISE_V, x.size)
    li = li + rng.normal(0, LI_NOISE, x.size)
    fixed = {"eps_r": truth["eps_r"], "c0_m3": truth["c0_m3"]}
    fit = fit_spacecharge(x, v, NOISE_V, li=li, li_sigma=LI_NOISE, fixed=fixed, side="auto")
    try:  # the potential alone may not pin theta (a depleted layer shows it only in its tail)
        alone, alone_error = fit_spacecharge(x, v, NOISE_V, fixed=fixed, side=fit.side), None
    except IdentifiabilityError as exc:
        alone, alone_error = None, str(exc)
    true_values = {"psi0_V": truth["psi0_V"], "theta": truth["theta"], "x0_nm": INTERFACE_NM,
                   "psf_nm": PSF_NM, "v_offset_V": v_offset, "li_offset": li_offset,
                   "li_scale": li_scale, "li_psf_nm": LI_PSF_NM}
    rows = [[name, true_values[name], fit.values[name], fit.stderr[name],
             alone.values.get(name, float("nan")) if alone is not None and name in alone.free else "-",
             alone.stderr.get(name, float("nan")) if alone is not None and name in alone.free else "-"]
            for name in fit.free]
    store["fit"] = {
        "source": "simulated (the holography section did not run)",
        "truth": true_values, "fixed": fixed, "seed": ctx.seed,
        "joint": {"values": {k: fit.values[k] for k in fit.free}, "stderr": fit.stderr,
                  "reduced_chi2": fit.reduced_chi2, "w90_nm": fit.derived.get("w90_nm")},
        "potential_only": ({"values": {k: alone.values[k] for k in alone.free},
                            "stderr": alone.stderr, "reduced_chi2": alone.reduced_chi2}
                           if alone is not None else {"not_identifiable": alone_error}),
        "psi0_relative_error": abs(fit.values["psi0_V"] / truth["psi0_V"] - 1),
        "theta_error": abs(fit.values["theta"] - truth["theta"]),
    }
    fig = profile_fit_figure(x, v, fit.potential_fit, li, fit.li_fit, truth=(v_true, li_true),
                             x0_nm=fit.values["x0_nm"])
    corr = fit.correlation[fit.free.index("psi0_V"), fit.free.index("theta")]
    figure = ctx.figure(
        fig, "spacecharge_fit",
        "The holography section did not run (its twins were not available), so this fit is "
        "of SIMULATED profiles instead of the holography profile. "
        "Joint weighted fit of a potential profile (top, V) and a Li profile (middle, relative "
        "units) across an electrode | electrolyte interface (electrolyte at the right); bottom: "
        "residuals. The profiles are simulated from the lattice-gas model with the "
        f"holography twin's layer (ψ₀ = {truth['psi0_V']:g} V, θ = {truth['theta']:g}, "
        f"ε_r = {truth['eps_r']:g}, c₀ = {truth['c0_m3']:.0e} m⁻³), blurred by Gaussian PSFs "
        f"(σ = {PSF_NM:g} nm and {LI_PSF_NM:g} nm), sampled every {PIXEL_NM:g} nm with "
        f"Gaussian noise ({NOISE_V * 1e3:g} mV, {LI_NOISE:g}) at seed {ctx.seed}; dashed: the "
        "true layer before the PSF; dotted: the fitted interface. Fitted ψ₀ = "
        f"{fit.values['psi0_V']:.3f} ± {fit.stderr['psi0_V']:.3f} V, θ = "
        f"{fit.values['theta']:.4f} ± {fit.stderr['theta']:.4f} (correlation {corr:+.2f}), "
        f"reduced χ² {fit.reduced_chi2:.2f}; ε_r and c₀ fixed (they enter only through the "
        "Debye length).",
    )
    table = TableItem(
        rows, header=["parameter", "true", "joint fit", "± s.e.", "potential only", "± s.e."],
        caption="Fitted parameters with standard errors, jointly and from the potential alone: "
                "the Li profile pins the interface and narrows θ."
                + ("" if alone is not None else " From the potential alone the fit is refused: "
                   + alone_error),
    )
    return [figure, table]


@demo_section(order=62, title="Space-charge layers")
def spacecharge_section(ctx: DemoContext) -> Section:
    """Biased cells for three vacancy fractions and the lattice-gas fit of the holography
    profile (a simulated potential + Li profile if the holography section did not run)."""
    store = ctx.summary.setdefault("spacecharge", {})
    items = _bias_part(ctx, store) + _fit_part(ctx, store)
    return Section(
        "Space-charge layers",
        items,
        intro="Lattice-gas (Bikerman / Fermi-Dirac) Poisson-Boltzmann model of one mobile Li⁺ "
              "on its sites with an immobile background (user guide, spacecharge page): the closed-form "
              "first integral gives the interface field and charge, the profile follows by "
              "quadrature, a Newton solver handles a finite cell under bias, and a weighted "
              "fit recovers the layer from a measured potential profile (and a Li profile, "
              "when there is one).",
    )
