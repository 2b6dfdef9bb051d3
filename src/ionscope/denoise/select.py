r"""Choosing a denoiser's parameters from the noisy data alone: a split of the noise.

Users have no ground truth to tune against. Poisson counts can be split into two independent
halves (binomial thinning): with :math:`c_1 \sim \mathrm{Binomial}(c, p)` and :math:`c_2 = c -
c_1`, the two are independent Poisson with means :math:`p\lambda` and :math:`(1 - p)\lambda`
(Leiner et al. 2023, "data fission"). Denoising :math:`c_1 / (p D)` (dose :math:`pD`) with a
candidate setting :math:`\theta` and scoring against :math:`c_2 / ((1 - p) D)`,

.. math:: S(\theta) = \overline{\left(f_\theta(c_1) - \frac{c_2}{(1 - p) D}\right)^2}
          = \mathrm{MSE}_\theta + \overline{\mathrm{Var}\,\frac{c_2}{(1 - p) D}},

estimates the setting's mean squared error (at the dose :math:`pD`) up to a constant that does
not depend on :math:`\theta`: the setting with the lowest score is the one closest to the truth.
Gaussian noise of known :math:`\sigma` is split the same way by the coupled bootstrap
(Oliveira, Lei & Tibshirani 2022): :math:`y_1 = y + \alpha\omega`, :math:`y_2 = y - \omega/\alpha`
with :math:`\omega \sim N(0, \sigma^2)` and :math:`\alpha^2 = 1/p - 1`, so :math:`y_1` carries the
noise of the dose :math:`pD` and :math:`y_2` is independent of it.

:func:`select_parameters` searches one parameter at a time (coordinate descent over the given
candidates, each parameter in turn with the others at their best so far) on a block of at most
``max_frames`` frames from the middle of the series, and returns the choice with every score.

References
----------
L. Leiner, B. Duan, L. Wasserman and A. Ramdas, "Data fission: splitting a single data point",
J. Am. Stat. Assoc. (2023), doi:10.1080/01621459.2023.2270748.
N. L. Oliveira, J. Lei and R. J. Tibshirani, "Unbiased risk estimation in the normal means
problem via coupled bootstrap techniques", arXiv:2111.09447 (2022).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError

__all__ = ["DEFAULT_FRACTION", "MAX_FRAMES", "split_noise", "select_parameters"]

#: Share p of the counts (or of the noise's precision) the candidates are run on.
DEFAULT_FRACTION = 0.8
#: Frames of the block the candidates are run on (the series' middle).
MAX_FRAMES = 32


def split_noise(values: np.ndarray, *, noise: str, dose: float | None, sigma: float | None,
                fraction: float = DEFAULT_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Two independent noisy copies of ``values``: ``(train, target, info)``.

    Poisson data (``values * dose`` integer counts): binomial thinning, ``train`` at the dose
    ``fraction * dose`` and ``target`` at ``(1 - fraction) * dose``, both in data units (their
    expectation is the truth). Gaussian data: the coupled bootstrap with ``sigma`` (data units).
    ``info``: ``split``, ``fraction``, ``train_dose`` or ``train_sigma``, and ``target_variance``
    (the mean noise variance of ``target``, the score's constant).

    Raises
    ------
    ConfigError
        Poisson data that are not counts (``values * dose`` not integers), or no ``sigma`` for
        Gaussian data.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(50.0, 100000)
    >>> a, b, info = split_noise(counts / 10.0, noise="poisson", dose=10.0, sigma=None)
    >>> round(float(a.mean()), 1), round(float(b.mean()), 1), info["train_dose"]
    (5.0, 5.0, 8.0)
    """
    p = float(fraction)
    if not 0.0 < p < 1.0:
        raise ConfigError(f"fraction must lie in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    values = np.asarray(values, dtype=np.float64)
    if noise == "poisson":
        counts = values * float(dose)
        rounded = np.rint(counts)
        if np.any(np.abs(counts - rounded) > 1e-3) or np.any(rounded < 0):
            raise ConfigError("the data times the dose are not counts (non-negative integers), so they cannot be "
                              "split by binomial thinning; give the parameters explicitly")
        c = rounded.astype(np.int64)
        c1 = rng.binomial(c, p)
        c2 = c - c1
        train = c1 / (p * dose)
        target = c2 / ((1.0 - p) * dose)
        info = {"split": "binomial thinning of the counts", "fraction": p, "train_dose": p * float(dose),
                "target_variance": float(c2.mean()) / ((1.0 - p) * dose) ** 2}
        return train, target, info
    if noise == "gaussian":
        if sigma is None or not sigma > 0:
            raise ConfigError("a Gaussian noise split needs the noise sigma > 0")
        alpha = np.sqrt(1.0 / p - 1.0)
        omega = rng.normal(0.0, float(sigma), values.shape)
        info = {"split": "coupled bootstrap of Gaussian noise", "fraction": p,
                "train_sigma": float(sigma) * float(np.sqrt(1.0 + alpha**2)),
                "target_variance": float(sigma) ** 2 * (1.0 + 1.0 / alpha**2)}
        return values + alpha * omega, values - omega / alpha, info
    raise ConfigError(f"noise {noise!r} cannot be split: choose the parameters explicitly")


def select_parameters(
    da: xr.DataArray,
    run: Callable[[xr.DataArray, dict[str, Any], dict[str, Any]], xr.DataArray],
    candidates: Mapping[str, Sequence[Any]],
    start: Mapping[str, Any],
    *,
    noise: str,
    dose: float | None,
    sigma: float | None = None,
    fraction: float = DEFAULT_FRACTION,
    max_frames: int = MAX_FRAMES,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Choose parameters by the split-noise score (module docstring), one at a time.

    Parameters
    ----------
    da : xarray.DataArray
        The noisy series ``(time, y, x)`` (or one map), in data units.
    run : callable
        ``run(train, params, noise_kw) -> denoised`` (same dims as ``train``): the denoiser
        with the candidate ``params`` and the split's noise model ``noise_kw`` (``noise`` and
        ``dose``, or ``sigma`` for Gaussian noise).
    candidates : mapping
        For every parameter to choose, its candidate values, searched in the mapping's order.
    start : mapping
        Starting values of the chosen parameters and the fixed ones.
    noise, dose, sigma
        The resolved noise model of ``da`` (``"poisson"`` with its dose, or ``"gaussian"`` with
        sigma in data units).
    fraction, max_frames, seed
        Share of the counts the candidates see, block length, seed of the split.

    Returns
    -------
    chosen : dict
        ``start`` with every searched parameter at its best value.
    record : dict
        ``criterion`` (a sentence), the split's ``info``, ``frames`` (the block), ``scores``
        (per parameter: value -> score), ``rmse_estimate`` (per parameter: value -> the
        estimated RMS error at the thinned dose, data units), ``chosen``.
    """
    from ionscope.denoise.stabilise import middle_frames

    has_time = "time" in da.dims
    block = middle_frames(da.sizes["time"], max_frames) if has_time else slice(None)
    sub = da.isel(time=block) if has_time else da
    train, target, info = split_noise(np.asarray(sub.values, dtype=np.float64), noise=noise, dose=dose, sigma=sigma,
                                      fraction=fraction, seed=seed)
    noise_kw = ({"noise": "poisson", "dose": info["train_dose"]} if noise == "poisson"
                else {"noise": "gaussian", "sigma": info["train_sigma"]})
    train_da = sub.copy(data=train.astype(sub.dtype if np.issubdtype(sub.dtype, np.floating) else np.float64))
    chosen = dict(start)
    scores: dict[str, dict[str, float]] = {}
    cache: dict[tuple, float] = {}

    def score(params: dict[str, Any]) -> float:
        key = tuple(sorted(params.items()))
        if key not in cache:
            out = run(train_da, dict(params), dict(noise_kw))
            cache[key] = float(np.mean((np.asarray(out.values, dtype=np.float64) - target) ** 2))
        return cache[key]

    for name, values_list in candidates.items():
        scores[name] = {}
        best, best_score = chosen[name], np.inf
        for value in values_list:
            s = score({**chosen, name: value})
            scores[name][str(value)] = s
            if s < best_score:
                best, best_score = value, s
        chosen[name] = best
    constant = info["target_variance"]
    rmse = {name: {k: float(np.sqrt(max(v - constant, 0.0))) for k, v in per.items()} for name, per in scores.items()}
    frames = [int(block.start or 0), int(block.stop if block.stop is not None else 1)] if has_time else None
    record = {
        "criterion": (f"split-noise score ({info['split']}, {info['fraction']:g} of the signal to the candidates): "
                      "each parameter in turn, the value with the lowest mean squared difference to the held-out "
                      "part"),
        "split": info, "frames": frames, "scores": scores, "rmse_estimate": rmse,
        "chosen": {name: chosen[name] for name in candidates},
    }
    return chosen, record
