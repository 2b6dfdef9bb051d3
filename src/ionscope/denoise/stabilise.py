r"""The noise model every denoiser shares, and the one path from a labelled map to a stack kernel.

:func:`run_stabilised` is what every denoising wrapper (:func:`~ionscope.denoise.sparse_denoise`
and the baselines of :mod:`ionscope.denoise.baselines`) calls:

1. check the input (a ``(time, y, x)`` series or a ``(y, x)`` map, finite) and the
   wrapper's data-dependent parameters (``check``);
2. resolve the noise model (:func:`resolve_noise`): Poisson counts ``= value * dose`` are
   variance-stabilised with the Anscombe transform (sigma = 1 there), Poisson-Gaussian data
   with the generalised Anscombe transform, Gaussian data are processed as they are with the
   robust MAD sigma (:func:`~ionscope.denoise.noise.estimate_sigma`) unless ``sigma`` is given;
3. run the numpy kernel ``kernel(stack, sigma, **kernel_params)`` on ``(n_frames, ny, nx)``
   (training maps, if any, go through the same transform);
4. bring the result back with the exact unbiased inverse (Makitalo & Foi 2011, 2013) and label
   it: the input's dims, coords, units and attrs, name ``"denoised"``, one provenance step.

References
----------
M. Makitalo and A. Foi, IEEE Trans. Image Process. 20, 99 and 2697 (2011); 22, 91 (2013).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import is_lazy, map_series, provenance, with_provenance
from ionscope.denoise.noise import (
    anscombe,
    estimate_sigma,
    generalized_anscombe,
    inverse_anscombe,
    inverse_generalized_anscombe,
)
from ionscope.errors import ConfigError, InputError
from ionscope.validation import Interval, Options

#: Noise models accepted by every denoiser.
NOISE_MODELS = ("auto", "poisson", "poisson-gaussian", "gaussian")

#: Declared constraints of the noise arguments every denoising wrapper takes
#: (:func:`ionscope.validation.validate_params`).
NOISE_CONSTRAINTS: dict[str, list[Any]] = {
    "noise": [Options(NOISE_MODELS)],
    "dose": [Interval(float, 0, None, closed="neither", unit="counts per unit of the data"), None],
    "sigma": [Interval(float, 0, None, closed="neither", unit="(coding-domain units)"), None],
    "gain": [Interval(float, 0, None, closed="neither", unit="data units per count")],
    "read_noise": [Interval(float, 0, None, unit="data units")],
}

#: Kernel diagnostics that record a strength the kernel's rule chose (kept in the provenance
#: step under ``"chosen"`` so that the step can be replayed).
CHOSEN_KEYS = ("rank", "width_px", "time_width_frames", "weight", "h")

#: Smallest map side for the MAD noise estimate (the db2 filter has 4 taps).
MIN_MAD_SIZE = 4


def _is_positive_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


#: Range of the Anscombe-domain noise (MAD estimate) that integer data must show to be taken
#: for Poisson counts at dose 1 by ``noise="auto"`` (1 for counts; the estimate reads a little
#: high on structured maps and low below ~2 counts per pixel).
POISSON_ANSCOMBE_NOISE = (0.7, 1.4)


#: Frames of the sample a lazy series' noise is estimated on (its middle; as the parameter search).
SAMPLE_FRAMES = 32


def middle_frames(n_frames: int, max_frames: int = SAMPLE_FRAMES) -> slice:
    """The middle ``max_frames`` frames of a series of ``n_frames`` (all when fewer).

    Examples
    --------
    >>> middle_frames(100, 32), middle_frames(10, 32)
    (slice(34, 66, None), slice(0, 10, None))
    """
    n = min(int(n_frames), int(max_frames))
    start = (int(n_frames) - n) // 2
    return slice(start, start + n)


def anscombe_noise(values: np.ndarray) -> float:
    """Median over (up to 8) frames of the MAD noise estimate of the Anscombe-transformed values:
    about 1 for Poisson counts at dose 1."""
    frames = np.asarray(values, dtype=np.float64).reshape(-1, *np.shape(values)[-2:])
    picks = np.linspace(0, frames.shape[0] - 1, min(8, frames.shape[0])).astype(int)
    return float(np.median([estimate_sigma(anscombe(frames[i])) for i in picks]))


def resolve_noise(
    da: xr.DataArray, noise: str, dose: float | None
) -> tuple[str, float | None, str]:
    """Noise model, dose and where the dose came from.

    ``"auto"`` is Poisson when a dose is known (argument or ``da.attrs["dose"]``) or the data
    are non-negative integers whose noise is that of counts at dose 1 (:func:`anscombe_noise`
    within :data:`POISSON_ANSCOMBE_NOISE`), else Gaussian; the returned source says which. Poisson models without a dose use 1 (the data
    are counts); the Gaussian model uses none.
    """
    if noise not in NOISE_MODELS:
        raise ConfigError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    if dose is not None and not _is_positive_number(dose):
        raise ConfigError(f"dose (counts per unit of the data) must be a number > 0, got {dose!r}")
    source = "argument"
    if dose is None and noise != "gaussian":
        attr = da.attrs.get("dose")
        if _is_positive_number(attr):
            dose, source = float(attr), "attrs"
    if noise == "auto":
        if dose is not None:
            noise = "poisson"
        else:
            values = np.asarray(da.values if not is_lazy(da) else da.isel(time=middle_frames(da.sizes["time"])).values
                                if "time" in da.dims else da.values)
            integral = bool(np.all(values >= 0) and np.all(values == np.round(values)))
            noise, source = "gaussian", "unused"
            if integral:
                # integers are not always counts: detector ADC values with an offset and a gain
                # are integers too. Counts at dose 1 have unit noise after the Anscombe transform.
                # sparse counts or small maps (a noisy noise estimate): taken as counts
                too_few_to_tell = float(values.mean()) < 1.0 or values.shape[-1] * values.shape[-2] < 4096
                sigma = 1.0 if too_few_to_tell else anscombe_noise(values)
                if POISSON_ANSCOMBE_NOISE[0] <= sigma <= POISSON_ANSCOMBE_NOISE[1]:
                    noise, dose = "poisson", 1.0
                    source = ("integer counts" if too_few_to_tell else
                              f"integer counts (noise {sigma:.2f} after the Anscombe transform, 1 expected)")
                else:
                    source = (f"unused: integer data whose noise after the Anscombe transform is {sigma:.3g}, "
                              "not 1 - not counts at dose 1 (ADC values?), so Gaussian; give the dose "
                              "(counts per unit) for counts at another gain")
    if noise in ("poisson", "poisson-gaussian") and dose is None:
        dose, source = 1.0, "default (data are counts)"
    if noise == "gaussian":
        dose, source = None, source if source.startswith("unused") else "unused"
    return noise, dose, source


def stabilise(values: np.ndarray, noise: str, dose: float | None, *, gain: float = 1.0,
              read_noise: float = 0.0, what: str = "input") -> np.ndarray:
    """Forward transform of a resolved noise model to additive Gaussian noise (Anscombe,
    generalised Anscombe, or none for ``"gaussian"``); negative values under the Poisson model
    raise :class:`~ionscope.errors.InputError` naming ``what``."""
    if noise == "gaussian":
        return values
    if noise == "poisson":
        if np.any(values < 0):
            raise InputError(
                f"{what} holds negative values, impossible for Poisson counts; use "
                "noise='gaussian' or 'poisson-gaussian'"
            )
        return anscombe(values * dose)
    return generalized_anscombe(values * dose, gain=gain, read_noise=read_noise)


def unstabilise(values: np.ndarray, noise: str, dose: float | None, *, gain: float = 1.0,
                read_noise: float = 0.0) -> np.ndarray:
    """Exact unbiased inverse of :func:`stabilise`, back in data units."""
    if noise == "poisson":
        return inverse_anscombe(values) / dose
    if noise == "poisson-gaussian":
        return inverse_generalized_anscombe(values, gain=gain, read_noise=read_noise) / dose
    return values


def _training_stack(train: Any, what: str) -> np.ndarray:
    """Training maps (DataArray or array; ``(time, y, x)`` or ``(y, x)``) as a float64 stack."""
    if isinstance(train, xr.DataArray):
        t_da = map_series(train, what)
        arr = np.asarray(t_da.values, dtype=np.float64)
        return arr if "time" in t_da.dims else arr[None]
    arr = np.asarray(train, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(
            f"{what} must be finite (time, y, x) or (y, x) maps, got shape {arr.shape}"
        )
    return arr


def run_stabilised(
    da: xr.DataArray,
    method: str,
    kernel: Callable[..., tuple[np.ndarray, dict[str, Any]]],
    kernel_params: dict[str, Any],
    *,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
    needs_series: bool = False,
    min_size: int = 4,
    check: Callable[[xr.DataArray], None] | None = None,
    train: xr.DataArray | np.ndarray | None = None,
    record: dict[str, Any] | None = None,
    inputs: Sequence[Any] = (),
    step: str | None = None,
    label: str | None = None,
    what: str | None = None,
    lazy: bool = False,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Run a stack kernel ``kernel(stack, sigma, **kernel_params)`` in the stabilised domain.

    Computes: loads the input, unless ``lazy`` (the kernel takes dask stacks) and the input is
    dask-backed: then the transform, the kernel and the inverse stay in the dask graph, and only
    what the noise model needs is computed on a sample (:func:`resolve_noise` of integer data
    without a dose; the MAD sigma of Gaussian data on the middle :data:`SAMPLE_FRAMES` frames).

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(time, y, x)`` or ``(y, x)``, finite values.
    method : str
        Name of the denoiser (messages, ``info["method"]``, the long name).
    kernel : callable
        ``kernel(stack, sigma, **kernel_params) -> (denoised, info)`` on ``(n_frames, ny, nx)``
        float64 in the stabilised domain; with ``train`` it also gets ``train=`` (the training
        stack in the same domain).
    kernel_params : dict
        Keyword arguments of the kernel.
    noise, dose, sigma, gain, read_noise
        The noise model (see :func:`resolve_noise` and :data:`NOISE_CONSTRAINTS`).
    needs_series : bool
        The method works along time: a series of at least 2 frames is required.
    min_size : int
        Smallest map side in pixels.
    check : callable, optional
        ``check(da)`` on the checked ``(time, y, x)`` / ``(y, x)`` input: the wrapper's own
        data-dependent parameter checks (raise :class:`~ionscope.errors.ConfigError`).
    train : DataArray or ndarray, optional
        Training maps (same units and noise model), transformed like the input.
    record : dict, optional
        Parameters recorded in the provenance step instead of ``kernel_params``.
    inputs : sequence
        Further inputs of the provenance step (after ``da`` and ``train``).
    step, label, what : str, optional
        Provenance step name (default ``"ionscope.denoise.baselines.<method>"``), the long-name
        suffix (default ``"denoised (<method>)"``) and the input's name in error messages.
    lazy : bool
        The kernel accepts a dask stack and returns a dask result: a dask-backed input stays
        lazy (else it is loaded first).

    Returns
    -------
    denoised : xarray.DataArray
        Name ``"denoised"``, the input's dims, coords, units and attrs, one provenance step.
    info : dict
        ``method``, ``noise``, ``dose``, ``dose_source``, ``sigma``, ``sigma_source``,
        ``sigma_mad`` (the MAD estimate, NaN for maps under 4 px, None for a lazy input that does
        not need it), ``parameters``, the kernel's
        own diagnostics, and ``timings_s`` (``transform``, the kernel's own timings, ``kernel``
        and ``total``).
    """
    t_start = time.perf_counter()
    what = what or f"denoise (method {method!r})"
    da_c = map_series(da, what)
    is_series = "time" in da_c.dims
    if needs_series and (not is_series or da_c.sizes["time"] < 2):
        raise ConfigError(
            f"method {method!r} works along time and needs a (time, y, x) series with at least "
            f"2 frames; got dims {tuple(da.dims)} of shape {tuple(da.shape)}"
        )
    ny, nx = da_c.sizes["y"], da_c.sizes["x"]
    if min(ny, nx) < min_size:
        raise ConfigError(
            f"method {method!r} needs maps of at least {min_size} x {min_size} pixels, got "
            f"{ny} x {nx}"
        )
    if check is not None:
        check(da_c)
    if sigma is not None and not _is_positive_number(sigma):
        raise ConfigError(f"sigma must be a number > 0, got {sigma!r}")
    noise_model, dose_value, dose_source = resolve_noise(da_c, noise, dose)
    if noise_model == "gaussian" and sigma is None and min(ny, nx) < MIN_MAD_SIZE:
        raise ConfigError(
            f"the maps ({ny} x {nx} px) are too small for the MAD noise estimate (at least "
            f"{MIN_MAD_SIZE} x {MIN_MAD_SIZE}); pass sigma"
        )
    noise_kw = {"gain": gain, "read_noise": read_noise}

    lazy = lazy and is_lazy(da_c)
    if lazy:
        values = da_c.data.astype(np.float64)
        stack = values if is_series else values[None]
        coded = stack.map_blocks(stabilise, noise_model, dose_value, what="input", dtype=np.float64, **noise_kw)
    else:
        values = np.asarray(da_c.values, dtype=np.float64)
        stack = values if is_series else values[None]
        coded = stabilise(stack, noise_model, dose_value, what="input", **noise_kw)
    extra: dict[str, Any] = {}
    if train is not None:
        extra["train"] = stabilise(_training_stack(train, f"{what.split(' (')[0]} (train)"),
                                   noise_model, dose_value, what="train", **noise_kw)
    if min(ny, nx) < MIN_MAD_SIZE:
        sigma_mad = float("nan")
    elif lazy and (sigma is not None or noise_model != "gaussian"):
        sigma_mad = None  # not needed, so not computed
    elif lazy:  # on a sample: the series' middle frames
        sigma_mad = estimate_sigma(np.asarray(coded[middle_frames(coded.shape[0])].compute()))
    else:
        sigma_mad = estimate_sigma(coded)
    if sigma is not None:
        sigma_value, sigma_source = float(sigma), "argument"
    elif noise_model == "gaussian":
        sigma_value, sigma_source = sigma_mad, "MAD of the finest db2 diagonal band"
        if not sigma_value > 0:
            raise InputError(
                "the estimated noise level is 0 (noise-free or constant data); pass sigma"
            )
    else:
        sigma_value, sigma_source = 1.0, "variance-stabilised (Anscombe)"

    t1 = time.perf_counter()
    out, kinfo = kernel(coded, sigma_value, **kernel_params, **extra)
    t2 = time.perf_counter()
    out_dtype = da_c.dtype if np.issubdtype(da_c.dtype, np.floating) else np.float64
    if lazy:
        out = out.map_blocks(unstabilise, noise_model, dose_value, dtype=np.float64, **noise_kw)
    else:
        out = np.asarray(unstabilise(out, noise_model, dose_value, **noise_kw))
    if not is_series:
        out = out[0]
    result = da_c.copy(data=out.astype(out_dtype))
    result.name = "denoised"
    long_name = da.attrs.get("long_name")
    label = label or f"denoised ({method})"
    result.attrs["long_name"] = f"{long_name}, {label}" if long_name else label
    result = result.transpose(*da.dims)
    parameters = {"method": method, "noise": noise_model, "dose": dose_value,
                  "sigma": sigma_value, **(kernel_params if record is None else record)}
    if noise_model == "poisson-gaussian":
        parameters.update(gain=gain, read_noise=read_noise)
    chosen = {k: v for k, v in kinfo.items() if k in CHOSEN_KEYS}
    if chosen:
        parameters["chosen"] = chosen
    all_inputs = [da, *([] if train is None else [train]), *inputs]
    result = with_provenance(result, step or f"ionscope.denoise.baselines.{method}", parameters,
                             inputs=all_inputs, history=provenance(da))
    t_end = time.perf_counter()
    kernel_timings = {k: v for k, v in kinfo.get("timings_s", {}).items() if k != "total"}
    info = {
        "method": method,
        "noise": noise_model,
        "dose": dose_value,
        "dose_source": dose_source,
        "sigma": sigma_value,
        "sigma_source": sigma_source,
        "sigma_mad": sigma_mad,
        "parameters": parameters,
        **kinfo,
        "timings_s": {"transform": (t1 - t_start) + (t_end - t2), **kernel_timings,
                      "kernel": t2 - t1, "total": t_end - t_start},
    }
    return result, info


__all__ = [
    "NOISE_MODELS",
    "NOISE_CONSTRAINTS",
    "CHOSEN_KEYS",
    "resolve_noise",
    "SAMPLE_FRAMES",
    "middle_frames",
    "stabilise",
    "unstabilise",
    "run_stabilised",
]
