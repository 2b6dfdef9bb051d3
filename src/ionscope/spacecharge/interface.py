r"""Forward model of a measured electrode / electrolyte interface: the lattice-gas layer as an
instrument sees it.

Forward model (:func:`interface_profile`). The interface sits at ``x0``; the electrolyte lies on
one ``side`` of it (``"right"``: :math:`x > x_0`), the electrode on the other. With
:math:`d = \pm(x - x_0)` the distance into the electrolyte and :math:`\psi(d)` the lattice-gas
layer (:func:`~ionscope.spacecharge.lattice_gas_potential`),

.. math::

    V(x) &= V_\mathrm{off} + \big[G_\sigma * \{\psi_0 + s\ \text{(electrode)},\
            \psi(d) + g\,d\ \text{(electrolyte)}\}\big](x), \\
    L(x) &= L_\mathrm{off} + L_\mathrm{scale}\,\big[G_{\sigma_L} * \{\ell_e\
            \text{(electrode)},\ c(\psi(d))/c_0\ \text{(electrolyte)}\}\big](x - \delta_L),

:math:`G_\sigma` a normalised Gaussian point-spread function (instrument resolution, interface
roughness), :math:`s` an optional sharp step at the interface (e.g. a mean-inner-potential
difference; fixed at 0 by default), :math:`g` an optional bulk gradient
(``bulk_slope_V_per_nm``: an IR drop or a biased cell's bulk field; fixed at 0 by default) and
:math:`\ell_e` the electrode's Li level in units of the bulk (``li_electrode_level``, default
0). The convolution is exact for the jump at the interface: the electrode part is
:math:`\ell_e \Phi(-d/\sigma)` in closed form, the layer part a trapezoid sum on a grid that
starts at the interface (step ``min(0.05 nm, sigma/5)``) with the Euler-Maclaurin end
correction, FFT-convolved and cubic-spline interpolated to the data (error ~1e-6 of the drop).

Resolution. :math:`G_\sigma` suits a scanned probe, EELS or phase-shifting holography. A
Fourier (sideband) holography map is instead band-limited by the reconstruction aperture, which
filters the electron wave :math:`e^{i\kappa V}` (:math:`\kappa = C_E t`, rad/V), not the
potential: give ``lowpass`` (a :class:`ionscope.profiles.LowPass`, as ``holo potential`` /
``holo profile`` record it) and the potential model is evaluated on a fine grid (step
:math:`h = \min(\Delta x / 4, 0.025/k_c)`, reaching 40 periods :math:`1/k_c` beyond the data,
anti-aliased by a Gaussian of sigma :math:`h`,
added in quadrature to ``psf_nm`` and the LowPass's ``blur_nm`` if it has one: what blurs
the interface ahead of the aperture - its roughness, an inclined interface's projected width,
drift; ``psf_nm`` is fitted by default), mirror-extended,
filtered as :math:`\arg(\mathcal F^{-1}[T\,\mathcal F a\,e^{i\kappa V}])/\kappa` (linearly
without :math:`\kappa`; :math:`a` the wave's amplitude, stepping at the interface by the
LowPass's ``amplitude_ratio`` - start side over end side, :math:`\ln a` blurred like the
potential - when it has one, else 1) and
cubic-spline interpolated to the data - the model of :func:`ionscope.profiles.fit_step`.

Parameters. :data:`PARAMETERS` lists every model parameter with its unit, default start value
and transform (``"linear"``, ``"logit"``, ``"log"``, ``"nonneg"``); the joint fit
(:mod:`~ionscope.spacecharge.fit`) works in the transformed coordinates.

References
----------
J.J. Bikerman, Phil. Mag. 33 (1942) 384. P.A. Midgley, Micron 32 (2001) 167 (holography
resolution set by the aperture).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import scipy.fft
from scipy.interpolate import CubicSpline
from scipy.special import expit, logit, ndtr

from ionscope.errors import ConfigError, InputError
from ionscope.profiles import LowPass
from ionscope.spacecharge.model import _check_scalar, _occupancy, _system, _u_of_xi

__all__ = ["PARAMETERS", "interface_profile", "recorded_lowpass"]

#: Every model parameter with its unit, default start value and transform.
PARAMETERS: dict[str, dict[str, Any]] = {
    "psi0_V": {"unit": "V", "transform": "linear"},
    "theta": {"unit": "1", "default": 0.9, "transform": "logit"},
    "eps_r": {"unit": "1", "default": 50.0, "transform": "log"},
    "c0_m3": {"unit": "m^-3", "default": 6e27, "transform": "log"},
    "x0_nm": {"unit": "nm", "transform": "linear"},
    "psf_nm": {"unit": "nm", "transform": "nonneg"},
    "v_offset_V": {"unit": "V", "transform": "linear"},
    "step_V": {"unit": "V", "default": 0.0, "transform": "linear"},
    "bulk_slope_V_per_nm": {"unit": "V/nm", "default": 0.0, "transform": "linear"},
    "li_offset": {"unit": "li", "transform": "linear"},
    "li_scale": {"unit": "li", "transform": "linear"},
    "li_psf_nm": {"unit": "nm", "transform": "nonneg"},
    "li_shift_nm": {"unit": "nm", "default": 0.0, "transform": "linear"},
}
_H_MAX = 0.05  # nm, largest grid step of the convolution
#: Margin of the low-pass grid beyond the data, in cutoff periods: the mirror image of the
#: interface then lies 2 * 40 periods away and its ringing, ~1 / (2 pi^2 * 80) of the step
#: (6e-4) for a sharp aperture, stays below the data's noise.
_PAD_PERIODS = 40.0
_STEPS_PER_SIGMA = 5.0  # grid steps per PSF sigma
_MAX_NODES = 2**18  # most nodes of the blur's convolution grid (~10 MB of work arrays)


# --------------------------------------------------------------------------- forward model


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution of two real 1-D arrays by FFT."""
    n = a.size + b.size - 1
    size = scipy.fft.next_fast_len(n, real=True)
    return scipy.fft.irfft(scipy.fft.rfft(a, size) * scipy.fft.rfft(b, size), size)[:n]


def _blurred(d: np.ndarray, layer, electrode_level: float, psf: float) -> np.ndarray:
    """Gaussian-blurred ``{electrode_level (d < 0), layer(d) (d >= 0)}`` at distances ``d``.

    ``layer`` maps an array of distances >= 0 (nm) to values.
    """
    d = np.asarray(d, dtype=np.float64)
    if psf <= 4 * 1e-3:  # no blur to speak of: sample the profile itself
        out = np.full(d.shape, float(electrode_level))
        pos = d >= 0
        if pos.any():
            out[pos] = layer(d[pos])
        return out
    reach = 6.0 * psf
    span = max(float(d.max()), 0.0) + reach
    # bounded by _MAX_NODES whatever the optimiser tries (a position or PSF far outside the data
    # would otherwise ask for a grid without limit): coarser steps there, where the fit is lost
    h = max(min(_H_MAX, psf / _STEPS_PER_SIGMA), span / _MAX_NODES)
    k_max = int(np.ceil(span / h)) + 2
    s = np.arange(k_max + 1) * h
    f = layer(s)
    f0, slope0 = f[0], (-3 * f[0] + 4 * f[1] - f[2]) / (2 * h)
    f[0] *= 0.5  # trapezoid weight at the jump
    m = int(np.ceil(reach / h))
    t = np.arange(-m, m + 1) * h
    gauss = np.exp(-0.5 * (t / psf) ** 2) / (psf * np.sqrt(2 * np.pi))
    conv = _convolve(f, gauss * h)  # conv[j] at d = (j - m) h, j = 0 .. k_max + 2m
    grid = (np.arange(conv.size) - m) * h
    # Euler-Maclaurin end correction at s = 0: + h^2/12 * d/ds[f(s) G(d - s)] at s = 0
    g_d = np.exp(-0.5 * (grid / psf) ** 2) / (psf * np.sqrt(2 * np.pi))
    conv += (h * h / 12.0) * (slope0 + f0 * grid / psf ** 2) * g_d
    valid = grid <= s[-1] - reach  # beyond that the truncated tail would be missing
    total = conv[valid] + electrode_level * ndtr(-grid[valid] / psf)
    spline = CubicSpline(grid[valid], total)
    out = np.full(d.shape, float(electrode_level))
    inside = d >= grid[0]
    out[inside] = spline(d[inside])
    return out


def _wave_lowpass(lp: LowPass, values: np.ndarray, h: float,
                  amplitude: np.ndarray | None = None) -> np.ndarray:
    r"""``values`` (sampled every ``h`` nm) through the aperture ``lp``.

    The samples are mirror-extended (no wrap-around jump). With ``lp.phase_per_unit``
    :math:`\kappa` the wave :math:`a\,e^{i\kappa v}` (``amplitude`` :math:`a`, default 1) is
    filtered and its unwrapped phase divided by :math:`\kappa` (anchored to the first sample,
    which lies in a flat margin); otherwise the values themselves are filtered.
    """
    ext = np.concatenate([values, values[::-1]])
    if lp.phase_per_unit:
        kappa = float(lp.phase_per_unit)
        wave = np.exp(1j * kappa * ext)
        if amplitude is not None:
            wave = wave * np.concatenate([amplitude, amplitude[::-1]])
        spec = scipy.fft.fft(wave) * lp.transfer(np.fft.fftfreq(ext.size, h))
        phase = np.unwrap(np.angle(scipy.fft.ifft(spec)[: values.size]))
        turns = np.round((kappa * values[0] - phase[0]) / (2 * np.pi))
        return (phase + 2 * np.pi * turns) / kappa
    spec = scipy.fft.rfft(ext) * lp.transfer(np.fft.rfftfreq(ext.size, h))
    return scipy.fft.irfft(spec, ext.size)[: values.size]


def _lowpass_grid(x: np.ndarray, lp: LowPass) -> tuple[np.ndarray, float]:
    """Fine evaluation grid for a low-passed model at ``x`` (module docstring) and its step."""
    xs = np.unique(x)
    spacing = float(np.median(np.diff(xs))) if xs.size > 1 else 1.0 / lp.cutoff_per_nm
    pad = _PAD_PERIODS / lp.cutoff_per_nm
    h = min(0.25 * spacing, 0.025 / lp.cutoff_per_nm)
    h = max(h, (float(xs[-1] - xs[0]) + 2 * pad) / 2e4)  # at most ~2e4 nodes
    return np.arange(xs[0] - pad, xs[-1] + pad + h, h), h


def interface_profile(
    x_nm, psi0_V: float, theta: float, eps_r: float, c0_m3: float, *, x0_nm: float = 0.0,
    psf_nm: float = 0.0, side: str = "right", quantity: str = "potential",
    offset: float = 0.0, scale: float = 1.0, step_V: float = 0.0,
    bulk_slope_V_per_nm: float = 0.0, electrode_level: float = 0.0,
    temperature_K: float = 298.15, lowpass: LowPass | None = None,
) -> np.ndarray:
    r"""The lattice-gas layer at an electrode / electrolyte interface as an instrument sees it.

    Parameters
    ----------
    x_nm : array_like
        Positions along the profile (nm), either side of the interface.
    psi0_V, theta, eps_r, c0_m3 : float
        Layer parameters (see :func:`~ionscope.spacecharge.lattice_gas_potential`).
    x0_nm : float
        Interface position (nm).
    psf_nm : float
        Gaussian sigma of the point-spread function (nm); 0 for none.
    side : {"right", "left"}
        Where the electrolyte is.
    quantity : {"potential", "li"}
        ``"potential"``: ``offset + G * {psi0 + step_V | psi(d)}`` (V); ``"li"``:
        ``offset + scale * G * {electrode_level | c(d) / c0}``.
    offset, scale, step_V, electrode_level : float
        See above.
    bulk_slope_V_per_nm : float
        A linear potential gradient in the electrolyte, ``+ slope * d`` for ``d > 0`` (an IR
        drop or the bulk field of a biased cell; V/nm).
    temperature_K : float
        Temperature (K).
    lowpass : ionscope.profiles.LowPass, optional
        The band limit of a Fourier-holography map (reconstruction aperture; module
        docstring), applied after the Gaussian ``psf_nm``.

    Returns
    -------
    numpy.ndarray
        Model values at ``x_nm`` (float64).

    Examples
    --------
    >>> v = interface_profile([-5.0, 40.0], 1.3, 0.99, 50, 6e27, psf_nm=0.5)
    >>> bool(abs(v[0] - 1.3) < 1e-6 and abs(v[1]) < 1e-6)
    True
    >>> from ionscope.profiles import LowPass
    >>> w = interface_profile([-40.0, 60.0], 1.3, 0.99, 50, 6e27, step_V=5.0,
    ...                       lowpass=LowPass(0.2, 0.01, 0.5))
    >>> bool(abs(w[0] - 6.3) < 0.01 and abs(w[1]) < 0.01)  # the aperture's ringing decays slowly
    True
    """
    x = np.asarray(x_nm, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("x_nm holds NaN/inf positions")
    if lowpass is not None:
        if not isinstance(lowpass, LowPass):
            raise InputError(
                f"lowpass must be an ionscope.profiles.LowPass, got {type(lowpass).__name__}"
            )
        if x.size == 0:
            return np.zeros(x.shape)
        psf_nm = _check_scalar(psf_nm, "psf_nm")
        if psf_nm < 0:
            raise ConfigError(f"psf_nm = {psf_nm} must be >= 0")
        grid, h = _lowpass_grid(x.ravel(), lowpass)
        blur = float(np.sqrt(psf_nm**2 + (getattr(lowpass, "blur_nm", None) or 0.0) ** 2 + h * h))
        fine = interface_profile(
            grid, psi0_V, theta, eps_r, c0_m3, x0_nm=x0_nm, psf_nm=blur,
            side=side, quantity=quantity, offset=offset, scale=scale, step_V=step_V,
            bulk_slope_V_per_nm=bulk_slope_V_per_nm, electrode_level=electrode_level,
            temperature_K=temperature_K)
        ratio = getattr(lowpass, "amplitude_ratio", None)
        amplitude = None
        if ratio is not None and lowpass.phase_per_unit:  # start (low x) side over end side;
            # ln a mixes across the (blurred) interface like the phase
            amplitude = np.exp(np.log(float(ratio)) * ndtr(-(grid - float(x0_nm)) / blur))
        return CubicSpline(grid, _wave_lowpass(lowpass, fine, h, amplitude))(x)
    if side not in ("right", "left"):
        raise ConfigError(f"side = {side!r}: use 'right' or 'left' (where the electrolyte is)")
    if quantity not in ("potential", "li"):
        raise ConfigError(f"quantity = {quantity!r}: use 'potential' or 'li'")
    psf_nm = _check_scalar(psf_nm, "psf_nm")
    if psf_nm < 0:
        raise ConfigError(f"psf_nm = {psf_nm} must be >= 0")
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    d = (x - float(x0_nm)) * (1.0 if side == "right" else -1.0)
    sy = _system(theta, eps_r, c0_m3, temperature_K)
    u0 = psi0_V / sy.vt

    if quantity == "potential":
        def layer(s):
            return sy.vt * _u_of_xi(s / sy.ell_nm, u0, sy) + bulk_slope_V_per_nm * s

        return offset + _blurred(d, layer, psi0_V + step_V, psf_nm)

    def layer_li(s):
        return _occupancy(_u_of_xi(s / sy.ell_nm, u0, sy), theta) / theta

    return offset + scale * _blurred(d, layer_li, electrode_level, psf_nm)


# --------------------------------------------------------------------------- parameter transforms


def _to_internal(name: str, value: float) -> float:
    kind = PARAMETERS[name]["transform"]
    if kind == "logit":
        return float(logit(value))
    if kind == "log":
        return float(np.log(value))
    return float(value)


def _to_natural(name: str, z: float) -> float:
    kind = PARAMETERS[name]["transform"]
    if kind == "logit":
        return float(np.clip(expit(z), 1e-12, 1 - 1e-12))
    if kind == "log":
        return float(np.exp(z))
    return float(z)


def _derivative(name: str, value: float) -> float:
    """d natural / d internal at ``value``."""
    kind = PARAMETERS[name]["transform"]
    if kind == "logit":
        return value * (1 - value)
    if kind == "log":
        return value
    return 1.0


# --------------------------------------------------------------------------- recorded resolution


def recorded_lowpass(attrs: dict) -> LowPass | None:
    """The reconstruction aperture recorded with a holography result, as a :class:`LowPass`.

    Looks for the attributes :meth:`~ionscope.profiles.LowPass.from_attrs` reads (the
    ``resolution_<field>`` attributes and ``phase_per_volt_rad`` that
    :func:`~ionscope.holography.potential_from_reconstruction` writes, or the reconstruction's
    aperture), then for the low-pass that
    ``ionscope holo profile`` fitted with (the ``blur`` parameter of the last
    ``ionscope.profiles.fit_step`` step in ``attrs["provenance"]``).

    Parameters
    ----------
    attrs : dict
        Attributes of a result Dataset.

    Returns
    -------
    LowPass or None
        None when no aperture is recorded (a phase-shifting map, a KPFM or CSV profile).

    Examples
    --------
    >>> lp = recorded_lowpass({"resolution_cutoff_per_nm": 0.2, "phase_per_volt_rad": 0.5})
    >>> lp.cutoff_per_nm, lp.edge_per_nm, lp.phase_per_unit
    (0.2, 0.0, 0.5)
    >>> recorded_lowpass({}) is None
    True
    """
    try:
        recorded = LowPass.from_attrs(attrs)
        if recorded is not None:
            return recorded
        raw = attrs.get("provenance", "[]")
        for step in reversed(json.loads(raw) if isinstance(raw, str) else list(raw)):
            blur = (step.get("params") or {}).get("blur")
            if step.get("step") == "ionscope.profiles.fit_step" and isinstance(blur, dict):
                return LowPass(**{k: float(v) for k, v in blur.items()
                                  if k in LowPass.__dataclass_fields__ and v is not None})
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise InputError(f"the recorded resolution is malformed ({exc}); give it with --blur") from None
    return None
