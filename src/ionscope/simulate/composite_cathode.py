r"""Operando cross-sectional KPFM of a LiCoPO4 / LATP / Pd composite cathode during its first charge.

Digital twin of :doc:`/guide/kpfm` (and the cell of :doc:`/guide/echem`): a polished cross-section of an
all-solid-state cell imaged with Kelvin-probe force microscopy every minute while it charges.
The sample is :mod:`ionscope.simulate.cathode_microstructure` (LiCoPO4 particles in a LATP
matrix, Pd strands and particles, a grounded current collector along the bottom edge); which
particles the Pd connects to the collector decides which ones take part in the charge.

This module holds the twin itself (its random streams, its sample and the series it renders);
the cell's record and responses live in :mod:`ionscope.simulate.composite_cathode_cell`, the
PSF and the scan geometry in :mod:`ionscope.simulate.composite_cathode_scan`, the frames in the
SPM data model in :mod:`ionscope.simulate.composite_cathode_frames`, and the parameters in
:mod:`ionscope.simulate.composite_cathode_params`; their public names are re-exported here.

Geometry and time
-----------------
The field is ``ny x nx`` pixels of ``pixel_nm``; ``y`` (rows) down, row 0 at the top as
displayed, ``x`` to the right, pixel ``(j, i)`` at ``(j h, i h)`` nm. The sample is simulated
``margin_nm`` beyond every edge (drifted frames and the PSF tail see real microstructure):
:func:`twin_microstructure` builds it over ``(ny h + 2M) x (nx h + 2M)`` nm with the field's
origin at ``(M, M)`` and the collector band ``collector_nm`` thick inside the field. Sample
coordinates = the first frame's image coordinates.

Time ``t`` in s from the first frame's start (absolute start ``attrs["start_time"]``). Frame k
starts at ``k * frame_interval_s`` and takes ``frame_time_s``; row j is recorded
``row_time = (j + 1/2) * frame_time_s / ny`` after the frame's start in a down-scan (top row
first) and ``(ny - 1 - j + 1/2) * frame_time_s / ny`` in an up-scan (bottom row first). Frames
alternate up, down, up, ... (``first_scan_up``). The ``time`` coordinate is each frame's
mid-time.

The cell (cycler record)
------------------------
Galvanostatic protocol in frames (``ocv_frames`` at open circuit, ``charge_frames`` at
:math:`+I`, ``rest_frames``, ``discharge_frames`` at :math:`-I`, switching at frame starts),
:math:`I` = ``c_rate_per_h`` x ``capacity_mAh`` x 3.6 C / 3600 s (charge = positive current).
Charge passed :math:`Q(t) = \int I\,dt` (C), state of charge :math:`s = Q / Q_{cap}`, cell
voltage :math:`U = U_0 + (U_p - U_0)(1 - e^{-s / s_0}) + k s + I R` (``ocv_start_V``,
``ocv_plateau_V``, ``ocv_rise_soc``, ``ocv_slope_V``, ``r_internal_ohm``): an illustrative
LiCoPO4 first charge [open], 3.0 V -> ~4.9 V within a few minutes at 0.5 C. Logged every
``record_interval_s`` as ``cycler_*`` on the ``record`` dim (s), so
:func:`ionscope.simulate.cycler_table` writes it as CSV.

The true potential (V, relative to the grounded collector)
-----------------------------------------------------------
.. math::

    V(\mathbf r, t) = V_{static}(\mathbf r)
        + \sum_{i\,\mathrm{active}} \chi_i(\mathbf r)\, c\, y_i(t)
        + \chi_{LATP}(\mathbf r)\, A\, e^{-d(\mathbf r)/\lambda}\, g(t)

* :math:`V_{static}`: collector 0, LATP ``v_latp_V``, Pd ``v_pd_V``, LiCoPO4 particle i
  :math:`v_i` = ``v_licopo4_V`` + ``v_particle_spread_V`` :math:`\xi_i` (contact-potential
  contrast).
* Connected (active) particles follow the cell voltage with a first-order lag:
  :math:`\tau_i \dot y_i = \Delta U(t) - y_i`, :math:`y_i(0) = 0`, :math:`\Delta U = U(t) -
  U(0)`, :math:`\tau_i` log-uniform in [``response_min_s``, ``response_max_s``], coupling
  :math:`c` = ``particle_coupling`` [open] (the surface potential of a particle that is
  delithiated shifts with its electrode potential; 0.1 gives ~190 mV). Integrated exactly for a
  piecewise-linear :math:`U` on a grid of <= 0.5 s. Isolated particles keep :math:`v_i`.
* The LATP near active particles rises on the first charge (the reference study's finding,
  which TOF-SIMS traces to Li lost from the electrolyte): amplitude :math:`A` =
  ``latp_rise_V``, :math:`d` the distance to the nearest active particle, :math:`\lambda` =
  ``latp_rise_length_nm``, :math:`g(t) = 1 - \exp(-Q_+(t) / (I \tau_L))` with :math:`Q_+` the
  charge passed while charging (so the rise is kept through rest and discharge),
  :math:`\tau_L` = ``latp_rise_time_s``.
* The collector stays at 0 V; Pd keeps its static contrast.

KPFM forward model
------------------
A frame's row j is recorded at its own time :math:`t_j` (frame start + ``row_time``) with the
sample drifted by :math:`\mathbf d_k` (constant within the frame; a linear drift of
``drift_y_nm``/``drift_x_nm`` per frame plus a random walk of ``drift_jitter_nm``, clipped to the
margin; :math:`\mathbf d_0 = 0`): the image shows the sample content moved by :math:`+\mathbf
d_k`, i.e. pixel :math:`\mathbf r` sees the sample at :math:`\mathbf r - \mathbf d_k`, and the
registration shift that maps frame k onto frame 0 is :math:`-\mathbf d_k`
(:mod:`ionscope.register`'s convention).

.. math::

    V_{meas}(\mathbf r_j) = \sigma \left[(P \ast V(\cdot, t_j))(\mathbf r_j - \mathbf d_k)\right]
        + V_{tip} + o_{kj} + n, \qquad
    P = (1 - a)\, G_{\sigma_c} + a\, G_{\sigma_t}

with the point-spread function :math:`P` (Gaussian core ``psf_sigma_nm`` plus a Gaussian
long-range tail of weight ``psf_tail_fraction`` and width ``psf_tail_sigma_nm``, the
cantilever's averaging), the tip's contact potential :math:`V_{tip}` = ``tip_offset_V``, a
per-line offset :math:`o_{kj}` (SD ``line_offset_V``, shared by the forward and backward trace),
white noise :math:`n` (SD ``noise_V``, drawn separately for each trace), and :math:`\sigma` = +1
when ``bias_on_tip`` (the tip's bias follows the sample) else -1 (the sample's bias nulls it). The blur acts on the field as it is at the row's time (linear in
the basis fields, so exact). It is computed on a grid ``s`` times finer than the pixels
(``s = ceil(1.2 h / sigma_core)``, at most 8; ``attrs["supersample"]``), evaluated at the
drifted pixel positions by cubic B-spline interpolation.

Topography (nm): heights ``height_licopo4_nm``, ``height_pd_nm``, ``height_collector_nm``
relative to the LATP, blurred by the PSF core only (tip shape), drifted like the potential, plus
a tilt plane in image coordinates (``tilt_y_nm_per_um``, ``tilt_x_nm_per_um``), per-line offsets
(``topography_line_offset_nm``) and white noise (``topography_noise_nm``).

Every channel is stored in display orientation: row 0 at the top, x to the right, backward
traces mirrored back.

Ground truth: ``potential_true`` is the unblurred :math:`V` on the first frame's grid at the
time the tip passed each pixel in frame k (row :math:`j + d_{k,y}/h` of that frame, clipped to the
frame); ``potential_true_mid`` at the frame's mid-time.

References
----------
Masuda et al., Nanoscale 9, 893 (2017) and Commun. Chem. 2, 128 (2019),
doi:10.1038/s42004-019-0245-x (operando cross-sectional KPFM of all-solid-state cells; the
composite LiCoPO4 / LATP / Pd cathode; ~7 nm resolution, +/-10 mV); the voltage curve, couplings
and time constants here are illustrative [open].
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr
from scipy import ndimage

from ionscope.data import signal
from ionscope.simulate.cathode_microstructure import (
    COLLECTOR,
    LATP,
    LICOPO4,
    PD,
    PHASE_MEANINGS,
    PHASES,
    CompositeMicrostructure,
    active_proximity,
    build_microstructure,
)
from ionscope.simulate.composite_cathode_cell import (
    cell_state,
    first_order_lag,
    frame_currents,
    latp_rise_progress,
    open_circuit_voltage,
)
from ionscope.simulate.composite_cathode_frames import frames_as_datasets
from ionscope.simulate.composite_cathode_params import (
    CHARGE,
    DISCHARGE,
    REST,
    STATE_MEANINGS,
    TWIN,
    CompositeCathodeParams,
)
from ionscope.simulate.composite_cathode_scan import (
    _Blurred,
    _drift,
    _supersample,
    _transfer,
    psf_edge_response,
    psf_kernel,
    psf_transfer,
    row_times,
    scan_directions,
)
from ionscope.simulate.registry import ProgressCallback, register_twin, twin_attrs, twin_provenance

STEP = "ionscope.simulate.composite_cathode"

#: Absolute start of the first frame (ISO 8601).
START_TIME = "2025-06-02T10:00:00+09:00"

#: Random streams (children of ``numpy.random.SeedSequence(seed)``); an extension adds its own
#: streams after these, so the existing ones never change.
STREAM_STRUCTURE, STREAM_PROPERTIES, STREAM_DRIFT, STREAM_NOISE_FORWARD, STREAM_NOISE_BACKWARD, \
    STREAM_LINE_OFFSETS, STREAM_TOPOGRAPHY = range(7)
N_STREAMS = 16

MODEL = (
    "Cross-section of a LiCoPO4 / LATP / Pd composite cathode on a grounded current collector "
    "during a galvanostatic first charge. True potential V = V_static (collector 0, LATP, Pd, "
    "per-particle LiCoPO4 contrast) + sum over particles electronically connected to the "
    "collector through Pd of coupling * lag(U(t) - U(0), tau_i) (first-order lag of the cell "
    "voltage) + latp_rise * exp(-d/lambda) * (1 - exp(-Q_charge / (I tau_L))) in the LATP at "
    "distance d from active particles; isolated particles stay at their static value. KPFM: each "
    "row at its own time (alternating up/down scans), the sample drifted per frame, the potential "
    "blurred by a Gaussian-core + Gaussian-tail PSF, plus tip offset, per-line offsets and white "
    "noise; topography of the phase heights blurred by the PSF core plus a tilt plane, line "
    "offsets and noise. Cell voltage U = OCV(soc) + I R."
)


# --------------------------------------------------------------------------- random streams


def twin_streams(seed: int, n: int = N_STREAMS) -> list[np.random.Generator]:
    """The twin's independent random generators (children of ``SeedSequence(seed)``, in the
    order of the ``STREAM_*`` constants; extensions draw from indices >= 7)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def twin_microstructure(params: CompositeCathodeParams | None = None, seed: int = 0) -> CompositeMicrostructure:
    """The sample the ``composite_cathode`` twin images for ``params`` and ``seed``.

    It spans the field plus ``params.margin_px * pixel_nm`` on every side; the field's top-left
    pixel is at ``(M, M)`` nm of the sample (``attrs["field_origin_nm"]``). Rasterise it at
    another pixel size with :meth:`CompositeMicrostructure.rasterize` (e.g. for TOF-SIMS).

    Examples
    --------
    >>> ms = twin_microstructure(CompositeCathodeParams(), seed=0)
    >>> ms.height_nm, ms.width_nm
    (3160.0, 3160.0)
    """
    p = CompositeCathodeParams() if params is None else params
    m = p.margin_px * p.pixel_nm
    return build_microstructure(
        p.microstructure_params(),
        height_nm=p.ny * p.pixel_nm + 2 * m,
        width_nm=p.nx * p.pixel_nm + 2 * m,
        collector_nm=p.collector_nm + m,
        rng=twin_streams(seed)[STREAM_STRUCTURE],
    )


# --------------------------------------------------------------------------- twin


@register_twin(
    TWIN,
    "operando cross-sectional KPFM of a LiCoPO4 / LATP / Pd composite cathode during its first "
    "charge (alternating up/down minute frames with row times, PSF, drift, line offsets, "
    "topography), with its cycler log and the true potential",
    params=CompositeCathodeParams,
)
def simulate_composite_cathode(
    params: CompositeCathodeParams | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate the operando KPFM series of the composite cathode (module docstring: the model).

    Computes: renders the whole series in memory (numpy-backed).

    Parameters
    ----------
    params : CompositeCathodeParams, optional
        Model parameters; defaults to ``CompositeCathodeParams()``.
    seed : int
        Seed of the random streams (:func:`twin_streams`): the microstructure, the particles'
        properties, the drift and each noise have their own stream.
    progress : callable, optional
        ``progress(done, total)`` called after each frame.

    Returns
    -------
    xarray.Dataset
        Measured (the KPFM frame data model, display orientation): ``potential_measured``,
        ``potential_measured_backward`` (time, y, x) V; ``topography_measured``,
        ``topography_measured_backward`` (time, y, x) nm; coordinates ``time`` (frame mid-time,
        s), ``frame_start`` (time, s), ``scan_direction`` (time, "up"/"down"), ``row_time``
        (time, y, s from the frame's start). Truth: ``potential_true``, ``potential_true_mid``
        (time, y, x) V; ``phase`` (y, x) (codes in ``flag_values``/``flag_meanings``),
        ``particle`` (y, x) labels, ``active_true`` (y, x), ``height_true`` (y, x) nm;
        ``drift_y_nm``, ``drift_x_nm`` (time); ``line_offset_V`` (time, y);
        ``cell_voltage_row`` (time, y) V; per particle of the field (dim ``label``, the particle's
        label):
        ``particle_active``, ``particle_response_time_s``, ``particle_v0_V``,
        ``particle_area_nm2``, ``particle_centroid_y_nm``, ``particle_centroid_x_nm``; scalars
        ``noise_V``, ``psf_sigma_nm``, ``psf_tail_fraction``, ``psf_tail_sigma_nm``. Cell:
        ``voltage``, ``current``, ``charge``, ``state`` (time, at mid-time);
        ``cycler_time``, ``cycler_voltage``, ``cycler_current``, ``cycler_charge`` (record, s).
    """
    p = CompositeCathodeParams() if params is None else params
    streams = twin_streams(seed)
    h = p.pixel_nm
    ny, nx, nf = p.ny, p.nx, p.n_frames
    mpx = p.margin_px
    ms = twin_microstructure(p, seed)
    n_part = ms.n_particles

    # ---- particle properties (own stream; drawn for every particle of the sample)
    rng_prop = streams[STREAM_PROPERTIES]
    v0 = p.v_licopo4_V + p.v_particle_spread_V * rng_prop.standard_normal(n_part)
    log_lo, log_hi = math.log(p.response_min_s), math.log(p.response_max_s)
    tau = np.exp(rng_prop.uniform(log_lo, log_hi, n_part)) if n_part else np.zeros(0)
    active_idx = np.flatnonzero(ms.particle_active)

    # ---- fine grid over the whole sample
    s = _supersample(p)
    hf = h / s
    nfy, nfx = (ny + 2 * mpx) * s, (nx + 2 * mpx) * s
    phase_f, particle_f = ms.rasterize((nfy, nfx), hf)
    static_f = np.zeros((nfy, nfx))
    static_f[phase_f == LATP] = p.v_latp_V
    static_f[phase_f == PD] = p.v_pd_V
    lico = phase_f == LICOPO4
    static_f[lico] = v0[particle_f[lico] - 1]
    latp_f = (phase_f == LATP) * active_proximity(particle_f, ms.active_labels, hf, p.latp_rise_length_nm)
    height_f = np.select(
        [phase_f == LICOPO4, phase_f == PD, phase_f == COLLECTOR],
        [p.height_licopo4_nm, p.height_pd_nm, p.height_collector_nm], 0.0,
    )

    # field pixels on the fine grid (fine points coincide with the field's pixels)
    field = (slice(mpx * s, (mpx + ny) * s, s), slice(mpx * s, (mpx + nx) * s, s))
    phase = phase_f[field].copy()
    particle = particle_f[field].copy()
    static = static_f[field]
    latp_w = latp_f[field]
    height_true = height_f[field]
    visible = np.unique(particle[particle > 0])
    vis_active = visible[ms.particle_active[visible - 1]]

    # ---- time: the cell, the particles' responses, the LATP rise
    period = p.frame_interval_s
    sub = max(1, math.ceil(period / min(0.5, p.response_min_s / 10.0)))
    dt = period / sub
    t_grid = np.arange(nf * sub + 1) * dt
    u_grid = cell_state(t_grid, p)["voltage"]
    u_grid = u_grid - u_grid[0]
    lag = first_order_lag(u_grid, dt, tau[active_idx]) * p.particle_coupling  # (n_active, T)

    def responses(t: np.ndarray) -> np.ndarray:
        """Coupled responses of the active particles at times t (n_active, len(t))."""
        return np.stack([np.interp(t, t_grid, row) for row in lag]) if lag.size else np.zeros((0, t.size))

    def latp_g(t: np.ndarray) -> np.ndarray:
        return p.latp_rise_V * latp_rise_progress(cell_state(t, p)["charge_in"], p)

    # ---- blurred bases on the fine grid
    with_tail = p.psf_tail_fraction > 0
    reach = max(p.psf_sigma_nm, p.psf_tail_sigma_nm if with_tail else 0.0)
    pad = int(min(max(math.ceil(5 * reach / hf), 4), min(nfy, nfx) - 1))
    pad_core = int(min(max(math.ceil(4 * p.psf_sigma_nm / hf), 4), min(nfy, nfx) - 1))
    psf = _transfer(hf, p.psf_sigma_nm, p.psf_tail_fraction, p.psf_tail_sigma_nm)
    core = _transfer(hf, p.psf_sigma_nm, 0.0, p.psf_sigma_nm)
    b_static = _Blurred(static_f, psf, pad)
    b_latp = _Blurred(latp_f, psf, pad) if active_idx.size else None
    b_parts = []
    for i in active_idx:
        ind = particle_f == i + 1
        rows, cols = np.flatnonzero(ind.any(axis=1)), np.flatnonzero(ind.any(axis=0))
        window = (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) if rows.size else (0, 1, 0, 1)
        b_parts.append(_Blurred(ind.astype(np.float64), psf, pad, window))
    b_height = _Blurred(height_f, core, pad_core)
    ind_parts = np.stack([(particle == i + 1) for i in active_idx]) if active_idx.size else np.zeros((0, ny, nx), bool)

    # ---- scan geometry, drift, noise
    directions = scan_directions(p)
    rt = np.stack([row_times(p, d == "up") for d in directions])  # (time, y)
    frame_start = np.arange(nf) * period
    mid = frame_start + 0.5 * p.frame_time_s
    drift = _drift(p, streams[STREAM_DRIFT])
    line_off = p.line_offset_V * streams[STREAM_LINE_OFFSETS].standard_normal((nf, ny))
    rng_topo = streams[STREAM_TOPOGRAPHY]
    topo_line = p.topography_line_offset_nm * rng_topo.standard_normal((nf, ny))
    sign = 1.0 if p.bias_on_tip else -1.0
    plane = (p.tilt_y_nm_per_um * (np.arange(ny) * h)[:, None]
             + p.tilt_x_nm_per_um * (np.arange(nx) * h)[None, :]) * 1e-3

    pot_f = np.empty((nf, ny, nx), np.float32)
    pot_b = np.empty_like(pot_f)
    top_f = np.empty_like(pot_f)
    top_b = np.empty_like(pot_f)
    truth = np.empty_like(pot_f)
    truth_mid = np.empty_like(pot_f)
    rng_nf, rng_nb = streams[STREAM_NOISE_FORWARD], streams[STREAM_NOISE_BACKWARD]
    for k in range(nf):
        t_rows = frame_start[k] + rt[k]
        sy = mpx * s - drift[k, 0] / hf
        sx = mpx * s - drift[k, 1] / hf
        clean = b_static.sample_full(sy, sx, s, ny, nx)
        if b_latp is not None:
            clean += b_latp.sample_full(sy, sx, s, ny, nx) * latp_g(t_rows)[:, None]
        resp = responses(t_rows)
        for n, b in enumerate(b_parts):
            j0, j1, i0, i1, values = b.sample(sy, sx, s, ny, nx)
            clean[j0:j1, i0:i1] += values * resp[n][j0:j1, None]
        recorded = sign * clean + p.tip_offset_V + line_off[k][:, None]
        pot_f[k] = recorded + p.noise_V * rng_nf.standard_normal((ny, nx))
        pot_b[k] = recorded + p.noise_V * rng_nb.standard_normal((ny, nx))
        z = b_height.sample_full(sy, sx, s, ny, nx) + plane + topo_line[k][:, None]
        top_f[k] = z + p.topography_noise_nm * rng_topo.standard_normal((ny, nx))
        top_b[k] = z + p.topography_noise_nm * rng_topo.standard_normal((ny, nx))
        # truth on the first frame's grid: each sample row at the time the tip passed it
        visit_row = np.clip(np.arange(ny) + drift[k, 0] / h, 0.0, ny - 1.0)
        t_visit = frame_start[k] + (np.interp(visit_row, np.arange(ny), rt[k]))
        truth[k] = _true_frame(static, latp_w, ind_parts, latp_g(t_visit), responses(t_visit))
        truth_mid[k] = _true_frame(static, latp_w, ind_parts, latp_g(np.full(ny, mid[k])),
                                   responses(np.full(ny, mid[k])))
        if progress is not None:
            progress(k + 1, nf)

    # ---- the cycler record and the per-frame state
    n_rec = int(math.floor(nf * period / p.record_interval_s + 1e-9)) + 1
    rec_t = np.arange(n_rec) * p.record_interval_s
    rec = cell_state(rec_t, p)
    at_mid = cell_state(mid, p)
    row_voltage = cell_state(frame_start[:, None] + rt, p)["voltage"]

    # ---- per-particle truth (particles seen in the field)
    area = np.array([(particle == lab).sum() for lab in visible], dtype=np.float64) * h * h
    if visible.size:
        cy, cx = np.array(ndimage.center_of_mass(np.ones_like(particle), particle, visible)).reshape(-1, 2).T * h
    else:
        cy = cx = np.zeros(0)
    resp_time = np.where(ms.particle_active[visible - 1], tau[visible - 1], np.nan) if visible.size else np.zeros(0)

    ds = _assemble(
        p, seed, ms, s,
        measured=(pot_f, pot_b, top_f, top_b), truth=(truth, truth_mid),
        maps=(phase, particle, np.isin(particle, vis_active), height_true.astype(np.float32)),
        times=(mid, frame_start, directions, rt), drift=drift, line_off=line_off,
        row_voltage=row_voltage, at_mid=at_mid, record=(rec_t, rec),
        per_particle=(visible, ms.particle_active[visible - 1] if visible.size else np.zeros(0, bool),
                      resp_time, v0[visible - 1] if visible.size else np.zeros(0), area, cy, cx),
    )
    return ds


def _true_frame(static, latp_w, ind_parts, latp_rows, resp_rows) -> np.ndarray:
    """Unblurred potential with per-row time functions (rows of the first frame's grid)."""
    out = static + latp_w * latp_rows[:, None]
    if ind_parts.shape[0]:
        out = out + np.einsum("iyx,iy->yx", ind_parts, resp_rows)
    return out


def _assemble(p, seed, ms, s, *, measured, truth, maps, times, drift, line_off, row_voltage, at_mid,
              record, per_particle) -> xr.Dataset:
    h = p.pixel_nm
    pot_f, pot_b, top_f, top_b = measured
    truth_rows, truth_mid = truth
    phase, particle, active, height = maps
    mid, frame_start, directions, rt = times
    rec_t, rec = record
    labels, p_active, p_tau, p_v0, p_area, p_cy, p_cx = per_particle
    tyx = {"time": mid, "y": h, "x": h}
    yx = {"y": h, "x": h}
    bias = "tip" if p.bias_on_tip else "sample"
    kpfm_attrs = {"bias_on": bias, "sign_convention": (
        "recorded = +(sample potential) + offsets (bias on the tip)" if p.bias_on_tip
        else "recorded = -(sample potential) + offsets (bias on the sample)")}
    rec_coords = {"record": rec_t}
    rec_units = {"record": "s"}
    variables = [
        signal(pot_f, ("time", "y", "x"), name="potential_measured", units="V", coords=tyx,
               long_name="KPFM potential, forward trace (display orientation)", attrs=kpfm_attrs),
        signal(pot_b, ("time", "y", "x"), name="potential_measured_backward", units="V", coords=tyx,
               long_name="KPFM potential, backward trace (mirrored back to display orientation)",
               attrs=kpfm_attrs),
        signal(top_f, ("time", "y", "x"), name="topography_measured", units="nm", coords=tyx,
               long_name="topography, forward trace"),
        signal(top_b, ("time", "y", "x"), name="topography_measured_backward", units="nm", coords=tyx,
               long_name="topography, backward trace"),
        signal(truth_rows, ("time", "y", "x"), name="potential_true", units="V", coords=tyx,
               long_name="true potential (unblurred, vs the collector) on the first frame's grid at "
                         "the time the tip passed each pixel"),
        signal(truth_mid, ("time", "y", "x"), name="potential_true_mid", units="V", coords=tyx,
               long_name="true potential (unblurred) at each frame's mid-time"),
        signal(phase, ("y", "x"), name="phase", units="1", coords=yx, long_name="phase",
               attrs={"flag_values": sorted(PHASES), "flag_meanings": PHASE_MEANINGS}),
        signal(particle, ("y", "x"), name="particle", units="1", coords=yx,
               long_name="LiCoPO4 particle label (0 = none)"),
        signal(active, ("y", "x"), name="active_true", units="1", coords=yx,
               long_name="pixels of LiCoPO4 particles electronically connected to the collector"),
        signal(height, ("y", "x"), name="height_true", units="nm", coords=yx,
               long_name="true height relative to the LATP (unblurred, no tilt)"),
        signal(drift[:, 0], ("time",), name="drift_y_nm", units="nm", coords={"time": mid},
               long_name="sample drift along y of each frame relative to frame 0 (content moves by +drift)"),
        signal(drift[:, 1], ("time",), name="drift_x_nm", units="nm", coords={"time": mid},
               long_name="sample drift along x of each frame relative to frame 0 (content moves by +drift)"),
        signal(line_off, ("time", "y"), name="line_offset_V", units="V", coords={"time": mid, "y": h},
               long_name="per-line potential offset (both traces)"),
        signal(row_voltage, ("time", "y"), name="cell_voltage_row", units="V", coords={"time": mid, "y": h},
               long_name="cell voltage at each row's recording time"),
        signal(at_mid["voltage"], ("time",), name="voltage", units="V", coords={"time": mid},
               long_name="cell voltage at frame mid-time"),
        signal(at_mid["current"], ("time",), name="current", units="A", coords={"time": mid},
               long_name="current at frame mid-time (positive on charge)"),
        signal(at_mid["charge"], ("time",), name="charge", units="C", coords={"time": mid},
               long_name="charge passed since start at frame mid-time"),
        signal(p.frame_states(), ("time",), name="state", units="1", coords={"time": mid},
               long_name="electrochemical state",
               attrs={"flag_values": [REST, CHARGE, DISCHARGE], "flag_meanings": STATE_MEANINGS}),
        signal(rec_t, ("record",), name="cycler_time", units="s", coords=rec_coords, coord_units=rec_units,
               long_name="cycler log: time since the first frame's start"),
        signal(rec["voltage"], ("record",), name="cycler_voltage", units="V", coords=rec_coords,
               coord_units=rec_units, long_name="cycler log: cell voltage"),
        signal(rec["current"], ("record",), name="cycler_current", units="A", coords=rec_coords,
               coord_units=rec_units, long_name="cycler log: current (positive on charge)"),
        signal(rec["charge"], ("record",), name="cycler_charge", units="C", coords=rec_coords,
               coord_units=rec_units, long_name="cycler log: charge passed since start"),
    ]
    ds = xr.Dataset({v.name: v for v in variables})
    pc = {"label": xr.Variable("label", np.asarray(labels, np.int32),
                               {"units": "1", "long_name": "particle label (as in the 'particle' map)"})}
    for name, values, units, long_name in (
        ("particle_active", np.asarray(p_active, bool), "1", "particle electronically connected (follows the cell)"),
        ("particle_response_time_s", p_tau, "s", "response time of an active particle (NaN if isolated)"),
        ("particle_v0_V", p_v0, "V", "particle's static potential"),
        ("particle_area_nm2", p_area, "nm^2", "particle's area in the field"),
        ("particle_centroid_y_nm", p_cy, "nm", "particle's centroid in the field (y)"),
        ("particle_centroid_x_nm", p_cx, "nm", "particle's centroid in the field (x)"),
    ):
        ds[name] = xr.DataArray(values, dims=("label",), coords=pc,
                                attrs={"units": units, "long_name": long_name, "provenance": "[]"})
    for name, value, units in (("noise_V", p.noise_V, "V"), ("psf_sigma_nm", p.psf_sigma_nm, "nm"),
                               ("psf_tail_fraction", p.psf_tail_fraction, "1"),
                               ("psf_tail_sigma_nm", p.psf_tail_sigma_nm, "nm")):
        ds[name] = xr.DataArray(float(value), attrs={"units": units, "provenance": "[]"})
    ds = ds.assign_coords(
        frame_start=("time", frame_start, {"units": "s", "long_name": "frame start since the first frame's start"}),
        scan_direction=("time", np.array(directions, dtype=str), {"units": "1", "long_name": "up: bottom row first"}),
        row_time=(("time", "y"), rt, {"units": "s", "long_name": "row recording time from the frame's start"}),
    )
    psf = {"model": "(1 - tail_fraction) * Gaussian(sigma_nm) + tail_fraction * Gaussian(tail_sigma_nm)",
           "sigma_nm": p.psf_sigma_nm, "tail_fraction": p.psf_tail_fraction, "tail_sigma_nm": p.psf_tail_sigma_nm}
    m_nm = p.margin_px * h
    ds.attrs = twin_attrs(
        TWIN, seed, p, primary="potential_measured", model=MODEL,
        start_time=START_TIME,
        noise_V=float(p.noise_V),
        psf=json.dumps(psf),
        field_origin_nm=[m_nm, m_nm],
        supersample=int(s),
        bias_on=bias,
        derived=json.dumps({
            "current_A": p.current_A,
            "capacity_C": p.capacity_mAh * 3.6,
            "line_time_s": p.line_time_s,
            "frames": p.n_frames,
            "sample_particles": ms.n_particles,
            "sample_active_particles": int(ms.particle_active.sum()),
            "field_particles": int(len(labels)),
            "field_active_particles": int(np.sum(p_active)),
        }),
    )
    measured_names = ("potential_measured", "potential_measured_backward", "topography_measured",
                      "topography_measured_backward", "potential_true")
    return twin_provenance(ds, STEP, p, seed, variables=measured_names)


__all__ = [
    "CompositeCathodeParams",
    "simulate_composite_cathode",
    "frames_as_datasets",
    "twin_microstructure",
    "twin_streams",
    "open_circuit_voltage",
    "frame_currents",
    "cell_state",
    "first_order_lag",
    "latp_rise_progress",
    "psf_transfer",
    "psf_kernel",
    "psf_edge_response",
    "row_times",
    "scan_directions",
    "START_TIME",
    "REST",
    "CHARGE",
    "DISCHARGE",
]
