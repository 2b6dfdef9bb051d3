r"""Phase-shifting (fringe-scanning) electron holography.

N holograms whose fringes are shifted by unknown steps :math:`\delta_n` (and whose specimen
drifts, and whose dose fluctuates) give, per pixel,

.. math::

    I_n(\mathbf r) = g_n \left[a_0(\mathbf r) + a_1(\mathbf r) e^{i\delta_n}
        + \bar a_1(\mathbf r) e^{-i\delta_n}\right],

with :math:`a_1 = (\mu A_r A / 2)\, e^{i(2\pi\mathbf q_c\cdot\mathbf r + \varphi)}`
(:doc:`/guide/holography`, after Ru et al. 1994). The reconstruction:

1. **Carrier**: the sideband of frame 0 (detected as in :mod:`~ionscope.holography.offaxis`,
   sub-pixel), giving :math:`\mathbf q_c` and the hologram statistics.
2. **Drift**: every frame is registered onto frame 0 by the sub-pixel cross-correlation
   magnitude of its complex sideband wave (blind to the fringe shift;
   :mod:`~ionscope.holography.align`) and shifted there (FFT phase ramp). Its precision is
   limited by the frame's noise (a few hundredths of a pixel at high dose, 0.2-0.3 px at
   100 e/px per frame on the twin) and by the specimen's features: a field with a single
   straight edge pins the shift only across it. (A Gauss-Newton refinement against the fitted
   model was tried and rejected: detector-fixed patterns - biprism Fresnel fringes,
   distortions - pull it off the specimen.)
3. **Steps, measured** (nominal steps are never used): a first estimate from the carrier
   Fourier component of each frame over the vacuum region (Hann-weighted box, or the mask)
   or, without one, over the whole frame, :math:`c_n = \sum w (I_n - \bar I)
   e^{-2\pi i\mathbf q_c\cdot\mathbf r}`, :math:`\delta_n = \arg(c_n \bar c_0)`; with six or
   more frames replaced by the closed-form solution from the rank-3 structure of the frames
   (:func:`algebraic_steps`; the Fourier estimate only picks its orientation); then
   alternating least squares over the same pixels (after Wang & Han 2004): per pixel
   :math:`(a_0, a_1)` given the steps, per frame the step that best fits given
   :math:`(a_0, a_1)`, normalised to :math:`\delta_0 = 0`, until the steps change by less than
   1e-7 rad. The gains :math:`g_n` are the frames' (window-weighted) mean intensities over the
   same region relative to their mean - not fitted, since with free per-pixel
   :math:`(a_0, a_1)` a gain change along :math:`(\cos\delta_n, \sin\delta_n)` is
   indistinguishable from a change of the fringe term. Each frame is divided by its gain.
4. **Per-pixel least squares**: with :math:`\mathbf g_n = (1, \cos\delta_n, \sin\delta_n)`
   the 3x3 normal matrix :math:`\sum_n \mathbf g_n \mathbf g_n^T` depends only on the steps,
   so it is inverted once and applied to the per-pixel sums :math:`\sum_n I_n \mathbf g_n`
   (one matrix product over all pixels, in cache-sized blocks):
   :math:`a_0 = c_0`, :math:`a_1 = (c_1 - i c_2)/2`; ``contrast`` :math:`\mu = 2|a_1|/a_0`;
   ``r2`` :math:`= 1 - \sum_n (I_n - \hat I_n)^2 / \sum_n (I_n - \bar I)^2`.
5. **Normalisation**: divided by the vacuum reference stack reconstructed the same way
   (removes the carrier and distortions; its own steps are measured on all its pixels), or
   without one the carrier ramp :math:`2\pi\mathbf q_c\cdot\mathbf r` is removed. Aligning
   the drifting frames moves what is fixed to the detector (camera distortion, the biprism's
   Fresnel fringes in the fringe term and in the centre band) against the undrifted
   reference; the reference is therefore shifted frame by frame as the object frames were and
   combined with the solve's own weights, and the centre band's share that leaks into
   :math:`a_1` is removed (:func:`drift_matched_reference`; on the twin the vacuum phase
   error falls from 0.022 to 0.005 rad rms, its smooth part from 0.004-0.010 to < 0.0003
   rad). With a vacuum region its mean phase is set to zero and its median amplitude to one
   (the object and reference stacks' doses need not match). With a reference the carrier and
   the fringe statistics come from its first frame.
6. The phase is unwrapped (:mod:`~ionscope.holography.unwrap`).

Resolution is the pixel, not the fringe spacing; at equal total dose the phase noise per pixel
is :math:`\sqrt{2 / (\mu^2 N_\mathrm{total})}`.

References
----------
Q. Ru, G. Lai, K. Aoyama, J. Endo, A. Tonomura, Ultramicroscopy 55, 209 (1994); Q. Ru,
J. Endo, T. Tanji, A. Tonomura, Appl. Phys. Lett. 59, 2372 (1991); Z. Wang, B. Han, Opt. Lett.
29, 1671 (2004) (advanced iterative algorithm for unknown steps); K. Yamamoto et al.,
J. Electron Microsc. 49, 31 (2000).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, provenance, signal, with_provenance
from ionscope.errors import DimensionError, InputError
from ionscope.holography.align import align_frames
from ionscope.holography.inputs import check_reference, grid_coords, stack_input, vacuum_region
from ionscope.holography.phase_steps import (  # noqa: F401  (re-exported)
    algebraic_steps,
    design_matrix,
    fourier_steps,
    measure_steps,
    refine_steps,
)
from ionscope.holography.sideband import default_taper, sign_convention
from ionscope.holography.statistics import statistics_kernel
from ionscope.holography.unwrap import UNWRAP_OPTIONS, unwrap_kernel
from ionscope.validation import Interval, validate_params

STEP = "ionscope.holography.reconstruct_phase_shifting"
#: Pixels per block of the per-pixel solve (keeps a block of the stack in cache).
_BLOCK = 16384
#: Keys of the hologram statistics taken from the vacuum reference when there is one.
REFERENCE_STATISTICS = (
    "sideband_position_px", "sideband_offset_px", "fringe_sampling_px", "fringe_spacing_nm",
    "carrier_frequency_per_nm", "carrier_frequency_per_px", "fringe_sampling_subpixel_px",
    "fringe_spacing_subpixel_nm", "carrier_frequency_subpixel_per_nm", "fringe_contrast",
    "carrier_angle_deg", "aperture_px", "aperture_per_nm",
)


# --------------------------------------------------------------------------- kernels


def solve_pixels(
    frames: np.ndarray, steps: np.ndarray, *, gains: np.ndarray | None = None, r2: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-pixel least squares of ``I_n / g_n = a0 + a1 e^{i d_n} + conj(a1) e^{-i d_n}``.

    Parameters
    ----------
    frames : numpy.ndarray
        (n, ...) intensities; any trailing shape (pixels).
    steps : numpy.ndarray
        (n,) phase steps (rad).
    gains : numpy.ndarray, optional
        (n,) relative frame doses; the frames are divided by them.
    r2 : bool
        Also return the coefficient of determination per pixel.

    Returns
    -------
    a0 : numpy.ndarray
        float32, trailing shape.
    a1 : numpy.ndarray
        complex64, trailing shape.
    r2 : numpy.ndarray or None
        float32 ``1 - SS_res / SS_tot`` (NaN where the pixel is constant).
    """
    frames = np.asarray(frames)
    n = frames.shape[0]
    if n < 3:
        raise DimensionError(f"phase-shifting needs at least 3 frames, got {n}")
    trailing = frames.shape[1:]
    flat = frames.reshape(n, -1)
    P = flat.shape[1]
    G = design_matrix(steps)
    normal = G.T @ G
    if np.linalg.cond(normal) > 1e8:
        raise InputError(
            "the measured phase steps do not span the fringe phase (the 3x3 normal matrix is "
            "singular): the frames have (nearly) the same step; record frames with different "
            "fringe positions"
        )
    inv = np.linalg.inv(normal)
    scale = np.ones(n) if gains is None else 1.0 / np.asarray(gains, dtype=np.float64)
    Gs = (G * scale[:, None]).T.astype(np.float32)  # (3, n): rows weight the raw frames
    coef_map = inv.astype(np.float32)
    a0 = np.empty(P, dtype=np.float32)
    a1 = np.empty(P, dtype=np.complex64)
    out_r2 = np.empty(P, dtype=np.float32) if r2 else None
    s2 = (scale**2).astype(np.float32)
    for start in range(0, P, _BLOCK):
        block = flat[:, start:start + _BLOCK].astype(np.float32, copy=False)
        rhs = Gs @ block  # (3, b) per-pixel sums of I_n g_n / gain_n
        coef = coef_map @ rhs
        a0[start:start + _BLOCK] = coef[0]
        a1[start:start + _BLOCK].real = 0.5 * coef[1]
        a1[start:start + _BLOCK].imag = -0.5 * coef[2]
        if r2:
            sumsq = s2 @ (block * block)
            ss_res = sumsq - np.einsum("ij,ij->j", coef, rhs)
            ss_tot = sumsq - rhs[0] * rhs[0] / n
            with np.errstate(invalid="ignore", divide="ignore"):
                out_r2[start:start + _BLOCK] = 1.0 - np.maximum(ss_res, 0.0) / ss_tot
    return (a0.reshape(trailing), a1.reshape(trailing),
            out_r2.reshape(trailing) if r2 else None)


def pixel_weights(steps: np.ndarray) -> np.ndarray:
    """Complex weights ``k_n`` with ``a1 = sum_n k_n I_n / g_n`` in :func:`solve_pixels` (the
    same for every pixel): ``sum k_n = 0``, ``sum k_n exp(i steps_n) = 1`` and
    ``sum k_n exp(-i steps_n) = 0``."""
    G = design_matrix(steps)
    rows = np.linalg.solve(G.T @ G, G.T)  # (3, n): the least-squares operator
    return 0.5 * (rows[1] - 1j * rows[2])


def drift_matched_reference(
    ref_a0: np.ndarray,
    ref_a1: np.ndarray,
    steps: np.ndarray,
    shifts: np.ndarray,
    carrier: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The detector-fixed patterns of a vacuum reference as the aligned object stack sees them.

    Aligning frame n shifts it by ``shifts[n]`` (px; the specimen moved by
    :math:`\mathbf d_n` = ``-shifts[n]``), and with it what is fixed to the detector: the
    camera distortion, the biprism's Fresnel fringes in the sideband factor and in the centre
    band. The per-pixel solve (:func:`pixel_weights` :math:`k_n`, effective steps
    :math:`\delta'_n = \delta_n + 2\pi\mathbf q_c\cdot\mathbf d_n`) then returns

    .. math::

        a_1(\mathbf r) = w(\mathbf r) \sum_n k_n e^{i\delta_n} G(\mathbf r + \mathbf d_n)
            + \sum_n k_n C(\mathbf r + \mathbf d_n) + \ldots,

    with :math:`G` the reference's fringe term (``ref_a1``, carrier included) and :math:`C`
    its centre band (``ref_a0``), both known from the undrifted reference stack. Dividing
    :math:`a_1` by the reference's own :math:`G(\mathbf r)` leaves the difference as a
    phase error (on the twin 0.022 rad rms in vacuum, 0.004-0.010 rad of it smooth, for a drift
    of 1-3 nm); this function gives the drift-matched divisor and the centre band's leak.

    Parameters
    ----------
    ref_a0, ref_a1 : ndarray (y, x)
        Centre band and fringe term of the reference stack (:func:`solve_pixels`).
    steps : ndarray (n,)
        Effective steps of the aligned object stack (rad).
    shifts : ndarray (n, 2)
        Shifts applied to align the object frames (px).
    carrier : (float, float)
        Carrier of ``a1`` (cycles/px).

    Returns
    -------
    g_eff : ndarray (y, x), complex128
        :math:`\sum_n k_n e^{i\delta_n} G(\mathbf r + \mathbf d_n)`, the divisor.
    c_eff : ndarray (y, x), complex128
        :math:`\sum_n k_n C(\mathbf r + \mathbf d_n)`, the centre band's leak into
        :math:`a_1` (per unit of the reference's centre band).
    c_mean : ndarray (y, x)
        :math:`\frac1n\sum_n C(\mathbf r + \mathbf d_n)`, to scale ``c_eff`` to the object's
        centre band (``a0 / c_mean``).

    Notes
    -----
    The shifts are FFT phase ramps (periodic, like the alignment's), summed over the frames in
    Fourier space: one matrix product builds :math:`\sum_n c_n e^{-2\pi i(k_y s_{n,y} +
    k_x s_{n,x})}` for all frequencies.
    """
    import scipy.fft

    ny, nx = ref_a1.shape
    k = pixel_weights(steps)
    d = -np.asarray(shifts, dtype=np.float64)
    true_steps = np.exp(1j * np.asarray(steps)) * np.exp(-2j * np.pi * (d @ np.asarray(carrier, float)))
    ey = np.exp(-2j * np.pi * np.outer(shifts[:, 0], np.fft.fftfreq(ny)))  # (n, ny)
    ex = np.exp(-2j * np.pi * np.outer(shifts[:, 1], np.fft.fftfreq(nx)))  # (n, nx)

    def shifted_sum(spectrum: np.ndarray, c: np.ndarray) -> np.ndarray:
        return scipy.fft.ifft2(spectrum * ((ey * c[:, None]).T @ ex), workers=-1)

    G = scipy.fft.fft2(ref_a1.astype(np.complex128), workers=-1)
    C = scipy.fft.fft2(ref_a0.astype(np.complex128), workers=-1)
    n = len(k)
    return (shifted_sum(G, k * true_steps), shifted_sum(C, k),
            shifted_sum(C, np.full(n, 1.0 / n)).real)


# --------------------------------------------------------------------------- helpers


def _carrier_ramp(shape: tuple[int, int], carrier: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    ey = np.exp(-2j * np.pi * carrier[0] * np.arange(shape[0])).astype(np.complex64)
    ex = np.exp(-2j * np.pi * carrier[1] * np.arange(shape[1])).astype(np.complex64)
    return ey, ex


def phase_shifting_kernel(
    frames: np.ndarray,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    box: tuple[int, int, int, int] | None = None,
    mask: np.ndarray | None = None,
    align: bool = True,
    iterations: int = 20,
    upsample: int = 20,
) -> dict[str, Any]:
    """Solve one phase-shifting stack (numpy level): carrier, alignment, measured steps and
    gains, per-pixel least squares (steps 1-4 of the module docstring). The building block of
    :func:`reconstruct_phase_shifting_kernel`, which also normalises by a reference.

    Returns
    -------
    dict
        ``a0``, ``a1`` (carrier included), ``r2``, ``steps``, ``gains``, ``shifts`` (px applied),
        ``carrier`` (cycles/px), ``statistics`` (of frame 0), ``border`` (px affected by the
        periodic shift).
    """
    n, ny, nx = frames.shape
    stats = statistics_kernel(frames[0], cal, sideband=sideband)
    pos = stats["sideband_offset_px"]
    carrier = (pos[0] / ny, pos[1] / nx)
    shifts = np.zeros((n, 2))
    if align:
        frames, shifts = align_frames(frames, sideband=(pos[0], pos[1]),
                                      radius_px=stats["aperture_px"], upsample=upsample,
                                      taper=default_taper((ny, nx)))
    border = int(math.ceil(np.abs(shifts).max())) + 1 if align else 0
    steps, gains = measure_steps(frames, carrier, box, mask, border, iterations)
    a0, a1, r2 = solve_pixels(frames, steps, gains=gains)
    return {"a0": a0, "a1": a1, "r2": r2, "steps": steps, "gains": gains, "shifts": shifts,
            "carrier": carrier, "statistics": stats, "border": border}


def reconstruct_phase_shifting_kernel(
    frames: np.ndarray,
    cal: dict[str, Any],
    reference: np.ndarray | None = None,
    *,
    sideband: Any = "auto",
    box: tuple[int, int, int, int] | None = None,
    mask: np.ndarray | None = None,
    align: bool = True,
    iterations: int = 20,
    unwrap: bool | str = True,
) -> dict[str, Any]:
    """Phase and amplitude from a phase-shifting stack (the numpy kernel of
    :func:`reconstruct_phase_shifting`; steps 1-6 of the module docstring).

    Parameters
    ----------
    frames : numpy.ndarray
        (shift, y, x) holograms (float32, :func:`~ionscope.holography.inputs.stack_input`).
    cal : dict
        Their calibration (:mod:`ionscope.holography.inputs`).
    reference : numpy.ndarray, optional
        (shift', y, x) vacuum reference stack of the same frame shape.
    sideband, align, iterations, unwrap
        As :func:`reconstruct_phase_shifting`.
    box, mask
        The vacuum region: a (y0, y1, x0, x1) box or a boolean mask (at most one;
        :func:`~ionscope.holography.inputs.vacuum_region`).

    Returns
    -------
    dict
        (y, x) arrays ``phase``, ``amplitude``, ``r2``, ``contrast`` (float32) and ``valid``
        (bool); per frame ``steps`` (rad), ``gains``, ``shifts`` ((n, 2) px applied to align);
        ``carrier`` (cycles/px), ``border`` (px), ``drift_matched`` (bool), ``statistics`` (as
        :func:`~ionscope.holography.statistics.hologram_statistics`: of frame 0, or with a
        reference its carrier values and ``reference_fringe_visibility``), and
        ``reference_steps``, ``reference_gains`` (None without a reference).
    """
    ref_stats = None
    if reference is not None:
        # the vacuum reference defines the carrier (no specimen phase gradients)
        ref_stats = statistics_kernel(reference[0], cal, sideband=sideband)
        sideband_used: Any = tuple(ref_stats["sideband_offset_px"])
    else:
        sideband_used = sideband
    obj = phase_shifting_kernel(frames, cal, sideband=sideband_used, box=box, mask=mask,
                                align=align, iterations=int(iterations))
    ny, nx = frames.shape[1:]
    wave = obj["a1"]
    ref = None
    matched = False
    if reference is not None:
        ref = phase_shifting_kernel(reference, cal, sideband=sideband_used, align=False,
                                    iterations=int(iterations))
        r = ref["a1"]
        if align and obj["shifts"].any():
            # the detector-fixed patterns moved with the alignment: divide by the reference as
            # the aligned stack sees it, and remove the centre band's leak (vacuum: exactly;
            # specimen: scaled by the object's centre band)
            g_eff, c_eff, c_mean = drift_matched_reference(ref["a0"], r, obj["steps"], obj["shifts"],
                                                           obj["carrier"])
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(c_mean > 0, obj["a0"] / c_mean, 0.0)
            wave = (wave - scale * c_eff).astype(np.complex64)
            r = g_eff.astype(np.complex64)
            matched = True
        mag2 = r.real * r.real + r.imag * r.imag
        wave = wave * np.conj(r) / np.maximum(mag2, np.float32(np.finfo(np.float32).tiny))
    else:
        ey, ex = _carrier_ramp((ny, nx), obj["carrier"])
        wave = wave * ey[:, None] * ex[None, :]
    region = None
    if box is not None:
        region = np.zeros((ny, nx), bool)
        region[box[0]:box[1], box[2]:box[3]] = True
    elif mask is not None:
        region = mask
    if region is not None:
        wave = wave * np.exp(-1j * np.angle(np.sum(wave[region]))).astype(np.complex64)
    wrapped = np.angle(wave)
    amplitude = np.abs(wave)
    if region is not None:
        amplitude /= np.median(amplitude[region])
    b = obj["border"]
    valid = np.zeros((ny, nx), bool)
    valid[b:ny - b or None, b:nx - b or None] = True
    if unwrap:
        phase = unwrap_kernel(wrapped, method="quality" if unwrap is True else unwrap)
        if region is not None:
            phase -= np.nanmean(phase[region])
    else:
        phase = wrapped
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = 2.0 * np.abs(obj["a1"]) / obj["a0"]
    stats = dict(obj["statistics"])
    if ref_stats is not None:
        # carrier, fringe spacing and (std / mean) contrast from the vacuum reference;
        # visibility of the object stack
        for key in REFERENCE_STATISTICS:
            stats[key] = ref_stats[key]
        stats["reference_fringe_visibility"] = ref_stats["fringe_visibility"]
    return {
        "phase": phase.astype(np.float32), "amplitude": amplitude.astype(np.float32),
        "r2": obj["r2"], "contrast": contrast.astype(np.float32), "valid": valid,
        "steps": obj["steps"], "gains": obj["gains"], "shifts": obj["shifts"],
        "carrier": obj["carrier"], "border": b, "drift_matched": matched, "statistics": stats,
        "reference_steps": None if ref is None else ref["steps"],
        "reference_gains": None if ref is None else ref["gains"],
    }


@validate_params({
    "align": [bool],
    "iterations": [Interval(int, 0, 100)],
    "unwrap": [UNWRAP_OPTIONS],
})
def reconstruct_phase_shifting(
    stack: Any,
    reference: Any = None,
    *,
    vacuum: Any = None,
    align: bool = True,
    sideband: Any = "auto",
    iterations: int = 20,
    unwrap: bool | str = True,
) -> xr.Dataset:
    """Reconstruct phase and amplitude from a phase-shifting hologram stack.

    Computes: loads the stacks (a dask-backed one is computed) and returns numpy-backed maps
    - eager on purpose: every pixel's least-squares solve uses all frames (the ``shift`` dim),
    the steps are measured in the vacuum of all frames and the drift against frame 0, so the
    whole stack is one computation.

    Parameters
    ----------
    stack : xarray.DataArray
        Holograms with dims (shift, y, x), y/x in nm (the ``shift`` coordinate, nominal steps,
        is ignored); or a 3-D numpy array (uncalibrated).
    reference : xarray.DataArray, optional
        Vacuum reference stack (any number of frames, same frame shape); the object wave is
        divided by its wave. Without one the carrier ramp is removed instead.
    vacuum : xarray.DataArray or numpy.ndarray of bool, or (y0, y1, x0, x1), optional
        Vacuum region of the object stack used to measure the steps and gains: a mask (True =
        vacuum) or a box of pixel indices (half-open). Default: the whole frame. With one, the
        mean phase over it is set to zero and the median amplitude to one.
    align : bool
        Register the frames onto frame 0 (sub-pixel, centre band only) before solving.
    sideband : {"auto", "lower", "upper"} or (y, x)
        Which carrier sign defines the phase (as in
        :func:`~ionscope.holography.reconstruct_offaxis`: ``"auto"`` gives the sign of
        HyperSpy/holospy's default off-axis reconstruction; ``phase_sign_convention`` in the
        attrs).
    iterations : int
        Alternating least-squares refinements of the measured steps and gains, 0 to 100 (0
        keeps the carrier Fourier-component estimate).
    unwrap : bool or {"quality", "fft"}
        Unwrap the phase (default quality-guided).

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad), ``amplitude`` (relative to the reference, or counts), ``r2``,
        ``contrast`` (``mu = 2 |a1| / a0`` of the object stack), ``valid`` (False within the border
        the drift correction wrapped around), all (y, x); ``steps`` (rad, measured, relative to
        frame 0, after alignment), ``gain``, ``drift_y``, ``drift_x`` (nm, specimen
        displacement relative to frame 0) along ``shift``; with a reference also
        ``reference_steps`` and ``reference_gain`` (along ``reference_shift``). ``attrs``: the
        statistics of frame 0 (``sideband_position_px``, ``fringe_spacing_nm``,
        ``fringe_sampling_px``, ``fringe_contrast``, ``carrier_frequency_per_nm``, ...; with a
        reference the carrier values are the reference's), ``method`` = "phase_shifting",
        ``resolution`` = "pixel" (``aperture_px`` is only the aperture used to register the
        frames, not a resolution limit), ``frames``, ``vacuum``, ``drift_matched_reference``
        (True when the reference was shifted with the drift, :func:`drift_matched_reference`),
        ``provenance``.

    Raises
    ------
    DimensionError, NonFiniteError, InputError
        Wrong dims, fewer than 3 frames, NaN/inf, mismatched reference, steps that do not
        span the fringe phase.
    ConfigError
        Invalid vacuum region, sideband, iterations or unwrap option.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography_ps", seed=0, noise=False, ny=128, nx=128, frames=8)
    >>> rec = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"],
    ...                                  vacuum=ds.attrs["vacuum_box"])
    >>> rec["steps"].dims
    ('shift',)
    """
    frames, cal = stack_input(stack, "phase-shifting stack")
    ref_frames = None
    if reference is not None:
        ref_frames, ref_cal = stack_input(reference, "reference stack")
        check_reference(ref_frames.shape[1:], ref_cal, frames.shape[1:], cal)
    box, mask = vacuum_region(vacuum, frames.shape[1:])
    out = reconstruct_phase_shifting_kernel(frames, cal, ref_frames, sideband=sideband, box=box,
                                            mask=mask, align=align, iterations=int(iterations),
                                            unwrap=unwrap)

    n, ny, nx = frames.shape
    coords, units = grid_coords(cal, (ny, nx))
    sc = {"shift": np.asarray(stack["shift"].values, float)} if isinstance(stack, xr.DataArray) \
        and "shift" in stack.coords else None
    drift = -out["shifts"] * np.array([cal["dy"], cal["dx"]])
    dunit = "nm" if cal["calibrated"] else "px"
    relative = ref_frames is not None
    image = {"coords": coords, "coord_units": units}
    variables = [
        signal(out["phase"], ("y", "x"), name="phase", units="rad", **image,
               long_name="unwrapped phase" if unwrap else "wrapped phase"),
        signal(out["amplitude"], ("y", "x"), name="amplitude", units="1" if relative else "counts",
               **image, long_name="amplitude relative to the reference" if relative
               else "fringe amplitude |a1|"),
        signal(out["r2"], ("y", "x"), name="r2", units="1", **image,
               long_name="coefficient of determination of the per-pixel fit"),
        signal(out["contrast"], ("y", "x"), name="contrast", units="1", **image,
               long_name="fringe contrast 2|a1|/a0"),
        signal(out["valid"], ("y", "x"), name="valid", units="1", **image,
               long_name="outside the border wrapped by the drift correction"),
        signal(out["steps"], ("shift",), name="steps", units="rad", coords=sc,
               long_name="measured phase steps (relative to frame 0, after alignment)"),
        signal(out["gains"], ("shift",), name="gain", units="1", coords=sc,
               long_name="measured relative frame dose"),
        signal(drift[:, 0], ("shift",), name="drift_y", units=dunit, coords=sc,
               long_name="specimen displacement along y relative to frame 0"),
        signal(drift[:, 1], ("shift",), name="drift_x", units=dunit, coords=sc,
               long_name="specimen displacement along x relative to frame 0"),
    ]
    ds = xr.Dataset({v.name: v for v in variables})
    if relative:
        ds["reference_steps"] = xr.DataArray(
            out["reference_steps"], dims=("reference_shift",),
            attrs={"units": "rad", "long_name": "measured steps of the reference stack"})
        ds["reference_gain"] = xr.DataArray(
            out["reference_gains"], dims=("reference_shift",),
            attrs={"units": "1", "long_name": "measured relative dose of the reference frames"})
    attrs = dict(out["statistics"])
    vac_desc = list(box) if box is not None else ("mask" if mask is not None else None)
    attrs.update(method="phase_shifting", resolution="pixel", frames=int(n), vacuum=vac_desc,
                 reference=relative, aligned=bool(align), iterations=int(iterations),
                 border_px=int(out["border"]), drift_matched_reference=out["drift_matched"],
                 unwrap=unwrap if isinstance(unwrap, str) else bool(unwrap),
                 phase_sign_convention=sign_convention(attrs["sideband_offset_px"]))
    if isinstance(stack, xr.DataArray) and "beam_energy_kV" in stack.attrs:
        attrs["beam_energy_kV"] = stack.attrs["beam_energy_kV"]
    ds.attrs = jsonable(attrs)
    params = {"vacuum": vac_desc, "align": bool(align), "iterations": int(iterations),
              "sideband": sideband if isinstance(sideband, str) else [float(v) for v in sideband],
              "unwrap": ds.attrs["unwrap"]}
    inputs = [stack] + ([reference] if reference is not None else [])
    history = provenance(stack) if isinstance(stack, xr.DataArray) else []
    ds.attrs["primary"] = "phase"
    return with_provenance(ds, STEP, params, inputs, history=history,
                           variables=("phase", "amplitude", "r2"))


__all__ = [
    "reconstruct_phase_shifting",
    "reconstruct_phase_shifting_kernel",
    "phase_shifting_kernel",
    "solve_pixels",
    "fourier_steps",
    "refine_steps",
    "algebraic_steps",
    "measure_steps",
    "design_matrix",
    "pixel_weights",
    "drift_matched_reference",
    "REFERENCE_STATISTICS",
]
