r"""EELS twins: operando STEM-EELS spectrum images of LiCoO2 and SR-EELS across Cu / LASGTP.

Digital twins of :doc:`/guide/eels`. ``eels_licoo2`` renders the Li field of the ``licoo2`` twin
(:mod:`ionscope.simulate.licoo2`) as low-loss spectrum images (time, y, x, energy), where the
Li-K edge (onset ~55 eV, near-edge peak ~62 eV) overlaps Co-M2,3 (onset ~59 eV, delayed
maximum); ``eels_sr`` makes a spatially resolved EELS image (position, energy) across a
Cu / LASGTP interface with Li enriched in the electrolyte next to the Cu.

This module holds the twins: their parameter dataclasses (:class:`EELSLiCoO2Params`,
:class:`EELSSRParams`), the sample structure (thickness, background, drift), the registration
with :func:`~ionscope.simulate.register_twin` and the Dataset assembly. The spectra themselves
- edge shapes (Li-K, Co-M2,3 of each Co valence, the electrolyte and Cu edges), the phase
references :math:`R_\mathrm{LiCoO2} = \mathrm{LiK} + \mathrm{CoM}_{3+}`,
:math:`R_\mathrm{CoO2} = \mathrm{CoM}_{4+}`, :math:`R_\mathrm{Co3O4} = \mathrm{CoM}_{8/3+}`,
:math:`R_\mathrm{SE}`, :math:`R_\mathrm{Cu}`, the power-law background, the energy resolution
and the forward model :func:`expected_counts` - are the numpy kernels of
:mod:`ionscope.simulate.eels_spectra` (its docstring has the formulas and the table of edge
constants); their names are re-exported here.

Spectrum of a pixel (``eels_licoo2``)
-------------------------------------
With the licoo2 twin's true Li fraction :math:`x` (Li per Co) and Li-site fraction :math:`s`
(1 in the film, ``layer_site_fraction`` in the interfacial layer, region 1, whose remaining
:math:`1 - s` of the Co sits in Co3O4), relative thickness :math:`t`, background :math:`A, r`,
energy shift :math:`\delta`:

.. math::

    \lambda(E) = D\, \Delta E \left[ A \left(\frac{E - \delta}{E_b}\right)^{-r}
      + \kappa\, t \left( x R_\mathrm{LiCoO2} + (s - x) R_\mathrm{CoO2}
      + (1 - s) R_\mathrm{Co3O4} \right)(E - \delta) \right] \ast G_\mathrm{FWHM},

    \mathrm{counts} \sim \mathrm{Poisson}(\lambda),

with dose :math:`D` (incident electrons per pixel per frame), dispersion :math:`\Delta E`,
:math:`E_b` = 50 eV, :math:`A` the background's scattering probability density (1/eV per
electron) at 50 eV, :math:`\kappa` = ``edge_scale_per_eV`` the density of the LiCoO2 Co-M
maximum, and :math:`G` the Gaussian energy resolution (``resolution_eV`` FWHM), applied on
the channel grid (:func:`expected_counts`, :func:`resolution_matrix`). For bulk pixels
(:math:`s = 1`) this is :math:`x R_\mathrm{LiCoO2} + (1 - x) R_\mathrm{CoO2} = x\, \mathrm{LiK}
+ \mathrm{CoM}(E; x)`: the background-subtracted spectrum is exactly
:math:`a_\mathrm{rich} R_\mathrm{LiCoO2} + a_\mathrm{poor} R_\mathrm{CoO2}` with
:math:`a_\mathrm{rich} / (a_\mathrm{rich} + a_\mathrm{poor}) = x`. In the layer, three
references give :math:`x = a_\mathrm{LiCoO2} / (a_\mathrm{LiCoO2} + a_\mathrm{CoO2} +
a_\mathrm{Co3O4})` exactly (all references are per Co), and its Co3O4 component makes it a
separate NMF phase; a two-reference fit there gives x only approximately.

Per-pixel structure (fixed in time): :math:`t = 1 + \tau f(y, x)` with ``thickness_variation``
:math:`\tau` and :math:`f` a random sum of four long-wavelength plane waves scaled to
:math:`\max |f| = 1`; :math:`A = a\, t\, (1 + \alpha u_1)`, :math:`r = r_0 + \rho u_2` with
:math:`u_{1,2}` uniform on [-1, 1] per pixel (``background_a``, ``background_a_spread``,
``background_r``, ``background_r_spread``).

Energy drift: :math:`\delta(k, y, x) = d\, g((k + 1/2) / N) + \sigma_j \xi`, with ``drift_eV``
:math:`d`, :math:`N` the number of licoo2 frames, :math:`g` a smooth random curve on [0, 1]
(linear trend plus three sine modes) scaled to :math:`\max |g| = 1`, and per-pixel jitter
:math:`\xi \sim N(0, 1)` times ``jitter_eV``. A feature at :math:`E_0` appears at
:math:`E_0 + \delta` (the whole spectrum, background included, moves, as when the zero-loss
peak drifts); ``energy_shift_true`` stores :math:`\delta`.

References (``ref_*``): the same model for one pure phase with :math:`t = 1`, :math:`A = a`,
:math:`r = r_0`, no drift, the same resolution, at ``reference_dose``; ``ref_*`` are Poisson
counts with background (as measured), ``ref_*_edge`` the noiseless expected edge counts without
background (truth); with ``noise=False`` the ``ref_*`` are noiseless too. So a noiseless,
background-free, drift-free bulk pixel equals
:math:`(D / D_\mathrm{ref})\, t\, [x\, \mathrm{ref\_licoo2\_edge} + (1 - x)\,
\mathrm{ref\_coo2\_edge}]`.

Randomness: the Li field is ``simulate("licoo2", seed=seed, **li_params)`` (noiseless); the
EELS randomness comes from ``SeedSequence([seed, 0xEE15])``, split into the sample (thickness,
background, drift curve), the references and one stream per licoo2 frame, so a frame's spectra
do not depend on which other frames are rendered.

SR-EELS (``eels_sr``)
---------------------
Rows at positions :math:`p` (nm) across a Cu / LASGTP interface at :math:`p_i`: electrolyte
fraction :math:`\varphi(p) = \Phi((p - p_i) / \sigma_i)` (Cu for :math:`p < p_i`), Li relative to
the bulk electrolyte

.. math::

    \ell(p) = \varphi(p) \left[1 + (f - 1)\, \Phi\!\left(\frac{p_i + W - p}{\sigma_e}\right)\right],

(``li_profile_true``; enrichment factor :math:`f`, width :math:`W` = ``enrichment_width_nm``: the
excess :math:`\ell - \varphi` falls to half its maximum at :math:`p_i + W`), and

.. math::

    \lambda(p, E) = D\, \Delta E \left[A(p) (E / E_b)^{-r(p)} + \kappa\, t(p)
    \left((1 - \varphi) R_\mathrm{Cu} + \varphi R_\mathrm{SE,0} + \ell R_\mathrm{Li}\right)\right]
    \ast G,

where :math:`R_\mathrm{Li}` = 1.5 LiK(SE) (the bulk electrolyte's Li) and
:math:`R_\mathrm{SE,0} = R_\mathrm{SE} - R_\mathrm{Li}`; :math:`t(p) = 1 + \tau\, g(p)`
(smooth), :math:`A, r` as above per row.

References
----------
Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed. (Springer,
2011) (power-law background, delayed M2,3 edges). Kikkawa et al., J. Phys. Chem. C 119, 15823
(2015) (Li-K / Co-M separation). Nomura et al., Nat. Commun. 11, 2824 (2020) (operando
STEM-EELS of LiCoO2); Nomura et al., Nano Lett. 18, 5892 (2018) (NMF of STEM-EELS, the Li-poor
LiCoO2 + Co3O4 interfacial layer); Nomura et al., Angew. Chem. Int. Ed. 58, 5292 (2019) (the
Li-ion space-charge layer at Cu / LASGTP, SR-EELS Li-K enrichment). Which result is in which
paper is as summarised in METHODS [open: verify before quoting].
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, InputError
from ionscope.simulate.eels_params import EELSLiCoO2Params, EELSSRParams
from ionscope.simulate.registry import ProgressCallback, register_twin, simulate, twin_attrs, twin_provenance
import ionscope.simulate.eels_spectra as eels_spectra
from ionscope.simulate.eels_spectra import (  # noqa: F401  (all of eels_spectra.__all__ is re-exported)
    BACKGROUND_REFERENCE_EV,
    EDGES,
    ELECTROLYTE_COMPOSITION,
    KERNEL_SIGMAS,
    PHASES,
    DelayedEdge,
    KEdge,
    delayed_edge,
    edge_shape,
    energy_axis,
    expected_counts,
    k_edge,
    phase_edge,
    phase_edges,
    powerlaw_density,
    reference_spectra,
    resolution_matrix,
    smooth_step,
)

STEP_LICOO2 = "ionscope.simulate.eels_licoo2"
STEP_SR = "ionscope.simulate.eels_sr"

#: Entropy tag that separates the EELS random streams from the licoo2 twin's.
_SEED_TAG = 0xEE15


# --------------------------------------------------------------------------- helpers

#: Suggested analysis windows (eV) for ``eels_licoo2`` spectra; see ``attrs["windows"]``.
LICOO2_WINDOWS: dict[str, Any] = {
    "background": [40.0, 52.0],
    "fit": [52.0, 90.0],
    "S_A": [54.0, 60.0],
    "S_B": [64.0, 85.0],
    "li_k": [54.0, 60.0],
    "note": (
        "background: power-law pre-edge window (no edges below the Li-K onset at 55 eV); fit: "
        "MLLS window over Li-K and Co-M2,3 (clip to the energy axis); S_A spans the Li-K onset "
        "before most of the Co-M rise, S_B the delayed Co-M maximum. R = S_A/S_B is not exactly "
        "linear in x (the Co-M shape changes with valence): calibrate R0 on ref_coo2 and R1 on "
        "ref_licoo2, or use MLLS with ref_licoo2 and ref_coo2 (exact for bulk pixels)."
    ),
}

#: Suggested analysis windows (eV) for ``eels_sr`` spectra.
SR_WINDOWS: dict[str, Any] = {
    "background": [48.0, 54.0],
    "li_k": [55.0, 62.0],
    "ti_background": [30.0, 34.0],
    "ti_m": [37.0, 46.0],
    "cu_m": [74.0, 90.0],
    "note": (
        "background: power-law window for li_k, between the Ti-M2,3 maximum and the Li-K onset "
        "(the Ti-M tail enters it in proportion to the electrolyte, so Li-K window integrals "
        "are affine in the Li content: compare with the bulk electrolyte, e.g. half-way "
        "between the enriched plateau and the bulk); ti_background: power-law window for ti_m, "
        "whose profile marks the Cu / electrolyte interface."
    ),
}


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Sum of four random long-wavelength plane waves, scaled to max |f| = 1."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx] + 0.5
    k = rng.uniform(-1.5, 1.5, size=(4, 2))
    phase = rng.uniform(0, 2 * np.pi, size=4)
    amp = rng.uniform(0.5, 1.0, size=4)
    f = sum(
        a * np.cos(2 * np.pi * (ky * yy / ny + kx * xx / nx) + ph)
        for (ky, kx), ph, a in zip(k, phase, amp)
    )
    f = f - f.mean()
    peak = np.abs(f).max()
    return f / peak if peak > 0 else f


def _smooth_curve(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random curve g on [0, 1] sampled at (k + 1/2)/n, scaled to max |g| = 1 on a fine
    grid (so a sub-series samples the same curve)."""
    fine = np.linspace(0.0, 1.0, 1025)
    coef = rng.normal(size=4)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    g = coef[0] * (fine - 0.5) * 2 + sum(
        c * np.sin(np.pi * (m + 1) * fine + ph) for m, (c, ph) in enumerate(zip(coef[1:], phase))
    )
    g = g / np.abs(g).max()
    return np.interp((np.arange(n) + 0.5) / n, fine, g)


def _per_pixel_background(
    t: np.ndarray, p: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    u = rng.uniform(-1.0, 1.0, size=(2,) + t.shape)
    a = p.background_a * t * (1.0 + p.background_a_spread * u[0])
    r = p.background_r + p.background_r_spread * u[1]
    return a, r


def _references(
    p: Any, energy: np.ndarray, phases: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`reference_spectra` of a twin's parameters ``p``: measured (Poisson with ``rng``
    unless ``p.noise`` is False, with background), noiseless edge and background references."""
    return reference_spectra(
        energy, phases, background_a=p.background_a, background_r=p.background_r,
        resolution_eV=p.resolution_eV, counts_per_density=p.reference_dose * p.dispersion_eV,
        edge_scale_per_eV=p.edge_scale_per_eV, rng=rng if p.noise else None,
    )


def _dataset_attrs(twin: str, seed: int, p: Any, model: str, windows: dict, **extra) -> dict:
    return twin_attrs(
        twin, seed, p, primary="spectra", model=model,
        dose=float(p.dose),
        reference_dose=float(p.reference_dose),
        windows=json.dumps(windows),
        edges=json.dumps({k: dataclasses.asdict(v) | {"kind": type(v).__name__} for k, v in EDGES.items()}),
        phases=json.dumps(PHASES),
        **extra,
    )


def spectrum_image(ds: xr.Dataset, frame: int) -> xr.DataArray:
    """The (y, x, energy) spectrum image of frame ``frame`` of an ``eels_licoo2`` Dataset.

    Equivalent to ``ds["spectra"].isel(time=frame)`` (the ``time`` coordinate is kept as a
    scalar); raises :class:`InputError` for a Dataset without ``spectra``, :class:`ConfigError` for a
    bad index.
    """
    if "spectra" not in ds or "time" not in ds["spectra"].dims:
        raise InputError(
            "dataset has no (time, y, x, energy) 'spectra'; expected an eels_licoo2 run"
        )
    n = ds.sizes["time"]
    if isinstance(frame, (bool, np.bool_)) or not isinstance(frame, (int, np.integer)) or not (
        -n <= frame < n
    ):
        raise ConfigError(f"frame must be an integer in [{-n}, {n - 1}], got {frame!r}")
    return ds["spectra"].isel(time=int(frame))


# --------------------------------------------------------------------------- eels_licoo2

LICOO2_PHASES = ("licoo2", "coo2", "co3o4")

MODEL_LICOO2 = (
    "Per pixel counts ~ Poisson(D dE [A ((E - d)/50 eV)^-r + k t (x R_LiCoO2 + (s - x) R_CoO2 + "
    "(1 - s) R_Co3O4)(E - d)] * G_FWHM): licoo2 twin Li fraction x and Li-site fraction s (1 in "
    "the film, layer_site_fraction in the interfacial layer whose rest is Co3O4); R_LiCoO2 = "
    "LiK + CoM(Co3+), R_CoO2 = CoM(Co4+), R_Co3O4 = CoM(Co8/3+), all per Co; LiK a smoothed "
    "step at 55 eV with a (1 + u/5)^-1.2 tail and a near-edge peak at 62 eV; CoM delayed "
    "Hartree-Slater-like edges (onsets 59.0/59.6/58.3 eV, maxima ~9-11 eV above); relative "
    "thickness t smooth, background A, r per pixel; shift d = smooth per-frame drift + "
    "per-pixel jitter; G a Gaussian resolution applied on the channel grid."
)


@register_twin(
    "eels_licoo2",
    "operando STEM-EELS spectrum images (time, y, x, energy) of the licoo2 twin's Li field: "
    "Li-K overlapping Co-M2,3, with references and ground truth",
    params=EELSLiCoO2Params,
)
def simulate_eels_licoo2(
    params: EELSLiCoO2Params | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate operando STEM-EELS spectrum images of LiCoO2 (see the module docstring).

    Computes: renders every selected frame in memory (numpy-backed; frames in parallel threads),
    unless the spectra are streamed (``stream``, or more than :data:`STREAM_BYTES`): then
    ``spectra`` is a dask array with one chunk per frame, rendered as it is computed (written).

    Parameters
    ----------
    params : EELSLiCoO2Params, optional
        Model parameters; defaults to ``EELSLiCoO2Params()``.
    seed : int
        Seed of the licoo2 twin and of the EELS noise, structure and drift.
    progress : callable, optional
        ``progress(done, total)`` after each rendered frame.

    Returns
    -------
    xarray.Dataset
        ``spectra`` (time, y, x, energy) float32 counts; ``li_fraction_true``,
        ``energy_shift_true`` (time, y, x); ``region``, ``thickness_true``,
        ``background_a_true``, ``background_r_true``, ``co3o4_fraction_true`` (y, x);
        ``voltage``, ``current``, ``charge``, ``state`` (time); references ``ref_licoo2``,
        ``ref_coo2``, ``ref_co3o4``, ``ref_electrolyte`` (measured, with background),
        ``ref_*_edge`` (noiseless, background-free) and ``ref_background`` (energy). A single
        frame is ``ds.isel(time=k)`` or :func:`spectrum_image`.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("eels_licoo2", seed=0, channels=64, frames=[0],
    ...               li_params={"ny": 24, "nx": 16})
    >>> ds["spectra"].dims, ds["spectra"].shape
    (('time', 'y', 'x', 'energy'), (1, 24, 16, 64))
    >>> image = spectrum_image(ds, 0)  # the (y, x, energy) spectrum image of frame 0
    """
    p = EELSLiCoO2Params() if params is None else params
    li = simulate("licoo2", seed=seed, dose=None, **p.li_params)
    li_p = json.loads(li.attrs["parameters"])
    n_total = li.sizes["time"]
    sel = p.frame_indices(n_total)
    root = np.random.SeedSequence([int(seed), _SEED_TAG])
    seq_sample, seq_refs, seq_frames = root.spawn(3)
    frame_seqs = seq_frames.spawn(n_total)
    rng_sample = np.random.default_rng(seq_sample)

    ny, nx = li.sizes["y"], li.sizes["x"]
    energy = energy_axis(p.energy_start_eV, p.dispersion_eV, p.channels)
    region = li["region"].values.astype(np.int8)
    site = np.where(region == 1, float(li_p["layer_site_fraction"]), 1.0)
    thickness = 1.0 + p.thickness_variation * _smooth_field((ny, nx), rng_sample)
    bg_a, bg_r = _per_pixel_background(thickness, p, rng_sample)
    drift = p.drift_eV * _smooth_curve(n_total, rng_sample) + 0.0  # no -0.0
    x_true = li["li_fraction_true"].values  # float32, (n_total, ny, nx)

    shifts = np.empty((sel.size, ny, nx), dtype=np.float64)
    t_flat, s_flat = thickness.ravel(), site.ravel()
    a_flat = bg_a.ravel() if p.background else None
    r_flat = bg_r.ravel() if p.background else None
    counts_per_density = p.dose * p.dispersion_eV

    def frame_shift(k: int, rng: np.random.Generator) -> np.ndarray:
        shift = np.full(ny * nx, drift[k])
        if p.jitter_eV > 0:
            shift += p.jitter_eV * rng.standard_normal(ny * nx)
        return shift

    def render_frame(k: int) -> np.ndarray:
        """Frame ``k``'s spectra (ny, nx, channels) float32: from its own random stream only."""
        rng = np.random.default_rng(frame_seqs[k])
        shift = frame_shift(k, rng)
        x = x_true[k].ravel().astype(np.float64)
        amounts = t_flat[:, None] * np.stack([x, s_flat - x, 1.0 - s_flat], axis=1)
        lam = expected_counts(
            energy, LICOO2_PHASES, amounts, background_a=a_flat, background_r=r_flat,
            shift_eV=shift, resolution_eV=p.resolution_eV,
            counts_per_density=counts_per_density, edge_scale_per_eV=p.edge_scale_per_eV,
        )
        out = rng.poisson(lam) if p.noise else lam
        return out.reshape(ny, nx, p.channels).astype(np.float32)

    if p.stream or sel.size * ny * nx * p.channels * 4 > STREAM_BYTES:
        spectra = _streamed_spectra(render_frame, sel, (ny, nx, p.channels))
        for i, k in enumerate(sel):  # the shifts are the first draws of each frame's stream: cheap
            shifts[i] = frame_shift(int(k), np.random.default_rng(frame_seqs[int(k)])).reshape(ny, nx)
        if progress is not None:
            progress(sel.size, sel.size)
    else:
        spectra = np.empty((sel.size, ny, nx, p.channels), dtype=np.float32)

        def render(i: int) -> None:
            k = int(sel[i])
            spectra[i] = render_frame(k)
            shifts[i] = frame_shift(k, np.random.default_rng(frame_seqs[k])).reshape(ny, nx)

        workers = max(1, min(os.cpu_count() or 1, sel.size, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done, fut in enumerate([pool.submit(render, i) for i in range(sel.size)], 1):
                fut.result()
                if progress is not None:
                    progress(done, sel.size)

    ref_phases = ("licoo2", "coo2", "co3o4", "electrolyte")
    refs, ref_edges, ref_bg = _references(p, energy, ref_phases, np.random.default_rng(seq_refs))

    sub = li.isel(time=sel)
    time = sub["time"].values
    h = float(li_p["pixel_nm"])
    tyx = {"time": time, "y": h, "x": h}
    tyxe = {**tyx, "energy": energy}
    yx = {"y": h, "x": h}
    e_coord = {"energy": energy}
    variables = [
        signal(spectra, ("time", "y", "x", "energy"), name="spectra", units="counts",
               coords=tyxe, long_name="EELS spectrum images (counts per channel)",
               attrs={"dose": float(p.dose), "noise": "poisson" if p.noise else "none"}),
        signal(sub["li_fraction_true"].values, ("time", "y", "x"), name="li_fraction_true",
               units="1", coords=tyx, long_name="true Li fraction x (Li per Co)"),
        signal(shifts, ("time", "y", "x"), name="energy_shift_true", units="eV", coords=tyx,
               long_name="true energy shift (a feature at E0 appears at E0 + shift)"),
        signal(region, ("y", "x"), name="region", units="1", coords=yx,
               long_name="region: 0 LiCoO2 bulk, 1 interfacial Li-poor layer (LiCoO2 + Co3O4)",
               attrs={"flag_values": [0, 1], "flag_meanings": "bulk interfacial_layer"}),
        signal(1.0 - site, ("y", "x"), name="co3o4_fraction_true", units="1", coords=yx,
               long_name="fraction of the Co in Co3O4"),
        signal(thickness, ("y", "x"), name="thickness_true", units="1", coords=yx,
               long_name="relative thickness t"),
        signal(bg_a, ("y", "x"), name="background_a_true", units="1/eV", coords=yx,
               long_name="background density A at 50 eV (per incident electron)"),
        signal(bg_r, ("y", "x"), name="background_r_true", units="1", coords=yx,
               long_name="background exponent r"),
    ]
    for name in ("voltage", "current", "charge", "state"):
        v = sub[name]
        variables.append(signal(v.values, ("time",), name=name, units=v.attrs["units"],
                                coords={"time": time}, long_name=v.attrs.get("long_name"),
                                attrs={k: a for k, a in v.attrs.items()
                                       if k in ("flag_values", "flag_meanings")}))
    for k, phase in enumerate(ref_phases):
        variables.append(signal(refs[k], ("energy",), name=f"ref_{phase}", units="counts",
                                coords=e_coord,
                                long_name=f"measured {phase} reference (with background)",
                                attrs={"dose": float(p.reference_dose)}))
        variables.append(signal(ref_edges[k], ("energy",), name=f"ref_{phase}_edge",
                                units="counts", coords=e_coord,
                                long_name=f"noiseless background-free {phase} edges (truth)",
                                attrs={"dose": float(p.reference_dose)}))
    variables.append(signal(ref_bg, ("energy",), name="ref_background", units="counts",
                            coords=e_coord, long_name="noiseless background of the references",
                            attrs={"dose": float(p.reference_dose)}))
    ds = xr.Dataset({v.name: v for v in variables})
    derived = {
        "layer_site_fraction": float(li_p["layer_site_fraction"]),
        "licoo2_frames_total": int(n_total),
        "licoo2_frame_index": sel.tolist(),
        "background_counts_per_channel_at_50eV": p.dose * p.dispersion_eV * p.background_a,
        "edge_counts_per_channel_at_co_m_max": p.dose * p.dispersion_eV * p.edge_scale_per_eV,
        "pixel_edge_over_ref_edge": "(dose / reference_dose) * thickness_true",
        "li_fraction_from_mlls": "x = a_licoo2 / (a_licoo2 + a_coo2 [+ a_co3o4])",
    }
    ds.attrs = _dataset_attrs("eels_licoo2", seed, p, MODEL_LICOO2, LICOO2_WINDOWS,
                              derived=json.dumps(derived), licoo2_parameters=json.dumps(li_p))
    return twin_provenance(ds, STEP_LICOO2, p, seed, history=provenance(li),
                           variables=("spectra", "li_fraction_true"))


#: Spectra of ``eels_licoo2`` larger than this (bytes) are always rendered lazily (``stream``).
STREAM_BYTES = 2**30


def _streamed_spectra(render_frame, frames: np.ndarray, shape: tuple[int, int, int]):
    """A dask array (n_frames, ny, nx, channels) float32 with one chunk per frame, frame ``k`` of
    ``frames`` rendered by ``render_frame(k)`` when that chunk is computed."""
    import dask
    import dask.array

    blocks = [dask.array.from_delayed(dask.delayed(render_frame, pure=True)(int(k)), shape, dtype=np.float32)[None]
              for k in frames]
    return dask.array.concatenate(blocks, axis=0)


# --------------------------------------------------------------------------- eels_sr

SR_PHASES = ("cu", "electrolyte_no_li", "electrolyte_li")

MODEL_SR = (
    "SR-EELS rows across Cu / LASGTP: electrolyte fraction phi = Phi((p - p_i)/sigma_i), Li "
    "relative to bulk l = phi [1 + (f - 1) Phi((p_i + W - p)/sigma_e)]; counts ~ Poisson(D dE "
    "[A (E/50 eV)^-r + k t ((1 - phi) R_Cu + phi R_SE,noLi + l R_Li)] * G_FWHM), R_Li = 1.5 "
    "LiK(SE) per formula unit of Li1.5Al0.3Ti1.7Si0.2P2.8O12, R_Cu the Cu-M2,3 delayed edge; "
    "t smooth along the profile, A and r per row."
)


@register_twin(
    "eels_sr",
    "SR-EELS image (position, energy) across a Cu / LASGTP interface with Li enriched in the "
    "electrolyte near the Cu, with the true Li profile",
    params=EELSSRParams,
)
def simulate_eels_sr(
    params: EELSSRParams | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate a spatially resolved EELS image across Cu / LASGTP (see the module docstring).

    Computes: renders the image and references in memory (numpy-backed).

    Returns
    -------
    xarray.Dataset
        ``spectra`` (position, energy) float32 counts; ``li_profile_true`` (Li relative to the
        bulk electrolyte), ``electrolyte_fraction_true``, ``thickness_true`` (position);
        references ``ref_cu``, ``ref_electrolyte`` (measured), ``ref_cu_edge``,
        ``ref_electrolyte_edge``, ``ref_li_k_edge`` (the bulk electrolyte's Li-K; noiseless),
        ``ref_background``. Attrs ``interface_position_nm``, ``enrichment_width_nm``,
        ``enrichment``, ``windows``.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("eels_sr", seed=0)
    >>> ds["spectra"].dims, float(ds.attrs["enrichment_width_nm"])
    (('position', 'energy'), 13.0)
    """
    p = EELSSRParams() if params is None else params
    root = np.random.SeedSequence([int(seed), _SEED_TAG, 1])
    seq_sample, seq_refs, seq_noise = root.spawn(3)
    rng_sample = np.random.default_rng(seq_sample)
    energy = energy_axis(p.energy_start_eV, p.dispersion_eV, p.channels)
    pos = np.arange(p.positions) * p.position_step_nm
    phi = smooth_step(pos, p.interface_position_nm, p.interface_width_nm)
    # Phi((p_i + W - p) / sigma_e): the enriched zone ends at p_i + W
    zone = smooth_step(p.interface_position_nm + p.enrichment_width_nm, pos, p.enrichment_edge_nm)
    li_profile = phi * (1.0 + (p.enrichment - 1.0) * zone)
    thickness = 1.0 + p.thickness_variation * _smooth_field((p.positions, 1), rng_sample)[:, 0]
    bg_a, bg_r = _per_pixel_background(thickness, p, rng_sample)
    amounts = thickness[:, None] * np.stack([1.0 - phi, phi, li_profile], axis=1)
    lam = expected_counts(
        energy, SR_PHASES, amounts,
        background_a=bg_a if p.background else None,
        background_r=bg_r if p.background else None,
        shift_eV=None, resolution_eV=p.resolution_eV,
        counts_per_density=p.dose * p.dispersion_eV, edge_scale_per_eV=p.edge_scale_per_eV,
    )
    spectra = (np.random.default_rng(seq_noise).poisson(lam) if p.noise else lam).astype(np.float32)
    if progress is not None:
        progress(1, 1)
    refs, ref_edges, ref_bg = _references(p, energy, ("cu", "electrolyte", "electrolyte_li"),
                                          np.random.default_rng(seq_refs))

    pc = {"position": pos}
    e_coord = {"energy": energy}
    variables = [
        signal(spectra, ("position", "energy"), name="spectra", units="counts",
               coords={"position": pos, "energy": energy},
               long_name="SR-EELS image (counts per channel)",
               attrs={"dose": float(p.dose), "noise": "poisson" if p.noise else "none"}),
        signal(li_profile, ("position",), name="li_profile_true", units="1", coords=pc,
               long_name="true Li content relative to the bulk electrolyte"),
        signal(phi, ("position",), name="electrolyte_fraction_true", units="1", coords=pc,
               long_name="true electrolyte fraction (1 - Cu fraction)"),
        signal(thickness, ("position",), name="thickness_true", units="1", coords=pc,
               long_name="relative thickness t"),
        signal(refs[0], ("energy",), name="ref_cu", units="counts", coords=e_coord,
               long_name="measured Cu reference (with background)"),
        signal(refs[1], ("energy",), name="ref_electrolyte", units="counts", coords=e_coord,
               long_name="measured bulk electrolyte reference (with background)"),
        signal(ref_edges[0], ("energy",), name="ref_cu_edge", units="counts", coords=e_coord,
               long_name="noiseless background-free Cu-M2,3 edge (truth)"),
        signal(ref_edges[1], ("energy",), name="ref_electrolyte_edge", units="counts",
               coords=e_coord, long_name="noiseless background-free bulk electrolyte edges"),
        signal(ref_edges[2], ("energy",), name="ref_li_k_edge", units="counts", coords=e_coord,
               long_name="noiseless Li-K of the bulk electrolyte's Li (part of the above)"),
        signal(ref_bg, ("energy",), name="ref_background", units="counts", coords=e_coord,
               long_name="noiseless background of the references"),
    ]
    for v in variables[4:]:
        v.attrs["dose"] = float(p.reference_dose)
    ds = xr.Dataset({v.name: v for v in variables})
    ds.attrs = _dataset_attrs(
        "eels_sr", seed, p, MODEL_SR, SR_WINDOWS,
        interface_position_nm=float(p.interface_position_nm),
        enrichment_width_nm=float(p.enrichment_width_nm),
        enrichment=float(p.enrichment),
    )
    return twin_provenance(ds, STEP_SR, p, seed, variables=("spectra",))


__all__ = [
    *eels_spectra.__all__,
    "LICOO2_WINDOWS",
    "STREAM_BYTES",
    "SR_WINDOWS",
    "EELSLiCoO2Params",
    "EELSSRParams",
    "spectrum_image",
    "simulate_eels_licoo2",
    "simulate_eels_sr",
]
