"""Small synthetic KPFM frames in the SPM readers' data model, with their ground truth (a test and
benchmark helper, not a twin: the ``composite_cathode`` twin lives in :mod:`ionscope.simulate`).

One frame is an :class:`xarray.Dataset` with variables ``{channel}_{direction}``
(``Z_forward``/``Z_backward`` heights in nm, ``Potential_forward``/``Potential_backward`` in V,
and a distracting ``Amplitude_forward`` in V), dims (y, x), coordinates in nm from 0 with row 0 at
the top, a ``row_time`` (y) coordinate in s from the frame start (increasing downwards for a
down-scan, upwards for an up-scan) and attrs ``start_time`` (ISO 8601), ``scan_direction``,
``scan_range_nm``, ``acquisition_time_s``, ``source_file``.

The scene: a grounded current collector (0 V) along the left edge, a particle-free strip of
electrolyte matrix next to it (a clean, straight collector | matrix step), then particles as
discs with their own static potentials in the matrix; the *active* ones follow the cell voltage
(``dV = alpha (V_cell(t) - V_cell(0))``), the others stay put; a small IR ramp across the matrix
proportional to the cell current. Each frame: the scene displaced by a sub-pixel drift, seen
through a PSF (Gaussian core plus a broad Gaussian tail), per-row (line) offsets, a frame offset
and white noise; each row at its own time, so the potential of an active particle changes during
the frame. Topography: a tilted plane, particles standing out, line offsets and a little noise.

Ground truth on the FIRST frame's grid (drift removed), at each row's own time: the unblurred
potential, the PSF-blurred one, and the shifts that register each frame onto the first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import scipy.ndimage as ndi
import xarray as xr


@dataclasses.dataclass
class Truth:
    """Ground truth of :func:`make_frames` (arrays on the first frame's grid)."""

    potential: np.ndarray  # (n, ny, nx) V, unblurred, referenced to the collector (0 V)
    blurred: np.ndarray  # (n, ny, nx) V, blurred by the PSF
    shifts_px: np.ndarray  # (n, 2) the shift registering each frame onto the first (-drift)
    labels: np.ndarray  # (ny, nx) int, particle labels (0 = matrix / collector)
    active: np.ndarray  # (ny, nx) bool, pixels of active particles
    active_labels: list  # labels of the active particles
    noise_V: float
    psf: tuple  # (core_sigma_px, tail_weight, tail_sigma_px)
    pixel_nm: float
    collector_px: int  # columns [0, collector_px) are the grounded collector
    times_s: np.ndarray  # frame start times from the first frame's start
    cycler: xr.Dataset  # time (s from the first frame's start), voltage, current, charge


def cell_state(t: np.ndarray, *, t_on: float, tau: float = 900.0, v0: float = 3.0, dv: float = 0.6,
               current_A: float = 2e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell voltage (V), current (A) and charge (C) at times ``t`` (s): rest until ``t_on``, then
    a constant-current charge whose voltage rises as ``dv (1 - exp(-(t - t_on) / tau))``."""
    t = np.asarray(t, dtype=np.float64)
    on = np.clip(t - t_on, 0, None)
    voltage = v0 + dv * (1 - np.exp(-on / tau))
    current = np.where(t >= t_on, current_A, 0.0)
    charge = current_A * on
    return voltage, current, charge


def _disc(yy, xx, cy, cx, r):
    """Anti-aliased disc coverage (0..1)."""
    return np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0.0, 1.0)


def _blur(image, psf):
    core, weight, tail = psf
    if core <= 0 and weight <= 0:
        return image.copy()
    out = (1 - weight) * (ndi.gaussian_filter(image, core, mode="nearest") if core > 0 else image)
    if weight > 0:
        out += weight * ndi.gaussian_filter(image, tail, mode="nearest")
    return out


def make_frames(n_frames: int = 4, shape: tuple[int, int] = (128, 128), *, pixel_nm: float = 4.0,
                noise_V: float = 0.01, psf: tuple = (1.5, 0.3, 12.0), line_offset_V: float = 0.03,
                frame_offset_V: float = 0.1, drift_px: float = 1.5, scan: str = "alternate",
                n_particles: int | None = None, active_fraction: float = 0.5, alpha: float = 0.5,
                ir_slope_V_per_nm_per_A: float = 10.0, frame_period_s: float = 600.0,
                line_time_s: float | None = None, t_on: float | None = None, seed: int = 0,
                start: str = "2024-05-01T10:00:00", shuffle: bool = False, backward: bool = True,
                texture_V: float = 0.01):
    """``(frames, truth)``: ``n_frames`` synthetic KPFM frames (list of Datasets) and a
    :class:`Truth`.

    ``scan``: ``"down"``, ``"up"`` or ``"alternate"`` (down first). ``drift_px``: size of the
    random sub-pixel drift step per frame (px). ``shuffle``: return the frames out of time order.
    ``texture_V``: RMS of a smooth static texture of the electrolyte matrix (its grains), which
    keeps the matrix from looking as flat as the collector.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    core, weight, tail = psf
    pad = int(np.ceil(4 * max(core, tail if weight > 0 else 0, 1))) + int(np.ceil(3 * drift_px * n_frames)) + 2
    yy, xx = np.mgrid[-pad:ny + pad, -pad:nx + pad].astype(np.float64)
    collector = max(4, int(round(0.125 * nx)))
    margin = max(8, int(round(0.3 * nx)))
    # particles: non-overlapping discs right of the particle-free strip
    if n_particles is None:
        n_particles = max(4, int(round(ny * nx / 1400)))
    r_lo, r_hi = 0.06 * min(ny, nx), 0.1 * min(ny, nx)
    particles = []
    tries = 0
    while len(particles) < n_particles and tries < 20000:
        tries += 1
        r = rng.uniform(r_lo, r_hi)
        cy = rng.uniform(-0.3 * r, ny + 0.3 * r)  # particles cut by the edges too: no flat strip there
        cx = rng.uniform(collector + margin + r, nx + 0.3 * r)
        if all(np.hypot(cy - p[0], cx - p[1]) > r + p[2] + 3 for p in particles):
            particles.append((cy, cx, r))
    n_active = max(1, int(round(active_fraction * len(particles))))
    active_ids = set(rng.choice(len(particles), n_active, replace=False).tolist())
    v_matrix = 0.3
    line_time = line_time_s if line_time_s is not None else 0.75 * frame_period_s / ny
    acq = line_time * ny
    t_on = t_on if t_on is not None else acq + 0.5 * (frame_period_s - acq)  # after the first frame

    # a smooth static texture of the matrix (4 px correlation), on a canvas large enough for the drift
    tex_canvas = ndi.gaussian_filter(rng.normal(size=yy.shape), 4.0, mode="wrap")
    tex_canvas *= texture_V / (tex_canvas.std() or 1.0)

    def scene(dy, dx):
        """Components of the scene displaced by (dy, dx): static V, active pattern, IR ramp, Z."""
        X = xx[0] - dx  # columns
        Yc = yy[:, 0] - dy  # rows
        coll = np.broadcast_to(np.clip(collector - X, 0.0, 1.0)[None, :], yy.shape)  # columns x < collector
        texture = (np.fft.ifft2(ndi.fourier_shift(np.fft.fft2(tex_canvas), (dy, dx))).real
                   if texture_V > 0 else 0.0)
        static = (1 - coll) * (v_matrix + texture)
        act = np.zeros(yy.shape)
        z = 2.0 * coll
        labels = np.zeros(yy.shape, np.int32)
        for k, (cy, cx, r) in enumerate(particles):
            # render each disc in its bounding box only
            rows = np.flatnonzero(np.abs(Yc - cy) <= r + 1.5)
            cols = np.flatnonzero(np.abs(X - cx) <= r + 1.5)
            if rows.size == 0 or cols.size == 0:
                continue
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            d = _disc(Yc[box[0]][:, None], X[box[1]][None, :], cy, cx, r)
            v0 = 0.15 + 0.3 * ((k * 0.618) % 1.0)
            static[box] += d * (v0 - v_matrix)
            if k in active_ids:
                act[box] += alpha * d
            z[box] += 4.0 * d
            labels[box][d >= 0.5] = k + 1
        ramp = (1 - coll) * np.broadcast_to((X - collector).clip(0)[None, :], yy.shape) * pixel_nm * ir_slope_V_per_nm_per_A
        return static, act, ramp, z, labels

    # drift: a random walk of sub-pixel steps (the content moves by +d in frame k)
    steps = rng.normal(0.0, drift_px, size=(n_frames, 2))
    steps[0] = 0.0
    drift = np.cumsum(steps, axis=0)
    directions = {"down": ["down"] * n_frames, "up": ["up"] * n_frames,
                  "alternate": ["down" if k % 2 == 0 else "up" for k in range(n_frames)]}[scan]
    t0 = dt.datetime.fromisoformat(start)
    crop = (slice(pad, pad + ny), slice(pad, pad + nx))
    s0, a0, ramp0, _, lab0 = scene(0.0, 0.0)
    s0b, a0b, ramp0b = (_blur(c, psf) for c in (s0, a0, ramp0))
    frames, truth_v, truth_b = [], [], []
    times = np.arange(n_frames) * frame_period_s
    for k in range(n_frames):
        rows = (np.arange(ny) + 0.5) * line_time
        row_time = rows if directions[k] == "down" else rows[::-1]
        t_rows = times[k] + row_time
        v_cell, i_cell, _ = cell_state(t_rows, t_on=t_on)
        dv_cell = (v_cell - cell_state(np.array([0.0]), t_on=t_on)[0][0])[:, None]
        i_row = i_cell[:, None]
        static, act, ramp, z, _ = scene(*drift[k])
        sb, ab, rb = (_blur(c, psf)[crop] for c in (static, act, ramp))
        clean = sb + dv_cell * ab + i_row * rb
        offsets = rng.normal(0.0, line_offset_V, ny)[:, None] + rng.normal(0.0, frame_offset_V)
        # recorded as an instrument with the Kelvin bias on the sample does: -(sample potential)
        pot_f = -(clean + offsets) + rng.normal(0.0, noise_V, (ny, nx))
        pot_b = -(clean + offsets + rng.normal(0.0, 0.3 * line_offset_V, ny)[:, None]) + rng.normal(0.0, noise_V, (ny, nx))
        zc = ndi.gaussian_filter(z, 0.7)[crop]
        plane = 0.02 * np.arange(nx)[None, :] + 0.01 * np.arange(ny)[:, None] + 5.0
        zoff = rng.normal(0.0, 0.3, ny)[:, None]
        z_f = zc + plane + zoff + rng.normal(0.0, 0.05, (ny, nx))
        z_b = zc + plane + zoff + rng.normal(0.0, 0.05, (ny, nx))
        amp = 0.5 + 0.01 * rng.normal(size=(ny, nx))
        # truth on the first frame's grid: scene row r was scanned at raw row r + drift_y
        t_first = times[k] + np.interp(np.arange(ny) + drift[k][0], np.arange(ny), row_time)
        vt, it, _ = cell_state(t_first, t_on=t_on)
        dvt = (vt - cell_state(np.array([0.0]), t_on=t_on)[0][0])[:, None]
        truth_v.append(s0[crop] + dvt * a0[crop] + it[:, None] * ramp0[crop])
        truth_b.append(s0b[crop] + dvt * a0b[crop] + it[:, None] * ramp0b[crop])
        variables = {"Z_forward": (z_f, "nm"), "Potential_forward": (pot_f, "V"), "Amplitude_forward": (amp, "V")}
        if backward:
            variables.update({"Z_backward": (z_b, "nm"), "Potential_backward": (pot_b, "V")})
        coords = {"y": ("y", np.arange(ny) * pixel_nm, {"units": "nm"}),
                  "x": ("x", np.arange(nx) * pixel_nm, {"units": "nm"}),
                  "row_time": ("y", row_time, {"units": "s"})}
        ds = xr.Dataset({name: (("y", "x"), data.astype(np.float32), {"units": unit})
                         for name, (data, unit) in variables.items()}, coords=coords)
        ds.attrs = {"start_time": (t0 + dt.timedelta(seconds=float(times[k]))).isoformat(),
                    "scan_direction": directions[k], "scan_range_nm": [nx * pixel_nm, ny * pixel_nm],
                    "acquisition_time_s": float(acq), "source_file": f"frame{k:03d}.sxm"}
        frames.append(ds)
    labels = lab0[crop]
    active_labels = sorted(k + 1 for k in active_ids)
    tc = np.arange(-60.0, times[-1] + frame_period_s + 60.0, 5.0)
    v, i, q = cell_state(tc, t_on=t_on)
    cycler = xr.Dataset({"voltage": ("time", v, {"units": "V"}), "current": ("time", i, {"units": "A"}),
                         "charge": ("time", q, {"units": "C"})}, coords={"time": ("time", tc, {"units": "s"})},
                        attrs={"start_time": t0.isoformat()})
    truth = Truth(potential=np.stack(truth_v), blurred=np.stack(truth_b), shifts_px=-(drift - drift[0]),
                  labels=labels, active=np.isin(labels, active_labels), active_labels=active_labels,
                  noise_V=noise_V, psf=tuple(psf), pixel_nm=pixel_nm, collector_px=collector, times_s=times,
                  cycler=cycler)
    if shuffle:
        order = rng.permutation(n_frames)
        frames = [frames[j] for j in order]
    return frames, truth


def step_frame(shape=(96, 160), *, pixel_nm=4.0, psf=(1.5, 0.2, 10.0), noise_V=0.01, drop_V=0.4,
               slope_V_per_nm=2e-4, step_px=80.0, seed=0):
    """One potential map ``(potential, truth)``: a sharp step of ``drop_V`` (falling from left to
    right) at column ``step_px`` on a linear ramp of ``slope_V_per_nm`` along x, blurred by the
    PSF, with white noise; ``truth`` holds the unblurred and blurred maps."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    pad = int(np.ceil(4 * max(psf[0], psf[2]))) + 2
    x = np.arange(-pad, nx + pad, dtype=np.float64)
    row = np.where(x < step_px, drop_V, 0.0) + slope_V_per_nm * pixel_nm * (x - step_px)
    row[np.isclose(x, step_px)] = drop_V / 2
    img = np.tile(row, (ny + 2 * pad, 1))
    blurred = _blur(img, psf)[pad:pad + ny, pad:pad + nx]
    sharp = img[pad:pad + ny, pad:pad + nx]
    noisy = blurred + rng.normal(0.0, noise_V, (ny, nx))
    coords = {"y": ("y", np.arange(ny) * pixel_nm, {"units": "nm"}), "x": ("x", np.arange(nx) * pixel_nm, {"units": "nm"})}
    da = xr.DataArray(noisy, dims=("y", "x"), coords=coords, name="potential", attrs={"units": "V"})
    return da, {"sharp": sharp, "blurred": blurred}
