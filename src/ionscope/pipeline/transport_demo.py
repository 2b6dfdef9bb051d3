"""Demo section "Li motion": flux, front and in-plane transport of the denoised fast-EELS movie.

The study's conclusion is about motion: Li leaves toward the solid electrolyte on charge,
returns on discharge, moves in the plane of the film, and keeps moving at rest. This section
runs :func:`ionscope.transport.li_motion` on the sparse-coded Li movie of the fast operando EELS
section (:func:`ionscope.pipeline.denoise_demo.fast_li_movie`) and scores it against what the
``licoo2`` twin under it actually did (its recorded flux and front). The flux is the Fickian one,
-D grad(phi) with div(D grad phi) = dx/dt, with the bulk and
domain-boundary mobilities fitted to the maps given the twin's domain-boundary mask (its
``boundary`` variable: the structure a segmented HAADF image shows, not its flux); the
minimum-norm flux of the maps alone is shown beside it as the lower bound of the in-plane fraction
(issue 21).

Registered with :func:`~ionscope.pipeline.demo.demo_section`; key numbers go to
``ctx.summary["motion"]``.
"""

from __future__ import annotations

import json

import numpy as np

from ionscope.pipeline.demo import DemoContext, demo_section
from ionscope.pipeline.denoise_demo import fast_li_movie
from ionscope.report.html import Section, TableItem

_TWIN = "eels_licoo2"
_ORDER = ("charge", "rest", "discharge")


def _num(value, spec: str) -> str:
    """A summary number (None for NaN) formatted, or 'n/a'."""
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def _moments(codes: np.ndarray, names: dict[int, str]) -> list[tuple[int, str, str]]:
    """Mid-charge, end of charge, middle of the first rest, mid-discharge: (frame, title, state)."""
    from ionscope.report.figures import phase_runs

    picks, seen = [], set()
    for code, a, b in phase_runs(codes):
        name = names.get(code, str(code))
        if name in seen:
            continue
        seen.add(name)
        if name == "charge":
            picks += [((a + b) // 2, "mid-charge"), (b - 1, "end of charge")]
        elif name in ("rest", "discharge"):
            picks.append(((a + b) // 2, f"mid-{name}" if name == "discharge" else "rest (open circuit)"))
    return [(k, title, names.get(int(codes[k]), "")) for k, title in picks[:4]]


@demo_section(order=59, title="Li motion")
def motion_section(ctx: DemoContext) -> Section | None:
    """Flux arrows over the denoised Li maps, the front against the cycler curve, and the in-plane
    fraction of the flux per cell state, each against the twin's recorded motion."""
    if not ctx.makes(_TWIN):
        return None
    from ionscope.report.transport_figures import flux_arrows_figure, front_timeline_figure, in_plane_figure
    from ionscope.transport import li_motion, state_codes
    from ionscope.transport.truth import direction_error_deg, twin_motion_by_state

    chain = fast_li_movie(ctx)
    ds, sparse = chain["ds"], chain["sparse"]
    li_params = json.loads(ds.attrs["licoo2_parameters"])
    twin = ctx.simulator("licoo2", seed=ctx.seed, **li_params)  # the noiseless cell under the EELS twin
    level = float(twin["front_position_true"].attrs["level"])
    series = sparse.assign_coords(state=ds["state"])
    _, lower = li_motion(series, level=level)  # the maps alone: minimum-norm flux, lower bound
    result, summary = li_motion(series, level=level, boundaries=twin["boundary"])
    mob = summary["mobility"]
    twin_params = json.loads(twin.attrs["parameters"])
    true_ratio = twin_params["d_boundary_nm2_s"] / twin_params["d_bulk_nm2_s"]
    truth = twin_motion_by_state(twin)
    codes, names = state_codes(ds["li_fraction_true"], ds["state"])
    angles = direction_error_deg(twin["flux_y_true"].values, twin["flux_x_true"].values,
                                 result["flux_y"].values, result["flux_x"].values)
    states = [s for s in _ORDER if s in summary["states"]]

    def value(name, key):
        v = summary["states"][name][key]
        return float("nan") if v is None else float(v)

    ctx.summary["motion"] = {
        "method": summary["method"], "front_level": level, "window_frames": summary["window_frames"],
        "states": {s: {**summary["states"][s], "truth": truth[s]} for s in states},
        "direction_error_deg_median": float(np.median(angles)), "direction_error_deg_mean": float(angles.mean()),
        "noise": summary["noise"],
        "mobility": {k: v for k, v in mob.items() if k != "model"},
        "minimum_norm_in_plane_fraction": {s: lower["states"][s]["in_plane_fraction"] for s in states},
    }

    t_min = np.asarray(ds["time"].values, dtype=float) / 60.0
    moments = _moments(codes, names)
    frames = [k for k, _, _ in moments]
    x_nm, y_nm = ds["x"].values, ds["y"].values
    arrows = flux_arrows_figure(
        [("measured", sparse.values[frames], result["flux_y"].values[frames], result["flux_x"].values[frames]),
         ("twin truth", ds["li_fraction_true"].values[frames], twin["flux_y_true"].values[frames],
          twin["flux_x_true"].values[frames])],
        x_nm, y_nm, [f"{title}\n{t_min[k]:.0f} min" for k, title, _ in moments], [s for _, _, s in moments])
    arrows_item = ctx.figure(
        arrows, "li_motion_flux",
        "Li flux at key moments of the protocol. Top: the sparse-coded fast-EELS Li maps (Li fraction 0-1, "
        "viridis) with the flux the continuity equation gives for them (white arrows: the Fickian flux −D∇φ "
        "with ∇·(D∇φ) = ∂x/∂t, D the bulk and domain-boundary mobilities fitted to the maps given the "
        "domain-boundary mask, Li crossing only the electrolyte face at the top). Bottom: the twin's true Li "
        "field and its true flux (mean over the frame). Arrows of one column share a scale (the longest spans "
        "three pixels); axes in nm, the solid electrolyte at the top edge.")
    front = result["front_position_nm"].values
    true_front = twin["front_position_true"].values
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            front_mean, true_mean = np.nanmean(front, axis=1), np.nanmean(true_front, axis=1)
    from ionscope.transport import rate_of_change

    runs = np.concatenate([[0], np.cumsum(np.diff(codes) != 0)])
    true_v = rate_of_change(true_mean, twin["time"].values, runs, summary["window_frames"])
    cycler = (twin["record"].values / 60.0, twin["cycler_voltage"].values) if "cycler_voltage" in twin else None
    timeline = front_timeline_figure(
        t_min, codes, names, ds["voltage"].values,
        {"measured (± roughness)": (front_mean, result["front_roughness_nm"].values), "twin truth": (true_mean, None)},
        {"measured": result["front_velocity_nm_per_s"].values, "twin truth": true_v}, cycler=cycler)
    timeline_item = ctx.figure(
        timeline, "li_motion_front",
        f"The delithiation front, the iso-line x = {level:g} (0.7 of the pristine Li level), against the cycler "
        "curve. Top: cell voltage (V; line: cycler log, markers: frames coloured by state). Middle: front depth "
        "below the electrolyte interface (nm, mean over the interface; band: its roughness, the standard "
        "deviation along the interface), measured on the sparse-coded maps and the twin's. Bottom: front velocity "
        "normal to the front (pm/s, positive: advancing into the electrode), from a straight-line fit over "
        f"{summary['window_frames']} frames within each cell state.")
    fig = in_plane_figure(
        states,
        {"measured (Fickian flux, fitted mobility)": ([value(s, "in_plane_fraction") for s in states],
                                                      [value(s, "in_plane_fraction_error") for s in states]),
         "maps alone (minimum-norm, lower bound)": (
             [float("nan") if lower["states"][s]["in_plane_fraction"] is None else lower["states"][s]["in_plane_fraction"]
              for s in states],
             [float("nan") if lower["states"][s]["in_plane_fraction_error"] is None
              else lower["states"][s]["in_plane_fraction_error"] for s in states])},
        {"twin truth": [truth[s]["in_plane_fraction"] for s in states]},
        {"measured": ([value(s, "mean_flux_nm_per_s") for s in states],
                      [value(s, "mean_flux_nm_per_s_error") for s in states]),
         "twin truth": ([truth[s]["mean_flux_nm_per_s"] for s in states], [0.0] * len(states))})
    in_plane_item = ctx.figure(
        fig, "li_motion_in_plane",
        "Per cell state. Left: the fraction of Σ|J| (component by component) that runs in the plane of the film "
        "rather than toward or away from the electrolyte: the Fickian flux with the fitted mobilities and the "
        "minimum-norm flux of the maps alone (a lower bound), bars with standard errors over the state's frames, "
        "and the twin's (diamonds). The mobilities are fitted on the states Fick's law describes on the maps "
        "(not discharge: the twin inserts Li inside the film, electron-limited at the current collector, a source "
        "the law does not have) and route the flux of every state: inserted Li is supplied along the same paths of "
        "least resistance. Right: mean |J| (Li fraction × pm/s): the motion does not stop at rest.")
    rows = []
    for s in states:
        t = truth[s]
        rows.append([
            s, str(summary["states"][s]["frames"]),
            f"{1e3 * value(s, 'front_velocity_nm_per_s'):.2f} ± {1e3 * value(s, 'front_velocity_nm_per_s_error'):.2f}",
            f"{1e3 * t['front_velocity_nm_per_s']:.2f}",
            f"{value(s, 'in_plane_fraction'):.3f} ± {value(s, 'in_plane_fraction_error'):.3f}",
            f"{t['in_plane_fraction']:.3f}",
            _num(lower["states"][s]["in_plane_fraction"], ".3f"),
            f"{1e3 * value(s, 'mean_flux_nm_per_s'):.2f}", f"{1e3 * t['mean_flux_nm_per_s']:.2f}",
        ])
    table = TableItem(rows, ["state", "frames", "front velocity (pm/s)", "truth", "in-plane fraction", "truth",
                             "maps alone (lower bound)", "mean |J| (pm/s)", "truth"],
                      caption="Measured on the sparse-coded fast-EELS movie (± standard errors over the state's "
                              "frames) and the twin's recorded motion. Flux direction error where |J_true| is in "
                              f"the top half of its frame: median {np.median(angles):.0f}°, mean "
                              f"{angles.mean():.0f}°. Fitted mobilities (pooled over "
                              f"{', '.join(mob['pooled_states'])}): D_bulk {_num(mob['d_bulk_nm2_s'], '.2f')} ± "
                              f"{_num(mob['d_bulk_nm2_s_error'], '.2f')} nm²/s, D_boundary "
                              f"{_num(mob['d_boundary_nm2_s'], '.1f')} ± {_num(mob['d_boundary_nm2_s_error'], '.1f')} "
                              "nm²/s.")
    ch, re = ("charge" in states), ("rest" in states)
    conclusion = []
    if ch:
        conclusion.append(f"on charge the front advances at {1e3 * value('charge', 'front_velocity_nm_per_s'):.1f} "
                          f"± {1e3 * value('charge', 'front_velocity_nm_per_s_error'):.1f} pm/s (truth "
                          f"{1e3 * truth['charge']['front_velocity_nm_per_s']:.1f})")
    if re:
        conclusion.append(f"at rest Li keeps moving: mean |J| {1e3 * value('rest', 'mean_flux_nm_per_s'):.2f} "
                          f"pm/s (truth {1e3 * truth['rest']['mean_flux_nm_per_s']:.2f}), the front still moving "
                          f"at {1e3 * value('rest', 'front_velocity_nm_per_s'):.1f} pm/s (truth "
                          f"{1e3 * truth['rest']['front_velocity_nm_per_s']:.1f})")
    if ch:
        low = lower["states"]["charge"]["in_plane_fraction"]
        conclusion.append(f"{100 * value('charge', 'in_plane_fraction'):.0f} % of the charge flux runs in-plane "
                          f"(the twin: {100 * truth['charge']['in_plane_fraction']:.0f} %; the maps alone show at "
                          f"least {100 * (low or 0.0):.0f} %)")
    if re:
        conclusion.append(f"{100 * value('rest', 'in_plane_fraction'):.0f} % at rest (the twin: "
                          f"{100 * truth['rest']['in_plane_fraction']:.0f} %)")
    intro = ("Where does the Li go? The continuity equation ∂x/∂t = −∇·J turns the denoised movie into a flux, "
             "but the maps fix only its divergence: a flux that changes no map - Li running along a fast domain "
             "boundary and into its grains sideways - is invisible to the maps alone, whose smallest flux (−∇φ, "
             "∇²φ = ∂x/∂t) is a lower bound of the in-plane transport. The structure closes the gap: with the "
             "domain boundaries a HAADF image shows, Fick's law J = −D∇θ fixes the flux. The bulk and boundary "
             f"mobilities fitted to the maps themselves (D_boundary / D_bulk = {_num(mob['ratio'], '.0f')} ± "
             f"{_num(mob['ratio_error'], '.0f')}; the twin's {true_ratio:.0f}) give the Fickian flux −D∇φ with ∇·(D∇φ) = "
             f"∂x/∂t, fitted on the states the law describes ({', '.join(mob.get('pooled_states', [])) or 'none'}) "
             "and used in every state. In numbers: " + "; ".join(conclusion) + ".")
    return Section("Li motion", [arrows_item, timeline_item, table, in_plane_item], intro=intro)


__all__ = ["motion_section"]
