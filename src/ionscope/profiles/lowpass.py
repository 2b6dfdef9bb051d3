r"""Resolution of a Fourier-holography reconstruction: the aperture low-pass :class:`LowPass`.

:class:`LowPass` is the transfer function of a soft circular reconstruction aperture;
:func:`_lowpass_curve` evaluates a step model seen through it (filtering the electron wave
:math:`e^{i\varphi}` when ``phase_per_unit`` is given, else the profile itself), and
:func:`_step_curve` evaluates a step model with either resolution (Gaussian or low-pass).

References
----------
P.A. Midgley, Micron 32 (2001) 167 (holography resolution set by the aperture).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr

from ionscope.errors import ConfigError, InputError
from ionscope.profiles.models import StepModel


@dataclasses.dataclass(frozen=True)
class LowPass:
    r"""Band-limited resolution: the transfer function of a reconstruction aperture.

    A Fourier (sideband) holography reconstruction keeps spatial frequencies inside a soft
    circular aperture of radius ``cutoff_per_nm`` (raised-cosine edge of full width
    ``edge_per_nm``). Across a straight interface its line-spread function is the 1-D
    transform of the aperture's central section: the transfer ``T(k) = 1`` for
    ``|k| < cutoff - edge/2``, 0 beyond ``cutoff + edge/2``, a raised cosine in between
    (independent of the profile's direction for a circular aperture).

    The aperture filters the electron wave :math:`e^{i\varphi}`, not the phase: for phase
    steps of order 1 rad and more the phase of the filtered wave rings much less than the
    filtered phase would (the Gibbs overshoot of a 3 rad step shrinks several-fold). With
    ``phase_per_unit`` :math:`\kappa` (rad per unit of the profile, e.g. :math:`C_E t` for a
    potential map in V, 1 for a phase map) the model :math:`V` is filtered as
    :math:`\arg(\mathcal F^{-1}[T\,\mathcal F e^{i\kappa V}])/\kappa`; without it,
    linearly (small phases, or differences of two maps).

    The wave's amplitude filters along with its phase: where the two materials absorb
    differently (``amplitude_ratio`` = amplitude on the start side over that on the end side,
    e.g. from the reconstructed amplitude map away from the interface) the model wave is
    :math:`a(x) e^{i\kappa V}` with the amplitude stepping at the interface like the ``jump``
    of :func:`fit_step` (:math:`\ln a` mixes across a rough interface like the phase). Needs
    ``phase_per_unit``.

    ``blur_nm`` is the Gaussian width (sigma, nm) of the potential *ahead of* the aperture:
    the interface's roughness or the projected width of an inclined interface. Far below the
    resolution, it still matters for a phase step of order 1 rad and more: across a sharp
    step the wave jumps along the chord between its two values, across a graded one along the
    unit circle, and the aperture sees the difference (a zeroth moment proportional to the
    width). For the twin's 2.65 rad mean-inner-potential step seen through a 6 nm aperture,
    0.25 nm of roughness moves the filtered profile by up to 0.5 V next to the interface and
    the fitted space-charge drop by about as much, so give the interface width when it is
    known (from a high-resolution image or a phase-shifting map). None takes half the profile's
    sample spacing (a step between two pixels; about what earlier versions did implicitly).
    Linear filtering (no ``phase_per_unit``) applies it as a Gaussian on the transfer.
    """

    cutoff_per_nm: float
    edge_per_nm: float = 0.0
    phase_per_unit: float | None = None
    amplitude_ratio: float | None = None
    blur_nm: float | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cutoff_per_nm) and self.cutoff_per_nm > 0):
            raise ConfigError(f"the low-pass cutoff must be a positive frequency in 1/nm, got {self.cutoff_per_nm!r}")
        if not (np.isfinite(self.edge_per_nm) and 0 <= self.edge_per_nm < self.cutoff_per_nm):
            raise ConfigError(f"the low-pass edge must lie in [0, cutoff), got {self.edge_per_nm!r}")
        if self.phase_per_unit is not None and not (np.isfinite(self.phase_per_unit) and self.phase_per_unit != 0):
            raise ConfigError(f"phase_per_unit must be a non-zero number (rad per unit), got {self.phase_per_unit!r}")
        if self.amplitude_ratio is not None:
            if not (np.isfinite(self.amplitude_ratio) and self.amplitude_ratio > 0):
                raise ConfigError(f"amplitude_ratio must be a positive number, got {self.amplitude_ratio!r}")
            if not self.phase_per_unit:
                raise ConfigError("amplitude_ratio needs phase_per_unit: only the filtered wave carries an amplitude")
        if self.blur_nm is not None and not (
                np.isfinite(self.blur_nm) and 0 <= self.blur_nm < 1.0 / self.cutoff_per_nm):
            raise ConfigError(
                f"blur_nm must be a width in [0, 1/cutoff) nm (below the resolution), got {self.blur_nm!r}; "
                "a wider blur is a resolution of its own"
            )

    def transfer(self, k: np.ndarray) -> np.ndarray:
        """Transfer function at frequencies ``k`` (1/nm)."""
        k = np.abs(np.asarray(k, dtype=np.float64))
        if self.edge_per_nm == 0:
            return (k <= self.cutoff_per_nm).astype(np.float64)
        t = np.clip((k - (self.cutoff_per_nm - 0.5 * self.edge_per_nm)) / self.edge_per_nm, 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(np.pi * t))

    def describe(self) -> str:
        wave = f", wave filtered at {self.phase_per_unit:.4g} rad/unit" if self.phase_per_unit else ", linear"
        if self.amplitude_ratio is not None:
            wave += f", amplitude ratio {self.amplitude_ratio:.4g}"
        if self.blur_nm is not None:
            wave += f", interface width {self.blur_nm:.3g} nm"
        return f"low-pass {self.cutoff_per_nm:.4g}/nm (edge {self.edge_per_nm:.3g}/nm{wave})"

    # ----------------------------------------------------------------- one way to build one

    @classmethod
    def parse(cls, text: str) -> LowPass:
        """A low-pass from ``"lowpass:CUTOFF[:EDGE[:KAPPA]]"`` (1/nm, 1/nm, rad per unit), the
        ``--blur`` spelling of every command.

        >>> LowPass.parse("lowpass:0.2:0.01:0.5")
        LowPass(cutoff_per_nm=0.2, edge_per_nm=0.01, phase_per_unit=0.5, amplitude_ratio=None, blur_nm=None)
        """
        parts = str(text).strip().split(":")
        try:
            if parts[0].strip().lower() != "lowpass" or not 2 <= len(parts) <= 4:
                raise ValueError
            nums = [float(v) for v in parts[1:]]
        except ValueError:
            raise ConfigError(
                f"{text!r} is not lowpass:CUTOFF[:EDGE[:KAPPA]] (cut-off and edge in 1/nm, KAPPA in rad "
                "per unit of the profile), e.g. lowpass:0.17"
            ) from None
        return cls(nums[0], nums[1] if len(nums) > 1 else 0.0, nums[2] if len(nums) > 2 else None)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], *, phase_per_unit: Any = "recorded") -> LowPass | None:
        """The resolution a result recorded in its attributes, or None when it recorded none.

        Reads, in this order, the ``resolution_<field>`` attributes (:meth:`to_attrs`; written by
        :func:`ionscope.holography.potential_from_reconstruction` and the demo) and the
        reconstruction's aperture (``aperture_per_nm`` with ``aperture_edge_px`` /
        ``aperture_px``, as :func:`ionscope.holography.reconstruct_offaxis` records it).

        Parameters
        ----------
        attrs : mapping
            Attributes of a result Dataset or DataArray.
        phase_per_unit : float, None or "recorded"
            Wave filtering (rad per unit of the profile): ``"recorded"`` takes
            ``resolution_phase_per_unit``, else ``phase_per_volt_rad`` (the ``C_E t`` of a
            uniform-thickness potential map), else none; a number or None overrides it (1 for
            a phase map).

        Examples
        --------
        >>> LowPass.from_attrs({"aperture_per_nm": 0.25, "aperture_px": 10, "aperture_edge_px": 0.5}).edge_per_nm
        0.0125
        >>> LowPass.from_attrs({}) is None
        True
        """
        def number(key: str) -> float | None:
            value = attrs.get(key)
            if value is None:
                return None
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InputError(f"the recorded attribute {key} = {value!r} is not a number") from None
            return value

        fields: dict[str, Any] = {}
        if number("resolution_cutoff_per_nm") is not None:
            for f in dataclasses.fields(cls):
                value = number(f"resolution_{f.name}")
                if value is not None:
                    fields[f.name] = value
        elif number("aperture_per_nm") is not None:
            cut = number("aperture_per_nm")
            edge_px, radius_px = number("aperture_edge_px"), number("aperture_px")
            fields = {"cutoff_per_nm": cut,
                      "edge_per_nm": edge_px / radius_px * cut if edge_px is not None and radius_px else 0.0}
        else:
            return None
        if isinstance(phase_per_unit, str) and phase_per_unit == "recorded":
            if "phase_per_unit" not in fields and number("phase_per_volt_rad") is not None:
                fields["phase_per_unit"] = number("phase_per_volt_rad")
        else:
            fields["phase_per_unit"] = None if phase_per_unit is None else float(phase_per_unit)
            if fields["phase_per_unit"] is None:
                fields.pop("amplitude_ratio", None)
        return cls(**fields)

    def to_attrs(self) -> dict[str, float]:
        """``{"resolution_<field>": value}`` for every field that is set (read back by
        :meth:`from_attrs`)."""
        return {f"resolution_{k}": float(v) for k, v in dataclasses.asdict(self).items() if v is not None}


_GL64_NODES, _GL64_WEIGHTS = np.polynomial.legendre.leggauss(64)


def _graded_jump_moment(z: complex) -> complex:
    r""":math:`\int [e^{z\Phi(-t)} - \mathrm{chord}(t)]\,dt` (t in units of the Gaussian
    sigma): the zeroth moment by which a Gaussian-graded step of the wave's log :math:`z`
    (``i kappa jump + ln ratio``) differs from a sharp one (1 for t > 0, :math:`e^z` for t < 0)."""
    t = 4.0 * (_GL64_NODES + 1.0)  # [0, 8]
    w = 4.0 * _GL64_WEIGHTS
    right = np.sum(w * (np.exp(z * ndtr(-t)) - 1.0))
    left = np.sum(w * (np.exp(z * ndtr(t)) - np.exp(z)))
    return complex(left + right)


def _lowpass_apply(lp: LowPass, func: Callable[[np.ndarray, float], np.ndarray], x: np.ndarray,
                   h: float, wave: Callable[[np.ndarray, float], np.ndarray] | None = None,
                   antialias: float = 0.0, gaussian: float = 0.0) -> np.ndarray:
    r"""``func`` (a model of position) low-pass filtered and sampled at ``x``.

    ``func(grid, h)`` returns values on a grid of step ``h``; the grid is evenly extended
    (mirror) so the filter sees no wrap-around jump. With ``lp.phase_per_unit`` the wave
    ``wave(grid, h)`` (default :math:`e^{i\kappa f}`) is filtered instead and its phase returned
    in units of ``func``, anchored to ``func`` at the first grid point. ``antialias`` is the
    sigma of a Gaussian the model was anti-aliased with (divided out of the transfer: it only
    makes the sampled model smooth in its parameters); ``gaussian`` multiplies the transfer by
    a Gaussian of that sigma.
    """
    pad = 10.0 / lp.cutoff_per_nm
    grid = np.arange(x.min() - pad, x.max() + pad + h, h)
    vals = func(grid[:1] if lp.phase_per_unit else grid, h)  # the wave needs only the anchor
    n_ext = 2 * grid.size

    def mirrored(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, a[..., ::-1]], axis=-1)

    def transfer(k: np.ndarray) -> np.ndarray:
        return lp.transfer(k) * np.exp(2.0 * (np.pi * k) ** 2 * (antialias**2 - gaussian**2))

    if lp.phase_per_unit:
        kappa = lp.phase_per_unit
        carrier = mirrored(wave(grid, h) if wave is not None else np.exp(1j * kappa * vals))
        filtered = np.fft.ifft(np.fft.fft(carrier, axis=-1) * transfer(np.fft.fftfreq(n_ext, h)),
                               axis=-1)[..., : grid.size]
        phase = np.unwrap(np.angle(filtered), axis=-1)
        turns = np.round((kappa * vals[..., :1] - phase[..., :1]) / (2 * np.pi))
        filt = (phase + 2 * np.pi * turns) / kappa
    else:
        spec = np.fft.rfft(mirrored(vals), axis=-1) * transfer(np.fft.rfftfreq(n_ext, h))
        filt = np.fft.irfft(spec, n=n_ext, axis=-1)[..., : grid.size]
    pos = (x - grid[0]) / h
    i0 = np.clip(np.floor(pos).astype(int), 0, grid.size - 2)
    f = pos - i0
    return filt[..., i0] * (1 - f) + filt[..., i0 + 1] * f


def _lowpass_curve(spec: StepModel, side: str, names: Sequence[str], p: Sequence[float], x: np.ndarray,
                   lp: LowPass) -> np.ndarray:
    """The step model seen through the aperture ``lp`` (see :class:`LowPass`).

    The model is evaluated on a fine grid of step ``h = min(ds/4, 0.05/cutoff)``. Filtering the
    wave, an interface width ``b`` of at least ``h`` is sampled as it is (everything Gaussian
    blurred by ``b``, the grid refined to ``b/2``); a narrower one enters as the sharp step -
    the two sides' complex values mixed by a Gaussian of ``h`` (divided out of the transfer) -
    plus the zeroth moment ``b * c(z)`` by which the graded step differs from it
    (:func:`_graded_jump_moment`), exact to first order in ``b`` times the cutoff.
    """
    q = dict(zip(names, p))
    ds = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    h0 = min(0.25 * ds, 0.05 / lp.cutoff_per_nm)
    width = 0.5 * ds if lp.blur_nm is None else float(lp.blur_nm)
    kappa = lp.phase_per_unit
    if not kappa:  # linear: anti-aliased by h0 (divided out), the interface width on the transfer
        def fine(grid: np.ndarray, h: float) -> np.ndarray:
            return _step_curve(spec, side, names, p, grid, h, True)

        return _lowpass_apply(lp, fine, x, h0, antialias=h0, gaussian=width)
    log_jump = 1j * kappa * float(q.get("jump", 0.0))
    if lp.amplitude_ratio is not None:
        log_jump += np.log(float(lp.amplitude_ratio))
    if width >= h0:
        def fine(grid: np.ndarray, h: float) -> np.ndarray:
            return _step_curve(spec, side, names, p, grid, width, True)

        def wave(grid: np.ndarray, h: float) -> np.ndarray:
            u = grid - q["position"]
            smooth = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], width, side)
            return np.exp(1j * kappa * smooth + log_jump * ndtr(-u / width))

        return _lowpass_apply(lp, fine, x, min(h0, 0.5 * width), wave)
    moment = width * _graded_jump_moment(log_jump) if width > 0 else 0.0

    def fine(grid: np.ndarray, h: float) -> np.ndarray:
        return _step_curve(spec, side, names, p, grid, h, True)

    def wave(grid: np.ndarray, h: float) -> np.ndarray:
        u = grid - q["position"]
        smooth = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], h, side)
        s = ndtr(-u / h)
        mix = (1.0 - s) + s * np.exp(log_jump) + moment * np.exp(-0.5 * (u / h) ** 2) / (h * np.sqrt(2 * np.pi))
        return np.exp(1j * kappa * smooth) * mix

    return _lowpass_apply(lp, fine, x, h0, wave, antialias=h0)


def _step_curve(spec: StepModel, side: str, names: Sequence[str], p: Sequence[float], x: np.ndarray,
                fixed_blur: float | LowPass | None, blurred: bool) -> np.ndarray:
    """``level_end + drop F(u) [+ jump S(u)]`` for parameters ``p`` named ``names``.

    ``S`` is a sharp step at the interface (1 on the start side), blurred like ``F``. A
    :class:`LowPass` resolution is applied by :func:`_lowpass_curve`.
    """
    if blurred and isinstance(fixed_blur, LowPass):
        return _lowpass_curve(spec, side, names, p, np.asarray(x, dtype=np.float64), fixed_blur)
    q = dict(zip(names, p))
    blur = (q["blur"] if fixed_blur is None else fixed_blur) if blurred else 0.0
    u = x - q["position"]
    out = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], blur, side)
    if "jump" in q:
        out = out + q["jump"] * (ndtr(-u / blur) if blur > 0 else np.where(u < 0, 1.0, np.where(u == 0, 0.5, 0.0)))
    return out


__all__ = ["LowPass"]
