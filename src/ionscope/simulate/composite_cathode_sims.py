r"""In-situ TOF-SIMS of the LiCoPO4 / LATP / Pd composite cathode: the ``composite_cathode`` twin's
second instrument (:doc:`/guide/sims`).

The sample is the one the KPFM frames show (:func:`~ionscope.simulate.composite_cathode.twin_microstructure`
with the same parameters and seed), imaged by TOF-SIMS at ~100 nm pixels at every state of charge
(pristine, charge1, discharge1, charge2, ...). The output is centroid spectra in the padded peak
model of :func:`ionscope.io.load` for processed imzML (``counts`` and ``peak_mass`` per state,
pixel and peak), with the ground truth beside them.

Geometry
--------
The SIMS field is ``sims_ny x sims_nx`` pixels of ``sims_pixel_nm`` (P), y down (row 0 at the
top). Its centre :math:`\mathbf C` is the KPFM field's centre plus (``sims_offset_y_nm``,
``sims_offset_x_nm``) and its raster is turned by :math:`\theta` = ``sims_rotation_deg`` against
the KPFM scan axes (positive: counter-clockwise as displayed): the first state's pixel ``(j, i)``
sees the sample point :math:`\mathbf C + R(\theta)\,((j - (N_y - 1)/2) P, (i - (N_x - 1)/2) P)`
(:meth:`~ionscope.simulate.composite_cathode_params.CompositeCathodeParams.sims_position_nm`; by
default :math:`\theta = 0` and no offset: pixel centres on the KPFM's). ``attrs["field_origin_nm"]``
is its pixel (0, 0) in sample coordinates, ``attrs["field_origin_in_kpfm_nm"]`` in the KPFM
field's, ``attrs["kpfm_to_sims"]`` (JSON) the rigid registration of the first KPFM frame onto the
first state that the geometry implies, in :func:`ionscope.register.register_rigid`'s convention
(:meth:`~ionscope.simulate.composite_cathode_params.CompositeCathodeParams.kpfm_to_sims_truth`:
rotation :math:`-\theta`). Between states the stage is moved away and back, along the SIMS axes:
state s > 0 sits at :math:`\mathbf d_s`, each axis normal with SD ``sims_stage_shift_nm``
(independent per state, not a random walk), clipped to the sample left around the field
(:attr:`~ionscope.simulate.composite_cathode_params.CompositeCathodeParams.sims_shift_bound_nm`);
:math:`\mathbf d_0 = 0`. State s's pixel :math:`\mathbf r` sees the first state's :math:`\mathbf r -
\mathbf d_s / P` (content moved by :math:`+\mathbf d_s`), so the registration shift mapping state s
onto state 0 is :math:`-\mathbf d_s` (:mod:`ionscope.register`'s convention). The turned field plus
2 x ``sims_stage_shift_nm`` must fit inside the sample (KPFM field + 2 ``margin_nm``; checked when
the twin runs: :meth:`~ionscope.simulate.composite_cathode_params.CompositeCathodeParams.check_sims_field`).

Area fractions: every pixel is sampled on ``S x S`` sub-points (:math:`S = \max(4,
\lceil P / \mathrm{sims\_subpixel\_nm} \rceil)`, at most 32; ``attrs["supersample"]``) of
:meth:`~ionscope.simulate.cathode_microstructure.CompositeMicrostructure.rasterize`, whose block
means give the phase fractions :math:`f_\varphi(\mathbf r)` and the Li-weighted fractions
:math:`g_\varphi(\mathbf r)` (the mean over the sub-points of phase :math:`\varphi` of their Li
content), so a pixel straddling an active and an isolated particle gets each one's share.

Lithium (relative to pristine = 1) [open]
-----------------------------------------
* Active LiCoPO4 particle i (electronically connected, ``particle_active``): it gives up
  :math:`\delta_i` ~ U(``sims_charge_depth_min``, ``sims_charge_depth_max``) on every charge and
  takes back :math:`r\,\delta_i` (r = ``sims_li_recovery``) on every discharge:
  :math:`c_i = 1 - \delta_i - (k - 1)(1 - r)\delta_i` after charge k, :math:`1 - k(1 - r)\delta_i`
  after discharge k. Isolated particles keep :math:`c_i = 1`.
* LATP: :math:`1 - L` from the first charge on, kept through every later state (L =
  ``sims_latp_li_loss``; the reference study's finding, uniform in the LATP).
* Pd and the collector hold no Li.

Counts
------
Expected counts of ion q in pixel :math:`\mathbf r` of state s, before dead time:

.. math::

    \mu_{q}(\mathbf r) = D_s \sum_\varphi Y_{q\varphi}\, w_{q\varphi}(\mathbf r),\qquad
    w = g \text{ for } ^7\mathrm{Li}^+, ^6\mathrm{Li}^+, \quad w = f \text{ otherwise}

with the dose :math:`D_s = 1 + j\,\xi_s` (j = ``sims_dose_jitter``, :math:`\xi_s` standard normal
clipped to +/-3) and the pure-phase yields :math:`Y` (``sims_yield_*``, counts per pixel at the
nominal dose [open]): 7Li+ in LiCoPO4 (1.3 n by default, so 7Li saturates the detector) and LATP,
6Li+ = 7Li+ x 7.59 / 92.41 (natural abundance, 7Li/6Li = 12.18), 59Co+ and 31P+ in LiCoPO4, 31P+,
48Ti+ and 27Al+ in LATP, 106Pd+ in Pd, 197Au+ in the (Au) collector, 23Na+ and 39K+ on every
phase. Observed counts with Poisson dead time (at most one count per pulse and mass, n =
``sims_scans x sims_shots_per_pixel`` pulses per pixel):

.. math::

    k_q \sim \mathrm{Binomial}\left(n,\; 1 - e^{-\mu_q / n}\right),

which the Poisson correction :math:`-n \ln(1 - k/n)` inverts. Besides, Poisson(``sims_noise_peaks``)
one-count noise peaks per pixel at masses uniform in [1, 250] u.

Masses
------
Ion masses :data:`ION_MASSES` (u, electron mass subtracted). Each state's file carries a wrong
calibration: :math:`\sqrt{m_{file}} = (\sqrt{m_{true}} - a_s) / b_s` with :math:`a_s` ~
N(0, ``sims_calibration_offset_sd``) (sqrt(u)) and :math:`b_s - 1` ~ N(0,
``sims_calibration_gain_sd``), so :math:`\sqrt{m_{true}} = a_s + b_s \sqrt{m_{file}}` recalibrates.
A peak with k > 0 counts is a centroid at :math:`m_{file} + \mathrm{FWHM}/2.355/\sqrt{k}\;\xi`,
FWHM = :math:`m_{true}` / ``sims_resolution``; ions with k = 0 are left out. The peaks of a pixel
are sorted by mass and padded with NaN mass and 0 counts to the largest number in any pixel of
any state (~10 peaks per pixel).

Random streams (:func:`~ionscope.simulate.composite_cathode.twin_streams`; 0-6 are the KPFM
twin's): 7 stage shifts, 8 particle charge depths, 9 doses and calibrations, 10 counts, 11 centroid
jitter, 12 noise peaks.

References
----------
Masuda et al., Commun. Chem. 2, 128 (2019), doi:10.1038/s42004-019-0245-x (the composite
cathode; Li maps per state of charge); Stephan et al., J. Vac. Sci. Technol. A 12, 405 (1994)
(Poisson dead-time correction of TOF-SIMS counts). Yields, depths of charge, losses and
calibration errors are illustrative [open].
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from ionscope.data import signal
from ionscope.simulate.cathode_microstructure import COLLECTOR, LATP, LICOPO4, PD, PHASE_MEANINGS, PHASES
from ionscope.simulate.composite_cathode import START_TIME, twin_microstructure, twin_streams
from ionscope.simulate.composite_cathode_params import TWIN, CompositeCathodeParams
from ionscope.simulate.registry import ProgressCallback, twin_attrs, twin_provenance

STEP = "ionscope.simulate.composite_cathode_sims"

#: Random streams of the SIMS twin (after the KPFM twin's 0-6).
STREAM_SIMS_SHIFT, STREAM_SIMS_DEPTH, STREAM_SIMS_INSTRUMENT, STREAM_SIMS_COUNTS, STREAM_SIMS_JITTER, \
    STREAM_SIMS_NOISE = range(7, 13)

#: Ions of the twin (ascending mass) and their masses (u, electron mass subtracted).
ION_NAMES: tuple[str, ...] = ("6Li+", "7Li+", "23Na+", "27Al+", "31P+", "39K+", "48Ti+", "59Co+", "106Pd+",
                              "197Au+")
#: The masses (u) of :data:`ION_NAMES`, in the same order.
ION_MASSES = np.array([6.01457, 7.01546, 22.98922, 26.98099, 30.97321, 38.96316, 47.94740, 58.93265,
                       105.90294, 196.96602])
LI6, LI7, NA, AL, P31, K, TI, CO, PD106, AU = range(len(ION_NAMES))

#: Natural abundances of 7Li and 6Li (IUPAC representative values) and their ratio.
LI7_ABUNDANCE, LI6_ABUNDANCE = 0.9241, 0.0759
LI7_LI6 = LI7_ABUNDANCE / LI6_ABUNDANCE

#: Mass range of the random noise peaks (u).
NOISE_MASS_RANGE_U = (1.0, 250.0)

_FWHM_TO_SD = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
_MAX_SUPERSAMPLE = 32

MODEL = (
    "TOF-SIMS of the composite cathode's sample at every state of charge (pristine, charge1, "
    "discharge1, ...): per pixel the area fractions of the phases and the Li-weighted fractions "
    "(active LiCoPO4 particles give up a per-particle depth of Li on each charge and take back a "
    "fraction on each discharge, isolated ones keep it, LATP loses a fraction on the first charge "
    "and keeps it lost) times pure-phase ion yields times a per-state dose give the expected counts; "
    "observed counts with Poisson dead time Binomial(n, 1 - exp(-mu/n)); centroid masses from a "
    "per-state wrong calibration sqrt(m_file) = (sqrt(m_true) - a) / b plus a jitter of "
    "FWHM/2.355/sqrt(k); one-count noise peaks at random masses; the stage moved between states."
)


# --------------------------------------------------------------------------- kernels


def li_contents(depth: np.ndarray, active: np.ndarray, n_states: int, recovery: float) -> np.ndarray:
    """Li content (relative to pristine) of every particle at every state, shape (state, particle).

    Parameters
    ----------
    depth : ndarray, shape (n,)
        Fraction of its pristine Li a particle gives up on each charge.
    active : ndarray of bool, shape (n,)
        Particles that take part (electronically connected); the others stay at 1.
    n_states : int
        States: pristine, charge1, discharge1, charge2, ...
    recovery : float
        Fraction of the charge's Li taken back on each discharge.

    Examples
    --------
    >>> li_contents(np.array([0.5, 0.5]), np.array([True, False]), 5, 0.9)[:, 0].round(3).tolist()
    [1.0, 0.5, 0.95, 0.45, 0.9]
    """
    s = np.arange(n_states)
    charges = (s + 1) // 2
    discharges = s // 2
    removed = charges[:, None] * depth[None, :] - discharges[:, None] * recovery * depth[None, :]
    return np.where(active[None, :], 1.0 - removed, 1.0)


def latp_li_content(n_states: int, loss: float) -> np.ndarray:
    """Li content of the LATP at every state: 1 at pristine, ``1 - loss`` from the first charge on."""
    return np.where(np.arange(n_states) == 0, 1.0, 1.0 - loss)


def yield_matrix(p: CompositeCathodeParams) -> np.ndarray:
    """Pure-phase yields ``Y`` (ion, phase) in counts per pixel at the nominal dose and pristine Li
    (rows :data:`ION_NAMES`, columns the phase codes)."""
    y = np.zeros((len(ION_NAMES), len(PHASES)))
    y[LI7, LICOPO4] = p.sims_yield_li7_licopo4
    y[LI7, LATP] = p.sims_yield_li7_latp
    y[LI6] = y[LI7] / LI7_LI6
    y[NA] = p.sims_yield_na
    y[K] = p.sims_yield_k
    y[CO, LICOPO4] = p.sims_yield_co_licopo4
    y[P31, LICOPO4] = p.sims_yield_p_licopo4
    y[P31, LATP] = p.sims_yield_p_latp
    y[TI, LATP] = p.sims_yield_ti_latp
    y[AL, LATP] = p.sims_yield_al_latp
    y[PD106, PD] = p.sims_yield_pd
    y[AU, COLLECTOR] = p.sims_yield_au
    return y


def file_masses(true_mass: np.ndarray, a: float, b: float) -> np.ndarray:
    """Masses (u) a spectrum shows under the wrong calibration ``sqrt(m_file) = (sqrt(m_true) - a) / b``."""
    return ((np.sqrt(true_mass) - a) / b) ** 2


def observed_counts(mu: np.ndarray, pulses: int, rng: np.random.Generator) -> np.ndarray:
    """Counts with Poisson dead time: ``Binomial(pulses, 1 - exp(-mu / pulses))`` (int32)."""
    return rng.binomial(pulses, -np.expm1(-np.asarray(mu, dtype=np.float64) / pulses)).astype(np.int32)


def supersample_factor(p: CompositeCathodeParams) -> int:
    """Sub-points per pixel side: ``max(4, ceil(sims_pixel_nm / sims_subpixel_nm))``, at most 32."""
    return int(min(max(math.ceil(p.sims_pixel_nm / p.sims_subpixel_nm - 1e-9), 4), _MAX_SUPERSAMPLE))


def _block_mean(a: np.ndarray, shape: tuple[int, int], s: int) -> np.ndarray:
    return a.reshape(shape[0], s, shape[1], s).mean(axis=(1, 3))


def _fractions(ms, p: CompositeCathodeParams, s: int, shift: tuple[float, float], content: np.ndarray,
               latp_content: float):
    """Phase fractions f (phase, y, x), Li-weighted fractions g (phase, y, x) and the sub-point
    particle labels (sy, sx) of a state whose stage sits at ``shift`` (nm along the SIMS axes):
    its pixel ``(j, i)`` sees the first state's pixel ``(j, i) - shift / P``."""
    shape = (p.sims_ny, p.sims_nx)
    sub = p.sims_pixel_nm / s
    first = -0.5 + 0.5 / s
    start = p.sims_position_nm(first - shift[0] / p.sims_pixel_nm, first - shift[1] / p.sims_pixel_nm)
    phase, particle = ms.rasterize((shape[0] * s, shape[1] * s), sub, (float(start[0]), float(start[1])),
                                   p.sims_rotation_deg)
    f = np.stack([_block_mean((phase == code).astype(np.float64), shape, s) for code in sorted(PHASES)])
    g = np.zeros_like(f)
    g[LATP] = latp_content * f[LATP]
    g[LICOPO4] = _block_mean(np.concatenate([[0.0], content])[particle], shape, s)
    return f, g, particle


def _majority_particle(particle: np.ndarray, shape: tuple[int, int], s: int, n: int) -> np.ndarray:
    """Label of the particle covering most sub-points of every pixel (0 where none)."""
    ny, nx = shape
    pix = np.arange(ny * nx).reshape(ny, nx).repeat(s, axis=0).repeat(s, axis=1)
    sel = particle > 0
    keys = pix[sel].astype(np.int64) * (n + 1) + particle[sel]
    out = np.zeros(ny * nx, np.int32)
    if keys.size:
        uniq, cnt = np.unique(keys, return_counts=True)
        pix_u, lab_u = uniq // (n + 1), uniq % (n + 1)
        order = np.lexsort((-lab_u, cnt, pix_u))  # per pixel: most sub-points last (ties: lower label)
        last = np.r_[pix_u[order][1:] != pix_u[order][:-1], True]
        out[pix_u[order][last]] = lab_u[order][last]
    return out.reshape(ny, nx)


def _peaks(k: np.ndarray, m_file: np.ndarray, true_mass: np.ndarray, resolution: float, noise_mean: float,
           rng_jitter: np.random.Generator, rng_noise: np.random.Generator):
    """One state's centroid peaks: ions (ion, y, x) counts ``k`` plus noise peaks, sorted by mass per
    pixel; returns counts (y, x, peak) int32 and masses (y, x, peak) with NaN padding."""
    n_ion, ny, nx = k.shape
    sd = (true_mass / resolution * _FWHM_TO_SD)[:, None, None] / np.sqrt(np.maximum(k, 1))
    mass = m_file[:, None, None] + sd * rng_jitter.standard_normal(k.shape)
    mass = np.where(k > 0, mass, np.nan)
    n_noise = rng_noise.poisson(noise_mean, (ny, nx)) if noise_mean > 0 else np.zeros((ny, nx), np.int64)
    width = int(n_noise.max()) if n_noise.size else 0
    noise_mass = rng_noise.uniform(*NOISE_MASS_RANGE_U, (ny, nx, width))
    noise_mass[np.arange(width)[None, None, :] >= n_noise[:, :, None]] = np.nan
    masses = np.concatenate([np.moveaxis(mass, 0, -1), noise_mass], axis=-1)
    counts = np.concatenate([np.moveaxis(k, 0, -1), np.ones((ny, nx, width), np.int32)], axis=-1)
    order = np.argsort(masses, axis=-1, kind="stable")  # NaN last
    masses = np.take_along_axis(masses, order, axis=-1)
    counts = np.take_along_axis(counts, order, axis=-1)
    counts[np.isnan(masses)] = 0
    used = int((~np.isnan(masses)).sum(axis=-1).max()) if masses.size else 0
    return counts[..., :used], masses[..., :used]


def _pad(a: np.ndarray, width: int, fill) -> np.ndarray:
    return np.concatenate([a, np.full(a.shape[:-1] + (width - a.shape[-1],), fill, a.dtype)], axis=-1)


# --------------------------------------------------------------------------- the twin


def simulate_sims(
    params: CompositeCathodeParams | None = None, seed: int = 0, *, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """TOF-SIMS of the ``composite_cathode`` twin's sample at every state of charge (module
    docstring: the model).

    Computes: renders every state in memory (numpy-backed); vectorised over pixels (five states of
    256 x 256 pixels take about a second).

    Parameters
    ----------
    params : CompositeCathodeParams, optional
        The twin's parameters (the ``sims_*`` ones and the sample's); defaults to
        ``CompositeCathodeParams()``.
    seed : int
        Seed of the twin's random streams: the same seed gives the sample the KPFM frames show.
    progress : callable, optional
        ``progress(done, total)`` after each state.

    Returns
    -------
    xarray.Dataset
        Measured, in the padded peak model of processed centroid imzML (each state on its own,
        stage-shifted grid): ``counts`` (state, y, x, peak) int32 with the coordinate
        ``peak_mass`` (state, y, x, peak) in u (file calibration; NaN padding, 0 counts; sorted by
        mass). Coordinates ``state`` (names), ``y``, ``x`` (nm from the field's first pixel),
        ``ion`` (names) with ``ion_mass`` (u), ``phase`` (names), ``particle`` (labels 1..n of the
        whole sample). Truth on the first state's grid: ``sims_phase_true`` (y, x) majority phase
        code (``flag_values``/``flag_meanings``), ``sims_phase_fraction_true`` (phase, y, x),
        ``sims_particle_true`` (y, x) label of the particle covering most of the pixel (0: none),
        ``sims_li_rel_pristine_true`` (state, phase) area-weighted mean Li relative to pristine
        over the part of the field every state images (the only material whose Li every state
        measures; NaN for Pd and the collector), ``sims_particle_li_true`` (state, particle),
        ``sims_particle_active`` (particle), ``sims_particle_area_nm2`` (particle, area in that
        common part). Per state's own grid: ``sims_expected_counts`` (state, ion, y, x),
        counts before dead time. Per state: ``sims_stage_shift_y_nm``, ``sims_stage_shift_x_nm``
        (nm; content moved by +shift), ``sims_dose`` (1), ``sims_calibration_a`` (u^0.5),
        ``sims_calibration_b`` (1), ``sims_state_time_s`` (s from ``attrs["start_time"]``, the KPFM
        protocol's start:
        :meth:`~ionscope.simulate.composite_cathode_params.CompositeCathodeParams.sims_state_times_s`). Attrs: ``pulses_per_pixel``, ``ion_names``, ``ion_masses_u``,
        ``state_names``, ``li7_li6``, ``mass_resolution``, ``pixel_size_nm``, ``field_origin_nm``,
        ``field_origin_in_kpfm_nm``, ``field_rotation_deg``, ``kpfm_to_sims`` (JSON), ``supersample``, ``imzml_mode``, ``spectrum_type`` and the
        twin's ``parameters``, ``model``, ``provenance``.

    Raises
    ------
    ConfigError
        If the SIMS field and its stage shifts do not fit inside the sample
        (:meth:`CompositeCathodeParams.check_sims_field`).

    Examples
    --------
    >>> ds = simulate_sims(CompositeCathodeParams(sims_states=3), seed=0)
    >>> ds["counts"].dims, ds["state"].values.tolist()
    (('state', 'y', 'x', 'peak'), ['pristine', 'charge1', 'discharge1'])
    """
    p = CompositeCathodeParams() if params is None else params
    p.check_sims_field()
    streams = twin_streams(seed)
    ms = twin_microstructure(p, seed)
    n_part = ms.n_particles
    n_states, shape = p.sims_states, (p.sims_ny, p.sims_nx)
    pulses = p.sims_pulses
    s = supersample_factor(p)

    # ---- per-state instrument: stage shifts, doses, calibrations
    bound = max(p.sims_shift_bound_nm, 0.0)
    shift = np.clip(p.sims_stage_shift_nm * streams[STREAM_SIMS_SHIFT].standard_normal((n_states, 2)), -bound, bound)
    shift[0] = 0.0
    rng_inst = streams[STREAM_SIMS_INSTRUMENT]
    dose = 1.0 + p.sims_dose_jitter * np.clip(rng_inst.standard_normal(n_states), -3.0, 3.0)
    cal_a = p.sims_calibration_offset_sd * rng_inst.standard_normal(n_states)
    cal_b = 1.0 + p.sims_calibration_gain_sd * rng_inst.standard_normal(n_states)

    # ---- Li per particle and in the LATP
    depth = streams[STREAM_SIMS_DEPTH].uniform(p.sims_charge_depth_min, p.sims_charge_depth_max, n_part)
    content = li_contents(depth, ms.particle_active, n_states, p.sims_li_recovery)  # (state, particle)
    latp = latp_li_content(n_states, p.sims_latp_li_loss)

    yields = yield_matrix(p)
    is_li = np.zeros(len(ION_NAMES), bool)
    is_li[[LI6, LI7]] = True
    rng_counts, rng_jitter, rng_noise = (streams[i] for i in (STREAM_SIMS_COUNTS, STREAM_SIMS_JITTER,
                                                             STREAM_SIMS_NOISE))
    expected = np.empty((n_states, len(ION_NAMES)) + shape, np.float32)
    peak_counts, peak_masses = [], []
    for st in range(n_states):
        f, g, particle = _fractions(ms, p, s, (shift[st, 0], shift[st, 1]), content[st], latp[st])
        if st == 0:
            fractions0, particle0 = f, particle
        mu = dose[st] * (np.einsum("qp,pyx->qyx", yields * ~is_li[:, None], f)
                         + np.einsum("qp,pyx->qyx", yields * is_li[:, None], g))
        expected[st] = mu
        k = observed_counts(mu, pulses, rng_counts)
        c, m = _peaks(k, file_masses(ION_MASSES, cal_a[st], cal_b[st]), ION_MASSES, p.sims_resolution,
                      p.sims_noise_peaks, rng_jitter, rng_noise)
        peak_counts.append(c)
        peak_masses.append(m)
        if progress is not None:
            progress(st + 1, n_states)
    width = max(c.shape[-1] for c in peak_counts)
    counts = np.stack([_pad(c, width, 0) for c in peak_counts])
    masses = np.stack([_pad(m, width, np.nan) for m in peak_masses])

    # ---- truth on the first state's grid; the Li of a phase over the part of the first state's
    # field that every state images (state k covers [-d_k, -d_k + N P) of the first one's)
    sub = p.sims_pixel_nm / s
    centres = [(np.arange(n * s) + 0.5) * sub for n in shape]
    common = [(c >= np.max(-shift[:, a])) & (c < np.min(-shift[:, a]) + shape[a] * p.sims_pixel_nm)
              for a, c in enumerate(centres)]
    inside = common[0][:, None] & common[1][None, :]
    area = np.bincount(particle0[inside], minlength=n_part + 1)[1:].astype(np.float64) * sub ** 2
    rel = np.full((n_states, len(PHASES)), np.nan)
    if area.sum() > 0:
        rel[:, LICOPO4] = content @ area / area.sum()
    if fractions0[LATP].sum() > 0:
        rel[:, LATP] = latp
    truth = {
        "phase": np.argmax(fractions0, axis=0).astype(np.int8),
        "particle": _majority_particle(particle0, shape, s, n_part),
    }
    return _assemble(p, seed, counts=counts, masses=masses, expected=expected, fractions=fractions0,
                     truth=truth, rel=rel, content=content, active=ms.particle_active, area=area,
                     shift=shift, dose=dose, cal=(cal_a, cal_b), s=s)


def _assemble(p, seed, *, counts, masses, expected, fractions, truth, rel, content, active, area, shift, dose,
              cal, s) -> xr.Dataset:
    h = p.sims_pixel_nm
    names = p.sims_state_names()
    phase_names = [PHASES[k] for k in sorted(PHASES)]
    labels = np.arange(1, content.shape[1] + 1, dtype=np.int32)
    st = {"state": np.array(names)}
    yx = {"y": h, "x": h}
    flags = {"flag_values": sorted(PHASES), "flag_meanings": PHASE_MEANINGS}
    variables = [
        signal(counts, ("state", "y", "x", "peak"), name="counts", units="counts",
               coords={**st, **yx, "peak": np.arange(counts.shape[-1])},
               long_name="TOF-SIMS centroid peak counts per pixel (each state on its own stage position)"),
        signal(truth["phase"], ("y", "x"), name="sims_phase_true", units="1", coords=yx,
               long_name="majority phase of each pixel (first state's grid)", attrs=flags),
        signal(fractions, ("phase", "y", "x"), name="sims_phase_fraction_true", units="1",
               coords={"phase": np.array(phase_names), **yx},
               long_name="area fraction of each phase per pixel (first state's grid)"),
        signal(truth["particle"], ("y", "x"), name="sims_particle_true", units="1", coords=yx,
               long_name="label of the LiCoPO4 particle covering most of the pixel (0 = none; first state's grid)"),
        signal(rel, ("state", "phase"), name="sims_li_rel_pristine_true", units="1",
               coords={**st, "phase": np.array(phase_names)},
               long_name="area-weighted mean Li content of each phase over the part of the field every state images, "
                         "relative to pristine (NaN: no Li)"),
        signal(content, ("state", "particle"), name="sims_particle_li_true", units="1",
               coords={**st, "particle": labels},
               long_name="Li content of every particle of the sample relative to pristine"),
        signal(np.asarray(active, bool), ("particle",), name="sims_particle_active", units="1",
               coords={"particle": labels}, long_name="particle electronically connected (takes part in the cycling)"),
        signal(area, ("particle",), name="sims_particle_area_nm2", units="nm^2", coords={"particle": labels},
               long_name="particle's area inside the part of the field every state images"),
        signal(expected, ("state", "ion", "y", "x"), name="sims_expected_counts", units="counts",
               coords={**st, "ion": np.array(ION_NAMES), **yx},
               long_name="expected counts before dead time (each state on its own stage position)"),
        signal(shift[:, 0], ("state",), name="sims_stage_shift_y_nm", units="nm", coords=st,
               long_name="stage shift along y of each state relative to the first (content moves by +shift)"),
        signal(shift[:, 1], ("state",), name="sims_stage_shift_x_nm", units="nm", coords=st,
               long_name="stage shift along x of each state relative to the first (content moves by +shift)"),
        signal(dose, ("state",), name="sims_dose", units="1", coords=st,
               long_name="primary-ion dose of each state relative to nominal"),
        signal(p.sims_state_times_s(), ("state",), name="sims_state_time_s", units="s", coords=st,
               long_name="acquisition time of each state from attrs start_time (the KPFM protocol's start)"),
        signal(cal[0], ("state",), name="sims_calibration_a", units="u^0.5", coords=st,
               long_name="calibration offset a: sqrt(m_true) = a + b sqrt(m_file)"),
        signal(cal[1], ("state",), name="sims_calibration_b", units="1", coords=st,
               long_name="calibration gain b: sqrt(m_true) = a + b sqrt(m_file)"),
    ]
    ds = xr.Dataset({v.name: v for v in variables})
    ds = ds.assign_coords(
        peak_mass=(("state", "y", "x", "peak"), masses,
                   {"units": "u", "long_name": "centroid mass of each peak (file calibration; NaN = padding)"}),
        ion_mass=("ion", ION_MASSES.copy(), {"units": "u", "long_name": "ion mass (electron mass subtracted)"}),
    )
    origin = p.sims_field_origin_nm
    m = p.margin_px * p.pixel_nm
    ds.attrs = twin_attrs(
        TWIN, seed, p, primary="counts", model=MODEL,
        instrument="TOF-SIMS",
        pulses_per_pixel=int(p.sims_pulses),
        ion_names=list(ION_NAMES),
        ion_masses_u=[float(v) for v in ION_MASSES],
        state_names=list(p.sims_state_names()),
        li7_li6=float(LI7_LI6),
        mass_resolution=float(p.sims_resolution),
        pixel_size_nm=float(h),
        field_origin_nm=[float(origin[0]), float(origin[1])],
        field_origin_in_kpfm_nm=[float(origin[0] - m), float(origin[1] - m)],
        field_rotation_deg=float(p.sims_rotation_deg),
        start_time=START_TIME,
        kpfm_to_sims=json.dumps(p.kpfm_to_sims_truth()),
        supersample=int(s),
        collector_element="Au",
        imzml_mode="processed",
        spectrum_type="centroid",
        derived=json.dumps({"shift_bound_nm": p.sims_shift_bound_nm, "peaks_per_pixel_mean":
                            float((counts > 0).sum(axis=-1).mean())}),
    )
    return twin_provenance(ds, STEP, p, seed, variables=("counts", "sims_expected_counts"))


__all__ = [
    "simulate_sims",
    "li_contents",
    "latp_li_content",
    "yield_matrix",
    "file_masses",
    "observed_counts",
    "supersample_factor",
    "ION_NAMES",
    "ION_MASSES",
    "LI6", "LI7", "NA", "AL", "P31", "K", "TI", "CO", "PD106", "AU",
    "LI7_LI6",
    "LI7_ABUNDANCE",
    "LI6_ABUNDANCE",
    "NOISE_MASS_RANGE_U",
    "STREAM_SIMS_SHIFT",
    "STREAM_SIMS_DEPTH",
    "STREAM_SIMS_INSTRUMENT",
    "STREAM_SIMS_COUNTS",
    "STREAM_SIMS_JITTER",
    "STREAM_SIMS_NOISE",
]
