r"""The microstructure of a LiCoPO4 / LATP / Pd composite cathode on a current collector, seen in
cross-section: the sample that the ``composite_cathode`` twin images with KPFM (and that a
TOF-SIMS twin can image at its own pixel size).

The geometry is continuous (nm), so one sample can be rasterised onto any grid:
:meth:`CompositeMicrostructure.rasterize` gives the phase map and the particle labels at any
pixel size and origin (e.g. 10 nm for KPFM, ~100 nm for TOF-SIMS), and
:meth:`CompositeMicrostructure.phase_fractions` the area fraction of every phase per pixel.
Which particles are electronically connected is decided once, on the geometry, not on a raster.

Coordinates: ``y`` down (row 0 at the top, as displayed), ``x`` to the right, both in nm from
the sample's top-left corner; the sample spans ``[0, height_nm) x [0, width_nm)``.

Model
-----
* **Current collector**: a band along the bottom edge, ``y >= top(x)`` with
  :math:`top(x) = H - c + \sigma_c f(x)`, :math:`c` the band thickness, :math:`f` a random sum
  of the first four Fourier modes across the width with unit standard deviation and
  :math:`\sigma_c` = ``collector_roughness_nm``. It is grounded (0 V).
* **LiCoPO4 particles**: star-shaped blobs :math:`r(\theta) = R\,(1 + \sum_{k=2}^{5} a_k
  \cos(k\theta + \varphi_k))` (clipped at 0.4 R), R uniform in [``particle_radius_min_nm``,
  ``particle_radius_max_nm``] (diameters ~200-600 nm by default), :math:`a_k` normal with
  standard deviation ``particle_irregularity`` / (k - 1). Random sequential placement above the
  collector until the particles cover ``licopo4_fraction`` of the composite's area (or 4000
  tries fail); no two particles come closer than ``particle_gap_nm`` (measured along rays from
  each centre), nor closer to the collector, so every particle is surrounded by LATP.
* **LATP**: the matrix, everywhere else above the collector.
* **Pd** (electronic conductor): discs of radius uniform in [``pd_radius_min_nm``,
  ``pd_radius_max_nm``]. A fraction ``connected_fraction`` of the particles (a random choice,
  processed from the collector upwards) grows a *strand*: a chain of overlapping discs (centre
  spacing 0.8 times the sum of the radii) that starts half a disc radius inside the particle's
  lower side (LiCoPO4 covers the overlap) and
  walks down (direction :math:`\pi/2 + 0.7(\theta_{prev} - \pi/2) + 0.4\,\xi` below the
  horizontal) until it touches the collector or Pd already connected to it (then one more
  disc, half sunk into the collector or between the two touching discs, makes the contact
  overlap on any raster), turning aside
  (up to +/-1.6 rad) to avoid other particles and the sample's left and right edges, and
  given up after ``4 H / r_mean`` discs.
  ``pd_free_per_um2`` further discs per um^2 of composite are dispersed at random in the LATP
  (they may touch each other, the collector, particles, strands).
* **Connectivity** (electronic): two objects are in contact when the gap between them is at
  most ``contact_nm`` (disc-disc: centre distance minus radii;
  anything-collector: the vertical gap to :math:`top(x)`; disc-particle: the Euclidean
  distance of the disc's centre from the particle's outline minus the disc radius, negative
  when the centre lies inside). Pd discs and the collector conduct; LiCoPO4
  and LATP do not. A particle is **connected** (active) when it touches the collector or a Pd
  disc of the collector's conducting cluster; every other particle is isolated. A strand that
  was given up, or a free Pd cluster, connects nothing unless it touches the cluster.
* Raster precedence: collector over LiCoPO4 over Pd over LATP; a pixel takes the phase of its
  centre point (no anti-aliasing; :meth:`~CompositeMicrostructure.phase_fractions` averages
  sub-pixel points).

Phase codes (:data:`PHASES`): 0 LATP, 1 LiCoPO4, 2 Pd, 3 collector. Particle labels are
``1 .. n`` in placement order (0 = not a LiCoPO4 particle), the same on every raster.

The shapes and densities are illustrative [open], chosen to look like the polished composite
cross-sections of the reference study (Masuda et al., Nanoscale 2017; Commun. Chem. 2019).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

from ionscope.errors import ConfigError
from ionscope.simulate.registry import check_parameters, parameter

#: Phase codes of the phase map and their names.
LATP, LICOPO4, PD, COLLECTOR = 0, 1, 2, 3
PHASES: dict[int, str] = {LATP: "LATP", LICOPO4: "LiCoPO4", PD: "Pd", COLLECTOR: "collector"}
PHASE_MEANINGS = " ".join(PHASES[k] for k in sorted(PHASES))

_HARMONICS = np.arange(2, 6)
_MIN_RADIUS = 0.4
_PLACEMENT_TRIES = 4000
_BOUNDARY_POINTS = 72
_CONTACT_POINTS = 720


@dataclasses.dataclass(frozen=True)
class MicrostructureParams:
    """Parameters of the composite-cathode microstructure (see the module docstring).

    Attributes
    ----------
    collector_nm : float
        Thickness of the current-collector band along the bottom edge (nm). Default 250.
    collector_roughness_nm : float
        Standard deviation of the collector's top edge (nm). Default 5.
    licopo4_fraction : float
        Area fraction of the composite (above the collector) covered by LiCoPO4 particles.
        Default 0.3.
    particle_radius_min_nm, particle_radius_max_nm : float
        Range of the particles' mean radius R (nm). Default 100, 300.
    particle_irregularity : float
        Shape irregularity (relative amplitude of the radius harmonics). Default 0.12.
    particle_gap_nm : float
        Smallest LATP gap between two particles and between a particle and the collector (nm).
        Default 20.
    connected_fraction : float
        Fraction of the particles that grow a Pd strand towards the collector. Default 0.5.
    pd_radius_min_nm, pd_radius_max_nm : float
        Range of the Pd disc radius (nm). Default 20, 45.
    pd_free_per_um2 : float
        Dispersed Pd discs per um^2 of composite area. Default 2.
    contact_nm : float
        Largest gap that still counts as an electronic contact (nm). Default 2.
    """

    collector_nm: float = parameter(250.0, 10.0, 1e6, "nm")
    collector_roughness_nm: float = parameter(5.0, 0.0, 1e4, "nm")
    licopo4_fraction: float = parameter(0.3, 0.0, 0.6, "")
    particle_radius_min_nm: float = parameter(100.0, 5.0, 1e5, "nm")
    particle_radius_max_nm: float = parameter(300.0, 5.0, 1e5, "nm")
    particle_irregularity: float = parameter(0.12, 0.0, 0.3, "")
    particle_gap_nm: float = parameter(20.0, 0.0, 1e5, "nm")
    connected_fraction: float = parameter(0.5, 0.0, 1.0, "")
    pd_radius_min_nm: float = parameter(20.0, 1.0, 1e5, "nm")
    pd_radius_max_nm: float = parameter(45.0, 1.0, 1e5, "nm")
    pd_free_per_um2: float = parameter(2.0, 0.0, 1e4, "1/um^2")
    contact_nm: float = parameter(2.0, 0.0, 1e4, "nm")

    def __post_init__(self) -> None:
        check_microstructure_parameters(self, "composite_cathode")


def check_microstructure_parameters(p: MicrostructureParams, twin: str) -> None:
    """Check the declared ranges of ``p`` and that every minimum is at most its maximum."""
    check_parameters(p, twin)
    for lo, hi in (("particle_radius_min_nm", "particle_radius_max_nm"),
                   ("pd_radius_min_nm", "pd_radius_max_nm")):
        if getattr(p, lo) > getattr(p, hi):
            raise ConfigError(
                f"twin {twin!r}: parameter {lo!r} ({getattr(p, lo):g} nm) must not exceed "
                f"{hi!r} ({getattr(p, hi):g} nm)"
            )


@dataclasses.dataclass(frozen=True, eq=False)
class CompositeMicrostructure:
    """A composite-cathode cross-section in continuous coordinates (nm); build it with
    :func:`build_microstructure`.

    Attributes
    ----------
    height_nm, width_nm : float
        Sample extent; y in ``[0, height_nm)`` (down), x in ``[0, width_nm)``.
    collector_nm : float
        Mean thickness of the collector band at the bottom.
    collector_roughness_nm : float
        Standard deviation of its top edge.
    particle_y_nm, particle_x_nm, particle_radius_nm : ndarray, shape (n,)
        Centres and mean radii R of the LiCoPO4 particles (label ``i + 1``).
    particle_amplitude, particle_phase : ndarray, shape (n, 4)
        Radius harmonics k = 2..5: relative amplitudes a_k and phases (rad).
    particle_targeted : ndarray of bool, shape (n,)
        Particles that grew a Pd strand.
    particle_active : ndarray of bool, shape (n,)
        Particles electronically connected to the collector.
    pd_y_nm, pd_x_nm, pd_radius_nm : ndarray, shape (m,)
        Pd discs.
    pd_strand : ndarray of int, shape (m,)
        Label of the particle whose strand a disc belongs to (0 for dispersed discs).
    pd_connected : ndarray of bool, shape (m,)
        Discs in the collector's conducting cluster.
    """

    height_nm: float
    width_nm: float
    collector_nm: float
    collector_roughness_nm: float
    collector_modes: np.ndarray
    particle_y_nm: np.ndarray
    particle_x_nm: np.ndarray
    particle_radius_nm: np.ndarray
    particle_amplitude: np.ndarray
    particle_phase: np.ndarray
    particle_targeted: np.ndarray
    particle_active: np.ndarray
    pd_y_nm: np.ndarray
    pd_x_nm: np.ndarray
    pd_radius_nm: np.ndarray
    pd_strand: np.ndarray
    pd_connected: np.ndarray

    @property
    def n_particles(self) -> int:
        """Number of LiCoPO4 particles."""
        return int(self.particle_y_nm.size)

    @property
    def labels(self) -> np.ndarray:
        """Particle labels ``1 .. n``."""
        return np.arange(1, self.n_particles + 1)

    @property
    def active_labels(self) -> np.ndarray:
        """Labels of the connected (active) particles."""
        return self.labels[self.particle_active]

    def collector_top_nm(self, x_nm: np.ndarray | float) -> np.ndarray:
        """Depth y (nm) of the collector's top edge at ``x_nm``."""
        return _collector_top(self.collector_modes, self.height_nm, self.width_nm, self.collector_nm,
                              self.collector_roughness_nm, np.asarray(x_nm, dtype=np.float64))

    def particle_radius_at(self, theta: np.ndarray) -> np.ndarray:
        """Radius (nm) of every particle along direction ``theta`` (rad from +x towards +y);
        ``theta`` broadcasts against shape (n, ...)."""
        return _blob_radius(self.particle_radius_nm, self.particle_amplitude, self.particle_phase, theta)

    def particle_area_nm2(self) -> np.ndarray:
        """Exact area of every particle's blob (nm^2), ignoring the 0.4 R clip."""
        return math.pi * self.particle_radius_nm**2 * (1.0 + 0.5 * (self.particle_amplitude**2).sum(axis=1))

    def rasterize(
        self, shape: tuple[int, int], pixel_nm: float, origin_nm: tuple[float, float] = (0.0, 0.0),
        rotation_deg: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Phase codes and particle labels at the grid points
        ``origin + R(rotation_deg) (j * pixel_nm, i * pixel_nm)``, R acting on (y, x) as
        ``[[cos, -sin], [sin, cos]]`` (positive: the grid's axes turned counter-clockwise as
        displayed, y down; 0: the axis-aligned grid ``(origin_y + j * pixel_nm, origin_x + i *
        pixel_nm)``).

        Returns
        -------
        phase : ndarray of int8, shape ``shape``
            :data:`PHASES` codes.
        particle : ndarray of int32, shape ``shape``
            Particle label (``1 .. n``) on LiCoPO4 points, 0 elsewhere.
        """
        ny, nx = (int(shape[0]), int(shape[1]))
        return _rasterize(self, (float(origin_nm[0]), float(origin_nm[1])), float(pixel_nm),
                          math.radians(float(rotation_deg)), (ny, nx))

    def phase_fractions(
        self,
        shape: tuple[int, int],
        pixel_nm: float,
        origin_nm: tuple[float, float] = (0.0, 0.0),
        supersample: int = 4,
    ) -> np.ndarray:
        """Area fraction of every phase per pixel, shape ``(4, ny, nx)`` (float64, summing to 1),
        from ``supersample**2`` points per pixel; pixel ``(j, i)`` covers
        ``[origin + (j - 1/2) pixel_nm, origin + (j + 1/2) pixel_nm)`` (its grid point in the
        middle, as in :meth:`rasterize`)."""
        s = int(supersample)
        if s < 1:
            raise ConfigError(f"supersample must be a positive integer, got {supersample!r}")
        sub = pixel_nm / s
        start = (origin_nm[0] - 0.5 * pixel_nm + 0.5 * sub, origin_nm[1] - 0.5 * pixel_nm + 0.5 * sub)
        phase, _ = self.rasterize((shape[0] * s, shape[1] * s), sub, start)
        out = np.empty((len(PHASES), shape[0], shape[1]))
        for code in PHASES:
            out[code] = (phase == code).reshape(shape[0], s, shape[1], s).mean(axis=(1, 3))
        return out


# --------------------------------------------------------------------------- kernels


def _collector_top(modes, height, width, thickness, roughness, x):
    k, amp, ph = modes[:, 0:1], modes[:, 1:2], modes[:, 2:3]
    f = (amp * np.cos(2 * np.pi * k * np.atleast_1d(x)[None, :] / width + ph)).sum(axis=0)
    return (height - thickness + roughness * f).reshape(np.shape(x))


def _blob_radius(radius, amplitude, phase, theta):
    """r(theta) for blobs with mean radii ``radius`` (n,) and harmonics (n, 4); ``theta``
    broadcasts against (n, ...)."""
    theta = np.asarray(theta, dtype=np.float64)
    extra = (1,) * max(theta.ndim - 1, 0)
    r = np.ones(np.broadcast_shapes(theta.shape, (radius.size,) + extra))
    for j, k in enumerate(_HARMONICS):
        a = amplitude[:, j].reshape((-1,) + extra)
        p = phase[:, j].reshape((-1,) + extra)
        r = r + a * np.cos(k * theta + p)
    return radius.reshape((-1,) + extra) * np.maximum(r, _MIN_RADIUS)


def _ray_gap(cy, cx, radius, amplitude, phase, py, px):
    """Distance of points (py, px) (shape (q,)) from every blob's boundary along the ray from
    its centre, shape (n, q); negative inside."""
    dy = py[None, :] - cy[:, None]
    dx = px[None, :] - cx[:, None]
    theta = np.arctan2(dy, dx)
    return np.hypot(dy, dx) - _blob_radius(radius, amplitude, phase, theta)


def _boundary(cy, cx, radius, amplitude, phase, n_points=_BOUNDARY_POINTS):
    theta = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    r = _blob_radius(np.atleast_1d(radius), np.atleast_2d(amplitude), np.atleast_2d(phase), theta[None, :])[0]
    return cy + r * np.sin(theta), cx + r * np.cos(theta)


def _rasterize(ms: CompositeMicrostructure, origin: tuple[float, float], step: float, angle: float,
               shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Phase codes and particle labels at ``origin + R(angle) (j step, i step)``: every disc and
    blob is tested only on the grid points inside its reach (a window in grid indices)."""
    ny, nx = shape
    phase = np.zeros((ny, nx), dtype=np.int8)
    particle = np.zeros((ny, nx), dtype=np.int32)
    if ny == 0 or nx == 0:
        return phase, particle
    c, s = math.cos(angle), math.sin(angle)
    oy, ox = origin

    def points(j0, j1, i0, i1):
        """Sample coordinates of the grid points [j0, j1) x [i0, i1)."""
        u = step * np.arange(j0, j1, dtype=np.float64)[:, None]
        v = step * np.arange(i0, i1, dtype=np.float64)[None, :]
        return oy + (c * u - s * v), ox + (s * u + c * v)

    def window(cy, cx, reach):
        dy, dx = cy - oy, cx - ox
        u, v = (c * dy + s * dx) / step, (-s * dy + c * dx) / step  # the centre in grid indices
        r = reach / step
        j0, j1 = max(int(math.floor(u - r)), 0), min(int(math.ceil(u + r)) + 1, ny)
        i0, i1 = max(int(math.floor(v - r)), 0), min(int(math.ceil(v + r)) + 1, nx)
        return j0, j1, i0, i1

    for cy, cx, rho in zip(ms.pd_y_nm, ms.pd_x_nm, ms.pd_radius_nm):
        j0, j1, i0, i1 = window(cy, cx, rho)
        if j0 >= j1 or i0 >= i1:
            continue
        y, x = points(j0, j1, i0, i1)
        inside = (y - cy) ** 2 + (x - cx) ** 2 < rho**2
        phase[j0:j1, i0:i1][inside] = PD
    reach = ms.particle_radius_nm * (1.0 + np.abs(ms.particle_amplitude).sum(axis=1))
    for n in range(ms.n_particles):
        cy, cx = ms.particle_y_nm[n], ms.particle_x_nm[n]
        j0, j1, i0, i1 = window(cy, cx, reach[n])
        if j0 >= j1 or i0 >= i1:
            continue
        y, x = points(j0, j1, i0, i1)
        dy, dx = y - cy, x - cx
        r = _blob_radius(ms.particle_radius_nm[n:n + 1], ms.particle_amplitude[n:n + 1],
                         ms.particle_phase[n:n + 1], np.arctan2(dy, dx)[None])[0]
        inside = np.hypot(dy, dx) < r
        phase[j0:j1, i0:i1][inside] = LICOPO4
        particle[j0:j1, i0:i1][inside] = n + 1
    if s == 0.0:  # axis-aligned: the collector's top edge once per column
        y, x = points(0, ny, 0, 1)[0], points(0, 1, 0, nx)[1]
        collector = y >= ms.collector_top_nm(x[0])[None, :]
    else:
        y, x = points(0, ny, 0, nx)
        collector = y >= ms.collector_top_nm(x.ravel()).reshape(y.shape)
    phase[collector] = COLLECTOR
    particle[collector] = 0
    return phase, particle


def active_proximity(
    particle: np.ndarray, active_labels: np.ndarray, pixel_nm: float, length_nm: float
) -> np.ndarray:
    """``exp(-d / length_nm)`` with ``d`` the distance (nm) of every pixel from the nearest
    pixel of an active particle (0 on the particles); zeros when no particle is active.

    Parameters
    ----------
    particle : ndarray of int, shape (ny, nx)
        Particle labels (0 = none).
    active_labels : array_like of int
        Labels of the active particles.
    pixel_nm : float
        Pixel size (nm).
    length_nm : float
        Decay length (nm), > 0.
    """
    mask = np.isin(particle, np.asarray(active_labels))
    if not mask.any():
        return np.zeros(particle.shape)
    d = ndimage.distance_transform_edt(~mask) * pixel_nm
    return np.exp(-d / length_nm)


# --------------------------------------------------------------------------- construction


def _place_particles(p: MicrostructureParams, height, width, top_fn, top_min, rng):
    area_target = p.licopo4_fraction * width * max(top_min, 0.0)
    ys, xs, rs, amps, phs, reach = [], [], [], [], [], []
    covered = 0.0
    tries = 0
    while covered < area_target and tries < _PLACEMENT_TRIES:
        tries += 1
        r = rng.uniform(p.particle_radius_min_nm, p.particle_radius_max_nm)
        amp = p.particle_irregularity * rng.standard_normal(4) / (_HARMONICS - 1)
        ph = rng.uniform(0.0, 2 * np.pi, 4)
        cy = rng.uniform(0.0, top_min)
        cx = rng.uniform(0.0, width)
        by, bx = _boundary(cy, cx, r, amp, ph)
        if np.any(top_fn(bx) - by < p.particle_gap_nm):
            continue
        if ys:
            ey, ex, er = np.array(ys), np.array(xs), np.array(reach)
            rch = r * (1.0 + np.abs(amp).sum())
            near = np.hypot(ey - cy, ex - cx) < er + rch + p.particle_gap_nm
            if near.any():
                idx = np.flatnonzero(near)
                gap_new = _ray_gap(ey[idx], ex[idx], np.array(rs)[idx], np.array(amps)[idx],
                                   np.array(phs)[idx], by, bx)
                if gap_new.min() < p.particle_gap_nm:
                    continue
                clash = False
                for k in idx:
                    oy, ox = _boundary(ys[k], xs[k], rs[k], amps[k], phs[k])
                    g = _ray_gap(np.array([cy]), np.array([cx]), np.array([r]), amp[None], ph[None], oy, ox)
                    if g.min() < p.particle_gap_nm:
                        clash = True
                        break
                if clash:
                    continue
        ys.append(cy)
        xs.append(cx)
        rs.append(r)
        amps.append(amp)
        phs.append(ph)
        reach.append(r * (1.0 + np.abs(amp).sum()))
        covered += math.pi * r * r * (1.0 + 0.5 * float((amp**2).sum()))
    n = len(ys)
    return (np.array(ys, dtype=np.float64).reshape(n), np.array(xs, dtype=np.float64).reshape(n),
            np.array(rs, dtype=np.float64).reshape(n), np.array(amps, dtype=np.float64).reshape(n, 4),
            np.array(phs, dtype=np.float64).reshape(n, 4))


class _Discs:
    """Growing list of Pd discs with a per-disc 'connected' flag (during strand growth)."""

    def __init__(self):
        self.y: list[float] = []
        self.x: list[float] = []
        self.r: list[float] = []
        self.strand: list[int] = []
        self.connected: list[bool] = []

    def arrays(self):
        return (np.array(self.y, dtype=np.float64), np.array(self.x, dtype=np.float64),
                np.array(self.r, dtype=np.float64))


def _grow_strand(label, particles, discs: _Discs, p: MicrostructureParams, top_fn, height, width, rng):
    """Grow one Pd strand from particle ``label`` towards the collector; mark it connected when
    it reaches the collector or connected Pd."""
    py, px, pr, pa, pp = particles
    i = label - 1
    others = np.arange(py.size) != i
    mean_r = 0.5 * (p.pd_radius_min_nm + p.pd_radius_max_nm)
    max_discs = int(4 * height / mean_r) + 4
    theta = 0.5 * np.pi + 0.5 * rng.standard_normal()
    rho = rng.uniform(p.pd_radius_min_nm, p.pd_radius_max_nm)
    # first disc: half a radius into the particle along theta (a contact any raster shows)
    r_here = float(_blob_radius(pr[i:i + 1], pa[i:i + 1], pp[i:i + 1], np.array([[theta]]))[0, 0])
    cy = py[i] + (r_here + 0.5 * rho) * math.sin(theta)
    cx = px[i] + (r_here + 0.5 * rho) * math.cos(theta)
    start = len(discs.y)
    prev_y, prev_x, prev_r = None, None, None
    for _ in range(max_discs):
        if prev_y is not None:
            placed = False
            for turn in (0.0, 0.4, -0.4, 0.8, -0.8, 1.2, -1.2, 1.6, -1.6):
                th = theta + turn
                step = 0.8 * (prev_r + rho)
                ty, tx = prev_y + step * math.sin(th), prev_x + step * math.cos(th)
                if not 0.0 <= tx <= width:
                    continue
                if py.size > 1:
                    gap = _ray_gap(py[others], px[others], pr[others], pa[others], pp[others],
                                   np.array([ty]), np.array([tx]))[:, 0] - rho
                    if gap.min() < 0.0:
                        continue
                gap_own = _ray_gap(py[i:i + 1], px[i:i + 1], pr[i:i + 1], pa[i:i + 1], pp[i:i + 1],
                                   np.array([ty]), np.array([tx]))[0, 0] - rho
                if gap_own < -0.5 * rho:
                    continue
                cy, cx, theta = ty, tx, th
                placed = True
                break
            if not placed:
                return
        else:
            if not 0.0 <= cx <= width:
                return
            if py.size > 1:
                gap = _ray_gap(py[others], px[others], pr[others], pa[others], pp[others],
                               np.array([cy]), np.array([cx]))[:, 0] - rho
                if gap.min() < 0.0:
                    return
        discs.y.append(cy)
        discs.x.append(cx)
        discs.r.append(rho)
        discs.strand.append(label)
        discs.connected.append(False)
        bridge = None
        if float(top_fn(np.array([cx]))[0]) - (cy + rho) <= p.contact_nm:
            bridge = (cy + rho, cx)  # a disc half sunk into the collector
        elif start > 0:
            dy, dx, dr = discs.arrays()
            prior = np.array(discs.connected[:start])
            if prior.any():
                gaps = np.hypot(dy[:start] - cy, dx[:start] - cx) - dr[:start] - rho
                touching = np.flatnonzero(prior & (gaps <= p.contact_nm))
                if touching.size:
                    k = int(touching[np.argmin(gaps[touching])])
                    bridge = (0.5 * (cy + dy[k]), 0.5 * (cx + dx[k]))  # overlaps both discs
        if bridge is not None:
            discs.y.append(bridge[0])
            discs.x.append(bridge[1])
            discs.r.append(rho)
            discs.strand.append(label)
            discs.connected.append(False)
            for k in range(start, len(discs.y)):
                discs.connected[k] = True
            return
        if cy > height:
            return
        prev_y, prev_x, prev_r = cy, cx, rho
        theta = 0.5 * np.pi + 0.7 * (theta - 0.5 * np.pi) + 0.4 * rng.standard_normal()
        rho = rng.uniform(p.pd_radius_min_nm, p.pd_radius_max_nm)


def _connectivity(particles, pd_y, pd_x, pd_r, top_fn, contact):
    """Collector cluster membership of every Pd disc and activity of every particle."""
    py, px, pr, pa, pp = particles
    m = pd_y.size
    # union-find over the discs plus one node (index m) for the collector
    parent = np.arange(m + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    if m:
        touch_collector = top_fn(pd_x) - (pd_y + pd_r) <= contact
        for k in np.flatnonzero(touch_collector):
            union(m, int(k))
        dist = np.hypot(pd_y[:, None] - pd_y[None, :], pd_x[:, None] - pd_x[None, :])
        gaps = dist - pd_r[:, None] - pd_r[None, :]
        a_idx, b_idx = np.nonzero(np.triu(gaps <= contact, 1))
        for a, b in zip(a_idx, b_idx):
            union(int(a), int(b))
    root = find(m)
    pd_connected = np.array([find(k) == root for k in range(m)], dtype=bool)
    active = np.zeros(py.size, dtype=bool)
    for i in range(py.size):
        by, bx = _boundary(py[i], px[i], pr[i], pa[i], pp[i], _CONTACT_POINTS)
        if np.any(top_fn(bx) - by <= contact):
            active[i] = True
            continue
        if pd_connected.any():
            cy, cx, cr = pd_y[pd_connected], pd_x[pd_connected], pd_r[pd_connected]
            d = np.hypot(by[:, None] - cy[None, :], bx[:, None] - cx[None, :]).min(axis=0)
            inside = _ray_gap(py[i:i + 1], px[i:i + 1], pr[i:i + 1], pa[i:i + 1], pp[i:i + 1], cy, cx)[0] < 0
            gap = np.where(inside, -cr, d - cr)
            active[i] = bool(np.any(gap <= contact))
    return pd_connected, active


def build_microstructure(
    params: MicrostructureParams | None = None,
    *,
    height_nm: float,
    width_nm: float,
    rng: np.random.Generator,
    collector_nm: float | None = None,
) -> CompositeMicrostructure:
    """Build a random composite-cathode cross-section (see the module docstring).

    Parameters
    ----------
    params : MicrostructureParams, optional
        Shapes, densities and contacts; defaults to ``MicrostructureParams()``.
    height_nm, width_nm : float
        Sample extent (nm), y down from the top edge.
    rng : numpy.random.Generator
        Draws every random choice (the same generator state gives the same sample).
    collector_nm : float, optional
        Collector band thickness (nm) at the bottom of this extent; defaults to
        ``params.collector_nm``.

    Returns
    -------
    CompositeMicrostructure

    Raises
    ------
    ConfigError
        If the collector leaves no room for the composite.

    Examples
    --------
    >>> import numpy as np
    >>> ms = build_microstructure(height_nm=2000.0, width_nm=2000.0, rng=np.random.default_rng(0))
    >>> phase, particle = ms.rasterize((100, 100), 20.0)
    >>> sorted(int(v) for v in np.unique(phase))
    [0, 1, 2, 3]
    """
    p = MicrostructureParams() if params is None else params
    thickness = p.collector_nm if collector_nm is None else float(collector_nm)
    height, width = float(height_nm), float(width_nm)
    if not (height > 0 and width > 0) or thickness + 3 * p.collector_roughness_nm >= height:
        raise ConfigError(
            f"the collector band ({thickness:g} nm + 3 x {p.collector_roughness_nm:g} nm roughness) "
            f"leaves no composite in a sample {height:g} nm high; lower collector_nm or enlarge "
            "the sample"
        )
    k = np.arange(1, 5, dtype=np.float64)
    amp = rng.standard_normal(4) / k
    ph = rng.uniform(0.0, 2 * np.pi, 4)
    xs = np.linspace(0.0, width, 512, endpoint=False)
    f = (amp[:, None] * np.cos(2 * np.pi * k[:, None] * xs[None, :] / width + ph[:, None])).sum(axis=0)
    amp = amp / max(float(f.std()), 1e-12)
    modes = np.stack([k, amp, ph], axis=1)

    def top_fn(x):
        return _collector_top(modes, height, width, thickness, p.collector_roughness_nm, np.asarray(x, dtype=np.float64))

    top_min = float(top_fn(xs).min())
    particles = _place_particles(p, height, width, top_fn, top_min, rng)
    py = particles[0]
    n = py.size
    targeted = rng.random(n) < p.connected_fraction
    discs = _Discs()
    # strands from the particles nearest the collector first: later ones can end on them
    order = np.argsort(top_min - py)
    for i in order:
        if targeted[i]:
            _grow_strand(int(i) + 1, particles, discs, p, top_fn, height, width, rng)
    # dispersed Pd in the LATP
    n_free = int(round(p.pd_free_per_um2 * width * top_min * 1e-6))
    for _ in range(n_free):
        for _attempt in range(50):
            rho = rng.uniform(p.pd_radius_min_nm, p.pd_radius_max_nm)
            cy, cx = rng.uniform(0.0, top_min), rng.uniform(0.0, width)
            if n:
                gap = _ray_gap(*particles, np.array([cy]), np.array([cx]))[:, 0] - rho
                if gap.min() < 0.0:
                    continue
            discs.y.append(cy)
            discs.x.append(cx)
            discs.r.append(rho)
            discs.strand.append(0)
            discs.connected.append(False)
            break
    pd_y, pd_x, pd_r = discs.arrays()
    pd_connected, active = _connectivity(particles, pd_y, pd_x, pd_r, top_fn, p.contact_nm)
    return CompositeMicrostructure(
        height_nm=height,
        width_nm=width,
        collector_nm=thickness,
        collector_roughness_nm=p.collector_roughness_nm,
        collector_modes=modes,
        particle_y_nm=particles[0],
        particle_x_nm=particles[1],
        particle_radius_nm=particles[2],
        particle_amplitude=particles[3],
        particle_phase=particles[4],
        particle_targeted=targeted,
        particle_active=active,
        pd_y_nm=pd_y,
        pd_x_nm=pd_x,
        pd_radius_nm=pd_r,
        pd_strand=np.array(discs.strand, dtype=np.int32),
        pd_connected=pd_connected,
    )


__all__ = [
    "LATP",
    "LICOPO4",
    "PD",
    "COLLECTOR",
    "PHASES",
    "PHASE_MEANINGS",
    "MicrostructureParams",
    "CompositeMicrostructure",
    "check_microstructure_parameters",
    "build_microstructure",
    "active_proximity",
]
