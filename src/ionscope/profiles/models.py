"""Step models of :mod:`ionscope.profiles`: the shapes ``F(u)``, their derivatives, Gaussian blur.

:class:`StepModel` bundles a monotonic step shape with its slope, curvature, ``w90`` factor and
(exact or quadrature) Gaussian blur; :data:`MODELS` holds the built-in shapes (``erf``,
``tanh``, ``exp``, ``erfc``, ``depletion``; formulas in the :mod:`ionscope.profiles` docstring)
and :func:`register_step_model` adds more.

References
----------
E. Grushka, Anal. Chem. 44 (1972) 1733 (exponentially modified Gaussian). D.B. Owen, Ann.
Math. Stat. 27 (1956) 1075 (Owen's T function, bivariate normal probabilities).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import erfcx, ndtr, ndtri, owens_t

from ionscope.errors import InputError

SIDES = ("auto", "start", "end")
_Z95 = float(ndtri(0.95))
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(40)


def _emg(u: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """``H(u) exp(-u/lam)`` convolved with a unit Gaussian of sigma ``sigma`` (stable form)."""
    z = u / sigma - sigma / lam
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        direct = np.exp(np.minimum(sigma**2 / (2 * lam**2) - u / lam, 700.0)) * ndtr(z)
        scaled = 0.5 * np.exp(-(u**2) / (2 * sigma**2)) * erfcx(-np.minimum(z, 0.0) / np.sqrt(2))
    return np.where(z >= 0, direct, scaled)


def _gauss_blur(shape: Callable[[np.ndarray, float], np.ndarray], u: np.ndarray, w: float,
                blur: float) -> np.ndarray:
    """``shape(u, w)`` convolved with a Gaussian of sigma ``blur`` (Gauss-Hermite quadrature)."""
    shifted = u[..., None] - np.sqrt(2.0) * blur * _GH_NODES
    return (shape(shifted, w) @ _GH_WEIGHTS) / np.sqrt(np.pi)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def _piecewise_blur(shape: Callable[[np.ndarray, float], np.ndarray], u: np.ndarray, w: float,
                    blur: float, kinks: Sequence[float]) -> np.ndarray:
    """``shape(u, w)`` convolved with a Gaussian of sigma ``blur`` for a shape that is smooth
    between ``kinks``: Gauss-Legendre quadrature on each smooth segment of ``[u - 8 blur, u + 8 blur]``, so the
    kinks sit on segment ends and the rule converges exponentially."""
    u = np.asarray(u, dtype=np.float64)
    lo, hi = u - 8.0 * blur, u + 8.0 * blur
    edges = [lo] + [np.clip(np.full_like(u, k), lo, hi) for k in sorted(kinks)] + [hi]
    out = np.zeros_like(u)
    for a, c in zip(edges[:-1], edges[1:]):
        half = 0.5 * (c - a)
        t = (0.5 * (a + c))[..., None] + half[..., None] * _GL_NODES
        g = np.exp(-0.5 * ((u[..., None] - t) / blur) ** 2) / (blur * np.sqrt(2 * np.pi))
        out += half * ((shape(t, w) * g) @ _GL_WEIGHTS)
    # the Gaussian mass beyond 8 sigma (6e-16) is dropped
    return out


@dataclasses.dataclass(frozen=True)
class StepModel:
    """A monotonic step shape ``F(u)`` from 1 (start side) to 0 (end side), ``u = x - x0``.

    Attributes
    ----------
    name : str
        Model name used by :func:`fit_step` (``model=``).
    shape : callable
        ``shape(u, w) -> F`` for the layer on the end side (nm, nm).
    slope, curvature : callable
        ``dF/du`` and ``d2F/du2`` (1/nm, 1/nm**2) of the deblurred shape.
    w90_factor : float
        ``w90 = w90_factor * w`` (shortest distance holding 90 % of the drop).
    peak_slope : callable
        ``max |dF/du|`` as a function of ``w`` (1/nm).
    blurred : callable, optional
        ``blurred(u, w, blur)``: exact Gaussian-blurred shape; otherwise quadrature
        (Gauss-Legendre between ``kinks``, Gauss-Hermite for smooth shapes).
    one_sided : bool
        The shape is not symmetric (``side`` matters).
    kinks : callable, optional
        ``kinks(w)``: positions ``u`` where the shape or its slope jumps (e.g. ``[0]``).
    """

    name: str
    shape: Callable[[np.ndarray, float], np.ndarray]
    slope: Callable[[np.ndarray, float], np.ndarray]
    curvature: Callable[[np.ndarray, float], np.ndarray]
    w90_factor: float
    peak_slope: Callable[[float], float]
    blurred: Callable[[np.ndarray, float, float], np.ndarray] | None = None
    one_sided: bool = False
    kinks: Callable[[float], Sequence[float]] | None = None

    def evaluate(self, u: np.ndarray, w: float, blur: float = 0.0, side: str = "end") -> np.ndarray:
        """``F`` at ``u`` (nm), optionally blurred; ``side="start"`` mirrors a one-sided shape."""
        u = np.asarray(u, dtype=np.float64)
        if self.one_sided and side == "start":
            return 1.0 - self.evaluate(-u, w, blur, "end")
        if blur > 0:
            if self.blurred is not None:
                return self.blurred(u, w, blur)
            if self.kinks is not None:
                return _piecewise_blur(self.shape, u, w, blur, self.kinks(w))
            return _gauss_blur(self.shape, u, w, blur)
        return self.shape(u, w)

    def derivative(self, u: np.ndarray, w: float, order: int, side: str = "end") -> np.ndarray:
        """``d^order F / du^order`` of the deblurred shape (order 1 or 2)."""
        u = np.asarray(u, dtype=np.float64)
        if self.one_sided and side == "start":  # F_start(u) = 1 - F(-u)
            sign = 1.0 if order == 1 else -1.0
            return sign * self.derivative(-u, w, order, "end")
        return self.slope(u, w) if order == 1 else self.curvature(u, w)


def _phi(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _sech2(z):
    return 1.0 / np.cosh(np.clip(z, -350, 350)) ** 2


def _exp_shape(u, w):
    with np.errstate(over="ignore"):
        return np.where(u > 0, np.exp(-np.clip(u, 0, None) / w), 1.0)


def _exp_slope(u, w):
    return np.where(u > 0, -_exp_shape(u, w) / w, 0.0)


def _exp_curvature(u, w):
    return np.where(u > 0, _exp_shape(u, w) / w**2, 0.0)


def _half_gauss_shape(u, w):
    return np.where(u > 0, 2.0 * ndtr(-np.clip(u, 0, None) / w), 1.0)


def _half_gauss_slope(u, w):
    return np.where(u > 0, -2.0 * _phi(u / w) / w, 0.0)


def _half_gauss_curvature(u, w):
    return np.where(u > 0, 2.0 * (u / w**3) * _phi(u / w), 0.0)


def _half_gauss_blurred(u, w, b):
    r"""The erfc shape convolved with a Gaussian of sigma ``b``: with :math:`s = \sqrt{w^2 +
    b^2}`, :math:`\Phi(-u/s) + 2\,T(-u/s, w/b)` (Owen's T function; a bivariate-normal
    probability, Owen 1956)."""
    s = np.hypot(w, b)
    return ndtr(-u / s) + 2.0 * owens_t(-u / s, w / b)


def _depletion_shape(u, w):
    return np.where(u > 0, np.clip(1.0 - u / w, 0.0, None) ** 2, 1.0)


def _depletion_slope(u, w):
    return np.where((u > 0) & (u < w), -2.0 * (1.0 - u / w) / w, 0.0)


def _depletion_curvature(u, w):
    return np.where((u > 0) & (u < w), 2.0 / w**2, 0.0)


MODELS: dict[str, StepModel] = {
    "erf": StepModel(
        "erf",
        shape=lambda u, w: ndtr(-u / w),
        slope=lambda u, w: -_phi(u / w) / w,
        curvature=lambda u, w: (u / w**3) * _phi(u / w),
        w90_factor=2 * _Z95,
        peak_slope=lambda w: 1.0 / (w * np.sqrt(2 * np.pi)),
        blurred=lambda u, w, b: ndtr(-u / np.sqrt(w * w + b * b)),
    ),
    "tanh": StepModel(
        "tanh",
        shape=lambda u, w: 0.5 * (1.0 - np.tanh(u / w)),
        slope=lambda u, w: -0.5 * _sech2(u / w) / w,
        curvature=lambda u, w: _sech2(u / w) * np.tanh(u / w) / w**2,
        w90_factor=2 * float(np.arctanh(0.9)),
        peak_slope=lambda w: 0.5 / w,
    ),
    "exp": StepModel(
        "exp",
        shape=_exp_shape,
        slope=_exp_slope,
        curvature=_exp_curvature,
        w90_factor=float(np.log(10.0)),
        peak_slope=lambda w: 1.0 / w,
        blurred=lambda u, w, b: ndtr(-u / b) + _emg(u, w, b),
        one_sided=True,
    ),
    "erfc": StepModel(
        "erfc",
        shape=_half_gauss_shape,
        slope=_half_gauss_slope,
        curvature=_half_gauss_curvature,
        w90_factor=_Z95,
        peak_slope=lambda w: 2.0 / (w * np.sqrt(2 * np.pi)),
        blurred=_half_gauss_blurred,
        one_sided=True,
        kinks=lambda w: (0.0,),
    ),
    "depletion": StepModel(
        "depletion",
        shape=_depletion_shape,
        slope=_depletion_slope,
        curvature=_depletion_curvature,
        w90_factor=1.0 - float(np.sqrt(0.1)),
        peak_slope=lambda w: 2.0 / w,
        one_sided=True,
        kinks=lambda w: (0.0, w),
    ),
}


def register_step_model(model: StepModel) -> StepModel:
    """Add a step model to :data:`MODELS` (e.g. a space-charge shape); returns it."""
    if not isinstance(model, StepModel):
        raise InputError(f"register_step_model needs a StepModel, got {type(model).__name__}")
    MODELS[model.name] = model
    return model



__all__ = ["MODELS", "SIDES", "StepModel", "register_step_model"]
