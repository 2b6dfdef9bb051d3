"""Demo section: space-charge layers under bias and the joint fit of a potential + Li profile.

Registered with :func:`~ionscope.pipeline.demo.demo_section` and imported by
:func:`~ionscope.pipeline.demo.run_demo` through :data:`~ionscope.pipeline.demo.SECTION_MODULES`.

1. Biased cells (:func:`ionscope.spacecharge.bias.bias_profile`): a 150 nm solid electrolyte
   between two blocking electrodes at 2 V for Li site occupancies theta = 0.9, 0.99, 0.999 -
   the layers at the positive and the negative electrode are asymmetric because Li+ can only
   pile up into vacancies (METHODS section 6, the seed's asymmetry).
2. A joint fit (:func:`ionscope.spacecharge.fit.fit_spacecharge`) of a potential profile and a
   Li profile simulated from the lattice-gas model with the holography twin's layer (psi0,
   theta, eps_r, c0 of :class:`ionscope.simulate.holography.HolographyParams`), blurred by a
   Gaussian PSF and given Gaussian noise at the demo's seed - not the reconstructed holography
   profile, whose section may not have run. The summary records fitted vs true values.
"""

from __future__ import annotations

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


def _fit_part(ctx: DemoContext, store: dict) -> list:
    from ionscope.report.spacecharge_figures import profile_fit_figure
    from ionscope.spacecharge.fit import fit_spacecharge, interface_profile

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
    alone = fit_spacecharge(x, v, NOISE_V, fixed=fixed, side=fit.side)
    true_values = {"psi0_V": truth["psi0_V"], "theta": truth["theta"], "x0_nm": INTERFACE_NM,
                   "psf_nm": PSF_NM, "v_offset_V": v_offset, "li_offset": li_offset,
                   "li_scale": li_scale, "li_psf_nm": LI_PSF_NM}
    rows = [[name, true_values[name], fit.values[name], fit.stderr[name],
             alone.values.get(name, float("nan")) if name in alone.free else "-",
             alone.stderr.get(name, float("nan")) if name in alone.free else "-"]
            for name in fit.free]
    store["fit"] = {
        "truth": true_values, "fixed": fixed, "seed": ctx.seed,
        "joint": {"values": {k: fit.values[k] for k in fit.free}, "stderr": fit.stderr,
                  "reduced_chi2": fit.reduced_chi2, "w90_nm": fit.derived.get("w90_nm")},
        "potential_only": {"values": {k: alone.values[k] for k in alone.free},
                           "stderr": alone.stderr, "reduced_chi2": alone.reduced_chi2},
        "psi0_relative_error": abs(fit.values["psi0_V"] / truth["psi0_V"] - 1),
        "theta_error": abs(fit.values["theta"] - truth["theta"]),
    }
    fig = profile_fit_figure(x, v, fit.potential_fit, li, fit.li_fit, truth=(v_true, li_true),
                             x0_nm=fit.values["x0_nm"])
    corr = fit.correlation[fit.free.index("psi0_V"), fit.free.index("theta")]
    figure = ctx.figure(
        fig, "spacecharge_fit",
        "Joint weighted fit of a potential profile (top, V) and a Li profile (middle, relative "
        "units) across an electrode | electrolyte interface (electrolyte at the right); bottom: "
        "residuals. The profiles are SIMULATED here from the lattice-gas model with the "
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
                "the Li profile pins the interface and narrows θ.",
    )
    return [figure, table]


@demo_section(order=62, title="Space-charge layers")
def spacecharge_section(ctx: DemoContext) -> Section:
    """Biased cells for three vacancy fractions and a joint potential + Li profile fit."""
    store = ctx.summary.setdefault("spacecharge", {})
    items = _bias_part(ctx, store) + _fit_part(ctx, store)
    return Section(
        "Space-charge layers",
        items,
        intro="Lattice-gas (Bikerman / Fermi-Dirac) Poisson-Boltzmann model of one mobile Li⁺ "
              "on its sites with an immobile background (METHODS section 6): the closed-form "
              "first integral gives the interface field and charge, the profile follows by "
              "quadrature, a Newton solver handles a finite cell under bias, and a joint "
              "weighted fit recovers the layer from a potential and a Li profile.",
    )
