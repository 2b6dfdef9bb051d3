r"""Electron-holography twins: off-axis holograms and phase-shifting stacks of a biased
electrode | solid-electrolyte lamella with a space-charge layer, and their vacuum references.

Digital twins of :doc:`/guide/holography` (``holography``: one off-axis hologram; ``holography_ps``:
a phase-shifting stack with specimen drift and unknown, uneven phase steps).

Specimen (coordinates ``y, x`` in nm, pixel ``j`` at ``j h``)
-------------------------------------------------------------
* Vacuum for :math:`y < y_e` (``vacuum_height_nm``); the lamella below, thickness
  :math:`t = t_0 \min(1, (y - y_e)/r) + w (y - y_e)` (``thickness_nm``, ``edge_ramp_nm`` r,
  wedge ``wedge_nm_per_nm``), its edge anti-aliased over one pixel.
* An interface line through :math:`(y_e, x_i)` (``interface_position_nm``), tilted by
  ``interface_angle_deg`` from the y axis; signed distance :math:`d` (electrolyte at
  :math:`d > 0`), electrolyte fraction :math:`g = \Phi(d / \sigma_i)` (``interface_width_nm``).
* Mean inner potentials :math:`V_\mathrm{MIP}` = ``mip_electrode_V`` / ``mip_electrolyte_V``
  and inelastic mean free paths (amplitude :math:`A = e^{-t / 2\lambda}`, so
  :math:`t/\lambda = -2 \ln A`, :doc:`/guide/holography`).
* Electrostatic potential: electrode at the bias :math:`U` (``bias_V``); electrolyte
  :math:`U - \psi_0 + \psi(d) - (1 - f) U\, d / d_\mathrm{max}`, with the lattice-gas
  space-charge profile :math:`\psi(d)` of :func:`ionscope.spacecharge.lattice_gas_potential`
  (``psi0_V`` + ``f U``, ``theta``, ``eps_r``, ``c0_m3``, ``temperature_K``; f =
  ``bias_interface_fraction``): continuous at the interface, the bulk :math:`\psi_0` below it,
  90 % of the drop within ``w90_nm`` (attrs). :math:`d_\mathrm{max}` is the largest
  electrolyte distance in the field of view (the counter electrode lies beyond it).
* ``potential_true`` is the mean potential through the thickness (V), 0 in vacuum, and
  ``phase_object`` :math:`= C_E\, t\, V + \varphi_s(\mathbf r)` with the interaction constant
  :math:`C_E` of :func:`ionscope.constants.electron_interaction_constant`.
* Stray (leakage) field of the biased lamella [open model]: the projected potential of the
  charges on the biased electrode and on the grounded counter electrode, both *beyond the field
  of view*. Each electrode's charge (:math:`\pm Q`) is spread uniformly along a strip of
  length :math:`L` (``stray_length_nm``) on the lamella edge line, :math:`a`
  (``stray_depth_nm``) inside the specimen (:math:`y = y_e + a`): the biased electrode's from
  :math:`x = -g - L` to :math:`-g` (left of the map, the electrode side), the counter
  electrode's from :math:`x = x_\mathrm{max} + g` to :math:`x_\mathrm{max} + g + L` (right of
  the map, beyond the electrolyte), :math:`g` = ``stray_gap_nm`` from the map's border
  (:math:`x_\mathrm{max} = (n_x - 1) h`). The projected potential of a line charge is
  logarithmic, so

  .. math::

      \varphi_s(\mathbf r) = \kappa U \left[\langle \ln|\mathbf r - \mathbf r'|
          \rangle_\mathrm{counter} - \langle \ln|\mathbf r - \mathbf r'|
          \rangle_\mathrm{biased}\right],

  :math:`\langle\cdot\rangle` the mean over the strip (closed form), :math:`\kappa` =
  ``stray_rad_per_V`` (rad/V; for :math:`L \to 0` the two-line-charge field
  :math:`\kappa U \ln(r_- / r_+)`). Physically :math:`\kappa = C_E Q / (2\pi\varepsilon_0 U)
  = 2 C_E R_C` with the electrode's self-capacitance radius :math:`R_C = Q / (4\pi
  \varepsilon_0 U)`: the default 1.0 rad/V at 300 kV is :math:`R_C` = 77 nm, about that of an
  electrode block 200 nm long, 100 nm deep and 80 nm thick (a cube's is 0.66 times its side).
  At 4 V the defaults give 3.8 rad peak to valley across the vacuum band (0.9 rad rms over it
  eroded by 6 nm), mostly a ramp with some curvature near the left and right borders. All
  charges lie outside the vacuum and outside the map, so :math:`\varphi_s` is harmonic (a
  Laplace solution) over the whole map: in the vacuum, as a leakage fit assumes, and
  continued into the specimen (the fields
  of charges inside the map - the interface's own space charge - belong to the specimen and
  are not part of :math:`\varphi_s`). A negative :math:`g` moves the strips into the map (the
  vacuum field stays harmonic, but no longer continues into the specimen). The reference
  wave passes the specimen at ``overlap_nm`` along :math:`+\hat{\mathbf q}_c` (in vacuum)
  and picks up :math:`\varphi_s(\mathbf r + D\hat{\mathbf q}_c)`; ``phase_stray`` is the
  difference of the two.

Hologram
--------
With the carrier :math:`\mathbf q_c` (1 / ``fringe_spacing_nm``, angle ``fringe_angle_deg``
from the x axis), contrast :math:`\mu` (``contrast``), biprism Fresnel factors :math:`F_{1,2}`
and camera distortion :math:`\varepsilon(\mathbf r)` (``distortion_rad``, a smooth random
field fixed to the detector):

.. math::

    I = \frac{D}{2}\left[|F_2|^2 + A^2 |F_1|^2 + 2\mu A\,
        \mathrm{Re}\!\left(F_1 \bar F_2\, e^{i(2\pi \mathbf q_c\cdot\mathbf r + \varphi
        + \varepsilon + \delta)}\right)\right] \ast \mathrm{PSF},
    \qquad \varphi = \varphi_\mathrm{object} - \varphi_s(\mathbf r + D\hat{\mathbf q}_c),

``phase_true`` = :math:`\varphi` (what a reconstruction divided by the vacuum reference
returns, for the sideband at :math:`+\mathbf q_c` = ``attrs["sideband_true_px"]``; the other
sideband gives :math:`-\varphi`), ``amplitude_true`` = A. :math:`\mathbf q_c` is the object
wave's tilt relative to the reference wave, which the biprism deflects towards the side the
reference wave comes from (:math:`+\hat{\mathbf q}_c`: the vacuum above the lamella for the
default angle of -80 degrees). The default puts the sideband at :math:`+\mathbf q_c` in the
'upper' half of the FFT (``attrs["sideband_side"]``), the one
:func:`ionscope.holography.reconstruct_offaxis` and HyperSpy/holospy cut out by default, so the
default twin reconstructs with the phase rising with the projected potential (a real microscope
may have it the other way round: on holospy's Fe-needle pair the default sideband gives a phase
that falls inside the needle). The specimen's phase rises away from the vacuum, against
:math:`\hat{\mathbf q}_c`, so the detector MTF weights the specimen side of the sideband more
than the carrier: over the edge ramp the amplitude reconstructs ~14 % high unless the MTF is
divided out (``reconstruct_offaxis(..., mtf=mtf_cutoff)``).
:math:`D` = ``dose`` (electrons per pixel in vacuum). The biprism factors model the Fresnel
fringes of the filament edges bounding the overlap region, each wave
diffracted at its own edge: :math:`F_j = 1 + b\, e^{-s_j / L} e^{i\pi s_j^2 / u_F^2}` with the
distance :math:`s_j` from edge j along :math:`\hat{\mathbf q}_c` (edges 4 nm outside the
field of view), ``biprism_fringe_amplitude`` b, ``biprism_fringe_scale_nm`` :math:`u_F`,
``biprism_fringe_decay_nm`` L; the chirp is cut off smoothly where its local frequency
:math:`s / u_F^2` passes 0.8 of the Nyquist frequency (no aliasing).
Detector: MTF :math:`\mathrm{sinc}(f_y)\mathrm{sinc}(f_x) / (1 + (f /
f_c)^2)` (f in cycles/px, ``mtf_cutoff`` :math:`f_c`; None = ideal), then Poisson noise
(``noise``). The fringe contrast seen on the detector is ``attrs["effective_contrast"]`` =
:math:`\mu\,\mathrm{MTF}(\mathbf q_c)`. The vacuum reference has no specimen and no bias field
but the same biprism, distortion and detector, at ``reference_dose``.

Phase-shifting stack (``holography_ps``)
----------------------------------------
Frame n: fringe shift :math:`\delta_n = 2\pi n / N + \sigma_\delta \xi_n` (``step_jitter_rad``,
:math:`\delta_0 = 0`), the specimen drifted by :math:`\mathbf d_n` (a linear drift of
``drift_y_nm``/``drift_x_nm`` per frame plus a random walk of ``drift_jitter_nm``;
:math:`\mathbf d_0 = 0`; fringes, distortion and biprism stay fixed to the detector), the dose
scaled by :math:`1 + \sigma_g \xi` (``intensity_jitter``). After aligning frame n back onto
frame 0 the effective step is :math:`\delta_n + 2\pi\mathbf q_c\cdot\mathbf d_n`
(``steps_effective_true``). The reference stack: vacuum, its own random steps, no drift.
Truth is given for frame 0. ``attrs["vacuum_box"]`` = ``[y0, y1, x0, x1]`` (pixel indices,
half-open) stays in vacuum in every frame.

The constants (MIPs, mean free paths, stray-field geometry) are illustrative [open].

References
----------
H. Lichte, M. Lehmann, Rep. Prog. Phys. 71, 016102 (2008); Q. Ru, J. Endo, T. Tanji,
A. Tonomura, Appl. Phys. Lett. 59, 2372 (1991) and Ru et al. (1994) (phase-shifting electron
holography); Yamamoto et al., J. Electron Microsc. 49, 31 (2000); Nomura et al., Angew. Chem.
Int. Ed. 58, 5292 (2019) (the 1.3 V drop at Cu / LASGTP).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft
import xarray as xr
from scipy.special import erf

from ionscope.constants import electron_interaction_constant
from ionscope.data import signal
from ionscope.errors import ConfigError
from ionscope.simulate.holography_params import HolographyParams, HolographyPSParams
from ionscope.simulate.registry import ProgressCallback, register_twin, twin_attrs, twin_provenance

STEP = "ionscope.simulate.holography"
STEP_PS = "ionscope.simulate.holography_ps"
_SEED_TAG = 0x401
REGION_CODES = {0: "vacuum", 1: "electrode", 2: "electrolyte"}


# --------------------------------------------------------------------------- model pieces


def _carrier(p: HolographyParams) -> tuple[float, float]:
    """Carrier (qy, qx) in cycles per nm."""
    a = math.radians(p.fringe_angle_deg)
    return math.sin(a) / p.fringe_spacing_nm, math.cos(a) / p.fringe_spacing_nm


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cycles: float = 1.5) -> np.ndarray:
    """Sum of four random long-wavelength plane waves, scaled to max |f| = 1."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    k = rng.uniform(-cycles, cycles, size=(4, 2))
    ph = rng.uniform(0, 2 * np.pi, size=4)
    f = sum(np.cos(2 * np.pi * (k[i, 0] * yy / ny + k[i, 1] * xx / nx) + ph[i]) for i in range(4))
    return f / max(np.abs(f).max(), 1e-12)


def _psi_table(p: HolographyParams, dmax: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Space-charge potential on a fine distance grid (for interpolation) and its drop."""
    psi0 = p.psi0_V + p.bias_interface_fraction * p.bias_V
    grid = np.linspace(0.0, max(dmax, 1.0) + 1.0, 4001)
    if psi0 == 0:
        return grid, np.zeros_like(grid), 0.0
    from ionscope.spacecharge import lattice_gas_potential

    psi = lattice_gas_potential(grid, psi0, p.theta, p.eps_r, p.c0_m3, p.temperature_K)
    return grid, psi, psi0


def _strip_log_mean(y: np.ndarray, x: np.ndarray, y0: float, x1: float, x2: float) -> np.ndarray:
    r"""Mean of ``ln|r - r'|`` (r in nm) over the segment ``r' = (y0, x')``, ``x1 < x' < x2``:
    the projected potential of a uniform line charge, up to its factor (closed form,
    :math:`\int \ln\sqrt{u^2 + v^2}\,du = u \ln\sqrt{u^2 + v^2} - u + v \arctan(u / v)`)."""
    v = np.abs(y - y0)

    def primitive(u: np.ndarray) -> np.ndarray:
        r2 = u * u + v * v
        return 0.5 * u * np.log(np.where(r2 > 0, r2, 1.0)) - u + v * np.arctan2(u, v)

    return (primitive(x - x1) - primitive(x - x2)) / (x2 - x1)


def _stray(p: HolographyParams, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Projected leakage potential phase (rad) of the biased lamella at (y, x) nm: charged
    strips of the biased (left) and counter (right) electrode beyond the map's borders."""
    if p.bias_V == 0 or p.stray_rad_per_V == 0:
        return np.zeros(np.broadcast(y, x).shape)
    g, length = p.stray_gap_nm, p.stray_length_nm
    y0 = p.vacuum_height_nm + p.stray_depth_nm
    x_max = (p.nx - 1) * p.pixel_nm
    biased = _strip_log_mean(y, x, y0, -g - length, -g)
    counter = _strip_log_mean(y, x, y0, x_max + g, x_max + g + length)
    return p.stray_rad_per_V * p.bias_V * (counter - biased)


def _specimen(p: HolographyParams, table, y: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Specimen fields at positions (y, x) (nm, broadcastable 2-D grids)."""
    h = p.pixel_nm
    ye, xi = p.vacuum_height_nm, p.interface_position_nm
    inside = np.clip((y - ye) / h + 0.5, 0.0, 1.0)
    depth = y - ye
    ramp = np.clip(depth / p.edge_ramp_nm, 0.0, 1.0) if p.edge_ramp_nm > 0 else 1.0
    thickness = np.maximum(p.thickness_nm * ramp + p.wedge_nm_per_nm * np.maximum(depth, 0.0),
                           0.0) * inside
    a = math.radians(p.interface_angle_deg)
    d = (x - xi) * math.cos(a) - (y - ye) * math.sin(a)
    if p.interface_width_nm > 0:
        g = 0.5 * (1.0 + erf(d / (p.interface_width_nm * math.sqrt(2.0))))
    else:
        g = (d > 0).astype(float)
    grid, psi_grid, psi0 = table
    dpos = np.maximum(d, 0.0)
    psi = np.interp(dpos, grid, psi_grid)
    dmax = grid[-1] - 1.0
    ramp = (1.0 - p.bias_interface_fraction) * p.bias_V * dpos / max(dmax, 1e-9)
    v_es = (1.0 - g) * p.bias_V + g * (p.bias_V - psi0 + psi - ramp)
    mip = (1.0 - g) * p.mip_electrode_V + g * p.mip_electrolyte_V
    inv_mfp = (1.0 - g) / p.mfp_electrode_nm + g / p.mfp_electrolyte_nm
    potential = (mip + v_es) * (inside > 0)
    ce = electron_interaction_constant(p.kv)
    stray = _stray(p, y, x)
    phase_obj = ce * thickness * (mip + v_es) + stray
    amplitude = np.exp(-0.5 * thickness * inv_mfp)
    region = np.where(inside < 0.5, 0, np.where(g < 0.5, 1, 2)).astype(np.int8)
    return {
        "thickness": thickness, "potential": potential, "electrostatic": v_es * (inside > 0),
        "phase_object": phase_obj, "stray": stray, "amplitude": amplitude, "region": region,
        "distance": d,
    }


def _biprism(p: HolographyParams, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fresnel factors F1 (object wave) and F2 (reference wave) at (y, x) nm."""
    if p.biprism_fringe_amplitude == 0:
        one = np.ones(np.broadcast(y, x).shape, dtype=complex)
        return one, one
    qy, qx = _carrier(p)
    qn = math.hypot(qy, qx)
    u = (y * qy + x * qx) / qn
    corners = np.array([0.0, (p.ny - 1) * p.pixel_nm])[:, None] * qy / qn + \
        np.array([0.0, (p.nx - 1) * p.pixel_nm])[None, :] * qx / qn
    lo, hi = corners.min() - 4.0, corners.max() + 4.0
    b, uf = p.biprism_fringe_amplitude, p.biprism_fringe_scale_nm
    s_max = 0.8 * uf**2 / (2 * p.pixel_nm)  # local frequency s / uf^2 at 0.8 Nyquist
    out = []
    for s in (u - lo, hi - u):
        cut = 0.5 * (1 + np.cos(np.pi * np.clip((s - 0.8 * s_max) / (0.2 * s_max), 0, 1)))
        out.append(1.0 + b * cut * np.exp(-s / p.biprism_fringe_decay_nm)
                   * np.exp(1j * np.pi * (s / uf) ** 2))
    return out[0], out[1]


def mtf(p: HolographyParams, shape: tuple[int, int]) -> np.ndarray | None:
    """Detector MTF on the (real-FFT) grid of ``shape`` (None for an ideal detector):
    :func:`ionscope.holography.detector.lorentzian_mtf` of ``mtf_cutoff`` - the model a
    reconstruction can divide out (``reconstruct_offaxis(..., mtf=mtf_cutoff)``)."""
    from ionscope.holography.detector import lorentzian_mtf

    if p.mtf_cutoff is None:
        return None
    return lorentzian_mtf(p.mtf_cutoff)(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])


def mtf_at_carrier(p: HolographyParams) -> float:
    """MTF value at the carrier frequency (the factor on the fringe contrast)."""
    from ionscope.holography.detector import lorentzian_mtf

    if p.mtf_cutoff is None:
        return 1.0
    qy, qx = _carrier(p)
    return float(lorentzian_mtf(p.mtf_cutoff)(np.array(qy * p.pixel_nm), np.array(qx * p.pixel_nm)))


def _detector(p: HolographyParams, intensity: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Apply the MTF (reflect-padded FFT convolution) and Poisson noise."""
    if p.mtf_cutoff is not None:
        pad = 16
        padded = np.pad(intensity, pad, mode="reflect")
        m = mtf(p, padded.shape)
        blurred = scipy.fft.irfft2(scipy.fft.rfft2(padded, workers=-1) * m, s=padded.shape, workers=-1)
        intensity = np.maximum(blurred[pad:-pad, pad:-pad], 0.0)
    if rng is not None:
        return rng.poisson(intensity).astype(np.float32)
    return intensity.astype(np.float32)


def _hologram(
    p: HolographyParams,
    yy: np.ndarray,
    xx: np.ndarray,
    phase: np.ndarray,
    amplitude: np.ndarray,
    distortion: np.ndarray,
    dose: float,
    step: float = 0.0,
) -> np.ndarray:
    """Noiseless hologram intensity before the detector (module docstring formula)."""
    qy, qx = _carrier(p)
    f1, f2 = _biprism(p, yy, xx)
    carrier = 2 * np.pi * (qy * yy + qx * xx) + phase + distortion + step
    inter = (f1 * np.conj(f2) * np.exp(1j * carrier)).real
    return 0.5 * dose * (np.abs(f2) ** 2 + amplitude**2 * np.abs(f1) ** 2
                         + 2 * p.contrast * amplitude * inter)


def _grid(p: HolographyParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    y = np.arange(p.ny) * p.pixel_nm
    x = np.arange(p.nx) * p.pixel_nm
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return y, x, yy, xx


def _truth(p: HolographyParams, table, yy, xx, shift=(0.0, 0.0)) -> dict[str, np.ndarray]:
    """Specimen fields with the specimen displaced by ``shift`` (nm) and the phase the
    reference-divided reconstruction returns (object phase minus the reference wave's stray
    phase)."""
    spec = _specimen(p, table, yy - shift[0], xx - shift[1])
    qy, qx = _carrier(p)
    qn = math.hypot(qy, qx)
    dy, dx = p.overlap_nm * qy / qn, p.overlap_nm * qx / qn
    ref_stray = _stray(p, yy + dy - shift[0], xx + dx - shift[1])
    spec["phase"] = spec["phase_object"] - ref_stray
    spec["phase_stray"] = spec["stray"] - ref_stray
    return spec


def _sideband_px(p: HolographyParams) -> list[float]:
    qy, qx = _carrier(p)
    return [float((qy * p.pixel_nm * p.ny) % p.ny), float((qx * p.pixel_nm * p.nx) % p.nx)]


def _common_attrs(p: HolographyParams, table, twin: str, seed: int, primary: str) -> dict[str, Any]:
    from ionscope.spacecharge import w90_nm

    psi0 = table[2]
    qy, qx = _carrier(p)
    ky = qy * p.pixel_nm * p.ny
    a = math.radians(p.interface_angle_deg)
    y_end = (p.ny - 1) * p.pixel_nm
    x_end = p.interface_position_nm + (y_end - p.vacuum_height_nm) * math.tan(a)
    model = ("electrode | electrolyte lamella with a lattice-gas space-charge layer, mean inner "
             "potentials, thickness wedge, biprism Fresnel fringes, detector MTF and Poisson noise "
             "(see ionscope.simulate.holography)")
    described = {
        "kV": float(p.kv),
        "beam_energy_kV": float(p.kv),
        "interaction_constant_rad_per_V_nm": electron_interaction_constant(p.kv),
        "pixel_size_nm": float(p.pixel_nm),
        "fringe_spacing_nm": float(p.fringe_spacing_nm),
        "fringe_sampling_px": float(p.fringe_spacing_nm / p.pixel_nm),
        "fringe_angle_deg": float(p.fringe_angle_deg),
        "carrier_frequency_per_nm": 1.0 / p.fringe_spacing_nm,
        "sideband_true_px": _sideband_px(p),
        "sideband_side": "lower" if (ky > 0 or (ky == 0 and qx > 0)) else "upper",
        "contrast": float(p.contrast),
        "effective_contrast": float(p.contrast * mtf_at_carrier(p)),
        "dose": float(p.dose),
        "reference_dose": float(p.reference_dose if p.reference_dose is not None else p.dose),
        "vacuum_edge_nm": float(p.vacuum_height_nm),
        "interface_position_nm": float(p.interface_position_nm),
        "interface_angle_deg": float(p.interface_angle_deg),
        "interface_line_nm": [[float(p.vacuum_height_nm), float(p.interface_position_nm)],
                              [float(y_end), float(x_end)]],
        "psi0_V": float(psi0),
        "w90_nm": float(w90_nm(psi0, p.theta, p.eps_r, p.c0_m3, p.temperature_K)) if psi0 else 0.0,
        "bias_V": float(p.bias_V),
        "thickness_nm": float(p.thickness_nm),
        "mip_electrode_V": float(p.mip_electrode_V),
        "mip_electrolyte_V": float(p.mip_electrolyte_V),
        "noise": "poisson" if p.noise else "none",
    }
    return twin_attrs(twin, seed, p, primary=primary, model=model, **described)


def _truth_variables(p: HolographyParams, spec: dict[str, np.ndarray], coords) -> list[xr.DataArray]:
    return [
        signal(spec["phase"].astype(np.float32), ("y", "x"), name="phase_true", units="rad",
               coords=coords, long_name="true phase (object minus reference wave)"),
        signal(spec["amplitude"].astype(np.float32), ("y", "x"), name="amplitude_true",
               units="1", coords=coords, long_name="true amplitude relative to vacuum"),
        signal(spec["potential"].astype(np.float32), ("y", "x"), name="potential_true", units="V",
               coords=coords, long_name="mean potential through the thickness (MIP + electrostatic)"),
        signal(spec["electrostatic"].astype(np.float32), ("y", "x"), name="electrostatic_true",
               units="V", coords=coords, long_name="electrostatic potential (without MIP)"),
        signal(spec["thickness"].astype(np.float32), ("y", "x"), name="thickness_nm", units="nm",
               coords=coords, long_name="specimen thickness"),
        signal(spec["phase_stray"].astype(np.float32), ("y", "x"), name="phase_stray", units="rad",
               coords=coords, long_name="leakage-field part of phase_true"),
        signal(spec["region"], ("y", "x"), name="region", units="1", coords=coords,
               long_name="region code",
               attrs={"flag_values": list(REGION_CODES), "flag_meanings": " ".join(REGION_CODES.values())}),
    ]


def _streams(seed: int, n: int, exposure: int = 0) -> list[np.random.Generator]:
    """``n`` independent generators of a specimen (``seed``); the first (the specimen's
    structure) is the same for every exposure, the others are drawn anew for ``exposure > 0``."""
    root = np.random.SeedSequence([int(seed), _SEED_TAG])
    streams = [np.random.default_rng(s) for s in root.spawn(n)]
    if exposure:
        again = np.random.SeedSequence([int(seed), _SEED_TAG, int(exposure)])
        streams[1:] = [np.random.default_rng(s) for s in again.spawn(n - 1)]
    return streams


# --------------------------------------------------------------------------- twins


@register_twin(
    "holography",
    "off-axis electron hologram of a biased electrode | electrolyte lamella with a space-charge "
    "layer, its vacuum reference and the true phase, amplitude and potential",
    params=HolographyParams,
)
def simulate_holography(
    params: HolographyParams | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate an off-axis hologram and its vacuum reference (see the module docstring).

    Computes: renders the hologram, its reference(s) and the truth in memory (numpy-backed).

    Returns
    -------
    xarray.Dataset
        ``hologram`` (y, x; counts, primary), ``reference`` (vacuum hologram), truth
        ``phase_true``, ``amplitude_true``, ``potential_true``, ``electrostatic_true``,
        ``thickness_nm``, ``phase_stray``, ``region`` (0 vacuum, 1 electrode, 2 electrolyte);
        attrs with kV, fringe spacing, contrast, dose, interface line, ``psi0_V``, ``w90_nm``.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography", seed=0)
    >>> ds["hologram"].dims, round(ds.attrs["w90_nm"], 1)
    (('y', 'x'), 7.2)
    """
    p = HolographyParams() if params is None else params
    streams = _streams(seed, 4 + p.reference_frames, p.exposure)
    rng_struct, rng_obj, rng_ref, rng_steps = streams[:4]
    y, x, yy, xx = _grid(p)
    table = _psi_table(p, float(np.hypot(y[-1], x[-1])) + abs(p.interface_position_nm))
    spec = _truth(p, table, yy, xx)
    distortion = p.distortion_rad * _smooth_field((p.ny, p.nx), rng_struct)
    ref_dose = p.reference_dose if p.reference_dose is not None else p.dose
    holo = _hologram(p, yy, xx, spec["phase"], spec["amplitude"], distortion, p.dose)
    ref = _hologram(p, yy, xx, np.zeros_like(yy), np.ones_like(yy), distortion, ref_dose)
    holo = _detector(p, holo, rng_obj if p.noise else None)
    ref = _detector(p, ref, rng_ref if p.noise else None)
    if progress is not None:
        progress(1, 1)
    coords = {"y": y, "x": x}
    variables = [
        signal(holo, ("y", "x"), name="hologram", units="counts", coords=coords,
               long_name="off-axis hologram", attrs={"beam_energy_kV": float(p.kv)}),
        signal(ref, ("y", "x"), name="reference", units="counts", coords=coords,
               long_name="vacuum reference hologram", attrs={"beam_energy_kV": float(p.kv)}),
        *_truth_variables(p, spec, coords),
    ]
    if p.reference_frames > 1:
        n = p.reference_frames
        steps = 2 * np.pi * np.arange(n) / n + 0.3 * rng_steps.standard_normal(n)
        steps[0] = 0.0
        stack = np.empty((n, p.ny, p.nx), dtype=np.float32)
        stack[0] = ref
        zeros, ones = np.zeros_like(yy), np.ones_like(yy)
        for i in range(1, n):
            frame = _hologram(p, yy, xx, zeros, ones, distortion, ref_dose, steps[i])
            stack[i] = _detector(p, frame, streams[4 + i] if p.noise else None)
        sh = {"shift": steps}
        variables += [
            signal(stack, ("shift", "y", "x"), name="reference_stack", units="counts",
                   coords={"shift": steps, "y": y, "x": x},
                   long_name="vacuum reference holograms at shifted fringes (shift = true step, rad)",
                   attrs={"beam_energy_kV": float(p.kv)}),
            signal(steps, ("shift",), name="reference_steps_true", units="rad", coords=sh,
                   long_name="true fringe shifts of the reference holograms"),
        ]
    ds = xr.Dataset({v.name: v for v in variables})
    ds.attrs = _common_attrs(p, table, "holography", seed, "hologram")
    return twin_provenance(ds, STEP, p, seed, variables=("hologram", "reference"))


@register_twin(
    "holography_ps",
    "phase-shifting electron-hologram stack (drift, unknown uneven steps, dose jitter) of the "
    "holography twin's lamella, with a vacuum reference stack and the truth",
    params=HolographyPSParams,
)
def simulate_holography_ps(
    params: HolographyPSParams | None = None, *, seed: int = 0, progress: ProgressCallback | None = None
) -> xr.Dataset:
    """Simulate a phase-shifting hologram stack and a vacuum reference stack.

    Computes: renders both stacks and the truth in memory (numpy-backed).

    Returns
    -------
    xarray.Dataset
        ``stack`` (shift, y, x; counts, primary; the ``shift`` coordinate holds the nominal
        steps, rad), ``reference_stack``; ``steps_true``, ``steps_effective_true`` (after
        alignment to frame 0), ``reference_steps_true`` (rad), ``drift_y_true``,
        ``drift_x_true`` (nm), ``gain_true`` (shift); truth maps of frame 0 as in
        :func:`simulate_holography`; attrs as there plus ``vacuum_box``, ``frames``.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography_ps", seed=0, ny=64, nx=64, frames=4, pixel_nm=1.0,
    ...               fringe_spacing_nm=4.0, vacuum_height_nm=20, interface_position_nm=30)
    >>> ds["stack"].dims
    ('shift', 'y', 'x')
    """
    p = HolographyPSParams() if params is None else params
    n = p.frames
    streams = _streams(seed, 4 + 2 * n, p.exposure)
    rng_struct, rng_steps, rng_drift, rng_gain = streams[:4]
    y, x, yy, xx = _grid(p)
    table = _psi_table(p, float(np.hypot(y[-1], x[-1])) + abs(p.interface_position_nm))
    distortion = p.distortion_rad * _smooth_field((p.ny, p.nx), rng_struct)
    nominal = 2 * np.pi * np.arange(n) / n
    steps = nominal + p.step_jitter_rad * rng_steps.standard_normal(n)
    steps[0] = 0.0
    ref_steps = nominal + p.step_jitter_rad * rng_steps.standard_normal(n)
    ref_steps[0] = 0.0
    walk = np.cumsum(p.drift_jitter_nm * rng_drift.standard_normal((n, 2)), axis=0)
    walk -= walk[0]
    drift = np.arange(n)[:, None] * np.array([p.drift_y_nm, p.drift_x_nm]) + walk
    gain = 1.0 + p.intensity_jitter * rng_gain.standard_normal(n)
    gain[0] = 1.0
    gain = np.clip(gain, 0.1, None)
    ref_gain = np.clip(1.0 + p.intensity_jitter * rng_gain.standard_normal(n), 0.1, None)
    # vacuum box: rows that stay vacuum for every drift, away from the borders
    max_dy = float(np.max(np.abs(drift[:, 0]))) + 2 * p.interface_width_nm
    y1 = int(math.floor((p.vacuum_height_nm - max_dy) / p.pixel_nm)) - 2
    margin = max(2, int(math.ceil(float(np.max(np.abs(drift))) / p.pixel_nm)) + 2)
    box = [margin, max(y1, margin + 1), margin, p.nx - margin]
    if y1 - margin < 4:
        raise ConfigError(
            "twin 'holography_ps': the vacuum band is too thin for the drift (fewer than 4 rows "
            "of vacuum stay free in every frame); raise vacuum_height_nm or lower the drift"
        )
    ref_dose = p.reference_dose if p.reference_dose is not None else p.dose
    stack = np.empty((n, p.ny, p.nx), dtype=np.float32)
    ref_stack = np.empty_like(stack)
    ones, zeros = np.ones_like(yy), np.zeros_like(yy)
    spec0 = None
    for i in range(n):
        spec = _truth(p, table, yy, xx, shift=(drift[i, 0], drift[i, 1]))
        if i == 0:
            spec0 = spec
        holo = _hologram(p, yy, xx, spec["phase"], spec["amplitude"], distortion,
                         p.dose * gain[i], steps[i])
        stack[i] = _detector(p, holo, streams[4 + i] if p.noise else None)
        ref = _hologram(p, yy, xx, zeros, ones, distortion, ref_dose * ref_gain[i], ref_steps[i])
        ref_stack[i] = _detector(p, ref, streams[4 + n + i] if p.noise else None)
        if progress is not None:
            progress(i + 1, n)
    qy, qx = _carrier(p)
    effective = np.angle(np.exp(1j * (steps + 2 * np.pi * (qy * drift[:, 0] + qx * drift[:, 1]))))
    effective = np.mod(effective - effective[0], 2 * np.pi)
    coords = {"y": y, "x": x}
    scoords = {"shift": nominal, "y": y, "x": x}
    sh = {"shift": nominal}
    variables = [
        signal(stack, ("shift", "y", "x"), name="stack", units="counts", coords=scoords,
               long_name="phase-shifting hologram stack (shift coordinate = nominal steps)",
               attrs={"beam_energy_kV": float(p.kv)}),
        signal(ref_stack, ("shift", "y", "x"), name="reference_stack", units="counts",
               coords=scoords, long_name="vacuum reference stack",
               attrs={"beam_energy_kV": float(p.kv)}),
        signal(steps, ("shift",), name="steps_true", units="rad", coords=sh,
               long_name="true fringe shifts (relative to frame 0)"),
        signal(effective, ("shift",), name="steps_effective_true", units="rad", coords=sh,
               long_name="true steps after aligning the drift back onto frame 0, mod 2 pi"),
        signal(ref_steps, ("shift",), name="reference_steps_true", units="rad", coords=sh,
               long_name="true fringe shifts of the reference stack"),
        signal(drift[:, 0], ("shift",), name="drift_y_true", units="nm", coords=sh,
               long_name="specimen displacement along y relative to frame 0"),
        signal(drift[:, 1], ("shift",), name="drift_x_true", units="nm", coords=sh,
               long_name="specimen displacement along x relative to frame 0"),
        signal(gain, ("shift",), name="gain_true", units="1", coords=sh,
               long_name="relative dose of each frame"),
        *_truth_variables(p, spec0, coords),
    ]
    ds = xr.Dataset({v.name: v for v in variables})
    attrs = _common_attrs(p, table, "holography_ps", seed, "stack")
    attrs.update(frames=int(n), vacuum_box=box, dose_total=float(p.dose * n))
    ds.attrs = attrs
    return twin_provenance(ds, STEP_PS, p, seed, variables=("stack", "reference_stack"))


__all__ = [
    "HolographyParams",
    "HolographyPSParams",
    "REGION_CODES",
    "simulate_holography",
    "simulate_holography_ps",
    "mtf",
    "mtf_at_carrier",
]
