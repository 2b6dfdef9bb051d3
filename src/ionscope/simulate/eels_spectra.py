r"""EELS spectra of the twins: edge shapes, phase references and the forward model (numpy).

The physics behind the EELS twins of :mod:`ionscope.simulate.eels` as pure numpy kernels: the
Li-K and delayed M2,3 / L2,3 edge shapes, the Co valence states, the phases' edge-only
reference spectra, the channel energy axis, the power-law background, the Gaussian energy
resolution and :func:`expected_counts`, which combines them into the noiseless expected counts
of a batch of spectra. No randomness, no xarray: the twins draw the sample structure and the
Poisson noise.

Edge shapes
-----------
All shapes are functions of the energy loss :math:`E` (eV), built from the smoothed step
:math:`\Phi(z) = \tfrac12 [1 + \mathrm{erf}(z / \sqrt2)]` (:func:`smooth_step`) and
:math:`u = \max(E - E_0, 0)`. Each shape is scaled so that its maximum (on a 0.005 eV grid,
before the resolution) equals its *strength* :math:`h`; strengths are relative to the Co-M2,3
maximum of LiCoO2 (= 1, per Co).

* K edge (Li-K), :func:`k_edge`: a smoothed step with a slowly decaying tail and a near-edge
  peak,

  .. math::

      K(E) \propto \Phi\!\left(\frac{E - E_0}{w}\right)
      \left[\left(1 + \frac{u}{\varepsilon}\right)^{-s}
      + p\, \exp\!\left(-\frac{(E - E_p)^2}{2 \sigma_p^2}\right)\right].

* Delayed edge (M2,3 of Co, Ti, Cu; L2,3 of Al, Si, P), :func:`delayed_edge`: a
  Hartree-Slater-like onset with a small immediate jump :math:`j`, a broad delayed maximum
  (at :math:`q = 1` without the tail, about 0.7 :math:`\Delta` above the onset with it) and a
  slow power-law decay,

  .. math::

      M(E) \propto \Phi\!\left(\frac{E - E_0}{w}\right)
      \left[j + (1 - j)\, \frac{2 q}{1 + q^2}\right]
      \left(1 + \frac{u}{U}\right)^{-s}, \qquad q = u / \Delta .

The constants (:data:`EDGES`; the twins also store them as JSON in ``attrs["edges"]``):

============  ==========  =====  ======  =====  ====================================  ======
edge          E0 (eV)     w      Delta   j      tail / peak                           h
============  ==========  =====  ======  =====  ====================================  ======
Li-K          55.0        0.5    -       -      eps 5, s 1.2; p 1.5 at 62.0, sig 2.0  0.30
Li-K (SE)     55.5        0.5    -       -      eps 5, s 1.2; p 1.3 at 62.0, sig 2.2  0.30
Co-M Co3+     59.0        0.7    14.0    0.25   U 30, s 1.0                           1.00
Co-M Co4+     59.6        0.6    13.0    0.35   U 30, s 1.0                           1.05
Co-M Co8/3+   57.8        1.0    18.0    0.08   U 30, s 1.0                           0.90
Ti-M2,3       35.0        0.8    12.0    0.20   U 25, s 1.0                           0.60
Al-L2,3       73.0        0.8    12.0    0.30   U 30, s 1.0                           0.50
Si-L2,3       99.0        0.8    12.0    0.30   U 30, s 1.0                           0.50
P-L2,3        132.0       0.8    12.0    0.30   U 30, s 1.0                           0.30
Cu-M2,3       74.0        1.0    10.0    0.30   U 40, s 1.0                           1.20
============  ==========  =====  ======  =====  ====================================  ======

With the tail the maxima lie about 0.7 Delta above the onsets: Li-K at 61.9 eV, Co-M at
68.9 (Co3+), 68.5 (Co4+), 70.6 eV (Co8/3+), Ti-M2,3 at 43.6, Al-L2,3 at 81.6, Cu-M2,3 at 81.9 eV.

Co valence: Co3+ in LiCoO2, Co4+ in the Li-free end member CoO2 (the valence of
delithiated Li_xCoO2 at x = 0), Co8/3+ in the spinel Co3O4. Higher valence moves the Co-M onset
up and sharpens it (Co4+ 0.6 eV above Co3+); the mixed-valence Co3O4 edge starts 1.2 eV lower,
rises more softly and peaks later, which makes the interfacial layer a separate NMF phase.
Delithiated Li_xCoO2 is modelled as a two-valence mixture: per Co,
:math:`\mathrm{CoM}(E; x) = x\, \mathrm{CoM}_{3+}(E) + (1 - x)\, \mathrm{CoM}_{4+}(E)`, so the
valence change is *linear* in x and captured exactly by two references.

Phase references (edge-only, per Co atom, relative thickness 1; :data:`PHASES`,
:func:`phase_edges`): :math:`R_\mathrm{LiCoO2} = \mathrm{LiK} + \mathrm{CoM}_{3+}`,
:math:`R_\mathrm{CoO2} = \mathrm{CoM}_{4+}`, :math:`R_\mathrm{Co3O4} = \mathrm{CoM}_{8/3+}`;
the electrolyte :math:`R_\mathrm{SE}` is one formula unit of
Li1.5Al0.3Ti1.7Si0.2P2.8O12 (LASGTP-like, Ge ignored): 1.5 LiK(SE) + 1.7 TiM + 0.3 AlL + 0.2 SiL
+ 2.8 PL; Cu is one Cu-M2,3 edge. ``electrolyte_li`` is the electrolyte's Li (1.5 LiK(SE)) and
``electrolyte_no_li`` the rest.

Forward model
-------------
:func:`expected_counts` gives, for spectra with phase amounts :math:`n_k` (per Co, formula unit
or Cu, times relative thickness), background :math:`A, r` and energy shift :math:`\delta`,

.. math::

    \lambda(E) = D\, \Delta E \left[ A \left(\frac{E - \delta}{E_b}\right)^{-r}
      + \kappa \sum_k n_k R_k(E - \delta) \right] \ast G_\mathrm{FWHM},

with dose :math:`D` times dispersion :math:`\Delta E` (``counts_per_density``), :math:`E_b` =
50 eV (:data:`BACKGROUND_REFERENCE_EV`; :func:`powerlaw_density`), :math:`\kappa` =
``edge_scale_per_eV`` the density of a strength-1 edge maximum, and :math:`G` the Gaussian
energy resolution (FWHM), applied as a discrete convolution on the channel grid with a sampled
kernel normalised to 1 (:func:`resolution_matrix`; the model is evaluated on an axis padded by
5 sigma on both sides, then cropped). A feature at :math:`E_0` appears at :math:`E_0 + \delta`
(the whole spectrum, background included, moves). Shifted spectra take the edge shapes from a
0.002 eV table by linear interpolation (relative error below 1e-5 of the edge maximum);
unshifted spectra evaluate them directly. :func:`reference_spectra` applies the model to one
pure phase each (the twins' ``ref_*`` variables).

The edge constants are illustrative [open]: shaped after published low-loss spectra of LiCoO2,
Co oxides and phosphate electrolytes (onsets and delayed maxima as in :doc:`/guide/eels`), not
fitted to any of them.

References
----------
Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed. (Springer,
2011) (power-law background, delayed M2,3 edges). Kikkawa et al., J. Phys. Chem. C 119, 15823
(2015) (Li-K / Co-M separation). Nomura et al., Nano Lett. 18, 5892 (2018) (the Li-poor
LiCoO2 + Co3O4 interfacial layer). Which result is in which paper is as summarised in METHODS
[open: verify before quoting].
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
from scipy.special import erf

from ionscope.errors import InputError

#: Reference energy E_b (eV) of the power-law background ``A (E / E_b)^-r``.
BACKGROUND_REFERENCE_EV = 50.0
#: Half-width of the resolution kernel and of the axis padding, in Gaussian sigmas.
KERNEL_SIGMAS = 5.0
#: Step (eV) of the table from which shifted spectra interpolate the edge shapes.
_TABLE_STEP_EV = 0.002
#: Spectra per block in :func:`expected_counts` (keeps the work arrays in cache).
_BLOCK = 512


# --------------------------------------------------------------------------- edge shapes


@dataclasses.dataclass(frozen=True)
class KEdge:
    """A K edge: smoothed step, power-law tail and Gaussian near-edge peak (see module doc)."""

    onset_eV: float
    width_eV: float
    tail_eV: float
    tail_power: float
    peak_eV: float
    peak_width_eV: float
    peak_height: float
    strength: float


@dataclasses.dataclass(frozen=True)
class DelayedEdge:
    """A delayed (Hartree-Slater-like) edge: onset jump, broad delayed maximum, slow tail."""

    onset_eV: float
    width_eV: float
    delay_eV: float
    jump: float
    tail_eV: float
    tail_power: float
    strength: float


def smooth_step(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Gaussian-smoothed unit step ``Phi((x - centre) / width)``, the standard normal CDF.

    Parameters
    ----------
    x : ndarray
        Positions (any shape; eV for edges, nm for profiles).
    centre : float
        Where the step is half-way (same unit as ``x``).
    width : float
        Gaussian sigma of the smoothing (same unit), > 0.

    Returns
    -------
    ndarray
        Values in [0, 1], shape of ``x``.

    Examples
    --------
    >>> smooth_step(np.array([0.0, 1.0]), 0.0, 1.0).round(4).tolist()
    [0.5, 0.8413]
    """
    return 0.5 * (1.0 + erf((x - centre) / (width * np.sqrt(2.0))))


def _k_profile(energy: np.ndarray, e: KEdge) -> np.ndarray:
    u = np.maximum(energy - e.onset_eV, 0.0)
    peak = e.peak_height * np.exp(-0.5 * ((energy - e.peak_eV) / e.peak_width_eV) ** 2)
    return smooth_step(energy, e.onset_eV, e.width_eV) * ((1.0 + u / e.tail_eV) ** -e.tail_power + peak)


def _delayed_profile(energy: np.ndarray, e: DelayedEdge) -> np.ndarray:
    u = np.maximum(energy - e.onset_eV, 0.0)
    q = u / e.delay_eV
    shape = e.jump + (1.0 - e.jump) * 2.0 * q / (1.0 + q * q)
    return smooth_step(energy, e.onset_eV, e.width_eV) * shape * (1.0 + u / e.tail_eV) ** -e.tail_power


@functools.cache
def _profile_max(e: KEdge | DelayedEdge) -> float:
    grid = np.arange(e.onset_eV - 5.0, e.onset_eV + 200.0, 0.005)
    profile = _k_profile(grid, e) if isinstance(e, KEdge) else _delayed_profile(grid, e)
    return float(profile.max())


def k_edge(energy: np.ndarray, edge: KEdge) -> np.ndarray:
    """Evaluate a K-edge shape at ``energy`` (eV, any shape); its maximum is ``edge.strength``.

    ``Phi((E - E0)/w) [(1 + u/eps)^-s + p exp(-(E - Ep)^2 / (2 sig_p^2))]``, ``u = max(E - E0, 0)``,
    scaled to the maximum.

    Examples
    --------
    >>> e = np.arange(40.0, 90.0, 0.05)
    >>> shape = k_edge(e, EDGES["Li-K"])
    >>> bool(abs(e[np.argmax(shape)] - 62.0) < 1.0)
    True
    """
    energy = np.asarray(energy, dtype=np.float64)
    return (edge.strength / _profile_max(edge)) * _k_profile(energy, edge)


def delayed_edge(energy: np.ndarray, edge: DelayedEdge) -> np.ndarray:
    """Evaluate a delayed-edge shape at ``energy`` (eV, any shape); maximum ``edge.strength``.

    ``Phi((E - E0)/w) [j + (1 - j) 2q / (1 + q^2)] (1 + u/U)^-s``, ``q = u / Delta``, scaled to the
    maximum.
    """
    energy = np.asarray(energy, dtype=np.float64)
    return (edge.strength / _profile_max(edge)) * _delayed_profile(energy, edge)


#: The edge constants (see the table in the module docstring).
EDGES: dict[str, KEdge | DelayedEdge] = {
    "Li-K": KEdge(55.0, 0.5, 5.0, 1.2, 62.0, 2.0, 1.5, 0.30),
    "Li-K (SE)": KEdge(55.5, 0.5, 5.0, 1.2, 62.0, 2.2, 1.3, 0.30),
    "Co-M Co3+": DelayedEdge(59.0, 0.7, 14.0, 0.25, 30.0, 1.0, 1.00),
    "Co-M Co4+": DelayedEdge(59.6, 0.6, 13.0, 0.35, 30.0, 1.0, 1.05),
    "Co-M Co8/3+": DelayedEdge(57.8, 1.0, 18.0, 0.08, 30.0, 1.0, 0.90),
    "Ti-M2,3": DelayedEdge(35.0, 0.8, 12.0, 0.20, 25.0, 1.0, 0.60),
    "Al-L2,3": DelayedEdge(73.0, 0.8, 12.0, 0.30, 30.0, 1.0, 0.50),
    "Si-L2,3": DelayedEdge(99.0, 0.8, 12.0, 0.30, 30.0, 1.0, 0.50),
    "P-L2,3": DelayedEdge(132.0, 0.8, 12.0, 0.30, 30.0, 1.0, 0.30),
    "Cu-M2,3": DelayedEdge(74.0, 1.0, 10.0, 0.30, 40.0, 1.0, 1.20),
}

#: Atoms per formula unit of the LASGTP-like electrolyte Li1.5Al0.3Ti1.7Si0.2P2.8O12.
ELECTROLYTE_COMPOSITION: dict[str, float] = {
    "Li-K (SE)": 1.5, "Ti-M2,3": 1.7, "Al-L2,3": 0.3, "Si-L2,3": 0.2, "P-L2,3": 2.8,
}

#: Phases and the edges they are made of (atoms per Co, per electrolyte formula unit, per Cu).
PHASES: dict[str, dict[str, float]] = {
    "licoo2": {"Li-K": 1.0, "Co-M Co3+": 1.0},
    "coo2": {"Co-M Co4+": 1.0},
    "co3o4": {"Co-M Co8/3+": 1.0},
    "electrolyte": dict(ELECTROLYTE_COMPOSITION),
    "electrolyte_no_li": {k: v for k, v in ELECTROLYTE_COMPOSITION.items() if k != "Li-K (SE)"},
    "electrolyte_li": {"Li-K (SE)": ELECTROLYTE_COMPOSITION["Li-K (SE)"]},
    "cu": {"Cu-M2,3": 1.0},
}


def edge_shape(energy: np.ndarray, name: str) -> np.ndarray:
    """One edge of :data:`EDGES` evaluated at ``energy`` (eV), before the resolution."""
    if name not in EDGES:
        raise InputError(f"unknown edge {name!r}; known edges: {', '.join(EDGES)}")
    e = EDGES[name]
    return k_edge(energy, e) if isinstance(e, KEdge) else delayed_edge(energy, e)


def phase_edge(energy: np.ndarray, phase: str) -> np.ndarray:
    """The edge-only spectrum of one phase of :data:`PHASES` at ``energy`` (eV), no resolution.

    Examples
    --------
    >>> e = np.arange(30.0, 100.0, 0.1)
    >>> np.allclose(phase_edge(e, "licoo2"), edge_shape(e, "Li-K") + edge_shape(e, "Co-M Co3+"))
    True
    """
    if phase not in PHASES:
        raise InputError(f"unknown phase {phase!r}; known phases: {', '.join(PHASES)}")
    energy = np.asarray(energy, dtype=np.float64)
    out = np.zeros(energy.shape)
    for name, n in PHASES[phase].items():
        out += n * edge_shape(energy, name)
    return out


def phase_edges(energy: np.ndarray, phases: Sequence[str]) -> np.ndarray:
    """Edge-only spectra of several phases, shape ``(len(phases),) + energy.shape``."""
    return np.stack([phase_edge(energy, p) for p in phases])


# --------------------------------------------------------------------------- instrument


def energy_axis(start_eV: float, dispersion_eV: float, channels: int) -> np.ndarray:
    """Channel energies ``start + dispersion * arange(channels)`` (eV)."""
    return start_eV + dispersion_eV * np.arange(int(channels), dtype=np.float64)


def resolution_matrix(
    channels: int, dispersion_eV: float, fwhm_eV: float
) -> tuple[int, np.ndarray]:
    """Padding and matrix of the Gaussian energy resolution on the channel grid.

    Returns ``(pad, K)``: a spectrum sampled on the axis extended by ``pad`` channels on both
    sides, shape ``(..., channels + 2 pad)``, becomes ``spectrum @ K``, shape
    ``(..., channels)``: a discrete convolution with the Gaussian kernel of FWHM ``fwhm_eV``
    sampled at the channel spacing out to 5 sigma and normalised to sum 1. ``fwhm_eV = 0`` gives
    ``pad = 0`` and the identity.
    """
    if fwhm_eV <= 0:
        return 0, np.eye(channels)
    sigma = fwhm_eV / (2.0 * np.sqrt(2.0 * np.log(2.0))) / dispersion_eV
    pad = int(np.ceil(KERNEL_SIGMAS * sigma))
    offsets = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    matrix = np.zeros((channels + 2 * pad, channels))
    cols = np.arange(channels)
    for o, w in zip(offsets, kernel):
        matrix[cols + pad + o, cols] = w
    return pad, matrix


def powerlaw_density(energy: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``A (E / E_b)^-r`` (1/eV per electron), broadcasting ``a`` and ``r`` against ``energy``."""
    return a * np.exp(-r * np.log(energy / BACKGROUND_REFERENCE_EV))


def expected_counts(
    energy: np.ndarray,
    phases: Sequence[str],
    amounts: np.ndarray,
    *,
    background_a: np.ndarray | None,
    background_r: np.ndarray | None,
    shift_eV: np.ndarray | None,
    resolution_eV: float,
    counts_per_density: float,
    edge_scale_per_eV: float,
) -> np.ndarray:
    """Noiseless expected counts of a batch of spectra (float64), the twins' forward model.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Evenly spaced channel energies (eV).
    phases : sequence of str
        Phase names of :data:`PHASES` (K of them).
    amounts : ndarray, shape (m, K)
        Amount of each phase per spectrum (per Co, formula unit or Cu, times relative
        thickness).
    background_a, background_r : ndarray, shape (m,), or None
        Power-law background per spectrum (density at 50 eV, exponent); None for none.
    shift_eV : ndarray, shape (m,), or None
        Energy shift per spectrum (a feature at E0 appears at E0 + shift); None for none.
    resolution_eV : float
        FWHM of the Gaussian energy resolution (eV), 0 for none.
    counts_per_density : float
        Dose times dispersion: converts a density (1/eV per electron) to counts per channel.
    edge_scale_per_eV : float
        Density of a strength-1 edge maximum (1/eV per electron).

    Returns
    -------
    ndarray, shape (m, n)
    """
    energy = np.asarray(energy, dtype=np.float64)
    amounts = np.atleast_2d(np.asarray(amounts, dtype=np.float64))
    n = energy.size
    step = float(energy[1] - energy[0]) if n > 1 else 1.0
    pad, kernel = resolution_matrix(n, step, resolution_eV)
    ext = energy[0] + step * np.arange(-pad, n + pad)
    phases = tuple(phases)
    edges_scaled = amounts * edge_scale_per_eV
    shifted = shift_eV is not None and bool(np.any(shift_eV))
    if not shifted:
        shapes = phase_edges(ext, phases)
    else:
        shift = np.asarray(shift_eV, dtype=np.float64)
        lo = np.floor(ext[0] - float(shift.max())) - 1.0
        hi = np.ceil(ext[-1] - float(shift.min())) + 1.0
        table = _edge_table(phases, float(lo), float(hi))
    out = np.empty((amounts.shape[0], n))
    for start in range(0, amounts.shape[0], _BLOCK):
        rows = slice(start, start + _BLOCK)
        if not shifted:
            model = edges_scaled[rows] @ shapes
            local = ext[None, :]
        else:
            # the shapes at the shifted energies, linearly interpolated from a fine table
            local = ext[None, :] - shift[rows, None]
            pos = (local - lo) * (1.0 / _TABLE_STEP_EV)
            i0 = pos.astype(np.intp)
            w = pos - i0
            model = np.zeros(local.shape)
            for k in range(len(phases)):
                c = edges_scaled[rows, k]
                if not np.any(c):
                    continue
                lower, upper = table[k][i0], table[k][i0 + 1]
                lower += w * (upper - lower)
                lower *= c[:, None]
                model += lower
        if background_a is not None:
            model += powerlaw_density(local, background_a[rows, None], background_r[rows, None])
        np.matmul(model, kernel, out=out[rows])
    out *= counts_per_density
    return out


@functools.lru_cache(maxsize=8)
def _edge_table(phases: tuple[str, ...], lo: float, hi: float) -> np.ndarray:
    """Phase shapes on a ``_TABLE_STEP_EV`` grid from ``lo`` to beyond ``hi`` (read-only)."""
    table = phase_edges(lo + _TABLE_STEP_EV * np.arange(int((hi - lo) / _TABLE_STEP_EV) + 3),
                        phases)
    table.setflags(write=False)
    return table


# --------------------------------------------------------------------------- references


def reference_spectra(
    energy: np.ndarray,
    phases: Sequence[str],
    *,
    background_a: float,
    background_r: float,
    resolution_eV: float,
    counts_per_density: float,
    edge_scale_per_eV: float,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference spectra of pure phases: measured, noiseless edges and noiseless background.

    One spectrum per phase with amount 1 (relative thickness 1), no energy shift, the given
    resolution and the background ``background_a (E / E_b)^-background_r``, through
    :func:`expected_counts`.

    Parameters
    ----------
    energy, phases
        Channel energies (eV, evenly spaced, n of them) and K phase names, as for
        :func:`expected_counts`.
    background_a, background_r : float
        Background density at 50 eV (1/eV per electron) and exponent.
    resolution_eV : float
        FWHM of the Gaussian energy resolution (eV), 0 for none.
    counts_per_density : float
        Reference dose times dispersion (converts 1/eV per electron to counts per channel).
    edge_scale_per_eV : float
        Density of a strength-1 edge maximum (1/eV per electron).
    rng : numpy.random.Generator or None
        Draws the Poisson counts of the measured references; None gives noiseless ones.

    Returns
    -------
    measured : ndarray, shape (K, n)
        Edges plus background, Poisson counts (float64) or, without ``rng``, expected counts.
    edge : ndarray, shape (K, n)
        Noiseless expected counts of each phase's edges, no background.
    background : ndarray, shape (n,)
        Noiseless expected counts of the background (the same for every phase).
    """
    k = len(phases)
    common = dict(
        shift_eV=None, resolution_eV=resolution_eV, counts_per_density=counts_per_density,
        edge_scale_per_eV=edge_scale_per_eV,
    )
    a = np.full(k, background_a)
    r = np.full(k, background_r)
    edge = expected_counts(energy, phases, np.eye(k), background_a=None, background_r=None,
                           **common)
    bg = expected_counts(energy, phases, np.zeros((1, k)), background_a=a[:1],
                         background_r=r[:1], **common)[0]
    total = edge + bg[None, :]
    measured = rng.poisson(total).astype(np.float64) if rng is not None else total
    return measured, edge, bg


__all__ = [
    "BACKGROUND_REFERENCE_EV",
    "KERNEL_SIGMAS",
    "KEdge",
    "DelayedEdge",
    "EDGES",
    "PHASES",
    "ELECTROLYTE_COMPOSITION",
    "smooth_step",
    "k_edge",
    "delayed_edge",
    "edge_shape",
    "phase_edge",
    "phase_edges",
    "energy_axis",
    "resolution_matrix",
    "powerlaw_density",
    "expected_counts",
    "reference_spectra",
]
