r"""Energy-drift alignment of EELS spectra (sub-channel shifts against a reference).

:func:`align_energy` (the wrapper) measures sub-channel energy drift by FFT
cross-correlation in a user window, refines the correlation peak with a matrix-multiply DFT
(Guizar-Sicairos et al., Opt. Lett. 33 (2008) 156) and a parabola, polishes it by a few
vectorised Gauss-Newton steps of a weighted least-squares match to the reference
(:func:`estimate_shifts`), and applies the opposite shift by linear or Fourier interpolation
(:func:`apply_shifts`). The correlation and its refinement are :mod:`ionscope.register`'s. The
energy shift reported is the spectrum's measured drift, ``spectrum(E) ~ a * reference(E - delta)
+ b`` (a positive shift means the spectrum's features lie at higher energy loss): the negative
of :mod:`ionscope.register`'s shift, which is the correction to apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft
import xarray as xr
from scipy.interpolate import CubicSpline

from ionscope.data import provenance, units_of, with_provenance
from ionscope.eels.energy import energy_vector, float_dtype, window_channels
from ionscope.eels.wrapping import finish, lift, spectra_array, spectrum_image
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.validation import Interval, Options, validate_params
from ionscope.register.translation import translation_1d

_SHIFT_METHODS = ("linear", "fourier")


def _prepare(block: np.ndarray) -> np.ndarray:
    """Edge-emphasised, tapered copy of windowed spectra for cross-correlation.

    The first difference turns an edge onset into a peak; a Hann taper suppresses the
    discontinuities at the window ends.
    """
    g = np.diff(block, axis=-1)
    g = g - g.mean(axis=-1, keepdims=True)
    return g * np.hanning(g.shape[-1] + 2)[1:-1]


def _least_squares_polish(
    y: np.ndarray, ref: np.ndarray, sel: slice, shifts: np.ndarray, *,
    iterations: int = 10, tol: float = 1e-4,
) -> np.ndarray:
    r"""Gauss-Newton refinement of shifts (channels) by least squares against the reference.

    Minimises :math:`\sum_i w_i [y_i - a\,r(i - s) - b]^2` over the window channels for every
    spectrum at once, with scale :math:`a` and offset :math:`b` as nuisance parameters, a cubic
    spline through the reference and Poisson weights :math:`w_i = 1/r_i` (uniform if the
    reference is not positive). Each step is limited to one channel; the iteration stops when
    every step is below ``tol`` channel.
    """
    idx = np.arange(sel.start, sel.stop)
    c3, c2, c1, c0 = CubicSpline(np.arange(ref.size, dtype=np.float64), ref).c  # t^3 ... t^0
    window_ref = ref[idx]
    w = 1.0 / window_ref if np.all(window_ref > 0) else np.ones(idx.size)
    w = w / w.mean()
    y = y[:, idx]
    wy = y * w
    b2, g22 = wy.sum(-1), np.full(y.shape[0], w.sum())
    s = shifts.copy()
    for _ in range(iterations):
        pos = np.clip(idx[None, :] - s[:, None], 0.0, ref.size - 1.0)
        j = np.minimum(pos.astype(np.intp), ref.size - 2)
        t = pos - j
        a3, a2, a1 = c3[j], c2[j], c1[j]
        r = ((a3 * t + a2) * t + a1) * t + c0[j]
        dr = (3 * a3 * t + 2 * a2) * t + a1
        wr, wdr = w * r, w * dr
        g00, g01, g02 = (wr * r).sum(-1), (wr * dr).sum(-1), wr.sum(-1)
        g11, g12 = (wdr * dr).sum(-1), wdr.sum(-1)
        gram = np.stack([np.stack([g00, g01, g02], -1), np.stack([g01, g11, g12], -1),
                         np.stack([g02, g12, g22], -1)], -2)
        gram += np.eye(3) * (1e-12 * (g00 + g11 + g22))[:, None, None]
        rhs = np.stack([(wr * y).sum(-1), (wdr * y).sum(-1), b2], -1)
        coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = -coef[:, 1] / coef[:, 0]
        step = np.where(np.isfinite(step) & (coef[:, 0] > 0), np.clip(step, -1.0, 1.0), 0.0)
        s = s + step
        if np.abs(step).max(initial=0.0) < tol:
            break
    return s


def estimate_shifts(
    energy: Any,
    spectra: Any,
    window: Sequence[float],
    reference: Any = None,
    *,
    upsample: int = 20,
) -> np.ndarray:
    r"""Energy shift of every spectrum relative to a reference.

    Parameters
    ----------
    energy, spectra : array_like, shapes (E,) and (..., E)
        Channel centres (eV, uniform) and the spectra (counts).
    window : (float, float)
        Energy range (eV) holding a sharp feature (an edge onset, a peak) used for the match;
        at least 4 channels.
    reference : array_like, shape (E,), optional
        Reference spectrum; the mean of ``spectra`` by default.
    upsample : int
        Sub-channel grid of the DFT peak search (``1/upsample`` channel).

    Returns
    -------
    numpy.ndarray, shape (...)
        Shift :math:`\delta` (eV, float64) with ``spectrum(E) ~ a * reference(E - delta) + b``:
        a positive shift means the spectrum's features lie at higher energy loss. Spectra
        without structure in the window (constant, all zero) get 0.

    Notes
    -----
    1. Coarse match: inside the window each spectrum is differentiated (first difference),
       mean-subtracted, Hann-tapered and zero-padded to twice its length (linear correlation);
       the FFT cross-correlation peak with the reference is located on a ``1/upsample``
       channel grid with a matrix-multiply DFT (Guizar-Sicairos et al. 2008) and a parabola.
    2. Polish: a few Gauss-Newton steps of the weighted least-squares match
       :math:`y_i \approx a\,r(E_i - \delta) + b` (cubic-spline reference, Poisson weights),
       vectorised over all spectra. This removes the bias the taper and the window ends give
       the correlation peak, and reaches the Poisson-noise limit.
    """
    e, d = energy_vector(energy)
    sel = window_channels(e, window, what="alignment window")
    x = spectra_array(spectra, e.size)
    if int(upsample) < 1:
        raise ConfigError(f"upsample must be a positive integer, got {upsample!r}")
    if sel.stop - sel.start < 4:
        raise ConfigError("the alignment window needs at least 4 channels; widen it")
    lead = x.shape[:-1]
    full = x.reshape(-1, e.size).astype(np.float64)
    if reference is None:
        ref = full.mean(axis=0)
    else:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != e.shape:
            raise InputError(f"reference has shape {ref.shape}, expected ({e.size},)")
    a, b = _prepare(full[:, sel]), _prepare(ref[None, sel])
    # the drift is the negative of the shift that registers a spectrum onto the reference
    shifts = -translation_1d(b, a, upsample=int(upsample))
    flat = ~np.any(a != 0, axis=-1) | ~np.any(b != 0)
    shifts = np.where(flat | ~np.isfinite(shifts), 0.0, shifts)
    if not np.all(flat):
        shifts = np.where(flat, 0.0, _least_squares_polish(full, ref, sel, shifts))
    return (shifts * d).reshape(lead)


def apply_shifts(
    energy: Any, spectra: Any, shifts: Any, *, method: str = "linear"
) -> np.ndarray:
    r"""Undo energy shifts: ``aligned(E) = spectrum(E + delta)``.

    Parameters
    ----------
    energy : array_like, shape (E,)
        Channel centres, eV (uniform).
    spectra : array_like, shape (..., E)
        Spectra.
    shifts : array_like, shape (...)
        Shift :math:`\delta` of each spectrum, eV (as from :func:`estimate_shifts`).
    method : {"linear", "fourier"}
        Linear interpolation (keeps counts non-negative; slight smoothing) or a Fourier phase
        ramp on an edge-padded copy (no smoothing; may ring at sharp features).

    Returns
    -------
    numpy.ndarray, shape (..., E)
        Aligned spectra in the input's float dtype (float64 for integer input). Channels
        shifted in from beyond the recorded range repeat the end values.
    """
    e, d = energy_vector(energy)
    x = np.asarray(spectra)
    dtype = float_dtype(x.dtype)
    x = x.astype(dtype, copy=False)
    s = np.asarray(shifts, dtype=np.float64) / d
    if s.shape != x.shape[:-1]:
        raise InputError(f"shifts have shape {s.shape}, expected {x.shape[:-1]}")
    n = e.size
    if method == "linear":
        pos = np.arange(n) + s[..., None]
        pos = np.clip(pos, 0, n - 1)
        i0 = np.minimum(np.floor(pos).astype(np.intp), n - 2)
        frac = (pos - i0).astype(dtype)
        lo = np.take_along_axis(x, i0, axis=-1)
        hi = np.take_along_axis(x, i0 + 1, axis=-1)
        return lo + frac * (hi - lo)
    if method == "fourier":
        pad = max(8, n // 2, int(np.ceil(np.abs(s).max(initial=0))) + 8)
        widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
        padded = np.pad(x, widths, mode="edge")
        m = padded.shape[-1]
        k = scipy.fft.rfftfreq(m, 1.0 / m)
        spec = scipy.fft.rfft(padded, axis=-1) * np.exp(2j * np.pi * k * s[..., None] / m)
        return scipy.fft.irfft(spec, n=m, axis=-1)[..., pad : pad + n].astype(dtype)
    raise ConfigError(f"unknown shift method {method!r}; use one of {_SHIFT_METHODS}")


# --------------------------------------------------------------------------- wrapper


@validate_params({"upsample": [Interval(int, 1, None, unit="(1/channel)")],
                  "method": [Options(_SHIFT_METHODS)]})
def align_energy(
    da: xr.DataArray,
    window: Sequence[float],
    *,
    reference: xr.DataArray | np.ndarray | None = None,
    upsample: int = 20,
    method: str = "linear",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Align the energy axis of every spectrum to a reference (sub-channel drift correction).

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectrum image, dims ``(..., energy)`` (see :mod:`ionscope.eels.wrapping`).
    window : (float, float)
        Energy range (eV) with a sharp feature to match (e.g. the Li-K onset, 52-68 eV).
    reference : DataArray or array_like, shape (energy,), optional
        Reference spectrum on the same energy grid; the mean spectrum of ``da`` by default
        (shifts are then relative to the average drift).
    upsample : int
        Sub-channel refinement grid (``1/upsample`` channel), see :func:`estimate_shifts`.
    method : {"linear", "fourier"}
        Interpolation used to apply the shifts (see :func:`apply_shifts`).

    Returns
    -------
    aligned : xarray.DataArray
        Spectra shifted onto the reference, same dims, coords and units as ``da``.
    shift : xarray.DataArray
        Shift map ``energy_shift`` (eV) over the leading dims: the measured offset of each
        spectrum (``spectrum(E) ~ reference(E - shift)``) that was removed. Spectra without
        structure in the window (all zero, constant) get 0 and are left unchanged.

    References
    ----------
    Guizar-Sicairos, Thurman & Fienup, "Efficient subpixel image registration algorithms",
    Opt. Lett. 33 (2008) 156.

    Examples
    --------
    >>> from ionscope.data import signal
    >>> e = 40 + 0.25 * np.arange(200)
    >>> edge = lambda c: 1e8 * e**-3.0 + 400 / (1 + np.exp(-(e - c) / 0.5))
    >>> da = signal(np.stack([edge(60.0), edge(60.1)]), ("x", "energy"), name="s",
    ...             units="counts", coords={"energy": e})
    >>> aligned, shift = align_energy(da, (52, 68), reference=edge(60.0))
    >>> np.round(shift.values, 2).tolist()
    [0.0, 0.1]
    """
    history = provenance(da)
    src = da
    da, energy = spectrum_image(da, "spectrum image")
    window_channels(energy, window, what="alignment window")
    lead = [d for d in da.dims if d != "energy"]
    if reference is None:
        ref = da.mean(lead) if lead else da
    else:
        ref = reference
        if isinstance(ref, xr.DataArray):
            ref, _ = spectrum_image(ref, "reference spectrum")
            if ref.dims != ("energy",) or ref.sizes["energy"] != energy.size:
                raise DimensionError(
                    f"reference must be one spectrum with dims ('energy',) and {energy.size} "
                    f"channels, got dims {ref.dims} and shape {ref.shape}"
                )
            ref = ref.drop_vars("energy").data
        else:
            ref = np.asarray(ref, dtype=np.float64)
            if ref.shape != energy.shape or not np.all(np.isfinite(ref)):
                raise InputError(
                    f"reference must be a finite spectrum of {energy.size} channels, "
                    f"got shape {ref.shape}"
                )
        ref = xr.DataArray(ref, dims=("energy",))
    win = tuple(float(v) for v in window)

    def shift_kernel(x: np.ndarray, r: np.ndarray) -> np.ndarray:
        return estimate_shifts(energy, x, win, r.reshape(-1, energy.size)[0], upsample=upsample)

    def apply_kernel(x: np.ndarray, s: np.ndarray) -> np.ndarray:
        return apply_shifts(energy, x, s, method=method)

    plain = da.drop_vars("energy")
    (shift,) = lift(shift_kernel, [plain, ref], [["energy"], ["energy"]], [[]], [np.float64])
    (aligned,) = lift(apply_kernel, [plain, shift], [["energy"], []], [["energy"]],
                      [float_dtype(da.dtype)])
    params = {"window_eV": list(win), "upsample": int(upsample), "method": method,
              "reference": "mean" if reference is None else "given"}
    inputs = [src] + ([] if reference is None else [reference])
    aligned = finish(aligned, da, name=da.name or "spectra", units=units_of(da),
                     long_name=str(da.attrs.get("long_name", "aligned spectra")))
    aligned.attrs = {**{k: v for k, v in da.attrs.items() if k != "provenance"}, **aligned.attrs}
    shift = finish(shift, da, name="energy_shift", units="eV",
                   long_name="energy shift removed by alignment")
    step = "ionscope.eels.align_energy"
    aligned = with_provenance(aligned, step, params, inputs, history=history)
    shift = with_provenance(shift, step, params, inputs, history=history)
    return aligned, shift


__all__ = ["estimate_shifts", "apply_shifts", "align_energy"]
