r"""Off-axis electron holography: Fourier (sideband) reconstruction and hologram statistics.

A hologram :math:`I(\mathbf r) = A_r^2 + A^2 + 2\mu A_r A \cos(2\pi\mathbf q_c\cdot\mathbf r +
\varphi)` has, in its Fourier transform, a centre band at the origin and two sidebands at
:math:`\pm\mathbf q_c`; the one at :math:`+\mathbf q_c` is :math:`(\mu A_r A/2)
e^{i\varphi}` shifted by the carrier. Reconstruction (:doc:`/guide/holography`):

1. apodise: each axis of the hologram is extended by a margin (at least the taper width) that
   carries the hologram's fringe-free local mean out from the nearest border (the centre band
   continues, the fringes stop at the field's border) and is tapered to ~0 by a raised cosine,
   then real FFT
   (:func:`~ionscope.holography.sideband.extended_spectrum`; the field keeps full weight, so the
   reference wave never vanishes inside it - a window over the field itself brought its border
   to ~0, and the division there gave amplitudes of 100 and more);
2. find the sideband: the largest FFT amplitude outside the centre band in the requested half
   plane (of the apodised, unextended hologram), refined to sub-pixel precision from the mean
   phase gradient of the cut-out sideband (the lag-one phase estimator, exact for a pure carrier
   and unbiased by the window);
3. cut it out with a soft circular aperture (radius in FFT pixels, 1/nm or as a fraction of the
   carrier frequency; default a third of the centre-to-sideband distance; raised-cosine edge of
   5 % of the radius; circular in physical frequency, so elliptical in pixels for non-square
   images), optionally with a line filter that removes the biprism Fresnel-fringe streak (a
   strip through the origin along the carrier direction, keeping a small disc at the sideband
   centre), re-centre it and inverse-FFT onto the output grid (the extended grid's field part);
   optionally divided by the detector MTF relative to its value at the carrier
   (:mod:`ionscope.holography.detector`; the camera's blur weights the sideband unevenly);
4. divide by the vacuum reference hologram reconstructed the same way (removes the carrier and
   camera distortions); without one, remove the sub-pixel carrier ramp (within about a
   resolution length of the border the amplitude then falls to about half: part of the
   aperture's footprint lies outside the field);
5. phase = argument, unwrapped (:mod:`ionscope.holography.unwrap`); amplitude = modulus.

Sideband positions are in pixels of the **unshifted** FFT, ``(y, x)`` with ``0 <= y < ny``
(negative values are accepted as negative frequencies). ``"lower"`` is the sideband with a
positive y frequency (rows ``1 .. ny/2 - 1`` of the unshifted FFT, as in holospy; on the
``ky = 0`` row the one with positive x frequency), ``"upper"`` its conjugate, and ``"auto"`` =
``"upper"``. The wave is cut out **at** the given position.

Phase sign convention: ``"auto"`` gives the phase of HyperSpy/holospy's default reconstruction
(``s_holo.reconstruct_phase(s_ref)``), sign included. holospy's ``estimate_sideband_position``
(``sb="lower"``) returns the peak ``p`` in rows ``0 .. ny/2 - 1`` and ``reconstruct_phase``
centres the sideband by rolling the FFT *by* ``p``, which brings the conjugate sideband at
``-p`` to the origin; so its phase for ``sb_position=p`` equals ours for ``sideband=-p`` (the
'upper' one) and the negative of ours for ``sideband=p``. On holospy's Fe-needle pair the two
agree within 0.02 rad rms at the same aperture. Results carry ``phase_sign_convention``. Which
sideband carries :math:`e^{+i\varphi}` with :math:`\varphi = C_E \int V dz` depends on the
microscope (the biprism's side of the specimen, the image orientation), not on the hologram
alone: on the Fe-needle pair the default phase falls inside the needle (the electrostatic part
of its phase is negative), while the holography twins are built so that it rises.

Statistics (:func:`hologram_statistics`) follow the conventions of Gatan HoloWorks and
holospy, so the numbers compare one to one: the carrier frequency (1/nm and 1/px) of the FFT
pixel at the sideband peak, the fringe sampling (px) and spacing (nm) its inverse, and the fringe
contrast as the standard deviation over the mean of the (vacuum) hologram. On holospy's Fe-needle
reference these give 3.4860 nm, 3.7902 px and 0.0752, against 3.48604 nm, 3.7902 px and 0.0736
from HoloWorks. Two more precise quantities sit beside them:

* ``*_subpixel`` keys: the carrier from the sub-pixel sideband position (refined on the FFT
  amplitude), accurate to ~0.02 % on the twin; the FFT-pixel value can be off by half a pixel
  (0.35 % on the Fe-needle reference, whose true peak is 0.3-0.4 px from the grid);
* ``fringe_visibility``: the :math:`\mu` of the formula above (the contrast that sets the phase
  noise :math:`\sqrt{2 / (\mu^2 N)}`) from the sideband energy,

  .. math::

      \mu = \frac{2}{\bar I_w} \sqrt{\frac{\sum_{k \in \mathrm{ap}} a_k^2 |F_k|^2
            - P_\mathrm{noise} \sum a_k^2}{N_\mathrm{pix} \sum_r w_r^2}},
      \qquad \bar I_w = F_0 / \textstyle\sum_r w_r,

  the root-mean-square of the local contrast over the (window-weighted) field, with the
  shot-noise power per Fourier pixel :math:`P_\mathrm{noise}` estimated from bins far from the
  centre band and the sidebands (median / ln 2). For noise-free cosine fringes std / mean is
  :math:`\mu/\sqrt2`; on the Fe-needle reference :math:`\mu` = 0.095 (a least-squares cosine fit
  in the centre agrees within 3 %).

The Fourier-domain kernels (detection, refinement, aperture, line filter, visibility) are in
:mod:`ionscope.holography.sideband`, the statistics in :mod:`ionscope.holography.statistics`, the
input checks in :mod:`ionscope.holography.inputs`; this module holds the reconstruction
(:func:`reconstruct_offaxis_kernel`, numpy, and its wrapper :func:`reconstruct_offaxis`).

References
----------
H. Lichte, M. Lehmann, Rep. Prog. Phys. 71, 016102 (2008) (Fourier reconstruction, phase
noise). E. Voelkl, L.F. Allard, D.C. Joy (eds.), *Introduction to Electron Holography*
(Kluwer, 1999), chapter 7. S.M. Kay, IEEE Trans. ASSP 37, 1987 (1989) (lag-one frequency
estimator). HoloWorks (Gatan) and holospy conventions as described above.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, provenance, signal, with_provenance
from ionscope.errors import ConfigError, DimensionError
from ionscope.holography.detector import as_mtf, describe_mtf
from ionscope.holography.inputs import (
    MIN_SIDE_PX,
    calibration,
    check_reference,
    grid_coords,
    image_input,
    stack_input,
)
from ionscope.holography.passes import scale_outer
from ionscope.holography.phaseshift import phase_shifting_kernel
from ionscope.holography.sideband import (  # noqa: F401  (re-exported)
    APERTURE_UNITS,
    aperture_geometry,
    aperture_weights,
    box_columns,
    box_to_wave,
    contrast_from_spectrum,
    cut_sideband,
    default_taper,
    extended_spectrum,
    find_sideband_peak,
    margin_length,
    half_spectrum,
    lag_one_frequency,
    line_filter_weights,
    refine_sideband,
    resolve_sideband,
    sign_convention,
    taper_profile,
)
from ionscope.holography.statistics import (  # noqa: F401  (re-exported)
    SIDEBAND_CONSTRAINTS,
    hologram_statistics,
    statistics_dict,
    statistics_kernel,
    std_over_mean,
    taper_width,
)
from ionscope.holography.unwrap import UNWRAP_OPTIONS, unwrap_kernel
from ionscope.validation import Interval, validate_params

STEP = "ionscope.holography.reconstruct_offaxis"


# --------------------------------------------------------------------------- reconstruction


def _output_shape(output_shape: Any, shape: tuple[int, int]) -> tuple[int, int]:
    if output_shape is None:
        return tuple(shape)
    if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
        output_shape = (int(output_shape), int(output_shape))
    try:
        oy, ox = (int(v) for v in output_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"output_shape must be None, an int or (ny, nx), got {output_shape!r}") from None
    if not (0 < oy <= shape[0] and 0 < ox <= shape[1]):
        raise ConfigError(
            f"output_shape {(oy, ox)} must be positive and not larger than the hologram {shape}"
        )
    return oy, ox


def reconstruct_offaxis_kernel(
    image: np.ndarray,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    line_width_px: float | None = None,
    taper: float = 0.0,
    output_shape: tuple[int, int] | None = None,
    reference: np.ndarray | None = None,
    mtf: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Complex image wave from an off-axis hologram (the numpy kernel of
    :func:`reconstruct_offaxis`; steps 1-4 of the module docstring).

    Parameters
    ----------
    image : numpy.ndarray
        Hologram (float32).
    cal : dict
        Calibration from :func:`~ionscope.holography.inputs.image_input`.
    sideband, aperture, aperture_unit
        As :func:`reconstruct_offaxis`. With a reference, ``"auto"`` detection runs on it.
    line_width_px : float, optional
        Width (FFT px) of the Fresnel-streak line filter; None for none.
    taper : float
        Width (px) of the apodised margins the hologram is extended by
        (:func:`~ionscope.holography.sideband.extended_spectrum`); 0 for none.
    output_shape : tuple of int, optional
        Output grid; default the hologram's shape.
    reference : numpy.ndarray, optional
        Vacuum reference hologram of the same shape.
    mtf : callable, optional
        Detector MTF ``mtf(fy, fx)`` (cycles/px) to divide out of the sideband
        (:mod:`ionscope.holography.detector`).

    Returns
    -------
    wave : numpy.ndarray
        complex64 on the output grid: object / reference (relative amplitude), or without a
        reference the sideband wave in hologram units with the carrier removed.
    info : dict
        Sideband positions (integer centre used and sub-pixel refined), aperture geometry and
        the statistics of the hologram (and of the reference).
    """
    plan = offaxis_plan(image, cal, sideband=sideband, aperture=aperture, aperture_unit=aperture_unit,
                        line_width_px=line_width_px, taper=taper, output_shape=output_shape,
                        reference=reference, mtf=mtf)
    wave, contrast = offaxis_apply(image, plan)
    info = {k: plan[k] for k in ("sideband_used_px", "sideband_centre_px", "fft_shape",
                                 "phase_sign_convention", "geometry")}
    # the conventional contrast (std / mean) of the vacuum fringes when there is a reference
    info["statistics"] = statistics_dict(plan["shape"], cal, plan["refined"], contrast, plan["geometry"],
                                         reference if reference is not None else image)
    if reference is not None:
        info["reference_contrast"] = plan["reference_contrast"]
    return wave, info


def offaxis_plan(
    image: np.ndarray | None,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    line_width_px: float | None = None,
    taper: float = 0.0,
    output_shape: tuple[int, int] | None = None,
    reference: np.ndarray | None = None,
    mtf: Any = None,
) -> dict[str, Any]:
    """The part of :func:`reconstruct_offaxis_kernel` that every hologram of a series shares:
    the sideband (detected on the reference, or without one on ``image``), the aperture, the
    FFT grid and the reference's wave (computed once).

    Parameters are those of :func:`reconstruct_offaxis_kernel`; ``image`` may be None when a
    ``reference`` is given (the hologram's spectrum is then not needed). Returns a dict for
    :func:`offaxis_apply` (``shape``, ``out_shape``, the sideband positions, ``geometry``,
    ``refined``, the extended grid, ``wave_r`` and ``reference_contrast`` with a reference).
    """
    source = reference if reference is not None else image
    shape = source.shape
    out_shape = tuple(output_shape) if output_shape is not None else shape
    R_src, wy, wx = half_spectrum(source, taper)
    pos, detected = resolve_sideband(R_src, shape, sideband, (wy, wx))
    geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    refined = refine_sideband(R_src, shape, (int(round(pos[0])), int(round(pos[1]))), geom)
    if detected:
        pos = refined
        geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    period_px = 1.0 / math.hypot(refined[0] / shape[0], refined[1] / shape[1])
    # the sideband is cut from the hologram extended by apodised, fringe-free margins (the field
    # keeps full weight; extended_spectrum), on a finer FFT grid: positions scale by `scale`
    grid = (margin_length(shape[0], out_shape[0], taper), margin_length(shape[1], out_shape[1], taper)) \
        if taper > 0 else tuple(shape)
    scale = (grid[0] / shape[0], grid[1] / shape[1])
    at = (pos[0] * scale[0], pos[1] * scale[1])
    plan: dict[str, Any] = {
        "shape": tuple(shape), "out_shape": tuple(out_shape), "taper": taper, "period_px": period_px,
        "grid": grid, "scale": scale, "at": at, "mtf": mtf, "wy": wy, "wx": wx, "pos": pos,
        "refined": refined, "geometry": geom, "cal": cal,
        "g_geom": geom if grid == tuple(shape) else aperture_geometry(grid, cal, at, geom["radius_per_nm"], "1/nm"),
        "width": None if line_width_px is None else line_width_px * 0.5 * (scale[0] + scale[1]),
        "grid_out": (grid[0] * out_shape[0] // shape[0], grid[1] * out_shape[1] // shape[1]),
        "sideband_used_px": [float(pos[0]) % shape[0], float(pos[1]) % shape[1]],
        "sideband_centre_px": [int(round(pos[0])), int(round(pos[1]))],
        "fft_shape": [int(grid[0]), int(grid[1])],
        "phase_sign_convention": sign_convention(pos),
    }
    if reference is not None:
        plan["wave_r"], _ = _sideband_wave(reference, R_src, plan)
        plan["reference_contrast"] = contrast_from_spectrum(R_src, shape, refined, geom, wy, wx)
    return plan


def _sideband_wave(img: np.ndarray, spectrum: np.ndarray, plan: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int]]:
    """The re-centred sideband of one hologram on the output grid (steps 1 and 3)."""
    taper, grid = plan["taper"], plan["grid"]
    spec = extended_spectrum(img, taper, plan["period_px"], plan["out_shape"],
                             columns=box_columns(grid, plan["at"], plan["g_geom"]))[0] if taper > 0 else spectrum
    box, centre = cut_sideband(spec, grid, plan["at"], plan["g_geom"], line_width_px=plan["width"],
                               carrier=plan["at"], mtf=plan["mtf"])
    return box_to_wave(box, plan["grid_out"], grid[0] * grid[1], crop=tuple(plan["out_shape"])), centre


def offaxis_apply(image: np.ndarray, plan: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Complex wave of one hologram with a :func:`offaxis_plan` (steps 1, 3 and 4): object /
    reference with the plan's reference, else the sideband wave with the carrier removed.
    Returns the wave (complex64) and the hologram's fringe visibility (as
    :func:`~ionscope.holography.sideband.contrast_from_spectrum`)."""
    shape, out_shape, grid = plan["shape"], plan["out_shape"], plan["grid"]
    R, wy, wx = half_spectrum(image, plan["taper"])
    wave, (cy, cx) = _sideband_wave(image, R, plan)
    contrast = contrast_from_spectrum(R, shape, plan["pos"] if "wave_r" in plan else plan["refined"],
                                      plan["geometry"], wy, wx)
    if "wave_r" in plan:
        # object / reference = o * conj(r) / |r|^2 (carrier and distortions cancel); with the
        # field at full weight |r| stays of the order of its median up to the border
        wave_r = plan["wave_r"]
        mag2 = wave_r.real * wave_r.real + wave_r.imag * wave_r.imag
        tiny = np.float32(np.finfo(np.float32).tiny)
        wave *= np.conj(wave_r)
        wave /= np.maximum(mag2, tiny)
    else:
        # carrier ramp left by the integer re-centring (the sub-pixel remainder of the refined
        # carrier, in FFT px of the grid the sideband was cut from)
        refined, scale = plan["refined"], plan["scale"]
        oy = np.arange(out_shape[0]) * (shape[0] / out_shape[0])
        ox = np.arange(out_shape[1]) * (shape[1] / out_shape[1])
        dy, dx = refined[0] * scale[0] - cy, refined[1] * scale[1] - cx
        ey = np.exp(-2j * np.pi * dy * oy / grid[0]).astype(np.complex64)
        ex = np.exp(-2j * np.pi * dx * ox / grid[1]).astype(np.complex64)
        scale_outer(wave, ey, ex)
    return wave, contrast


#: Former name of :func:`reconstruct_offaxis_kernel` (deprecated alias, kept for callers).
offaxis_wave = reconstruct_offaxis_kernel


def reference_stack_terms(
    image: np.ndarray, frames: np.ndarray, cal: dict[str, Any], sideband: Any = "auto"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    r"""Separate a vacuum reference's centre band from its fringes with a stack of references
    at different fringe positions, and remove the centre band's fringes from the hologram.

    The biprism's Fresnel fringes sit in the centre band of every hologram (the intensities
    :math:`|F_1|^2 + |F_2|^2` of the two waves); their streak along the carrier reaches into
    the sideband aperture and is not multiplied by the object wave, so dividing by one reference
    leaves an error that grows with the object's phase (:mod:`ionscope.holography.leakage`).
    Three or more references with shifted fringes separate the centre band :math:`a_0` from
    the fringe term :math:`a_1` pixel by pixel (the phase-shifting solve,
    :func:`~ionscope.holography.phaseshift.phase_shifting_kernel`, steps measured). The
    hologram's centre band equals :math:`s\,a_0` in vacuum (``s`` the dose ratio, estimated
    where the fringe-averaged hologram is brightest relative to :math:`a_0`: the 98th
    percentile of their ratio, vacuum with amplitude 1), so :math:`s\,(a_0 - ar a_0)` is
    subtracted from it - exactly in vacuum, and in the specimen up to the part of the first
    wave's fringes scaled by :math:`A^2 - 1`. The reference becomes :math:`ar a_0 + 2\,
    \mathrm{Re}\,a_1`: its fringes without its centre band.

    Returns
    -------
    image : ndarray
        The hologram without the reference's centre-band fringes (float32).
    reference : ndarray
        The reference's fringe term on a flat centre band (float32).
    info : dict
        ``reference_frames``, ``reference_steps_rad`` (measured), ``reference_dose_ratio``
        (``s``), ``reference_contrast`` (std / mean of the first frame).
    """
    terms = reference_stack_solve(frames, cal, sideband)
    corrected, s = remove_reference_centre_band(image, terms)
    info = {k: terms[k] for k in ("reference_frames", "reference_steps_rad", "reference_contrast")}
    info["reference_dose_ratio"] = s
    return corrected, terms["reference"], info


def reference_stack_solve(frames: np.ndarray, cal: dict[str, Any], sideband: Any = "auto") -> dict[str, Any]:
    """The hologram-independent part of :func:`reference_stack_terms`: the per-pixel solve of the
    reference stack (centre band ``a0``, the reference's fringe term on a flat centre band, the
    measured steps), done once for a whole series of holograms."""
    stats = statistics_kernel(frames[0], cal, sideband=sideband)
    solved = phase_shifting_kernel(frames, cal, sideband=tuple(stats["sideband_offset_px"]), align=False)
    a0 = solved["a0"].astype(np.float64)
    mean = float(a0.mean())
    return {"a0": a0, "mean": mean, "period_px": float(stats["fringe_sampling_px"]),
            "reference": (mean + 2.0 * solved["a1"].real).astype(np.float32),
            "reference_frames": int(frames.shape[0]),
            "reference_steps_rad": [float(v) for v in solved["steps"]],
            "reference_contrast": std_over_mean(frames[0])}


def remove_reference_centre_band(image: np.ndarray, terms: dict[str, Any]) -> tuple[np.ndarray, float]:
    """The hologram without the reference's centre-band fringes, ``image - s (a0 - mean a0)``,
    and the dose ratio ``s`` (:func:`reference_stack_terms`; ``terms`` from
    :func:`reference_stack_solve`)."""
    from scipy.ndimage import gaussian_filter

    a0, period = terms["a0"], terms["period_px"]  # a Gaussian of one period averages the fringes out
    ratio = gaussian_filter(image.astype(np.float64), period) / np.maximum(gaussian_filter(a0, period), 1e-12)
    s = float(np.percentile(ratio, 98))
    return (image - s * (a0 - terms["mean"])).astype(np.float32), s


@validate_params({
    **SIDEBAND_CONSTRAINTS,
    "line_filter": [bool, Interval(float, 0, None, closed="neither", unit="FFT px")],
    "unwrap": [UNWRAP_OPTIONS],
})
def reconstruct_offaxis(
    hologram: Any,
    reference: Any = None,
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    line_filter: bool | float = False,
    apodize: bool | int = True,
    output_shape: Any = None,
    unwrap: bool | str = True,
    mtf: Any = None,
) -> xr.Dataset:
    """Reconstruct phase and amplitude from an off-axis electron hologram.

    Computes: a single hologram (y, x) is loaded (a dask-backed one is computed) and the maps
    are numpy-backed. A series - a hologram with dims y, x and further dims such as time - is
    reconstructed frame by frame with one plan (the sideband, aperture and reference wave of the
    reference, or without one of the first frame; frame i of the series equals the single-map
    reconstruction of frame i when there is a reference): a dask-backed series gives
    dask-backed ``phase``, ``amplitude`` and ``fringe_visibility`` (one task per chunk of
    frames, y and x in one chunk) without computing them. What the plan needs is computed once:
    the reference (a single image or a stack, computed if dask-backed) or, without one, the
    first frame.

    Parameters
    ----------
    hologram : xarray.DataArray
        Hologram with dims (y, x) and coordinates in nm (or a 2-D numpy array, uncalibrated).
    reference : xarray.DataArray, optional
        Vacuum reference hologram of the same shape; the object wave is divided by its wave
        (carrier, camera distortions and apodisation cancel; sideband detection runs on it).
        A stack of references with dims ``(shift, y, x)`` (at least 3, fringes at different
        positions) also removes the biprism's Fresnel fringes of the centre band from the
        hologram (:func:`reference_stack_terms`).
    sideband : {"auto", "upper", "lower"} or (y, x)
        Sideband to cut out: detected (``"auto"`` = ``"upper"``, the sideband of holospy's
        default reconstruction, refined to sub-pixel) or a position in pixels of the unshifted
        FFT, used as given (holospy's ``sb_position=p`` corresponds to ``sideband=-p``; see the
        module docstring). A given position far from the detected sideband peak warns.
    aperture : float, optional
        Aperture radius; default a third of the centre-to-sideband distance.
    aperture_unit : {"px", "1/nm", "fraction"}
        Unit of ``aperture``: FFT pixels (mean of the y and x Fourier pixel sizes, as holospy's
        ``sb_size``), physical frequency (1/nm) or fraction of the carrier frequency.
    line_filter : bool or float
        Remove the biprism Fresnel-fringe streak: True for a 3 FFT-px wide strip, or the strip
        width in FFT px.
    apodize : bool or int
        Extend the hologram by tapered, fringe-free margins before the FFT (taper width 1/16 of
        the image by default, or the width in px); suppresses the streaks of the image borders
        while the field keeps full weight. False: the periodic FFT of the field as it is
        (holospy's way; wrap-around at the borders).
    output_shape : int or (ny, nx), optional
        Output sampling (not larger than the hologram and large enough for the aperture);
        coordinates are scaled accordingly.
    unwrap : bool or {"quality", "fft"}
        Unwrap the phase (default quality-guided); False returns it wrapped to [-pi, pi).
    mtf : callable, float or (frequency, values), optional
        Detector MTF to divide out of the sideband (:mod:`ionscope.holography.detector`): a
        callable ``mtf(fy, fx)`` of cycles per pixel, a Lorentzian cut-off (cycles/px,
        :func:`~ionscope.holography.detector.lorentzian_mtf`) or a measured radial curve
        (:func:`~ionscope.holography.detector.radial_mtf`). Default: no correction.

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad, y, x; unwrapped, float32), ``amplitude`` (relative to the reference, or
        hologram units without one); for a series also ``fringe_visibility`` (per frame; the
        attrs then omit it and carry ``frames``, ``series_dims`` and ``sideband_from``). ``attrs`` hold the statistics (as
        :func:`hologram_statistics`; carrier measured on the reference when there is one,
        ``fringe_contrast`` of the reference's vacuum fringes, ``fringe_visibility`` of the
        hologram: ``sideband_position_px`` [y, x] unshifted FFT sub-pixel, ``aperture_px``,
        ``fringe_spacing_nm``, ``fringe_sampling_px``, ``fringe_contrast``,
        ``carrier_frequency_per_nm`` and more), the reconstruction parameters
        (``sideband_used_px``, ``phase_sign_convention``, ``fft_shape`` (the extended FFT
        grid), ``aperture_per_nm``, ``aperture_edge_px``, ``apodization_px``,
        ``line_filter_px``, ``output_shape``, ``reference``) and ``provenance``.

    Warns
    -----
    IonscopeWarning
        A given sideband position far from the detected sideband peak and its conjugate.

    Raises
    ------
    DimensionError, NonFiniteError, InputError
        Wrong dims, NaN/inf values, shape mismatch with the reference, no sideband found.
    ConfigError
        Invalid sideband, aperture (including one that reaches the centre band), unit, taper or
        output shape.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography", seed=0, noise=False)
    >>> rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    >>> rec["phase"].dims
    ('y', 'x')
    """
    if isinstance(hologram, xr.DataArray) and hologram.ndim > 2:
        return _reconstruct_series(hologram, reference, sideband=sideband, aperture=aperture,
                                   aperture_unit=aperture_unit, line_filter=line_filter, apodize=apodize,
                                   output_shape=output_shape, unwrap=unwrap, mtf=mtf)
    image, cal = image_input(hologram, "hologram")
    ref_img = None
    stack = None
    if reference is not None and np.ndim(reference) == 3:
        frames, ref_cal = stack_input(reference, "reference stack")
        check_reference(frames.shape[1:], ref_cal, image.shape, cal)
        image, ref_img, stack = reference_stack_terms(image, frames, cal, sideband)
    elif reference is not None:
        ref_img, ref_cal = image_input(reference, "reference hologram")
        check_reference(ref_img.shape, ref_cal, image.shape, cal)
    if aperture_unit == "1/nm" and not cal["calibrated"]:
        raise ConfigError("aperture_unit '1/nm' needs a hologram with coordinates in nm")
    taper = taper_width(apodize, image.shape)
    if isinstance(line_filter, bool | np.bool_):
        line_width = 3.0 if line_filter else None
    else:
        line_width = float(line_filter)
    out_shape = _output_shape(output_shape, image.shape)

    mtf_fn = as_mtf(mtf)
    wave, info = reconstruct_offaxis_kernel(
        image, cal, sideband=sideband, aperture=aperture, aperture_unit=aperture_unit,
        line_width_px=line_width, taper=taper, output_shape=out_shape, reference=ref_img, mtf=mtf_fn,
    )
    wrapped = np.angle(wave)
    amplitude = np.abs(wave)
    if unwrap:
        method = "quality" if unwrap is True else unwrap
        phase = unwrap_kernel(wrapped, method=method)
    else:
        phase = wrapped
    geom = info["geometry"]
    sy, sx = image.shape[0] / out_shape[0], image.shape[1] / out_shape[1]
    coords, units = grid_coords(cal, out_shape, (sy, sx))
    phase_da = signal(phase.astype(np.float32), ("y", "x"), name="phase", units="rad",
                      coords=coords, coord_units=units,
                      long_name="unwrapped phase" if unwrap else "wrapped phase")
    amp_da = signal(amplitude.astype(np.float32), ("y", "x"), name="amplitude",
                    units="1" if ref_img is not None else "counts", coords=coords,
                    coord_units=units,
                    long_name="amplitude relative to the reference" if ref_img is not None
                    else "sideband amplitude")
    ds = xr.Dataset({"phase": phase_da, "amplitude": amp_da})
    stats = info["statistics"]
    attrs = dict(stats)
    attrs.update(
        method="offaxis",
        resolution="aperture",
        sideband_used_px=info["sideband_used_px"],
        phase_sign_convention=info["phase_sign_convention"],
        fft_shape=info["fft_shape"],
        aperture_px=float(geom["radius_px"]),
        aperture_per_nm=float(geom["radius_per_nm"]) if cal["calibrated"] else None,
        aperture_edge_px=float(geom["edge_per_nm"] / (0.5 * (geom["fy"] + geom["fx"]))),
        apodization_px=float(taper),
        line_filter_px=line_width,
        output_shape=[int(out_shape[0]), int(out_shape[1])],
        reference=ref_img is not None,
        unwrap=unwrap if isinstance(unwrap, str) else bool(unwrap),
        mtf_corrected=mtf_fn is not None,
        reference_frames=stack["reference_frames"] if stack else (1 if ref_img is not None else 0),
    )
    if stack:
        # the conventional contrast of a recorded reference frame, not of the solved fringes
        attrs["fringe_contrast"] = stack["reference_contrast"]
        attrs["reference_steps_rad"] = stack["reference_steps_rad"]
        attrs["reference_dose_ratio"] = stack["reference_dose_ratio"]
    if "reference_contrast" in info:
        attrs["reference_fringe_visibility"] = float(info["reference_contrast"])
    if isinstance(hologram, xr.DataArray) and "beam_energy_kV" in hologram.attrs:
        attrs["beam_energy_kV"] = hologram.attrs["beam_energy_kV"]
    ds.attrs = jsonable(attrs)
    params = {
        "sideband": sideband if isinstance(sideband, str) else [float(v) for v in sideband],
        "aperture": aperture, "aperture_unit": aperture_unit, "line_filter": line_width,
        "apodize": taper, "output_shape": list(out_shape), "unwrap": ds.attrs["unwrap"],
        "mtf": describe_mtf(mtf_fn),
    }
    inputs = [hologram] + ([reference] if reference is not None else [])
    history = provenance(hologram) if isinstance(hologram, xr.DataArray) else []
    ds.attrs["primary"] = "phase"
    return with_provenance(ds, STEP, params, inputs, history=history, variables=("phase", "amplitude"))


def _series_block(frames: np.ndarray, *, plan: dict[str, Any], terms: dict[str, Any] | None,
                  unwrap: bool | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phase, amplitude and fringe visibility of a block of holograms (..., y, x), frame by frame
    with one :func:`offaxis_plan` (the numpy kernel :func:`reconstruct_offaxis` maps over a
    series)."""
    lead, (ny, nx) = frames.shape[:-2], frames.shape[-2:]
    flat = frames.reshape((-1, ny, nx))
    oy, ox = plan["out_shape"]
    phase = np.empty((flat.shape[0], oy, ox), dtype=np.float32)
    amplitude = np.empty_like(phase)
    visibility = np.empty(flat.shape[0], dtype=np.float64)
    for i in range(flat.shape[0]):
        image = np.ascontiguousarray(flat[i], dtype=np.float32)
        if terms is not None:
            image, _ = remove_reference_centre_band(image, terms)
        wave, visibility[i] = offaxis_apply(image, plan)
        wrapped = np.angle(wave)
        phase[i] = unwrap_kernel(wrapped, method="quality" if unwrap is True else unwrap) if unwrap else wrapped
        amplitude[i] = np.abs(wave)
    return phase.reshape(lead + (oy, ox)), amplitude.reshape(lead + (oy, ox)), visibility.reshape(lead)


def _reconstruct_series(hologram: xr.DataArray, reference: Any, *, sideband: Any, aperture: float | None,
                        aperture_unit: str, line_filter: bool | float, apodize: bool | int, output_shape: Any,
                        unwrap: bool | str, mtf: Any) -> xr.Dataset:
    """:func:`reconstruct_offaxis` of a series of holograms (dims y, x and one or more others,
    e.g. time): one plan (sideband, aperture, reference wave) for every frame, then frame by
    frame - lazily (one task per chunk of frames) when the series is dask-backed."""
    from ionscope.data import require_dims, require_finite

    lead = [d for d in hologram.dims if d not in ("y", "x")]
    if "y" not in hologram.dims or "x" not in hologram.dims or "shift" in lead:
        raise DimensionError(
            f"a hologram series must have dims y, x and a series dim such as time, got {hologram.dims}"
            + ("; a phase-shifting stack (shift, y, x) goes to reconstruct_phase_shifting" if "shift" in lead else "")
        )
    require_dims(hologram, tuple(hologram.dims), what="hologram series")
    da = require_finite(hologram.transpose(*lead, "y", "x"), "hologram series")
    shape = (da.sizes["y"], da.sizes["x"])
    if min(shape) < MIN_SIDE_PX:
        raise DimensionError(f"hologram series frames are too small ({shape}); need at least 16 x 16 pixels")
    cal = calibration(da)
    ref_img, terms = None, None
    if reference is not None and np.ndim(reference) == 3:
        frames, ref_cal = stack_input(reference, "reference stack")  # computed once (a dask-backed one too)
        check_reference(frames.shape[1:], ref_cal, shape, cal)
        terms = reference_stack_solve(frames, cal, sideband)
        ref_img = terms["reference"]
    elif reference is not None:
        ref_img, ref_cal = image_input(reference, "reference hologram")  # computed once
        check_reference(ref_img.shape, ref_cal, shape, cal)
    if aperture_unit == "1/nm" and not cal["calibrated"]:
        raise ConfigError("aperture_unit '1/nm' needs a hologram with coordinates in nm")
    taper = taper_width(apodize, shape)
    line_width = (3.0 if line_filter else None) if isinstance(line_filter, bool | np.bool_) else float(line_filter)
    out_shape = _output_shape(output_shape, shape)
    mtf_fn = as_mtf(mtf)
    # without a reference the sideband is detected on the first frame (one compute if lazy)
    first = None if ref_img is not None else np.ascontiguousarray(
        np.asarray(da.isel({d: 0 for d in lead}).values), dtype=np.float32)
    if first is not None and terms is not None:
        first, _ = remove_reference_centre_band(first, terms)
    plan = offaxis_plan(first, cal, sideband=sideband, aperture=aperture, aperture_unit=aperture_unit,
                        line_width_px=line_width, taper=taper, output_shape=out_shape, reference=ref_img, mtf=mtf_fn)
    lazy = da.chunks is not None
    if lazy:
        da = da.chunk({"y": -1, "x": -1})
    phase, amplitude, visibility = xr.apply_ufunc(
        _series_block, da, input_core_dims=[["y", "x"]],
        output_core_dims=[["y_out", "x_out"], ["y_out", "x_out"], []],
        kwargs={"plan": plan, "terms": terms, "unwrap": unwrap},
        dask="parallelized" if lazy else "forbidden",
        output_dtypes=[np.float32, np.float32, np.float64],
        dask_gufunc_kwargs={"output_sizes": {"y_out": out_shape[0], "x_out": out_shape[1]}},
    )
    sy, sx = shape[0] / out_shape[0], shape[1] / out_shape[1]
    coords, units = grid_coords(cal, out_shape, (sy, sx))
    dims = (*lead, "y", "x")
    lead_coords = {d: da[d] for d in lead if d in da.coords}

    def labelled(values: xr.DataArray, name: str, unit: str, long_name: str) -> xr.DataArray:
        image = values.ndim == len(dims)
        out = signal(values.data, dims if image else tuple(lead), name=name, units=unit,
                     coords=coords if image else None, coord_units=units if image else None, long_name=long_name)
        return out.assign_coords(lead_coords)

    ds = xr.Dataset({
        "phase": labelled(phase, "phase", "rad", "unwrapped phase" if unwrap else "wrapped phase"),
        "amplitude": labelled(amplitude, "amplitude", "1" if ref_img is not None else "counts",
                              "amplitude relative to the reference" if ref_img is not None else "sideband amplitude"),
        "fringe_visibility": labelled(visibility, "fringe_visibility", "1",
                                      "fringe visibility mu of each hologram (sideband energy)"),
    })
    geom = plan["geometry"]
    stats = statistics_dict(shape, cal, plan["refined"], float("nan"), geom, ref_img)
    stats.pop("fringe_visibility")  # per frame: the variable fringe_visibility
    if ref_img is None:
        stats["fringe_contrast"] = std_over_mean(first)  # of the first frame
    attrs = dict(stats)
    attrs.update(
        method="offaxis", resolution="aperture", series_dims=lead, frames=int(np.prod([da.sizes[d] for d in lead])),
        sideband_from="reference" if ref_img is not None else "first frame",
        sideband_used_px=plan["sideband_used_px"], phase_sign_convention=plan["phase_sign_convention"],
        fft_shape=plan["fft_shape"], aperture_px=float(geom["radius_px"]),
        aperture_per_nm=float(geom["radius_per_nm"]) if cal["calibrated"] else None,
        aperture_edge_px=float(geom["edge_per_nm"] / (0.5 * (geom["fy"] + geom["fx"]))),
        apodization_px=float(taper), line_filter_px=line_width,
        output_shape=[int(out_shape[0]), int(out_shape[1])], reference=ref_img is not None,
        unwrap=unwrap if isinstance(unwrap, str) else bool(unwrap), mtf_corrected=mtf_fn is not None,
        reference_frames=terms["reference_frames"] if terms else (1 if ref_img is not None else 0),
    )
    if terms:
        attrs["fringe_contrast"] = terms["reference_contrast"]
        attrs["reference_steps_rad"] = terms["reference_steps_rad"]
    if "reference_contrast" in plan:
        attrs["reference_fringe_visibility"] = float(plan["reference_contrast"])
    if "beam_energy_kV" in hologram.attrs:
        attrs["beam_energy_kV"] = hologram.attrs["beam_energy_kV"]
    ds.attrs = jsonable(attrs)
    params = {
        "sideband": sideband if isinstance(sideband, str) else [float(v) for v in sideband],
        "aperture": aperture, "aperture_unit": aperture_unit, "line_filter": line_width,
        "apodize": taper, "output_shape": list(out_shape), "unwrap": ds.attrs["unwrap"],
        "mtf": describe_mtf(mtf_fn),
    }
    inputs = [hologram] + ([reference] if reference is not None else [])
    ds.attrs["primary"] = "phase"
    return with_provenance(ds, STEP, params, inputs, history=provenance(hologram),
                           variables=("phase", "amplitude", "fringe_visibility"))


__all__ = [
    "reconstruct_offaxis",
    "reconstruct_offaxis_kernel",
    "hologram_statistics",
    "statistics_kernel",
    "offaxis_wave",
    "image_input",
    "find_sideband_peak",
    "refine_sideband",
    "aperture_geometry",
    "aperture_weights",
    "line_filter_weights",
    "reference_stack_terms",
    "reference_stack_solve",
    "remove_reference_centre_band",
    "offaxis_plan",
    "offaxis_apply",
    "cut_sideband",
    "box_to_wave",
    "half_spectrum",
    "taper_profile",
    "lag_one_frequency",
]
