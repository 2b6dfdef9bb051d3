"""Parameters of the EELS twins ``eels_licoo2`` and ``eels_sr``.

The models they parametrise are described in :mod:`ionscope.simulate.eels` (which re-exports
both classes); each field is a :func:`~ionscope.simulate.registry.parameter` or
:func:`~ionscope.simulate.registry.flag`, checked on construction together with the
combinations (background exponent, energy axis, ``li_params``, ``frames``) checked here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ionscope.errors import ConfigError
from ionscope.simulate.eels_spectra import KERNEL_SIGMAS
from ionscope.simulate.licoo2 import LiCoO2Params
from ionscope.simulate.registry import check_parameters, flag, parameter


def _check_common(p: Any, twin: str) -> None:
    check_parameters(p, twin)
    if p.background_r - p.background_r_spread < 0.5:
        raise ConfigError(
            f"parameters 'background_r' - 'background_r_spread' of twin {twin!r} must be at least "
            f"0.5, got {p.background_r - p.background_r_spread:g}"
        )
    lowest = p.energy_start_eV - KERNEL_SIGMAS * p.resolution_eV / 2.3548 - p.dispersion_eV
    lowest -= getattr(p, "drift_eV", 0.0) + 6.0 * getattr(p, "jitter_eV", 0.0)
    if lowest <= 1.0:
        raise ConfigError(
            f"twin {twin!r}: the energy axis starts too low ({p.energy_start_eV:g} eV) for the "
            "resolution and drift (the padded, shifted axis must stay above 1 eV); raise "
            "'energy_start_eV'"
        )


@dataclasses.dataclass(frozen=True)
class EELSLiCoO2Params:
    """Parameters of the operando STEM-EELS twin ``eels_licoo2``.

    Attributes
    ----------
    energy_start_eV, dispersion_eV, channels : float, float, int
        Energy axis: first channel (eV), channel width (eV) and number of channels. Default
        30 eV, 0.25 eV, 256 (30 - 93.75 eV); benchmarks use 0.1 eV x 1024 (30 - 132.3 eV).
    dose : float
        Incident electrons per pixel per frame. Default 1e6 (500 background counts per
        0.25 eV channel at 50 eV; a single pixel's MLLS Li fraction then has a standard
        deviation of about 0.15-0.2: single frames are noisy).
    reference_dose : float
        Electrons per reference spectrum (high S/N). Default 1e8.
    noise : bool
        Poisson noise (True) or noiseless expected counts (False). Default True.
    background : bool
        Include the power-law background (default True); False gives edge-only spectra.
    drift_eV : float
        Amplitude (``max |shift|``, eV) of the smooth per-frame energy drift. Default 0.
    jitter_eV : float
        Standard deviation (eV) of the per-pixel, per-frame energy jitter. Default 0.
    resolution_eV : float
        FWHM (eV) of the Gaussian energy resolution; 0 for none. Default 1.0.
    background_a : float
        Background density A at 50 eV (1/eV per incident electron) at relative thickness 1.
        Default 2e-3.
    background_a_spread : float
        Relative half-range of the per-pixel variation of A. Default 0.1.
    background_r, background_r_spread : float
        Background exponent r and the half-range of its per-pixel variation. Default 3.5, 0.2.
    edge_scale_per_eV : float
        Density (1/eV per incident electron) of the LiCoO2 Co-M2,3 maximum at relative
        thickness 1 (edge strength 1). Default 4e-4.
    thickness_variation : float
        Amplitude tau of the relative thickness t = 1 + tau f (``max |f| = 1``). Default 0.15.
    li_params : dict
        Parameters of the ``licoo2`` twin (not ``dose``: it is rendered noiseless). Default
        ``{"ny": 32, "nx": 32}`` (157 frames).
    frames : "all" or sequence of int
        Which licoo2 frames to render (strictly increasing indices). Default "all".
    stream : bool
        Render the spectra lazily: a dask array, one chunk per frame, each frame rendered when
        it is computed (e.g. written to Zarr chunk by chunk), never the whole series in memory;
        the values are those of the in-memory twin. Default False; spectra larger than
        ``STREAM_BYTES`` (1 GiB) are always streamed.
    """

    energy_start_eV: float = parameter(30.0, 2.0, 2000.0, "eV")
    dispersion_eV: float = parameter(0.25, 0.005, 5.0, "eV/channel")
    channels: int = parameter(256, 16, 16384, "channels", integer=True)
    dose: float = parameter(1e6, 1e-3, 1e15, "electrons/px/frame")
    reference_dose: float = parameter(1e8, 1e-3, 1e15, "electrons")
    noise: bool = flag(True)
    background: bool = flag(True)
    drift_eV: float = parameter(0.0, 0.0, 20.0, "eV")
    jitter_eV: float = parameter(0.0, 0.0, 5.0, "eV")
    resolution_eV: float = parameter(1.0, 0.0, 10.0, "eV")
    background_a: float = parameter(2e-3, 0.0, 1.0, "1/eV")
    background_a_spread: float = parameter(0.1, 0.0, 0.9, "")
    background_r: float = parameter(3.5, 0.5, 8.0, "")
    background_r_spread: float = parameter(0.2, 0.0, 2.0, "")
    edge_scale_per_eV: float = parameter(4e-4, 0.0, 1.0, "1/eV")
    thickness_variation: float = parameter(0.15, 0.0, 0.9, "")
    li_params: dict = dataclasses.field(
        default_factory=lambda: {"ny": 32, "nx": 32}, hash=False
    )
    frames: Any = dataclasses.field(default="all", hash=False)
    stream: bool = flag(False)

    def __post_init__(self) -> None:
        _check_common(self, "eels_licoo2")
        if not isinstance(self.li_params, Mapping):
            raise ConfigError(
                f"parameter 'li_params' of twin 'eels_licoo2' must be a dict of licoo2 "
                f"parameters, got {self.li_params!r}"
            )
        li = dict(self.li_params)
        if "dose" in li:
            raise ConfigError(
                "parameter 'li_params' of twin 'eels_licoo2' must not set 'dose': the Li field "
                "is rendered noiseless; set the EELS 'dose' instead"
            )
        names = {f.name for f in dataclasses.fields(LiCoO2Params)}
        unknown = sorted(set(li) - names)
        if unknown:
            raise ConfigError(
                f"unknown licoo2 parameter(s) {unknown} in 'li_params' of twin 'eels_licoo2'; "
                f"valid: {', '.join(sorted(names - {'dose'}))}"
            )
        try:
            n_total = LiCoO2Params(**li, dose=None).n_frames
        except ConfigError as exc:
            raise ConfigError(f"in 'li_params' of twin 'eels_licoo2': {exc}") from None
        object.__setattr__(self, "li_params", li)
        frames = self.frames
        if isinstance(frames, str):
            if frames != "all":
                raise ConfigError(
                    f"parameter 'frames' of twin 'eels_licoo2' must be 'all' or a list of frame "
                    f"indices, got {frames!r}"
                )
            return
        try:
            idx = [int(k) for k in frames]
            ok = all(float(k) == i for k, i in zip(frames, idx)) and not any(
                isinstance(k, (bool, np.bool_)) for k in frames
            )
        except (TypeError, ValueError):
            ok = False
        if not ok or not idx:
            raise ConfigError(
                f"parameter 'frames' of twin 'eels_licoo2' must be 'all' or a non-empty list of "
                f"integer frame indices, got {frames!r}"
            )
        if any(b <= a for a, b in zip(idx, idx[1:])) or idx[0] < 0 or idx[-1] >= n_total:
            raise ConfigError(
                f"parameter 'frames' of twin 'eels_licoo2' must be strictly increasing indices in "
                f"[0, {n_total - 1}] (the licoo2 series has {n_total} frames), got {idx}"
            )
        object.__setattr__(self, "frames", tuple(idx))

    def frame_indices(self, n_total: int) -> np.ndarray:
        """The licoo2 frame indices to render."""
        if self.frames == "all":
            return np.arange(n_total)
        return np.asarray(self.frames, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class EELSSRParams:
    """Parameters of the SR-EELS twin ``eels_sr`` (Cu / LASGTP interface).

    Attributes
    ----------
    energy_start_eV, dispersion_eV, channels : float, float, int
        Energy axis (eV, eV, channels). Default 30, 0.25, 256.
    position_step_nm : float
        Row spacing along the profile (nm). Default 0.5.
    positions : int
        Number of rows. Default 160 (80 nm).
    interface_position_nm : float
        Position p_i of the Cu / electrolyte interface (Cu below). Default 30.
    interface_width_nm : float
        Gaussian width sigma_i of the interface step (roughness and probe). Default 1.0.
    enrichment_width_nm : float
        Width W of the Li-enriched zone in the electrolyte (nm from the interface to half the
        excess). Default 13 (the seed result).
    enrichment_edge_nm : float
        Gaussian width sigma_e of the enriched zone's far edge. Default 1.0.
    enrichment : float
        Li in the enriched zone relative to the bulk electrolyte (1 = none). Default 1.5 [open].
    dose, reference_dose : float
        Electrons per row spectrum (a row integrates along the slit, so many probe positions)
        and per reference spectrum. Default 1e8, 1e9.
    noise, background, resolution_eV, background_*, edge_scale_per_eV, thickness_variation
        As for :class:`EELSLiCoO2Params` (thickness varies smoothly along the profile).
    """

    energy_start_eV: float = parameter(30.0, 2.0, 2000.0, "eV")
    dispersion_eV: float = parameter(0.25, 0.005, 5.0, "eV/channel")
    channels: int = parameter(256, 16, 16384, "channels", integer=True)
    position_step_nm: float = parameter(0.5, 0.01, 100.0, "nm")
    positions: int = parameter(160, 8, 100000, "rows", integer=True)
    interface_position_nm: float = parameter(30.0, 0.0, 1e6, "nm")
    interface_width_nm: float = parameter(1.0, 0.01, 1e3, "nm")
    enrichment_width_nm: float = parameter(13.0, 0.0, 1e4, "nm")
    enrichment_edge_nm: float = parameter(1.0, 0.01, 1e3, "nm")
    enrichment: float = parameter(1.5, 0.0, 100.0, "")
    dose: float = parameter(1e8, 1e-3, 1e15, "electrons/row")
    reference_dose: float = parameter(1e9, 1e-3, 1e15, "electrons")
    noise: bool = flag(True)
    background: bool = flag(True)
    resolution_eV: float = parameter(1.0, 0.0, 10.0, "eV")
    background_a: float = parameter(2e-3, 0.0, 1.0, "1/eV")
    background_a_spread: float = parameter(0.05, 0.0, 0.9, "")
    background_r: float = parameter(3.5, 0.5, 8.0, "")
    background_r_spread: float = parameter(0.1, 0.0, 2.0, "")
    edge_scale_per_eV: float = parameter(4e-4, 0.0, 1.0, "1/eV")
    thickness_variation: float = parameter(0.1, 0.0, 0.9, "")

    def __post_init__(self) -> None:
        _check_common(self, "eels_sr")
        length = self.positions * self.position_step_nm
        lo = 3 * self.interface_width_nm
        hi = self.interface_position_nm + self.enrichment_width_nm + 3 * self.enrichment_edge_nm
        if not lo <= self.interface_position_nm or hi > length:
            raise ConfigError(
                f"twin 'eels_sr': the interface ({self.interface_position_nm:g} nm) and the "
                f"enriched zone must lie inside the profile: need 3 * interface_width_nm = "
                f"{lo:g} <= interface_position_nm and interface_position_nm + "
                f"enrichment_width_nm + 3 * enrichment_edge_nm = {hi:g} <= positions * "
                f"position_step_nm = {length:g} nm"
            )


__all__ = ["EELSLiCoO2Params", "EELSSRParams"]
