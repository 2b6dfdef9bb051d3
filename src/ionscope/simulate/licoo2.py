r"""Operando LiCoO2 thin-film cathode on a solid electrolyte, seen in cross-section.

Digital twin of the operando STEM-EELS Li maps of :doc:`/guide/eels`: the Li fraction
:math:`x(t, y, x)` of a LiCoO2 film through charge -> rest -> discharge -> rest, with the
cycler log that goes with it (:doc:`/guide/echem`). ``y`` is depth: the row ``y = 0`` touches the
solid electrolyte (SE), the last row the current collector.

Model
-----
Geometry (film depth :math:`L = n_y h`, pixel size :math:`h` in nm, lamella thickness
:math:`t_z` along the beam):

* ``n_domains`` LiCoO2 domains, a Voronoi tessellation of random seed points. A pixel with a
  4-neighbour in another domain is a *boundary* pixel (boundaries are two pixels wide and
  4-connected, so they form continuous fast paths).
* An interfacial Li-poor layer of mean thickness ``layer_thickness_nm`` (LiCoO2 + Co3O4, left
  by Li lost to the SE during 550 C deposition) on the SE side; its lower edge is roughened by a
  smooth random profile of standard deviation ``layer_roughness_nm``. Only a fraction
  :math:`s` (``layer_site_fraction``) of the layer is LiCoO2 that can host Li; :math:`s = 1` in
  the film. A pixel is in the layer when its centre depth :math:`(j + 1/2) h` is above the
  layer's edge.

State: the occupancy :math:`\theta \in [0, 1]` of the LiCoO2 Li sites; the Li fraction seen by
an instrument (Li per LiCoO2 formula unit of the pixel) is :math:`x = s\,\theta`. The layer
therefore starts at :math:`x = s\,\theta_0` and stays Li-poor: in equilibrium :math:`\theta` is
uniform, not :math:`x`.

Transport (units: t in s, lengths in nm, D in nm^2/s; 1e-17 m^2/s = 10 nm^2/s):

.. math::

    s \, \partial_t \theta = \nabla \cdot (D \nabla \theta) + r(t, y, x),

with :math:`D` = ``d_boundary_nm2_s`` on domain boundaries, ``d_bulk_nm2_s`` in domain
interiors and ``d_layer_nm2_s`` everywhere in the interfacial layer, and no-flux outer faces.
Finite volumes on the pixel grid: the flux through the face between pixels *i* and *k* is
:math:`D_{ik} (\theta_k - \theta_i) / h^2` with the harmonic mean
:math:`D_{ik} = 2 D_i D_k / (D_i + D_k)`, so the operator :math:`A` is symmetric with zero
row and column sums. Backward Euler with step :math:`\Delta t` = ``frame_time_s /
steps_per_frame``,

.. math::

    (S - \Delta t A)\, \theta^{n+1} = S \theta^n + \Delta t\, r^n, \qquad S = \mathrm{diag}(s),

conserves :math:`\sum_i s_i \theta_i` exactly except for the source; the matrix is factorised
once (``scipy.sparse.linalg.splu``) and reused for every step.

Electrochemistry (galvanostatic at ``c_rate_per_h``; 1 C moves the film's whole Li capacity
:math:`Q_{cap} = \sum_i s_i` (in pixels at x = 1) in one hour; :math:`q = C Q_{cap}
\Delta t / 3600` per step; the source :math:`r` is evaluated at the start of each step):

* charge: Li leaves through the SE interface (row 0) with a linearised Butler-Volmer weight
  proportional to the local Li fraction, :math:`r_i \Delta t = -q\, x_i / \sum_{row 0} x`;
* discharge: Li is inserted first where electrons are available, at the collector side:
  :math:`r_i \Delta t = q\, w_i / \sum w`, :math:`w_i = e^{-(L - y_i)/\lambda_e}\, s_i (1 -
  \theta_i)` (electron-limited insertion; the ions reach the collector side along the fast
  domain boundaries, which the model does not resolve), :math:`\lambda_e` =
  ``insertion_length_nm``;
* rest: :math:`r = 0`, diffusion keeps relaxing the field.

If a step would take more than half of the Li (charge) or fill more than half of the vacancies
(discharge) of any pixel, :math:`q` is reduced for that step (a current limit, like the
cycler's voltage limit); together with the M-matrix property of :math:`S - \Delta t A` this
keeps :math:`0 \le \theta \le 1`.

Cycler log: one Li site per LiCoO2 formula unit at ``site_density_mol_m3`` (5.17e4 mol/m^3 =
5.06 g/cm^3 / 97.87 g/mol) gives :math:`n_1 = c_{max} h^2 t_z` mol of Li per pixel at x = 1.
Charge passed (C, positive = Li removed) :math:`Q(t) = F n_1 \sum_i (x_i(0) - x_i(t))`, current
:math:`I = \Delta Q / \Delta t` (A, positive on charge), voltage :math:`V = U(\bar\theta_0) + I
R` with :math:`\bar\theta_0` the mean occupancy of the row touching the SE, :math:`U` the
open-circuit voltage of :func:`licoo2_ocv` and :math:`R` = ``r_internal_ohm_cm2`` divided by the
SE-interface area :math:`n_x h t_z` (electrolyte plus the large interface resistance). The log
is written after every time step, starting with the open-circuit state at t = 0.

Observation: a frame is the field at its mid-time (``time`` coordinate, s); the ``y`` and ``x``
coordinates are ``j h`` (pixel j covers ``[j h, (j + 1) h)``, y = 0 at the SE). The observed
``li_fraction`` is :math:`N / d` with :math:`N \sim \mathrm{Poisson}(d\, x)` and dose :math:`d`
(counts per pixel per frame at x = 1); ``dose=None`` gives the noiseless field.

Truth of the motion (for :mod:`ionscope.transport`): the Li flux :math:`\mathbf J` (Li fraction
x nm/s, so that :math:`\partial_t x = -\nabla\cdot\mathbf J`) through every face,
:math:`-D_{ik}(\theta_k - \theta_i)/h` (:func:`face_flux`), plus the flux that carries the source
between the electrolyte face and the pixels it leaves or enters (:class:`SupplyPath`: the model
does not resolve how inserted Li reaches the collector side, so the truth takes the path of least
resistance through the film's own diffusivity map, ``J = -D grad(psi)``), averaged over the frame's exposure :math:`[t_k - \Delta/2, t_k + \Delta/2]` and from the
faces to the pixel centres (``flux_y_true``, ``flux_x_true``). Diffusion does not stop at open
circuit, so the flux is non-zero at rest: the film relaxes in depth and in-plane along the
domain boundaries. The front (``front_position_true``) is the iso-line
:math:`x = 0.7\,\theta_0` (:data:`FRONT_LEVEL`): per column, the depth (the ``y`` coordinate)
of its deepest crossing (:func:`ionscope.profiles.iso_depth`).

References
----------
Nomura et al., Nat. Commun. 11, 2824 (2020), doi:10.1038/s41467-020-16622-w (operando EELS
of LiCoO2 on LASGTP; Li-poor interfacial layer, Li returning first at the collector side, Li
moving along domain boundaries and at rest). The OCV curve and the rate constants are
illustrative [open], not fitted to that work.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr

from ionscope.constants import FARADAY
from ionscope.data import signal
from ionscope.errors import ConfigError
from ionscope.profiles.isoline import iso_depth
from ionscope.simulate.registry import (
    ProgressCallback,
    check_parameters,
    parameter,
    register_twin,
    twin_attrs,
    twin_provenance,
)

STEP = "ionscope.simulate.licoo2"

#: Frame states (values of the ``state`` variable).
REST, CHARGE, DISCHARGE = 0, 1, 2
STATE_MEANINGS = "rest charge discharge"

#: Largest fraction of a pixel's Li (charge) or vacancies (discharge) one step may move.
_STEP_CAP = 0.5

MODEL = (
    "Li occupancy theta of the LiCoO2 sites in a cross-section (y = depth, y = 0 at the solid "
    "electrolyte) obeys s dtheta/dt = div(D grad theta) + r, observed Li fraction x = s theta "
    "(s = 1 in LiCoO2, s = layer_site_fraction in the interfacial LiCoO2 + Co3O4 layer, which "
    "therefore stays Li-poor). D is d_boundary on Voronoi domain boundaries, d_bulk inside "
    "domains and d_layer in the layer; conservative finite volumes with harmonic-mean face "
    "diffusivities, no-flux outer faces, backward Euler with one sparse LU factorisation. "
    "Galvanostatic charge removes Li through the electrolyte face with weights proportional to "
    "the local x (linearised Butler-Volmer); discharge inserts it with weights "
    "exp(-(L - y)/insertion_length) * s (1 - theta), first at the current collector "
    "(electron-limited insertion); rest has no current and diffusion keeps relaxing. Charge "
    "Q = F n1 sum(x(0) - x(t)) with n1 = c_max h^2 t_z mol per pixel, current dQ/dt, voltage "
    "OCV(mean theta at the electrolyte face) + I R. Observed maps are Poisson counts at the "
    "stated dose divided by the dose. Truth of the motion: the Li flux -D grad theta through "
    "every face plus the flux -D grad psi that carries the source from the electrolyte face "
    "(div D grad psi = source rate, psi = 0 there: the path of least resistance), averaged "
    "over each frame's exposure and to the pixel centres; the front position, the depth of the "
    "deepest crossing of x = 0.7 initial_occupancy in every column."
)

#: The twin's true front is the iso-line x = FRONT_LEVEL * initial_occupancy.
FRONT_LEVEL = 0.7


@dataclasses.dataclass(frozen=True)
class LiCoO2Params:
    """Parameters of the operando LiCoO2 cross-section twin.

    Attributes
    ----------
    ny, nx : int
        Map size in pixels (depth, in-plane). Default 64 x 64.
    pixel_nm : float
        Pixel size h (nm). Default 2.5.
    thickness_nm : float
        Lamella thickness t_z along the beam (nm); sets the mol of Li per pixel. Default 100.
    frame_time_s : float
        Time per frame (s). Default 60 (about 1 min per frame as in the seed work).
    steps_per_frame : int
        Backward-Euler steps per frame (even, so a step ends at each frame's mid-time); also
        the cycler log interval ``frame_time_s / steps_per_frame``. Default 6 (10 s).
    charge_frames, rest1_frames, discharge_frames, rest2_frames : int
        Frames of galvanostatic charge, rest, galvanostatic discharge, rest. Default
        60, 20, 57, 20 (157 frames).
    c_rate_per_h : float
        Charge and discharge rate (1/h); 1 moves the film's whole Li capacity in one hour.
        Default 0.3 (60 one-minute frames of charge remove 30 % of the Li).
    d_bulk_nm2_s, d_boundary_nm2_s, d_layer_nm2_s : float
        Li diffusivity (nm^2/s; 10 nm^2/s = 1e-17 m^2/s) inside domains, on domain
        boundaries and everywhere in the interfacial layer (which has no fast boundary paths:
        Co3O4 blocks them). Default 1, 40, 1 (1e-18, 4e-17, 1e-18 m^2/s), the slow end of
        reported LiCoO2 values, chosen so that a domain (~45 nm across) takes several frames to
        exchange Li with its boundaries (L^2/D ~ 500 s) while the boundary network carries Li
        in-plane and in depth; the layer's effective diffusivity is several times below the
        film's.
    n_domains : int
        Number of Voronoi domains. Default 12.
    layer_thickness_nm : float
        Mean thickness of the interfacial Li-poor layer (nm); 0 for none. Default 20.
    layer_roughness_nm : float
        Standard deviation of the layer's lower edge (nm). Default 2.
    layer_site_fraction : float
        Fraction s of the layer that is Li-hosting LiCoO2 (the rest Co3O4); the layer's
        Li fraction is s times the occupancy. Default 0.4.
    initial_occupancy : float
        Occupancy theta_0 of the LiCoO2 Li sites at t = 0 (film x = theta_0). Default 1.
    insertion_length_nm : float
        Decay length lambda_e (nm) of the discharge insertion weight away from the
        collector. Default 25.
    site_density_mol_m3 : float
        Li site density c_max of LiCoO2 (mol/m^3). Default 5.17e4.
    r_internal_ohm_cm2 : float
        Area-specific internal resistance (ohm cm^2, electrolyte + interface), referred to the
        electrolyte-interface area ``nx * pixel_nm * thickness_nm``. Default 5000.
    dose : float or None
        Counts per pixel per frame at x = 1 (Poisson noise); None for noiseless maps.
        Default 200.
    """

    ny: int = parameter(64, 8, 2048, "px", integer=True)
    nx: int = parameter(64, 8, 2048, "px", integer=True)
    pixel_nm: float = parameter(2.5, 0.01, 1000.0, "nm")
    thickness_nm: float = parameter(100.0, 1.0, 1e5, "nm")
    frame_time_s: float = parameter(60.0, 1e-3, 1e6, "s")
    steps_per_frame: int = parameter(6, 2, 1000, "steps", integer=True)
    charge_frames: int = parameter(60, 0, 100000, "frames", integer=True)
    rest1_frames: int = parameter(20, 0, 100000, "frames", integer=True)
    discharge_frames: int = parameter(57, 0, 100000, "frames", integer=True)
    rest2_frames: int = parameter(20, 0, 100000, "frames", integer=True)
    c_rate_per_h: float = parameter(0.3, 0.0, 100.0, "1/h")
    d_bulk_nm2_s: float = parameter(1.0, 1e-6, 1e8, "nm^2/s")
    d_boundary_nm2_s: float = parameter(40.0, 1e-6, 1e8, "nm^2/s")
    d_layer_nm2_s: float = parameter(1.0, 1e-6, 1e8, "nm^2/s")
    n_domains: int = parameter(12, 1, 100000, "domains", integer=True)
    layer_thickness_nm: float = parameter(20.0, 0.0, 1e6, "nm")
    layer_roughness_nm: float = parameter(2.0, 0.0, 1e6, "nm")
    layer_site_fraction: float = parameter(0.4, 0.01, 1.0, "")
    initial_occupancy: float = parameter(1.0, 0.0, 1.0, "")
    insertion_length_nm: float = parameter(25.0, 0.01, 1e6, "nm")
    site_density_mol_m3: float = parameter(5.17e4, 1.0, 1e7, "mol/m^3")
    r_internal_ohm_cm2: float = parameter(5000.0, 0.0, 1e9, "ohm cm^2")
    dose: float | None = parameter(200.0, 1e-3, 1e12, "counts/px/frame", allow_none=True)

    def __post_init__(self) -> None:
        check_parameters(self, "licoo2")
        if self.steps_per_frame % 2:
            raise ConfigError(
                f"parameter 'steps_per_frame' of twin 'licoo2' must be even (a step must end at "
                f"each frame's mid-time), got {self.steps_per_frame}"
            )
        if self.n_frames < 1:
            raise ConfigError(
                "twin 'licoo2' needs at least one frame: charge_frames + rest1_frames + "
                "discharge_frames + rest2_frames is 0"
            )
        depth = self.ny * self.pixel_nm
        if self.layer_thickness_nm + 3 * self.layer_roughness_nm > 0.5 * depth:
            raise ConfigError(
                f"parameters 'layer_thickness_nm' + 3 * 'layer_roughness_nm' "
                f"({self.layer_thickness_nm + 3 * self.layer_roughness_nm:g} nm) must be at most "
                f"half the film depth ny * pixel_nm = {depth:g} nm"
            )

    @property
    def n_frames(self) -> int:
        """Total number of frames."""
        return self.charge_frames + self.rest1_frames + self.discharge_frames + self.rest2_frames

    @property
    def time_step_s(self) -> float:
        """Backward-Euler step and cycler log interval (s)."""
        return self.frame_time_s / self.steps_per_frame

    def frame_states(self) -> np.ndarray:
        """State code of every frame (int8: 0 rest, 1 charge, 2 discharge)."""
        counts = (self.charge_frames, self.rest1_frames, self.discharge_frames, self.rest2_frames)
        return np.repeat(np.array([CHARGE, REST, DISCHARGE, REST], np.int8), counts)


# --------------------------------------------------------------------------- kernels


def licoo2_ocv(theta: np.ndarray | float) -> np.ndarray:
    """Open-circuit voltage of Li_theta CoO2 vs Li/Li+ (V), an illustrative analytic fit.

    ``U(theta) = 3.90 + 1.2 (1 - theta)^2`` for theta clipped to [0, 1]: 3.90 V at theta = 1,
    3.975 V at 0.75, 4.20 V at 0.5, rising monotonically as Li is removed. It reproduces the
    familiar 3.9 -> 4.2 V rise of LiCoO2 over 1 >= theta >= 0.5 but not its two-phase plateau
    or order-disorder steps [open].

    Examples
    --------
    >>> float(licoo2_ocv(0.5))
    4.2
    """
    th = np.clip(np.asarray(theta, dtype=np.float64), 0.0, 1.0)
    return 3.90 + 1.2 * (1.0 - th) ** 2


def voronoi_domains(
    shape: tuple[int, int], n_domains: int, rng: np.random.Generator
) -> np.ndarray:
    """Label each pixel with its nearest of ``n_domains`` uniformly random seed points.

    Returns
    -------
    numpy.ndarray
        int32 labels ``0 .. n_domains - 1`` of shape ``shape``.
    """
    ny, nx = shape
    seeds = rng.uniform((0.0, 0.0), (ny, nx), size=(n_domains, 2))
    yy, xx = np.mgrid[0:ny, 0:nx] + 0.5
    d2 = (yy.ravel()[:, None] - seeds[:, 0]) ** 2 + (xx.ravel()[:, None] - seeds[:, 1]) ** 2
    return np.argmin(d2, axis=1).astype(np.int32).reshape(ny, nx)


def domain_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label (bool); two pixels wide, 4-connected."""
    out = np.zeros(labels.shape, dtype=bool)
    dv = labels[1:, :] != labels[:-1, :]
    dh = labels[:, 1:] != labels[:, :-1]
    out[1:, :] |= dv
    out[:-1, :] |= dv
    out[:, 1:] |= dh
    out[:, :-1] |= dh
    return out


def interfacial_layer(
    shape: tuple[int, int],
    pixel_nm: float,
    thickness_nm: float,
    roughness_nm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mask of the interfacial layer at the top (y = 0) of a ``shape`` map (bool).

    The lower edge is ``thickness_nm + roughness_nm * f(x)`` with ``f`` a random sum of the
    first four in-plane Fourier modes (amplitudes ~ 1/k), normalised to unit standard
    deviation; a pixel belongs to the layer when its centre depth ``(j + 1/2) * pixel_nm`` is
    above the edge.
    """
    ny, nx = shape
    k = np.arange(1, 5)[:, None]
    phase = rng.uniform(0.0, 2 * np.pi, size=(4, 1))
    amp = rng.normal(size=(4, 1)) / k
    f = (amp * np.cos(2 * np.pi * k * (np.arange(nx) + 0.5) / nx + phase)).sum(axis=0)
    f = f / f.std() if f.std() > 0 else f
    edge = thickness_nm + roughness_nm * f if thickness_nm > 0 else np.zeros(nx)
    depth = (np.arange(ny)[:, None] + 0.5) * pixel_nm
    return depth < edge[None, :]


def diffusion_operator(diffusivity: np.ndarray, pixel_nm: float) -> sp.csr_matrix:
    """Finite-volume operator ``A`` with ``(A theta)_i = sum_k D_ik (theta_k - theta_i) / h^2``.

    Parameters
    ----------
    diffusivity : ndarray, shape (ny, nx)
        Pixel diffusivities D (nm^2/s), positive.
    pixel_nm : float
        Pixel size h (nm).

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (ny*nx, ny*nx) in 1/s over the C-ordered pixels; symmetric, zero row and column
        sums (no-flux outer faces), so ``sum(A @ theta) == 0`` and diffusion conserves Li.
        Face diffusivities are harmonic means ``2 D_i D_k / (D_i + D_k)``.
    """
    d = np.asarray(diffusivity, dtype=np.float64)
    ny, nx = d.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    gv = 2 * d[:-1] * d[1:] / (d[:-1] + d[1:]) / pixel_nm**2
    gh = 2 * d[:, :-1] * d[:, 1:] / (d[:, :-1] + d[:, 1:]) / pixel_nm**2
    a, b = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel()]), np.concatenate(
        [idx[1:].ravel(), idx[:, 1:].ravel()]
    )
    g = np.concatenate([gv.ravel(), gh.ravel()])
    off = sp.coo_matrix(
        (np.concatenate([g, g]), (np.concatenate([a, b]), np.concatenate([b, a]))),
        shape=(ny * nx, ny * nx),
    ).tocsr()
    return (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocsr()


def interface_extraction(x_interface: np.ndarray, amount: float) -> np.ndarray:
    """Li removed from each interface pixel in one charge step (x units, >= 0).

    ``amount`` (x units summed over pixels) is spread in proportion to the local Li fraction
    ``x_interface`` and reduced if it would remove more than half of any pixel's Li.
    """
    total = float(x_interface.sum())
    if total <= 0.0 or amount <= 0.0:
        return np.zeros_like(x_interface)
    return min(amount, _STEP_CAP * total) * x_interface / total


def collector_insertion(vacancy: np.ndarray, weight: np.ndarray, amount: float) -> np.ndarray:
    """Li inserted into each pixel in one discharge step (x units, >= 0).

    ``amount`` is spread in proportion to ``weight * vacancy`` (``weight`` the collector-side
    profile in (0, 1], ``vacancy = s (1 - theta)``) and reduced if it would fill more than half
    of any pixel's vacancies.
    """
    w = weight * vacancy
    total = float(w.sum())
    if total <= 0.0 or amount <= 0.0:
        return np.zeros_like(vacancy)
    return min(amount, _STEP_CAP * total / float(weight.max())) * w / total


def _integrate(
    theta0: np.ndarray,
    site: np.ndarray,
    diffusivity: np.ndarray,
    insertion_weight: np.ndarray,
    step_states: np.ndarray,
    dt: float,
    pixel_nm: float,
    amount: float,
    frame_every: int,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward-Euler integration; returns frames of x, removed Li, step removal, theta_0, flux.

    Returns ``(frames, removed, step_removed, theta_interface, flux)``: x at the end of every
    ``frame_every``-th step offset by half a frame (float64, (n_frames, ny, nx)); the Li removed
    since t = 0 after each step (x units, length n_steps + 1 starting at 0); the net Li removed
    in each step; the mean occupancy of row 0 after each step (length n_steps + 1); the Li flux
    at the pixel centres averaged over each frame's exposure (float64, (2, n_frames, ny, nx):
    the y and x components, :func:`face_flux` per step plus :class:`SupplyPath`, nm/s).
    """
    ny, nx = theta0.shape
    s = site.ravel()
    lu = spla.splu((sp.diags(s) - dt * diffusion_operator(diffusivity, pixel_nm)).tocsc())
    theta = theta0.astype(np.float64).ravel().copy()
    n_steps = step_states.size
    half = frame_every // 2
    frames = np.empty((n_steps // frame_every, ny, nx))
    flux = np.empty((2, n_steps // frame_every, ny, nx))
    acc_y, acc_x = np.zeros((ny + 1, nx)), np.zeros((ny, nx + 1))
    acc_source = np.zeros((ny, nx))
    supply = SupplyPath(diffusivity, pixel_nm)
    step_removed = np.zeros(n_steps)
    theta_interface = np.empty(n_steps + 1)
    theta_interface[0] = theta[:nx].mean()
    zero = np.zeros((ny, nx))
    for n, state in enumerate(step_states):
        rhs = s * theta
        source = zero
        if state == CHARGE:
            out = interface_extraction(rhs[:nx], amount)
            rhs[:nx] -= out
            step_removed[n] = out.sum()
            source = np.zeros((ny, nx))
            source[0] = -out
        elif state == DISCHARGE:
            into = collector_insertion(s * (1.0 - theta), insertion_weight, amount)
            rhs += into
            step_removed[n] = -into.sum()
            source = into.reshape(ny, nx)
        theta = lu.solve(rhs)
        theta_interface[n + 1] = theta[:nx].mean()
        fy, fx = face_flux(theta.reshape(ny, nx), diffusivity, pixel_nm)
        acc_y += fy
        acc_x += fx
        acc_source += source
        if (n + 1) % frame_every == half:
            k = n // frame_every
            frames[k] = (s * theta).reshape(ny, nx)
            if on_frame is not None:
                on_frame(k)
        if (n + 1) % frame_every == 0:
            k = n // frame_every
            sy, sx = supply.flux(acc_source / dt)  # linear in the source: one solve per frame
            acc_y += sy
            acc_x += sx
            flux[0, k] = 0.5 * (acc_y[:-1] + acc_y[1:]) / frame_every
            flux[1, k] = 0.5 * (acc_x[:, :-1] + acc_x[:, 1:]) / frame_every
            acc_y[:], acc_x[:], acc_source[:] = 0.0, 0.0, 0.0
    removed = np.concatenate([[0.0], np.cumsum(step_removed)])
    return frames, removed, step_removed, theta_interface, flux


def face_flux(theta: np.ndarray, diffusivity: np.ndarray, pixel_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """The diffusive Li flux ``-D_ik (theta_k - theta_i) / h`` through every pixel face (nm/s).

    Returns ``(fy, fx)`` of shapes (ny + 1, nx) and (ny, nx + 1): face ``j`` of ``fy`` lies above
    row ``j`` (face 0 is the electrolyte face, face ny the collector face; both 0: no-flux),
    positive towards +y (away from the electrolyte) and +x; ``D_ik`` the harmonic mean of
    :func:`diffusion_operator`, so ``-(fy[1:] - fy[:-1] + fx[:, 1:] - fx[:, :-1]) / h`` is
    ``A theta`` of that operator (in units of x per s).
    """
    d = np.asarray(diffusivity, dtype=np.float64)
    fy = np.zeros((d.shape[0] + 1, d.shape[1]))
    fx = np.zeros((d.shape[0], d.shape[1] + 1))
    fy[1:-1] = -2 * d[:-1] * d[1:] / (d[:-1] + d[1:]) * (theta[1:] - theta[:-1]) / pixel_nm
    fx[:, 1:-1] = -2 * d[:, :-1] * d[:, 1:] / (d[:, :-1] + d[:, 1:]) * (theta[:, 1:] - theta[:, :-1]) / pixel_nm
    return fy, fx


class SupplyPath:
    """The flux that carries the Li of a source between the electrolyte face and the pixels it
    leaves or enters, along the film's own diffusivity: the model does not resolve how inserted
    Li reaches the collector side, so the truth takes the path of least resistance through the
    same diffusivity map as the diffusion, ``J = -D grad(psi)`` with ``div(D grad(psi)) =
    source rate``, ``psi = 0`` on the electrolyte face (half a pixel above row 0) and no flux
    through the other faces (faces and harmonic means as :func:`face_flux`). Li removed on
    charge at row 0 leaves straight through the electrolyte face; Li inserted on discharge near
    the collector arrives mostly along the fast domain boundaries, as the diffusion carries it.

    Parameters
    ----------
    diffusivity : ndarray, shape (ny, nx)
        Pixel diffusivities D (nm^2/s), positive.
    pixel_nm : float
        Pixel size h (nm).
    """

    def __init__(self, diffusivity: np.ndarray, pixel_nm: float):
        d = np.asarray(diffusivity, dtype=np.float64)
        self.d, self.h = d, float(pixel_nm)
        top = np.zeros(d.shape)
        top[0] = 2.0 * d[0] / self.h**2  # the electrolyte face: psi = 0 half a pixel away
        self.lu = spla.splu((diffusion_operator(d, pixel_nm) - sp.diags(top.ravel())).tocsc())

    def flux(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(fy, fx)`` through every face (nm/s, as :func:`face_flux`'s) that supply the source
        ``rate`` (Li added per pixel per s, x units; negative where removed):
        ``-(diff(fy, axis=0) + diff(fx, axis=1)) / h == rate``, all of it through the
        electrolyte face (``fy[0]``)."""
        psi = self.lu.solve(np.asarray(rate, dtype=np.float64).ravel()).reshape(self.d.shape)
        fy, fx = face_flux(psi, self.d, self.h)
        fy[0] = -2.0 * self.d[0] * psi[0] / self.h
        return fy, fx


# --------------------------------------------------------------------------- twin


@register_twin(
    "licoo2",
    "operando Li fraction in a LiCoO2 thin-film cathode on a solid electrolyte (cross-section) "
    "over charge, rest, discharge, rest, with its cycler log",
    params=LiCoO2Params,
)
def simulate_licoo2(
    params: LiCoO2Params | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate the operando LiCoO2 cross-section (see the module docstring for the model).

    Computes: integrates the whole series in memory (numpy-backed).

    Parameters
    ----------
    params : LiCoO2Params, optional
        Model parameters; defaults to ``LiCoO2Params()``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; sets the domains, the layer edge and the
        noise.
    progress : callable, optional
        ``progress(done, total)`` called after each frame.

    Returns
    -------
    xarray.Dataset
        ``li_fraction`` (observed) and ``li_fraction_true`` (time, y, x); the true motion
        ``flux_y_true``, ``flux_x_true`` (time, y, x; nm/s) and ``front_position_true`` (time, x;
        nm, attrs ``level``); ``domain``,
        ``boundary``, ``region`` (y, x); ``voltage``, ``current``, ``charge``, ``state``
        (time); ``cycler_voltage``, ``cycler_current``, ``cycler_charge`` (record, in s).
    """
    p = LiCoO2Params() if params is None else params
    rng_geometry, rng_noise = np.random.default_rng(seed).spawn(2)
    shape = (p.ny, p.nx)
    h = p.pixel_nm

    domain = voronoi_domains(shape, p.n_domains, rng_geometry)
    boundary = domain_boundaries(domain)
    layer = interfacial_layer(shape, h, p.layer_thickness_nm, p.layer_roughness_nm, rng_geometry)
    site = np.where(layer, p.layer_site_fraction, 1.0)
    diffusivity = np.where(
        layer, p.d_layer_nm2_s, np.where(boundary, p.d_boundary_nm2_s, p.d_bulk_nm2_s)
    )
    depth_centre = (np.arange(p.ny) + 0.5) * h
    insertion_weight = np.broadcast_to(
        np.exp(-(p.ny * h - depth_centre) / p.insertion_length_nm)[:, None], shape
    ).ravel()

    dt = p.time_step_s
    states = p.frame_states()
    step_states = np.repeat(states, p.steps_per_frame)
    amount = p.c_rate_per_h * float(site.sum()) * dt / 3600.0
    theta0 = np.full(shape, p.initial_occupancy)
    on_frame = (lambda k: progress(k + 1, p.n_frames)) if progress is not None else None
    frames, removed, step_removed, theta_if, flux = _integrate(
        theta0, site, diffusivity, insertion_weight, step_states, dt, h, amount,
        p.steps_per_frame, on_frame,
    )

    # cycler quantities
    mol_per_pixel = p.site_density_mol_m3 * (h * 1e-9) ** 2 * (p.thickness_nm * 1e-9)
    coulomb_per_x = FARADAY * mol_per_pixel
    area_cm2 = p.nx * h * p.thickness_nm * 1e-14
    r_ohm = p.r_internal_ohm_cm2 / area_cm2
    log_time = np.arange(step_states.size + 1) * dt
    log_charge = coulomb_per_x * removed
    log_current = np.concatenate([[0.0], coulomb_per_x * step_removed / dt])
    log_voltage = licoo2_ocv(theta_if) + log_current * r_ohm
    at_frame = np.arange(p.n_frames) * p.steps_per_frame + p.steps_per_frame // 2

    truth = frames.astype(np.float32)
    if p.dose is None:
        observed = truth.copy()
    else:
        observed = (rng_noise.poisson(p.dose * frames) / p.dose).astype(np.float32)

    time = (np.arange(p.n_frames) + 0.5) * p.frame_time_s
    yx = {"y": h, "x": h}
    tyx = {"time": time, "y": h, "x": h}
    level = FRONT_LEVEL * p.initial_occupancy
    front = iso_depth(np.moveaxis(frames, 1, 2), level, np.arange(p.ny) * h)
    variables = [
        signal(observed, ("time", "y", "x"), name="li_fraction", units="1", coords=tyx,
               long_name="observed Li fraction x (Poisson counts / dose)",
               attrs={"dose": "none" if p.dose is None else float(p.dose)}),
        signal(truth, ("time", "y", "x"), name="li_fraction_true", units="1", coords=tyx,
               long_name="true Li fraction x"),
        signal(flux[0].astype(np.float32), ("time", "y", "x"), name="flux_y_true", units="nm/s", coords=tyx,
               long_name="true Li flux along y (Li fraction x nm/s; + away from the electrolyte), mean over "
                         "the frame's exposure"),
        signal(flux[1].astype(np.float32), ("time", "y", "x"), name="flux_x_true", units="nm/s", coords=tyx,
               long_name="true Li flux along x (Li fraction x nm/s), mean over the frame's exposure"),
        signal(front, ("time", "x"), name="front_position_true", units="nm", coords={"time": time, "x": h},
               long_name="true front: depth of the deepest crossing of the iso-line x = level per column "
                         "(NaN: no crossing)", attrs={"level": float(level)}),
        signal(domain, ("y", "x"), name="domain", units="1", coords=yx,
               long_name="LiCoO2 domain label"),
        signal(boundary.astype(np.uint8), ("y", "x"), name="boundary", units="1", coords=yx,
               long_name="domain-boundary mask (fast Li diffusion)"),
        signal(layer.astype(np.int8), ("y", "x"), name="region", units="1", coords=yx,
               long_name="region: 0 LiCoO2 bulk, 1 interfacial Li-poor layer",
               attrs={"flag_values": [0, 1], "flag_meanings": "bulk interfacial_layer"}),
        signal(log_voltage[at_frame], ("time",), name="voltage", units="V",
               coords={"time": time}, long_name="cell voltage at frame mid-time"),
        signal(log_current[at_frame], ("time",), name="current", units="A",
               coords={"time": time}, long_name="current (positive on charge)"),
        signal(log_charge[at_frame], ("time",), name="charge", units="C",
               coords={"time": time}, long_name="charge passed since start (Li removed)"),
        signal(states, ("time",), name="state", units="1", coords={"time": time},
               long_name="electrochemical state",
               attrs={"flag_values": [REST, CHARGE, DISCHARGE], "flag_meanings": STATE_MEANINGS}),
        signal(log_voltage, ("record",), name="cycler_voltage", units="V",
               coords={"record": log_time}, coord_units={"record": "s"},
               long_name="cycler log: cell voltage"),
        signal(log_current, ("record",), name="cycler_current", units="A",
               coords={"record": log_time}, coord_units={"record": "s"},
               long_name="cycler log: current (positive on charge)"),
        signal(log_charge, ("record",), name="cycler_charge", units="C",
               coords={"record": log_time}, coord_units={"record": "s"},
               long_name="cycler log: charge passed since start"),
    ]
    ds = xr.Dataset({v.name: v for v in variables})
    ds.attrs = twin_attrs(
        "licoo2", seed, p, primary="li_fraction", model=MODEL,
        derived=json.dumps(
            {
                "time_step_s": dt,
                "mol_li_per_pixel_at_x1": mol_per_pixel,
                "coulomb_per_pixel_at_x1": coulomb_per_x,
                "li_capacity_C": coulomb_per_x * float(site.sum()),
                "r_internal_ohm": r_ohm,
                "interface_area_cm2": area_cm2,
            }
        ),
    )
    return twin_provenance(ds, STEP, p, seed, variables=("li_fraction", "li_fraction_true"))


__all__ = [
    "LiCoO2Params",
    "simulate_licoo2",
    "licoo2_ocv",
    "voronoi_domains",
    "domain_boundaries",
    "interfacial_layer",
    "diffusion_operator",
    "interface_extraction",
    "collector_insertion",
    "face_flux",
    "SupplyPath",
    "FRONT_LEVEL",
    "REST",
    "CHARGE",
    "DISCHARGE",
]
