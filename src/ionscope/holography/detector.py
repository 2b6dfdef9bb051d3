r"""Detector modulation transfer function (MTF) and its correction in the sideband.

A camera blurs the recorded hologram: each spatial frequency :math:`\mathbf k` (cycles per
pixel) of the intensity is multiplied by the MTF :math:`M(\mathbf k)`. The sideband around the
carrier :math:`\mathbf q_c` therefore carries :math:`M(\mathbf q_c + \mathbf k)` on the object
wave's frequency :math:`\mathbf k`; dividing by a vacuum reference (whose sideband sits at
:math:`\mathbf q_c`) leaves the ratio :math:`M(\mathbf q_c + \mathbf k) / M(\mathbf q_c)` on the
wave - a filter that falls across the aperture away from the centre band and rises towards
it, so a phase step is reconstructed with a slightly wrong shape (on the ``holography`` twin a
+5 % bias on a space-charge drop fitted without it). The correction divides the cut-out
sideband by that ratio (:func:`sideband_mtf_correction`); inside the aperture the MTF stays
well above zero for a properly sampled hologram (the carrier below half the Nyquist
frequency), so the inverse filter is bounded; it raises the noise at the aperture's outer edge
by the same ratio.

MTFs are given as callables ``mtf(fy, fx)`` of frequencies in cycles per pixel (arrays,
broadcasting), built from a model (:func:`lorentzian_mtf`, the pixel's sinc times a
Lorentzian spread, as in the twin) or a measured radial curve (:func:`radial_mtf`, e.g. from
the camera maker's data or a noise-power measurement).

References
----------
G. McMullan, S. Chen, R. Henderson, A.R. Faruqi, Ultramicroscopy 109, 1126 (2009) (detective
quantum efficiency and MTF of electron detectors). H. Lichte, M. Lehmann, Rep. Prog. Phys. 71,
016102 (2008) (MTF in off-axis holography).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ionscope.errors import ConfigError, InputError
from ionscope.validation import Interval, described, validate_params

MTF = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Smallest MTF ratio (sideband bin over carrier) the correction divides by.
MIN_RATIO = 0.05


@described("a positive number (cycles/px)")
def _positive_frequency(value: Any) -> bool:
    return Interval(float, 0, None, closed="neither")(value)


@validate_params({"cutoff": [_positive_frequency]})
def lorentzian_mtf(cutoff: float) -> MTF:
    """``sinc(fy) sinc(fx) / (1 + (|f| / cutoff)**2)``: the pixel aperture times a Lorentzian
    spread with half-power frequency ``cutoff`` (cycles/px) - the twins' detector model."""
    fc = float(cutoff)

    def mtf(fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
        return np.sinc(fy) * np.sinc(fx) / (1.0 + (np.hypot(fy, fx) / fc) ** 2)

    mtf.description = {"model": "pixel sinc x Lorentzian", "cutoff_per_px": fc}  # type: ignore[attr-defined]
    return mtf


def radial_mtf(frequency: Any, values: Any) -> MTF:
    """An MTF from a measured radial curve: ``values`` at ``frequency`` (cycles/px, increasing,
    from 0), linearly interpolated in ``|f|`` (held at the last value beyond the table)."""
    f = np.asarray(frequency, dtype=np.float64).ravel()
    m = np.asarray(values, dtype=np.float64).ravel()
    if f.size < 2 or f.size != m.size:
        raise InputError(f"a radial MTF needs two columns of equal length (at least 2 rows), got {f.size} and {m.size}")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(m))):
        raise InputError("the radial MTF holds NaN/inf values")
    if not np.all(np.diff(f) > 0) or f[0] < 0:
        raise InputError("the radial MTF's frequencies must increase from 0 (cycles per pixel)")
    if np.any(m <= 0):
        raise InputError("the radial MTF must be positive; cut the table where it reaches zero")

    def mtf(fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
        return np.interp(np.hypot(fy, fx), f, m)

    mtf.description = {"model": "radial table", "frequency_per_px": f.tolist(),  # type: ignore[attr-defined]
                       "mtf": m.tolist()}
    return mtf


def as_mtf(mtf: Any) -> MTF | None:
    """Normalise an ``mtf`` argument: None, a callable, a cut-off (float, :func:`lorentzian_mtf`)
    or a ``(frequency, values)`` pair (:func:`radial_mtf`)."""
    if mtf is None or callable(mtf):
        return mtf
    if isinstance(mtf, (int, float)) and not isinstance(mtf, bool):
        return lorentzian_mtf(mtf)
    if isinstance(mtf, (tuple, list)) and len(mtf) == 2:
        return radial_mtf(*mtf)
    raise ConfigError(
        "mtf must be None, a callable mtf(fy, fx) of cycles per pixel, a Lorentzian cut-off "
        f"(cycles/px) or a (frequency, values) radial table; got {type(mtf).__name__}"
    )


def describe_mtf(mtf: MTF | None) -> Any:
    """What goes into the provenance for an MTF: its model and parameters, or ``"callable"``."""
    if mtf is None:
        return None
    return getattr(mtf, "description", f"callable {getattr(mtf, '__qualname__', type(mtf).__name__)}")


def sideband_mtf_correction(
    mtf: MTF,
    ky: np.ndarray,
    kx: np.ndarray,
    shape: tuple[int, int],
    carrier: tuple[float, float],
    support: np.ndarray | None = None,
) -> np.ndarray:
    """Weights ``M(q_c) / M(k)`` on a box of FFT bins ``(ky, kx)`` (signed integers) of an image
    of ``shape`` around the sideband at ``carrier`` (signed, sub-pixel FFT px); 0 outside
    ``support`` (the aperture's bins, default the whole box).

    Raises
    ------
    ConfigError
        Where the MTF on the support falls below :data:`MIN_RATIO` of its carrier value (the
        hologram is sampled too coarsely for an inverse filter) or is not positive.
    """
    ny, nx = shape
    fy = np.asarray(ky, dtype=np.float64)[:, None] / ny
    fx = np.asarray(kx, dtype=np.float64)[None, :] / nx
    at_bins = np.asarray(mtf(fy, fx), dtype=np.float64)
    at_carrier = float(np.asarray(mtf(np.array(carrier[0] / ny), np.array(carrier[1] / nx))))
    if not at_carrier > 0:
        raise ConfigError(f"the MTF at the carrier is {at_carrier:g}; it must be positive")
    ratio = np.broadcast_to(at_bins, (fy.shape[0], fx.shape[1])) / at_carrier
    inside = np.ones(ratio.shape, dtype=bool) if support is None else np.asarray(support, dtype=bool)
    low = ratio[inside]
    if low.size and (not np.all(np.isfinite(low)) or low.min() < MIN_RATIO):
        raise ConfigError(
            f"the MTF falls to {np.nanmin(low):.3g} of its carrier value inside the sideband aperture; "
            "the correction would amplify the noise there - use a smaller aperture or no MTF correction"
        )
    out = np.zeros(ratio.shape, dtype=np.float32)
    out[inside] = 1.0 / ratio[inside]
    return out


__all__ = ["lorentzian_mtf", "radial_mtf", "as_mtf", "describe_mtf", "sideband_mtf_correction", "MIN_RATIO"]
