"""Parameters of the electron-holography twins ``holography`` and ``holography_ps``.

The model they parametrise is described in :mod:`ionscope.simulate.holography` (which
re-exports both classes); each field is a :func:`~ionscope.simulate.registry.parameter` with its
range and unit, checked on construction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ionscope.errors import ConfigError
from ionscope.simulate.registry import check_parameters, flag, parameter


@dataclasses.dataclass(frozen=True)
class HolographyParams:
    """Parameters of the off-axis hologram twin ``holography`` (see the module docstring).

    Attributes
    ----------
    ny, nx, pixel_nm : int, int, float
        Image size (px) and pixel size (nm). Default 256 x 256 at 0.5 nm.
    kv : float
        Accelerating voltage (kV), 60-300. Default 300.
    fringe_spacing_nm, fringe_angle_deg : float
        Fringe spacing (nm, at least 2.5 px) and carrier direction (degrees from +x towards +y,
        i.e. down the image): the direction of the object wave's tilt relative to the reference
        wave and of the reference wave's position, and the sideband at +q_c carries the object
        phase. The default -80 points up into the vacuum, with fringes nearly parallel to the
        specimen edge, and puts that sideband in the 'upper' half of the FFT, the one the
        reconstruction (and HyperSpy/holospy) cuts out by default. Default 2.0 nm (4 px), -80.
    contrast : float
        Fringe contrast mu before the detector MTF. Default 0.3.
    dose, reference_dose : float or None
        Electrons per pixel in vacuum (hologram; reference, None = same). Default 1000.
    noise : bool
        Poisson noise on or off.
    mtf_cutoff : float or None
        Lorentzian cut-off f_c of the detector MTF (cycles/px); None for an ideal detector.
        Default 0.5.
    biprism_fringe_amplitude, biprism_fringe_scale_nm, biprism_fringe_decay_nm : float
        Fresnel-fringe amplitude b (0 = none), chirp scale u_F (nm; the local fringe period at
        distance s from the edge is u_F^2 / 2s) and decay length L (nm). Default 0.05, 15, 60.
    distortion_rad : float
        Amplitude of the smooth camera/projector phase distortion (rad). Default 0.3.
    thickness_nm, edge_ramp_nm, wedge_nm_per_nm : float
        Lamella thickness (nm) at the end of the edge ramp, the width of the ramp over which
        it rises from 0 at the edge (nm; keeps the edge phase resolvable), and the further
        increase per nm away from the edge (wedge). Default 80, 10, 0.05.
    vacuum_height_nm : float
        Height of the vacuum band at the top (nm). Default 32.
    interface_position_nm, interface_angle_deg, interface_width_nm : float
        Interface x at the lamella edge (nm), tilt from the y axis (degrees), roughness sigma
        (nm). Default 48, 0, 0.25.
    mip_electrode_V, mip_electrolyte_V : float
        Mean inner potentials (V). Default 19.0 (metal-like), 14.0 (phosphate-like) [open];
        with the default thickness the phase step at the interface (2.6 rad at 300 kV) stays
        below pi, so it unwraps without ambiguity (real Cu has a larger MIP, ~20-30 V).
    mfp_electrode_nm, mfp_electrolyte_nm : float
        Inelastic mean free paths (nm). Default 90, 150 [open].
    psi0_V, theta, eps_r, c0_m3, temperature_K : float
        Lattice-gas space-charge layer in the electrolyte: interface potential relative to the
        bulk (V), site occupancy, permittivity, mobile-carrier density (m^-3), temperature (K).
        Default 1.3 V, 0.99, 50, 1e26, 298.15 (w90 = 7.2 nm).
    bias_V, bias_interface_fraction : float
        Electrode bias (V) and the part of it that adds to the interface drop. Default 0, 0.5.
    stray_rad_per_V, stray_gap_nm, stray_length_nm, stray_depth_nm : float
        Leakage field (module docstring): strength kappa (rad per V of bias and per unit of
        ln-distance; 2 C_E R_C), distance of the charged electrode strips beyond the left and
        right borders of the map (nm; negative moves them into the map), their length (nm)
        and their depth below the lamella edge (nm, > 0: inside the specimen). Default 1.0,
        20, 200, 10.
    overlap_nm : float
        Object-reference distance (nm) along +q_c; the reference wave picks up the stray field
        there.
        Default 150.
    reference_frames : int
        Vacuum reference holograms recorded (default 1). With more, ``reference_stack`` (shift,
        y, x) holds them at fringe steps 2 pi n / N plus 0.3 rad of scatter (frame 0 is
        ``reference``), e.g. for :func:`ionscope.holography.reconstruct_offaxis` to separate the
        reference's centre band from its fringes.
    exposure : int
        Index of the exposure of the same specimen: another value re-draws the Poisson noise
        of the hologram and its reference (and, for ``holography_ps``, the drift, the steps
        and the dose jitter), while the specimen, the camera distortion and the biprism stay -
        e.g. a 0 V and a biased exposure of a bias series (``seed`` makes another specimen).
        Default 0.
    """

    ny: int = parameter(256, 32, 8192, "px", integer=True)
    nx: int = parameter(256, 32, 8192, "px", integer=True)
    pixel_nm: float = parameter(0.5, 1e-3, 100.0, "nm")
    kv: float = parameter(300.0, 60.0, 300.0, "kV")
    fringe_spacing_nm: float = parameter(2.0, 1e-3, 1e3, "nm")
    fringe_angle_deg: float = parameter(-80.0, -180.0, 180.0, "deg")
    contrast: float = parameter(0.3, 0.0, 1.0, "")
    dose: float = parameter(1000.0, 1e-2, 1e9, "e/px")
    reference_dose: float | None = parameter(None, 1e-2, 1e9, "e/px", allow_none=True)
    noise: bool = flag(True)
    mtf_cutoff: float | None = parameter(0.5, 0.01, 100.0, "cycles/px", allow_none=True)
    biprism_fringe_amplitude: float = parameter(0.05, 0.0, 0.5, "")
    biprism_fringe_scale_nm: float = parameter(15.0, 0.01, 1e4, "nm")
    biprism_fringe_decay_nm: float = parameter(60.0, 0.01, 1e6, "nm")
    distortion_rad: float = parameter(0.3, 0.0, 10.0, "rad")
    thickness_nm: float = parameter(80.0, 0.0, 1e4, "nm")
    edge_ramp_nm: float = parameter(10.0, 0.0, 1e4, "nm")
    wedge_nm_per_nm: float = parameter(0.05, -1.0, 10.0, "nm/nm")
    vacuum_height_nm: float = parameter(32.0, 0.0, 1e6, "nm")
    interface_position_nm: float = parameter(48.0, -1e6, 1e6, "nm")
    interface_angle_deg: float = parameter(0.0, -60.0, 60.0, "deg")
    interface_width_nm: float = parameter(0.25, 0.0, 100.0, "nm")
    mip_electrode_V: float = parameter(19.0, 0.0, 100.0, "V")
    mip_electrolyte_V: float = parameter(14.0, 0.0, 100.0, "V")
    mfp_electrode_nm: float = parameter(90.0, 1.0, 1e5, "nm")
    mfp_electrolyte_nm: float = parameter(150.0, 1.0, 1e5, "nm")
    psi0_V: float = parameter(1.3, -5.0, 5.0, "V")
    theta: float = parameter(0.99, 1e-4, 1 - 1e-6, "")
    eps_r: float = parameter(50.0, 1.0, 1e4, "")
    c0_m3: float = parameter(1e26, 1e20, 1e30, "m^-3")
    temperature_K: float = parameter(298.15, 1.0, 2000.0, "K")
    bias_V: float = parameter(0.0, -20.0, 20.0, "V")
    bias_interface_fraction: float = parameter(0.5, 0.0, 1.0, "")
    stray_rad_per_V: float = parameter(1.0, 0.0, 100.0, "rad/V")
    stray_gap_nm: float = parameter(20.0, -1e5, 1e6, "nm")
    stray_length_nm: float = parameter(200.0, 0.1, 1e6, "nm")
    stray_depth_nm: float = parameter(10.0, 0.1, 1e5, "nm")
    overlap_nm: float = parameter(150.0, 0.0, 1e6, "nm")
    reference_frames: int = parameter(1, 1, 256, "frames", integer=True)
    exposure: int = parameter(0, 0, 2**31 - 1, "", integer=True)

    def __post_init__(self) -> None:
        _check(self, "holography")


def _check(p: Any, twin: str) -> None:
    check_parameters(p, twin)
    if p.fringe_spacing_nm < 2.5 * p.pixel_nm:
        raise ConfigError(
            f"twin {twin!r}: fringe_spacing_nm = {p.fringe_spacing_nm:g} nm is below 2.5 pixels "
            f"({2.5 * p.pixel_nm:g} nm); the fringes would not be resolved - raise it or lower "
            "pixel_nm"
        )
    if p.fringe_spacing_nm > min(p.ny, p.nx) * p.pixel_nm / 8:
        raise ConfigError(
            f"twin {twin!r}: fringe_spacing_nm = {p.fringe_spacing_nm:g} nm leaves fewer than 8 "
            "fringes in the field of view; lower it or enlarge the image"
        )


@dataclasses.dataclass(frozen=True)
class HolographyPSParams(HolographyParams):
    """Parameters of the phase-shifting twin ``holography_ps``: those of
    :class:`HolographyParams` (``dose`` = electrons per pixel per frame, default 100) plus

    Attributes
    ----------
    frames : int
        Number of holograms N (nominal steps 2 pi n / N). Default 16.
    step_jitter_rad : float
        Standard deviation of the deviation of each step from nominal (rad). Default 0.3.
    drift_y_nm, drift_x_nm, drift_jitter_nm : float
        Linear specimen drift per frame (nm) and random-walk step (nm). Default -0.15, 0.1,
        0.05: with the default carrier the drift adds 0.52 rad per frame to the nominal steps
        (2 pi q_c . d; a drift the other way would cancel them, leaving nearly equal steps).
    intensity_jitter : float
        Relative standard deviation of the per-frame dose. Default 0.02.
    """

    dose: float = parameter(100.0, 1e-2, 1e9, "e/px/frame")
    frames: int = parameter(16, 3, 1024, "frames", integer=True)
    step_jitter_rad: float = parameter(0.3, 0.0, 3.0, "rad")
    drift_y_nm: float = parameter(-0.15, -100.0, 100.0, "nm/frame")
    drift_x_nm: float = parameter(0.1, -100.0, 100.0, "nm/frame")
    drift_jitter_nm: float = parameter(0.05, 0.0, 100.0, "nm")
    intensity_jitter: float = parameter(0.02, 0.0, 0.5, "")

    def __post_init__(self) -> None:
        _check(self, "holography_ps")


__all__ = ["HolographyParams", "HolographyPSParams"]
