r"""Lithium per phase and per particle, per state of charge, with error bars.

Pixels of ~100 nm hold several phases, and the LiCoPO4 particles differ from one another (some
take part in the reaction, some are isolated), so the Li map of each state ``s`` is modelled as

.. math:: n(\mathbf r) = \sum_u f_u(\mathbf r)\, a_u(s) + \text{Poisson noise}

over **units** ``u``: one per phase, except the particle phase (LiCoPO4), which has one unit
per particle. ``f_u`` is the unit's area fraction in the pixel: a phase's fraction from the
unmixing (:mod:`ionscope.sims.phases`), and for the particle phase its fraction attributed to
the nearest particle (particles: connected components of the particle phase's majority map of
the reference state, specks below ``min_particle_px`` dropped so that their pixels go to the
nearest particle; :func:`scipy.ndimage.distance_transform_edt` gives the nearest). ``a_u(s)`` is
the Li signal of a pixel full of unit ``u`` (counts per pixel, or whatever unit ``li`` has).

Per state, ``a(s)`` is solved by weighted least squares (weights ``1 / var(n)``; for Poisson
counts ``var = max(n, 1)``, then twice ``max(model, 1)`` from the previous fit, which removes the
low bias of observed-count weights) with covariance ``(F^T W F)^-1``, scaled by the reduced chi-square
when that exceeds 1 (model error: Li varying inside a particle, fraction errors). The normal
equations are assembled with ``bincount`` (each pixel touches at most one particle), so
thousands of particles cost no more than a few.

A phase's Li is the area-weighted mean of its units, ``L_p(s) = sum_u A_u a_u(s) / sum_u A_u``
with the areas ``A_u = sum_r f_u(r)`` of the reference state (the same weights in every state,
so a ratio compares the same material), and its error from the covariance. Relative to the
reference (pristine) state: ``rel = L(s) / L(ref)`` with the errors of both (states are
independent), and the significance ``z = (rel - 1) / err``. A phase whose reference Li is not
three errors above 0 (Pd, the collector) is flagged: its relative change means nothing.

:func:`bin_pixels` sums ``factor x factor`` blocks, trading resolution for counts.

References
----------
P. R. Bevington, D. K. Robinson, *Data Reduction and Error Analysis for the Physical Sciences*,
3rd ed. (McGraw-Hill, 2003), ch. 7 (weighted linear least squares). N. Keshava, J. F. Mustard,
IEEE Signal Process. Mag. 19, 44 (2002) (linear mixing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from ionscope.errors import DimensionError, InputError
from ionscope.sims.normalise import relative_to_reference
from ionscope.validation import Interval, validate_params

__all__ = ["PARTICLE_PHASE", "PhaseLithium", "particle_labels", "phase_lithium", "bin_pixels"]

#: The phase split into particles (its particles differ from one another).
PARTICLE_PHASE = "LiCoPO4"
#: A phase whose reference Li is below this fraction of the most Li-rich phase's holds no Li of
#: its own (what it shows is the mixed pixels' trace).
TRACE_FRACTION = 0.05


@dataclass
class PhaseLithium:
    """Li per phase and per particle, per state.

    Attributes
    ----------
    names : list of str
        Phases.
    li, li_err : numpy.ndarray (phase, state)
        Area-weighted Li signal of a pixel full of the phase, and its standard error.
    rel, rel_err, z : numpy.ndarray (phase, state)
        Relative to the reference state, its error, and ``(rel - 1) / rel_err`` (NaN at the
        reference).
    area : numpy.ndarray (phase,)
        Summed fractions in the reference state (px).
    pixels : numpy.ndarray (phase,)
        Majority pixels in the reference state.
    no_lithium : numpy.ndarray of bool (phase,)
        Reference Li not three errors above 0, or below :data:`TRACE_FRACTION` of the phase with
        the most Li (a trace that mixed pixels leave in a phase without Li, e.g. a metal):
        the relative values are not meaningful.
    particles : numpy.ndarray (y, x) of int
        Particle labels 1..K (0 elsewhere).
    particle_li, particle_err, particle_rel, particle_rel_err, particle_z : numpy.ndarray (K, state)
        The same per particle.
    particle_area, particle_pixels : numpy.ndarray (K,)
        Attributed fraction (px) and majority pixels of each particle.
    reduced_chi2 : numpy.ndarray (state,)
        Of each state's fit.
    reference : int
        The reference state.
    """

    names: list[str]
    li: np.ndarray
    li_err: np.ndarray
    rel: np.ndarray
    rel_err: np.ndarray
    z: np.ndarray
    area: np.ndarray
    pixels: np.ndarray
    no_lithium: np.ndarray
    particles: np.ndarray
    particle_li: np.ndarray
    particle_err: np.ndarray
    particle_rel: np.ndarray
    particle_rel_err: np.ndarray
    particle_z: np.ndarray
    particle_area: np.ndarray
    particle_pixels: np.ndarray
    reduced_chi2: np.ndarray
    reference: int = 0

    def rows(self, states: Sequence[str] | None = None) -> list[dict]:
        """One row per phase and state: ``phase, state, li_mean, li_err, li_rel_pristine,
        li_rel_pristine_err, pixels`` (the columns of ``phases.csv``), plus ``z`` and
        ``no_lithium``."""
        n_states = self.li.shape[1]
        states = [str(s) for s in (states if states is not None else range(n_states))]
        if len(states) != n_states:
            raise InputError(f"{len(states)} state names for {n_states} states")
        return [{"phase": name, "state": states[s], "li_mean": float(self.li[p, s]),
                 "li_err": float(self.li_err[p, s]), "li_rel_pristine": float(self.rel[p, s]),
                 "li_rel_pristine_err": float(self.rel_err[p, s]), "pixels": int(self.pixels[p]),
                 "z": float(self.z[p, s]), "no_lithium": bool(self.no_lithium[p])}
                for p, name in enumerate(self.names) for s in range(n_states)]


@validate_params({"min_particle_px": [Interval(int, 1, None)]})
def particle_labels(majority, *, min_particle_px: int = 4) -> np.ndarray:
    """Particles: connected components (4-connected) of a boolean majority map, specks smaller
    than ``min_particle_px`` dropped, numbered 1..K in raster order.

    Examples
    --------
    >>> m = np.zeros((6, 6), bool); m[:2, :2] = True; m[4:, 3:] = True; m[0, 5] = True
    >>> particle_labels(m).tolist()[4]
    [0, 0, 0, 2, 2, 2]
    """
    mask = np.asarray(majority, dtype=bool)
    if mask.ndim != 2:
        raise DimensionError(f"a majority map is (y, x), got shape {mask.shape}")
    lab, _ = ndi.label(mask)
    area = np.bincount(lab.ravel())
    keep = area >= min_particle_px
    keep[0] = False
    lut = np.zeros(area.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[lab]


def _solve_state(n, var, slot_unit, slot_frac, n_units):
    """WLS of one state: n (pix,), slot_unit/slot_frac (slot, pix) -> a (U,), cov (U, U), chi2/dof."""
    w = 1.0 / var
    q = slot_unit.shape[0]
    a_mat = np.zeros(n_units * n_units)
    rhs = np.zeros(n_units)
    for i in range(q):
        wi = w * slot_frac[i]
        rhs += np.bincount(slot_unit[i], wi * n, minlength=n_units)
        for j in range(q):
            a_mat += np.bincount(slot_unit[i] * n_units + slot_unit[j], wi * slot_frac[j], minlength=n_units**2)
    a_mat = a_mat.reshape(n_units, n_units)
    active = np.diag(a_mat) > 0
    a = np.full(n_units, np.nan)
    cov = np.full((n_units, n_units), np.nan)
    sub = a_mat[np.ix_(active, active)]
    try:
        inv = np.linalg.inv(sub)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(sub)
    a[active] = inv @ rhs[active]
    coef = np.where(active, a, 0.0)
    model = np.einsum("sp,sp->p", slot_frac, coef[slot_unit])
    dof = max(n.size - int(active.sum()), 1)
    chi2 = float(np.sum(w * (n - model) ** 2) / dof)
    cov[np.ix_(active, active)] = inv * max(1.0, chi2)
    return a, cov, chi2


@validate_params({"min_particle_px": [Interval(int, 1, None)], "reference": [Interval(int, 0, None)],
                  "refits": [Interval(int, 0, None)]})
def phase_lithium(li, fractions, names: Sequence[str], *, li_var=None, particle_phase: str | None = PARTICLE_PHASE,
                  particles=None, mask=None, min_particle_px: int = 4, reference: int = 0, refits: int = 2
                  ) -> PhaseLithium:
    """Li per phase and per particle in every state (module docstring).

    Parameters
    ----------
    li : array_like (state, y, x) or (y, x)
        Li signal per pixel: counts (e.g. dead-time corrected 7Li) or a normalised signal with
        ``li_var``. All states on one grid (registered onto the reference state).
    fractions : array_like (phase, y, x) or (state, phase, y, x)
        Area fractions of the phases, per state or one set for every state: best the unbiased
        ones of :func:`~ionscope.sims.phases.unmix` with ``nonnegative=False`` (NNLS fractions
        of pure pixels are biased away from 0 and 1, which biases phases of different Li by a
        percent or two); the particles are found on the majority (largest fraction) map.
    names : sequence of str
        Phase names along the phase axis.
    li_var : array_like, optional
        Variance of ``li`` per pixel (same shape); Poisson ``max(li, 1)`` by default.
    particle_phase : str or None
        The phase split into particles (default ``"LiCoPO4"``); None, or a phase that is not
        there, gives one unit per phase.
    particles : array_like (y, x) or (state, y, x) of int, optional
        Particle labels (1..K, 0 elsewhere), one map for every state or one per state (each
        state on its own grid, e.g. unregistered states with the reference's labels moved onto
        theirs); by default :func:`particle_labels` of the particle phase's majority map in the
        reference state.
    mask : array_like of bool (state, y, x) or (y, x), optional
        The pixels each state's fit uses (e.g. the part of the field every state covers, on each
        state's own grid); Li may be NaN outside it. Default: every pixel.
    min_particle_px : int
        Smallest particle (px) when the particles are found here.
    reference : int
        The reference (pristine) state.
    refits : int
        With Poisson counts (no ``li_var``), refits with the variance of the previous fit's model,
        ``max(model, 1)``: weights ``1 / max(n, 1)`` alone bias the result low by about one count
        per pixel (Neyman's chi-square), which does not cancel in a ratio of states.

    Returns
    -------
    PhaseLithium

    Raises
    ------
    DimensionError
        Shapes that do not match.
    InputError
        Non-finite Li or fractions, variances that are not positive, a reference state that does
        not exist, too few phase names.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> frac = np.zeros((2, 20, 20)); frac[0, 5:10, 5:10] = frac[0, 12:17, 3:8] = 1; frac[1] = 1 - frac[0]
    >>> truth = np.array([[100.0, 100.0], [60.0, 100.0]])          # state x (particle A, particle B)
    >>> labels = particle_labels(frac[0] > 0.5)
    >>> expected = np.stack([np.where(labels == 1, t[0], np.where(labels == 2, t[1], 30.0)) for t in truth])
    >>> res = phase_lithium(rng.poisson(expected), frac, ["LiCoPO4", "LATP"])
    >>> res.rel[0].round(1).tolist(), res.particle_rel[:, 1].round(1).tolist(), res.rel[1].round(1).tolist()
    ([1.0, 0.8], [0.6, 1.0], [1.0, 1.0])
    """
    n = np.asarray(li, dtype=np.float64)
    if n.ndim == 2:
        n = n[None]
    if n.ndim != 3:
        raise DimensionError(f"li must be (state, y, x) or (y, x), got shape {n.shape}")
    n_states, ny, nx = n.shape
    use = np.ones(n.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), n.shape)
    if not np.all(np.isfinite(n[use])):
        raise InputError(f"li holds {int((~np.isfinite(n[use])).sum())} non-finite values (pixels outside the "
                         "registered overlap?); crop them, fill them or leave them out with mask=")
    if not use.any(axis=(1, 2)).all():
        raise InputError("the mask leaves a state without pixels")
    n = np.where(use, n, 0.0)
    if not -n_states <= reference < n_states:
        raise InputError(f"reference state {reference} does not exist ({n_states} states)")
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim == 3:
        f = np.broadcast_to(f, (n_states,) + f.shape)
    if f.ndim != 4 or f.shape[0] != n_states or f.shape[2:] != (ny, nx):
        raise DimensionError(f"fractions {np.shape(fractions)} must be (phase, y, x) or (state, phase, y, x) on the "
                             f"Li maps' grid {(n_states, ny, nx)}")
    names = [str(s) for s in names]
    if len(names) != f.shape[1]:
        raise InputError(f"{len(names)} phase names for {f.shape[1]} phases")
    if not np.all(np.isfinite(f[np.broadcast_to(use[:, None], f.shape)])):
        raise InputError("phase fractions must be finite")
    f = np.where(use[:, None], f, 0.0)
    var = np.maximum(n, 1.0) if li_var is None else np.broadcast_to(np.asarray(li_var, dtype=np.float64), n.shape)
    if not np.all(np.isfinite(var[use])) or np.any(var[use] <= 0):
        raise InputError("li_var must be finite and positive")
    var = np.where(use, var, 1.0)
    k = len(names)
    pp = names.index(particle_phase) if particle_phase in names else None
    npix = ny * nx
    if pp is not None:
        if particles is None:
            lab = particle_labels((np.argmax(f[reference], axis=0) == pp) & use[reference],
                                  min_particle_px=min_particle_px)
        else:
            lab = np.asarray(particles)
            if lab.shape[-2:] != (ny, nx) or lab.ndim not in (2, 3) or lab.dtype.kind not in "iu" or (
                    lab.ndim == 3 and lab.shape[0] != n_states):
                raise InputError(f"particles must be an integer label image of shape {(ny, nx)} or "
                                 f"{(n_states, ny, nx)}")
            lab = lab.astype(np.int32)
        n_part = int(lab.max()) if lab.size else 0
    else:
        lab = np.zeros((ny, nx), dtype=np.int32)
        n_part = 0
    labs = np.broadcast_to(lab, (n_states, ny, nx))
    lab = labs[reference]
    # units: the other phases first (0..k-2 or 0..k-1), then one per particle
    other = [p for p in range(k) if p != pp]
    if pp is not None and not n_part:  # no particle big enough: the phase is one unit
        other, pp = list(range(k)), None
    n_units = len(other) + n_part
    slot_units = np.empty((n_states, k, npix), dtype=np.int64)
    for i, p in enumerate(other):
        slot_units[:, p] = i
    if pp is not None:
        for s in range(n_states):  # each state's LiCoPO4 fraction to the nearest of its particles
            if not (labs[s] > 0).any():
                raise InputError(f"state {s} shows none of the particles")
            idx = ndi.distance_transform_edt(labs[s] == 0, return_distances=False, return_indices=True)
            slot_units[s, pp] = len(other) + labs[s][idx[0], idx[1]].ravel() - 1
    unit_phase = np.array(other + [pp] * n_part, dtype=object)
    a = np.full((n_states, n_units), np.nan)
    cov = np.full((n_states, n_units, n_units), np.nan)
    chi2 = np.full(n_states, np.nan)
    for s in range(n_states):  # a loop over states only
        m = use[s].ravel()
        ns, fs, su = n[s].ravel()[m], f[s].reshape(k, npix)[:, m], slot_units[s][:, m]
        a[s], cov[s], chi2[s] = _solve_state(ns, var[s].ravel()[m], su, fs, n_units)
        if li_var is None:  # Poisson: refit with the model's variance (1/n weights are biased low)
            for _ in range(refits):
                model = np.einsum("sp,sp->p", fs, np.nan_to_num(a[s])[su])
                a[s], cov[s], chi2[s] = _solve_state(ns, np.maximum(model, 1.0), su, fs, n_units)
    slot_unit = slot_units[reference]
    slot_frac_ref = f[reference].reshape(k, npix)
    area_u = np.zeros(n_units)
    for p in range(k):
        area_u += np.bincount(slot_unit[p], slot_frac_ref[p], minlength=n_units)
    # phases: area-weighted means of their units
    li_p = np.full((k, n_states), np.nan)
    err_p = np.full((k, n_states), np.nan)
    area_p = np.zeros(k)
    for p in range(k):
        members = np.flatnonzero(np.array([u == p for u in unit_phase]))
        g = np.zeros(n_units)
        g[members] = area_u[members]
        area_p[p] = g.sum()
        if area_p[p] <= 0:
            continue
        g /= area_p[p]
        for s in range(n_states):
            ok = np.isfinite(a[s]) | (g == 0)
            if not np.all(ok):
                continue
            li_p[p, s] = float(np.nansum(g * a[s]))
            c = np.nan_to_num(cov[s])
            err_p[p, s] = float(np.sqrt(max(g @ c @ g, 0.0)))
    rel, rel_err = relative_to_reference(li_p, err_p, axis=1, reference=reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (rel - 1.0) / rel_err
    z[:, reference] = np.nan
    ref_li = li_p[:, reference]
    top = np.nanmax(ref_li) if np.isfinite(ref_li).any() else np.nan
    no_li = ~(ref_li > 3 * err_p[:, reference]) | ~(ref_li >= TRACE_FRACTION * top)
    majority = np.argmax(f[reference], axis=0)[use[reference]]
    pixels = np.bincount(majority.ravel(), minlength=k)
    first = len(other)
    p_li = a[:, first:].T.copy()
    p_err = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2)[:, first:].T, 0, None))
    if n_part:
        p_rel, p_rel_err = relative_to_reference(p_li, p_err, axis=1, reference=reference)
    else:
        p_rel, p_rel_err = p_li.copy(), p_err.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        p_z = (p_rel - 1.0) / p_rel_err
    p_z[:, reference] = np.nan
    p_pixels = np.bincount(lab.ravel(), minlength=n_part + 1)[1:]
    return PhaseLithium(names, li_p, err_p, rel, rel_err, z, area_p, pixels, no_li, lab, p_li, p_err, p_rel,
                        p_rel_err, p_z, area_u[first:], p_pixels, chi2, reference % n_states)


@validate_params({"factor": [Interval(int, 1, None)]})
def bin_pixels(counts, factor: int):
    """Sum ``factor x factor`` blocks of pixels (the last two dims, y and x), trading resolution
    for counts; rows and columns that do not fill a block are dropped.

    Parameters
    ----------
    counts : array_like (..., y, x) or xarray.DataArray with dims y, x
        Counts (sums of counts stay Poisson; do not bin normalised maps this way).
    factor : int
        Block size (px).

    Returns
    -------
    numpy.ndarray (..., y // factor, x // factor) or xarray.DataArray
        Block sums; a DataArray keeps its other dims and attrs, with block-centre coordinates.

    Examples
    --------
    >>> bin_pixels(np.arange(16).reshape(4, 4), 2)
    array([[10, 18],
           [42, 50]])
    """
    if hasattr(counts, "dims") and hasattr(counts, "coarsen"):
        if "y" not in counts.dims or "x" not in counts.dims:
            raise DimensionError(f"bin_pixels needs dims y and x, got {counts.dims}")
        if counts.sizes["y"] < factor or counts.sizes["x"] < factor:
            raise InputError(f"a {counts.sizes['y']} x {counts.sizes['x']} px map has no {factor} x {factor} block")
        out = counts.coarsen(y=factor, x=factor, boundary="trim").sum()
        out.attrs.update(counts.attrs)
        for dim in ("y", "x"):
            if dim in counts.coords:
                out[dim].attrs.update(counts[dim].attrs)
        return out
    c = np.asarray(counts)
    if c.ndim < 2:
        raise DimensionError(f"bin_pixels needs (..., y, x) maps, got shape {c.shape}")
    ny, nx = c.shape[-2] // factor, c.shape[-1] // factor
    if ny == 0 or nx == 0:
        raise InputError(f"a {c.shape[-2]} x {c.shape[-1]} px map has no {factor} x {factor} block")
    trimmed = c[..., :ny * factor, :nx * factor]
    return trimmed.reshape(c.shape[:-2] + (ny, factor, nx, factor)).sum(axis=(-3, -1))
