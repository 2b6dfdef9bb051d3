r"""A Li-fraction movie with sharp two-phase fronts that move fast: the ``li_fronts`` twin.

The operando LiCoO2 twin (:mod:`ionscope.simulate.licoo2`) changes slowly and smoothly between
frames (its Li diffuses). Fast low-dose movies of two-phase electrodes show the other extreme: a
sharp delithiation front that sweeps several pixels per frame, so neighbouring frames differ
most where the signal is. Space-time denoisers that assume slow dynamics are judged on this
twin (issue 17; ``benchmarks/denoise.py``).

Model
-----
* **Geometry** (pixels, y down): the electrolyte fills the rows above a rough interface
  :math:`y_0(x) = 3 + 1.5 \sin(4\pi x / n_x + \phi)`; it holds no Li. Below it the electrode
  holds ``n_boundaries`` straight domain boundaries that start at the interface at random
  columns and run downwards at random angles within +/-0.5 rad.
* **Arrival frame** :math:`T(\mathbf r)`: when the front reaches a pixel, in frames of front
  motion. Bulk: the distance from the interface over the front speed :math:`v`
  (``front_speed_px``, px per frame). Along a boundary the front runs ``boundary_speedup`` times
  faster and leaves it sideways at :math:`v`: :math:`T_b = s_b / (k v) + d_b / v` with
  :math:`s_b` the distance along the boundary and :math:`d_b` the distance from it.
  :math:`T = \min(T_{bulk}, \min_b T_b)` (a two-speed arrival time, the fronts' envelope).
* **Front clock** :math:`\tau(t)`: +1 per frame during the ``charge_frames`` (delithiation),
  constant during the ``rest_frames``, -1 per frame during the ``discharge_frames`` (the fronts
  retreat, lithiation).
* **Li fraction**: :math:`x = x_{poor} + (x_{rich} - x_{poor})\,\sigma((T - \tau) v / w)` with
  the logistic :math:`\sigma`, front width :math:`w` (``front_width_px``): Li-poor behind the
  front, Li-rich ahead of it; plus a static smooth texture of standard deviation ``texture``
  (grain-to-grain variation, Gaussian-filtered white noise, 3 px), clipped to [0, 1].
* **Counts**: Poisson with mean ``dose`` x :math:`x` per pixel and frame; the measured fraction
  is counts / dose (as the licoo2 twin's ``li_fraction``).

Ground truth: ``li_fraction_true``, ``front_arrival_frame`` (:math:`T`, frames), the front clock
``front_clock`` per frame and the state (charge / rest / discharge) per frame. The values are
illustrative [open].
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr
from scipy import ndimage

from ionscope.errors import ConfigError
from ionscope.simulate.registry import (
    ProgressCallback, check_parameters, parameter, register_twin, twin_attrs, twin_provenance,
)

TWIN = "li_fronts"
STATE_MEANINGS = "rest charge discharge"
MODEL = (
    "Two-phase delithiation fronts: Li-rich ahead of the front, Li-poor behind it, a logistic "
    "front of width w; the front reaches a pixel at T = min(distance from the rough electrolyte "
    "interface / v, min over domain boundaries of (distance along it / (k v) + distance from it / "
    "v)); the front clock advances one frame per charge frame, stops at rest and runs back during "
    "the discharge; plus a static smooth texture; Poisson counts at the dose."
)


@dataclasses.dataclass(frozen=True)
class LiFrontsParams:
    """Parameters of the ``li_fronts`` twin (module docstring).

    Attributes
    ----------
    ny, nx : int
        Field (px). Default 64 x 64.
    pixel_nm : float
        Pixel size (nm). Default 2.5.
    frame_time_s : float
        Time per frame (s). Default 60.
    charge_frames, rest_frames, discharge_frames : int
        Frames of the protocol. Default 24, 2, 24: at the default speed the fronts cross the
        64-px field during the whole charge and come back during the whole discharge.
    front_speed_px : float
        Bulk front speed (px per frame). Default 2.5 (a fast scene; 0.25 makes a slow one).
    front_width_px : float
        Front width w (px; the logistic's scale). Default 1.5.
    boundary_speedup : float
        How much faster the front runs along a domain boundary. Default 3.
    n_boundaries : int
        Domain boundaries. Default 3.
    x_rich, x_poor : float
        Li fraction ahead of and behind the front. Default 0.95, 0.45.
    texture : float
        Standard deviation of the static texture (Li fraction). Default 0.03.
    dose : float
        Counts per pixel per frame at x = 1. Default 12 (about 8 counts per pixel on average).
    """

    ny: int = parameter(64, 16, 4096, "px", integer=True)
    nx: int = parameter(64, 16, 4096, "px", integer=True)
    pixel_nm: float = parameter(2.5, 0.01, 1e4, "nm")
    frame_time_s: float = parameter(60.0, 1e-3, 1e6, "s")
    charge_frames: int = parameter(24, 0, 10000, "frames", integer=True)
    rest_frames: int = parameter(2, 0, 10000, "frames", integer=True)
    discharge_frames: int = parameter(24, 0, 10000, "frames", integer=True)
    front_speed_px: float = parameter(2.5, 0.0, 100.0, "px/frame")
    front_width_px: float = parameter(1.5, 0.1, 100.0, "px")
    boundary_speedup: float = parameter(3.0, 1.0, 100.0, "")
    n_boundaries: int = parameter(3, 0, 100, "boundaries", integer=True)
    x_rich: float = parameter(0.95, 0.0, 1.0, "")
    x_poor: float = parameter(0.45, 0.0, 1.0, "")
    texture: float = parameter(0.03, 0.0, 0.5, "")
    dose: float = parameter(12.0, 1e-3, 1e9, "counts")

    def __post_init__(self) -> None:
        check_parameters(self, TWIN)
        if self.n_frames < 1:
            raise ConfigError(f"twin {TWIN!r} needs at least one frame: charge_frames + rest_frames + "
                              "discharge_frames is 0")

    @property
    def n_frames(self) -> int:
        """Total number of frames."""
        return self.charge_frames + self.rest_frames + self.discharge_frames


def front_clock(p: LiFrontsParams) -> np.ndarray:
    """The front clock at every frame's start (frames of front motion): it advances by one over
    each charge frame, holds over each rest frame and goes back by one over each discharge frame.

    Examples
    --------
    >>> front_clock(LiFrontsParams(charge_frames=3, rest_frames=1, discharge_frames=2)).tolist()
    [0.0, 1.0, 2.0, 3.0, 3.0, 2.0]
    """
    step = np.concatenate([np.ones(p.charge_frames), np.zeros(p.rest_frames), -np.ones(p.discharge_frames)])
    return np.concatenate([[0.0], np.cumsum(step)[:-1]]) if step.size else np.zeros(0)


def arrival_frames(p: LiFrontsParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The front's arrival frame T (ny, nx) and the electrolyte mask (module docstring)."""
    yy, xx = np.mgrid[: p.ny, : p.nx].astype(np.float64)
    top = 3.0 + 1.5 * np.sin(4.0 * np.pi * xx[0] / p.nx + rng.uniform(0.0, 2.0 * np.pi))
    depth = yy - top[None, :]
    v = max(p.front_speed_px, 1e-9)
    arrival = depth / v
    for _ in range(p.n_boundaries):
        x0, angle = rng.uniform(0.1 * p.nx, 0.9 * p.nx), rng.uniform(-0.5, 0.5)
        start_y = 3.0 + 1.5 * np.sin(4.0 * np.pi * x0 / p.nx)
        along = (yy - start_y) * np.cos(angle) + (xx - x0) * np.sin(angle)
        across = np.abs((xx - x0) * np.cos(angle) - (yy - start_y) * np.sin(angle))
        arrival = np.minimum(arrival, np.maximum(along, 0.0) / (p.boundary_speedup * v) + across / v)
    return arrival, depth < 0


@register_twin(TWIN, "Li-fraction movie with sharp two-phase fronts moving fast (px per frame): a hard "
               "scene for space-time denoising", params=LiFrontsParams)
def simulate_li_fronts(params: LiFrontsParams | None = None, seed: int = 0, *,
                       progress: ProgressCallback | None = None) -> xr.Dataset:
    """Simulate the fronts movie (module docstring).

    Returns
    -------
    xarray.Dataset
        ``li_fraction`` (time, y, x): Poisson counts / dose (attrs ``dose``); truth
        ``li_fraction_true`` (time, y, x), ``front_arrival_frame`` (y, x, frames; NaN in the
        electrolyte), ``front_clock`` (time, frames); ``state`` (time; flags rest, charge,
        discharge); coordinates ``time`` (s, frame starts), ``y``, ``x`` (nm).

    Examples
    --------
    >>> ds = simulate_li_fronts(LiFrontsParams(ny=32, nx=32, charge_frames=4, rest_frames=0, discharge_frames=0))
    >>> ds["li_fraction"].dims, ds.sizes["time"]
    (('time', 'y', 'x'), 4)
    """
    p = LiFrontsParams() if params is None else params
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    arrival, electrolyte = arrival_frames(p, rng)
    texture = ndimage.gaussian_filter(rng.standard_normal((p.ny, p.nx)), 3.0)
    texture *= p.texture / max(float(texture.std()), 1e-12)
    clock = front_clock(p)
    z = (arrival[None] - clock[:, None, None]) * p.front_speed_px / p.front_width_px
    x = p.x_poor + (p.x_rich - p.x_poor) / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))
    x = np.clip(x + texture[None], 0.0, 1.0)
    x[:, electrolyte] = 0.0
    counts = rng.poisson(x * p.dose)
    if progress is not None:
        progress(1, 1)
    state = np.repeat(np.array([1, 0, 2], np.int8), [p.charge_frames, p.rest_frames, p.discharge_frames])
    coords = {"time": ("time", np.arange(p.n_frames) * p.frame_time_s, {"units": "s"}),
              "y": ("y", np.arange(p.ny) * p.pixel_nm, {"units": "nm"}),
              "x": ("x", np.arange(p.nx) * p.pixel_nm, {"units": "nm"})}
    ds = xr.Dataset(
        {
            "li_fraction": (("time", "y", "x"), (counts / p.dose).astype(np.float32),
                            {"units": "1", "dose": float(p.dose),
                             "long_name": "observed Li fraction x (Poisson counts / dose)"}),
            "li_fraction_true": (("time", "y", "x"), x, {"units": "1", "long_name": "true Li fraction"}),
            "front_arrival_frame": (("y", "x"), np.where(electrolyte, np.nan, arrival),
                                    {"units": "frames", "long_name": "front clock at which the front reaches "
                                                                     "the pixel"}),
            "front_clock": (("time",), clock, {"units": "frames", "long_name": "front clock of every frame"}),
            "state": (("time",), state, {"units": "1", "flag_values": [0, 1, 2], "flag_meanings": STATE_MEANINGS,
                                         "long_name": "electrochemical state"}),
        },
        coords=coords,
    )
    ds.attrs = twin_attrs(TWIN, seed, p, primary="li_fraction", model=MODEL)
    return twin_provenance(ds, "ionscope.simulate.li_fronts", p, seed, variables=("li_fraction",))


__all__ = ["LiFrontsParams", "simulate_li_fronts", "front_clock", "arrival_frames"]
