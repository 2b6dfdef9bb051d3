"""Demo section for electron holography: hologram to potential to the space-charge drop.

Registered with :func:`~ionscope.pipeline.demo.demo_section` and imported by
:func:`~ionscope.pipeline.demo.run_demo` through :data:`~ionscope.pipeline.demo.SECTION_MODULES`.
It reads the ``holography`` and ``holography_ps`` twins (parameters in
:data:`~ionscope.pipeline.demo.DEMO_PARAMETERS`), reconstructs them (Fourier and
phase-shifting), converts the phase to a potential map with the known thickness map, fits the
interface profile over a band up to :data:`BAND_PX` wide (``erfc`` step with the
mean-inner-potential jump; the Fourier map's aperture as a wave low-pass with the measured
amplitude contrast and the twin's interface width, the phase-shifting map's blur fitted),
removes the leakage field of a biased twin with the harmonic model, and records the numbers in
``ctx.summary["holography"]``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import xarray as xr

from ionscope.pipeline.demo import DemoContext, demo_section
from ionscope.report.html import Section, TableItem

_TWIN = "holography"
_PS_TWIN = "holography_ps"
#: Widest band of the interface profile (px); the band starts 4 nm below the edge ramp and is
#: narrowed to end 8 px above the bottom of a smaller map. The twin's interface is a straight
#: line, so a wider band averages more pixels (benchmarks/holography_precision.py: at 30 px the
#: Fourier drop reads ~+6 % noise-free, the fit's own error exceeds 5 % at the default dose).
BAND_PX = 120
#: Amplitude-ratio windows: distance (nm) from the interface on either side (away from the
#: aperture's ringing and inside the profile).
AMPLITUDE_WINDOW_NM = (8.0, 40.0)
MODEL = "erfc"
#: Bias of the leakage example (V).
LEAKAGE_BIAS_V = 4.0
#: Erosion of the vacuum (px) for the leakage fit on the phase-shifting map (no aperture ringing).
PS_ERODE_PX = 4


def _geometry(ds: xr.Dataset) -> dict[str, Any]:
    """Band rows, profile end points (px) and the thickness there (nm), from the twin's attrs:
    the band starts 4 nm below the end of the edge ramp (uniform thickness apart from the
    wedge) and is :data:`BAND_PX` rows wide, or as wide as the map allows (down to 8 px above
    its bottom); the profile spans the interface +-(x_if - 12 px), at most 112 px."""
    from ionscope.errors import ConfigError

    ny, nx = ds.sizes["y"], ds.sizes["x"]
    pixel = float(ds.attrs["pixel_size_nm"])
    ramp = float(json.loads(ds.attrs["parameters"])["edge_ramp_nm"])
    y0 = int(np.ceil((float(ds.attrs["vacuum_edge_nm"]) + ramp + 4.0) / pixel))
    width = min(BAND_PX, ny - 8 - y0)
    if width < 8:
        raise ConfigError(f"the holography twin's lamella ({ny} px high, edge ramp ending at row {y0 - 8}) "
                          "leaves no room for the profile band; use a taller map (ny) or a smaller vacuum_height_nm")
    row = y0 + 0.5 * (width - 1)  # band_profile's centre line: rows y0 .. y0 + width - 1
    x_if = float(ds.attrs["interface_position_nm"]) / pixel
    half = min(x_if - 12, nx - 12 - x_if, 112)
    start, end = (row, x_if - half), (row, x_if + half)
    t_nm = float(np.median(ds["thickness_nm"].values[y0:y0 + width, int(x_if)]))
    return {"row": row, "rows": (y0, y0 + width), "width": width, "start": start, "end": end,
            "x_if_px": x_if, "thickness_nm": t_nm, "pixel_nm": pixel}


def _amplitude_ratio(amplitude: xr.DataArray, geom: dict[str, Any]) -> float:
    """Reconstructed wave amplitude on the start (electrode) side over the end (electrolyte)
    side of the interface: medians over the band rows, :data:`AMPLITUDE_WINDOW_NM` from it."""
    from ionscope.errors import ConfigError

    y0, y1 = geom["rows"]
    a = np.asarray(amplitude.values[y0:y1], dtype=np.float64)
    d = (np.arange(a.shape[1]) - geom["x_if_px"]) * geom["pixel_nm"]
    near, far = AMPLITUDE_WINDOW_NM
    left, right = a[:, (d < -near) & (d > -far)], a[:, (d > near) & (d < far)]
    if left.size == 0 or right.size == 0:
        raise ConfigError("the holography map has no room either side of the interface to measure the "
                          f"amplitude ratio ({near:g}-{far:g} nm); centre the interface or widen the map")
    return float(np.median(left) / np.median(right))


def _vacuum_reference(phase: xr.DataArray, region: np.ndarray) -> xr.DataArray:
    """Phase with the median of the vacuum (away from the borders and the edge) at zero."""
    from scipy.ndimage import binary_erosion

    vac = binary_erosion(region == 0, iterations=8)
    vac[:8], vac[:, :8], vac[:, -8:] = False, False, False
    out = phase - float(np.median(phase.values[vac]))
    out.attrs = dict(phase.attrs)
    return out


def _fit_numbers(fit: xr.Dataset) -> dict[str, float]:
    out = {}
    for key, name in (("drop", "drop_V"), ("w90", "w90_nm"), ("interface", "position_nm"), ("jump", "jump_V")):
        if key in fit:
            out[name] = float(fit[key])
            out[name + "_error"] = float(fit[f"{key}_error"])
    out["chi2_reduced"] = float(fit.attrs["chi2_reduced"])
    return out


def _profile_and_fit(phase, thickness, geom, kv, blur, eps_r):
    """Potential map (phase over C_E times the twin's thickness map, NaN in vacuum: across a
    wide band the wedge would otherwise spread the rows by +-2 % of the ~17 V level, swamping
    the noise in the band's standard errors), its band profile and the step fit."""
    from ionscope.holography.potential import phase_to_potential
    from ionscope.holography.workflow import profile_across_interface

    potential = phase_to_potential(phase, kv, thickness.where(thickness > 0))
    res = profile_across_interface(potential, start=geom["start"], end=geom["end"], width=geom["width"],
                                   model=MODEL, side="end", step=True, blur=blur, eps_r=eps_r)
    return potential, res, res


@demo_section(order=60, title="Electron holography")
def holography_section(ctx: DemoContext) -> Section | None:
    """Hologram, FFT and aperture, phase, potential; the interface profile with its fit;
    Fourier versus phase-shifting; leakage-field removal."""
    if not (ctx.makes(_TWIN) and ctx.makes(_PS_TWIN)):
        return None
    from ionscope.holography import reconstruct_offaxis, reconstruct_phase_shifting
    from ionscope.holography.leakage import vacuum_flatness
    from ionscope.holography.workflow import vacuum_erosion_px
    from ionscope.profiles import LowPass, band_profile
    from ionscope.report.holography_figures import (
        hologram_overview_figure,
        interface_profile_figure,
        leakage_figure,
        method_comparison_figure,
    )

    ds = ctx.dataset(_TWIN)
    kv = float(ds.attrs["kV"])
    c_e = float(ds.attrs["interaction_constant_rad_per_V_nm"])
    params = json.loads(ds.attrs["parameters"])
    eps_r = float(params["eps_r"])
    geom = _geometry(ds)
    region = ds["region"].values

    # --- Fourier (sideband) reconstruction
    # the camera's MTF (the twin's detector model, as a lab measures it for its camera) divided
    # out of the sideband
    mtf = params.get("mtf_cutoff")
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"], mtf=mtf)
    phase_f = _vacuum_reference(rec["phase"], region)
    # the aperture filters the wave: its amplitude contrast across the interface (measured on the
    # reconstruction) and the interface width ahead of the aperture (the twin's, as if known from
    # a high-resolution image) both shape the filtered profile (profiles.LowPass)
    lowpass = LowPass.from_attrs(dict(rec.attrs), phase_per_unit=c_e * geom["thickness_nm"])
    lowpass = dataclasses.replace(lowpass, amplitude_ratio=_amplitude_ratio(rec["amplitude"], geom),
                                  blur_nm=float(params["interface_width_nm"]))
    pot_f, prof_f, fit_f = _profile_and_fit(phase_f, ds["thickness_nm"], geom, kv, lowpass, eps_r)
    # the Fourier profile as 'ionscope holo profile' writes it, for the space-charge section
    ctx.save_dataset(xr.merge([prof_f, fit_f[["fit"]]], combine_attrs="override").assign_attrs(
        lowpass.to_attrs()), "holography_profile.zarr")

    # --- phase-shifting reconstruction of the same specimen
    ps = ctx.dataset(_PS_TWIN)
    rec_ps = reconstruct_phase_shifting(ps["stack"], ps["reference_stack"], vacuum=ps.attrs["vacuum_box"])
    phase_ps = _vacuum_reference(rec_ps["phase"], ps["region"].values)
    pot_ps, prof_ps, fit_ps = _profile_and_fit(phase_ps, ps["thickness_nm"], geom, kv, "fit", eps_r)

    truth = band_profile(ds["potential_true"], geom["start"], geom["end"], width=geom["width"])["profile"]
    truth_drop, truth_w90 = float(ds.attrs["psi0_V"]), float(ds.attrs["w90_nm"])
    x_if_nm = float(ds.attrs["interface_position_nm"]) - geom["start"][1] * geom["pixel_nm"]

    # --- leakage field of biased twins: the harmonic model fitted on the vacuum (eroded by the
    # resolution: the inverse aperture radius for the Fourier map, 4 px for phase-shifting) and
    # scored against the twin's true stray phase (twin_leakage_scores) on the off-axis and the
    # phase-shifting reconstruction and - isolating the model - on the true phase plus the
    # off-axis shot noise (noisy minus noise-free reconstruction)
    from ionscope.holography.leakage import twin_leakage_scores

    def biased(name, rec_of):
        twin = ctx.dataset(name, bias_V=LEAKAGE_BIAS_V, save=False)
        clean = ctx.dataset(name, bias_V=LEAKAGE_BIAS_V, noise=False, save=False)
        rec_b = rec_of(twin)
        return twin, rec_b, rec_b["phase"].values.astype(float) - rec_of(clean)["phase"].values

    biased_f, rec_b, noise_b = biased(_TWIN, lambda d: reconstruct_offaxis(d["hologram"], d["reference"]))
    biased_ps, rec_bps, noise_bps = biased(_PS_TWIN, lambda d: reconstruct_phase_shifting(
        d["stack"], d["reference_stack"], vacuum=d.attrs["vacuum_box"]))
    resolution_px = vacuum_erosion_px(dict(rec.attrs), rec["phase"])  # one resolution length
    band_b = np.zeros(region.shape, dtype=bool)
    band_b[geom["rows"][0]: geom["rows"][1], int(np.ceil(geom["start"][1])): int(geom["end"][1]) + 1] = True
    band_b &= region != 0
    leak_scores: dict[str, Any] = {}
    for path, twin, phase_in, noise, erode in (
            ("true_phase_plus_noise", biased_f, biased_f["phase_true"].values + noise_b, noise_b, resolution_px),
            ("phase_shifting", biased_ps, rec_bps["phase"], noise_bps, PS_ERODE_PX),
            ("reconstruction", biased_f, rec_b["phase"], noise_b, resolution_px)):
        leak_scores[path], leak = twin_leakage_scores(phase_in, twin, erode_px=erode, noise=noise,
                                                      regions={"profile_band": band_b})
    rec_s = leak_scores["reconstruction"]  # leak: the off-axis reconstruction's fit (the last one)
    from scipy.ndimage import binary_erosion

    flat_unbiased = vacuum_flatness(rec["phase"], binary_erosion(region == 0, iterations=resolution_px))

    stats = {k: rec.attrs[k] for k in ("sideband_position_px", "aperture_px", "fringe_spacing_nm",
                                        "fringe_sampling_px", "fringe_contrast", "carrier_frequency_per_nm")}
    summary: dict[str, Any] = {
        "kv": kv, "interaction_constant_rad_per_V_nm": c_e, "thickness_at_profile_nm": geom["thickness_nm"],
        "profile": {"from_px": list(geom["start"]), "to_px": list(geom["end"]), "width_px": geom["width"],
                    "model": MODEL, "amplitude_ratio": lowpass.amplitude_ratio, "interface_width_nm": lowpass.blur_nm},
        "truth": {"drop_V": truth_drop, "w90_nm": truth_w90, "position_nm": x_if_nm},
        "fourier": {**stats, "resolution": lowpass.describe(), "mtf_cutoff_per_px": mtf, **_fit_numbers(fit_f)},
        "phase_shifting": {"frames": int(ps.sizes["shift"]), "r2_median": float(np.nanmedian(rec_ps["r2"].values)),
                           "blur_nm": float(fit_ps["blur"]), **_fit_numbers(fit_ps)},
        "leakage": {
            "bias_V": LEAKAGE_BIAS_V, "degree": int(leak.attrs["degree"]),
            "erosion_px": resolution_px,
            "removed_fraction_vs_truth": rec_s["removed_fraction_fit"],
            "removed_fraction_vacuum_vs_truth": rec_s["removed_fraction_vacuum"],
            "model_error_rms_rad": rec_s["model_error_rms_fit_rad"],
            "reconstruction": rec_s,
            "true_phase_plus_noise": leak_scores["true_phase_plus_noise"],
            "phase_shifting": leak_scores["phase_shifting"],
            "vacuum_slope_before_rad_per_nm": leak.attrs["flatness_before"]["slope_rad_per_nm"],
            "vacuum_slope_after_rad_per_nm": leak.attrs["flatness_after"]["slope_rad_per_nm"],
            "vacuum_rms_after_rad": leak.attrs["residual_rms_rad"],
            "unbiased_vacuum_slope_rad_per_nm": flat_unbiased["slope_rad_per_nm"],
            "unbiased_vacuum_rms_rad": flat_unbiased["rms_about_plane_rad"],
        },
    }
    ctx.summary["holography"] = summary

    f, p, tr = summary["fourier"], summary["phase_shifting"], summary["truth"]
    overview = ctx.figure(
        hologram_overview_figure(ds["hologram"], phase_f, pot_f, sideband_px=stats["sideband_position_px"],
                                 aperture_px=stats["aperture_px"], band=(geom["start"], geom["end"], geom["width"])),
        "holography_overview",
        f"Simulated off-axis hologram of a Cu-like electrode (left) | phosphate electrolyte (right) "
        f"lamella below vacuum (top), {ds.sizes['y']} × {ds.sizes['x']} px at {geom['pixel_nm']:g} nm, "
        f"{kv:g} kV, {float(ds.attrs['dose']):g} electrons per pixel. Top left: counts (grey; inset: "
        f"the fringes, spacing {stats['fringe_spacing_nm']:.3g} nm = {stats['fringe_sampling_px']:.3g} px, "
        f"contrast {stats['fringe_contrast']:.2f}). Top right: modulus of the FFT (log scale, centred; "
        f"axes in FFT pixels) with the centre band, the two sidebands and the soft aperture "
        f"(radius {stats['aperture_px']:.1f} px, a third of the carrier) cut out around the sideband "
        "(solid circle; dashed: its conjugate). Bottom left: the phase (rad) after dividing the camera's "
        "MTF out of the sideband, division by the vacuum reference and unwrapping, vacuum at zero. Bottom right: the potential map "
        f"φ / (C_E t) in V (C_E = {c_e:.4g} rad/(V nm), t the twin's thickness map - edge ramp "
        f"and wedge, {geom['thickness_nm']:.1f} nm at the interface in the profile band; blank: vacuum); "
        "dashed box: the profile band. Axes in nm.",
    )
    profiles = ctx.figure(
        interface_profile_figure(
            [{"profile": prof_f, "fit": fit_f, "label": "Fourier"},
             {"profile": prof_ps, "fit": fit_ps, "label": "phase-shifting"}],
            truth=truth, window=(x_if_nm - 20.0, x_if_nm + 30.0)),
        "holography_profile",
        f"Top: potential (V) along the profile band ({geom['width']} px = "
        f"{geom['width'] * geom['pixel_nm']:g} nm wide, parallel to the straight interface) across it "
        "(shown 20 nm either side; the fits use the whole band length), band "
        "means (dots) with their standard errors (shaded; from the spread across the band, corrected "
        "for correlated noise), and the fits of a one-sided erfc space-charge decay plus a sharp "
        "mean-inner-potential step (solid: as fitted, i.e. including the resolution - the Fourier "
        "map's aperture as a low-pass on the wave with the measured amplitude ratio "
        f"{lowpass.amplitude_ratio:.3f} across the interface and its {lowpass.blur_nm:g} nm width, "
        "the phase-shifting map's fitted Gaussian blur; "
        "dotted: the fitted model without blur). Green dashed: the twin's true potential. Shaded "
        "spans: the interface and w90 of each fit. Bottom: field E = -dV/dx (V/nm, solid) and "
        f"charge density ρ/e = -ε₀ε_r V''/e (per nm³, dashed; ε_r = {eps_r:g}) of the fitted models.",
    )
    comparison = ctx.figure(
        method_comparison_figure([(phase_f, "Fourier (sideband) reconstruction"),
                                  (phase_ps, f"Phase-shifting, {p['frames']} frames")]),
        "holography_fourier_vs_phase_shifting",
        "Phase maps (rad, same colour scale; vacuum at zero) of the same lamella from one off-axis "
        f"hologram (left; resolution set by the aperture, ~{1 / lowpass.cutoff_per_nm:.1f} nm) and from a "
        f"phase-shifting stack of {p['frames']} holograms with drift and uneven steps (right; "
        f"resolution set by the pixel; median R² of the per-pixel fit {p['r2_median']:.3f}).",
    )

    def pm(d, key, fmt="{:.3g}"):
        return f"{fmt.format(d[key])} ± {fmt.format(d[key + '_error'])}"

    table = TableItem(
        [["drop of the space-charge layer (V)", pm(f, "drop_V"), pm(p, "drop_V"), f"{tr['drop_V']:g}"],
         ["w90 (nm)", pm(f, "w90_nm"), pm(p, "w90_nm"), f"{tr['w90_nm']:.2f}"],
         ["interface position (nm)", pm(f, "position_nm", "{:.2f}"), pm(p, "position_nm", "{:.2f}"), f"{tr['position_nm']:.2f}"],
         ["mean-inner-potential step (V)", pm(f, "jump_V"), pm(p, "jump_V"),
          f"{float(ds.attrs['mip_electrode_V']) - float(ds.attrs['mip_electrolyte_V']):g}"],
         ["reduced χ²", f"{f['chi2_reduced']:.2f}", f"{p['chi2_reduced']:.2f}", ""]],
        ["quantity", "Fourier", "phase-shifting", "truth"],
        caption="Step fits of the interface profile (standard errors from the fit covariance with "
        "the profile's correlated noise; w90 is the distance holding 90 % of the drop). The erfc "
        "shape approximates the lattice-gas layer of the twin (on noise-free lattice-gas profiles "
        "it recovers the drop within 5 % and w90 within 0.4 nm; next to the 5 V mean-inner-potential "
        "step it reads the drop 1-4 % low); 'ionscope spacecharge fit' fits the physical model to "
        "the same profile (the space-charge section).",
    )
    leak_d = summary["leakage"]
    paths = [leak_d["reconstruction"], leak_d["phase_shifting"], leak_d["true_phase_plus_noise"]]

    def row(label, fmt):
        return [label, *(fmt(s) for s in paths)]

    def change(region):
        return lambda s: f"{s['specimen_change_rms_rad'][region]:.3f} / {s['phase_noise_rad'][region]:.3f}"

    leak_table = TableItem(
        [row("harmonic model degree (cross-validated)", lambda s: f"{s['degree']}"),
         row("stray phase removed over the fit mask (vs. truth)", lambda s: f"{100 * s['removed_fraction_fit']:.1f} %"),
         row("stray phase removed over the whole vacuum", lambda s: f"{100 * s['removed_fraction_vacuum']:.1f} %"),
         row("model error over the fit mask (rad rms)", lambda s: f"{s['model_error_rms_fit_rad']:.4f}"),
         row("specimen phase change / noise within 15 nm of the edge (rad rms)", change("edge_15nm")),
         row("specimen phase change / noise in the profile band (rad rms)", change("profile_band")),
         row("the fit's own error estimate in the profile band (stray_phase_error, rad rms)",
             lambda s: f"{s['predicted_change_rms_rad']['profile_band']:.3f}"),
         ["vacuum phase slope before → after (rad/nm)",
          f"{leak_d['vacuum_slope_before_rad_per_nm']:.2e} → {leak_d['vacuum_slope_after_rad_per_nm']:.2e}", "", ""],
         ["unbiased twin: vacuum slope (rad/nm), rms about a plane (rad)",
          f"{leak_d['unbiased_vacuum_slope_rad_per_nm']:.1e}, {leak_d['unbiased_vacuum_rms_rad']:.3f}", "", ""]],
        ["leakage field", "off-axis", "phase-shifting", "true phase + off-axis shot noise"],
        caption=f"Twins biased to {LEAKAGE_BIAS_V:g} V leak field into the vacuum: the projected "
        "potential of the charges on the biased and the counter electrode beyond the map "
        f"({paths[0]['stray_rms_fit_rad']:.2f} rad rms over the fit mask). A harmonic (Laplace) model - the "
        "projected potential of charge-free space is a 2-D harmonic function - is fitted to the "
        "vacuum phase by linear least squares (degree by spatial block cross-validation, "
        "one-standard-error rule) on the vacuum eroded by the resolution (off-axis: "
        f"{leak_d['erosion_px']} px, the inverse aperture radius; phase-shifting: {PS_ERODE_PX} px) and "
        "subtracted. Scored against the twin's true stray phase (1 - rms of the model error / rms of "
        "the stray phase, constants left out) on the off-axis and the phase-shifting reconstruction "
        "and, isolating the model, on the true phase plus the off-axis shot noise; the specimen's "
        "change is compared with its phase noise (robust standard deviation, per pixel) and with "
        "the error the fit reports for its model (a block jackknife of the coefficients plus the "
        "change one more degree makes). The "
        "model alone is limited by the shot noise. The off-axis reconstruction adds its own smooth "
        "vacuum error: the centre band's biprism Fresnel fringes streak through the sideband and are "
        "not multiplied by the object wave, so the reference division leaves an error that grows "
        "with the leakage phase (references at shifted fringes separate it, a double biprism removes "
        "the fringes); the phase-shifting solve "
        "separates the centre band per pixel, and its reference is matched to the stack's drift. "
        "The continuation into the specimen amplifies the fit's error with the distance from the "
        "vacuum. Seed-averaged numbers: benchmarks/holography_leakage.py.",
    )
    leak_fig = ctx.figure(
        leakage_figure(rec_b["phase"], leak),
        "holography_leakage",
        f"Leakage field of the twin biased to {LEAKAGE_BIAS_V:g} V, off-axis reconstruction. Top left: the "
        "phase (rad) with the vacuum the model is fitted on (white outline: eroded by the resolution, "
        "away from the image borders). Top right: the fitted harmonic model, continued through the "
        "lamella. Bottom left: the phase minus the model. Bottom right: the model's standard error "
        "(rad, log scale; a block jackknife of its coefficients plus the change one more degree "
        "makes): a few mrad over the fitted vacuum, growing with the distance from it - where it "
        "exceeds the phase noise, the correction is an extrapolation to be read with care.",
    )
    return Section(
        "Electron holography",
        [overview, profiles, table, comparison, leak_table, leak_fig],
        intro=(
            "Off-axis electron holography measures the phase of electrons that crossed the "
            "specimen, φ = C_E ∫V dz. Reconstructed from a hologram (Fourier) or a stack of "
            "fringe-shifted holograms (phase-shifting), divided by the specimen thickness, it "
            "gives the electrostatic potential - here of the twin's Cu | electrolyte interface "
            f"with a {truth_drop:g} V space-charge drop within {truth_w90:.1f} nm (w90), on top of the "
            "materials' mean-inner-potential step."
        ),
    )


__all__ = ["holography_section"]
