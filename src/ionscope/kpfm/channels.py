"""KPFM frames: their channels and scan directions, which one is the potential, and its sign.

A frame (as the SPM readers of :mod:`ionscope.io` give it) is an :class:`xarray.Dataset` with one
variable per channel and direction, ``{channel}_{direction}`` (``direction`` forward or backward,
e.g. ``Z_forward`` in nm, ``Potential_backward`` in V), dims (y, x) with row 0 at the top, a
``row_time`` (y) coordinate in s from the frame start and the attrs ``start_time`` (ISO 8601),
``scan_direction`` (up or down), ``scan_range_nm``, ``acquisition_time_s`` and ``source_file``.

- :func:`channel_table` lists a frame's channels and their traces; :func:`choose_channel` picks
  the Kelvin (potential) output - given, or the one channel in volts whose name says it is the
  Kelvin / CPD / potential (or, failing those, bias) output; :func:`choose_topography` the height
  channel; :func:`trace` reads one trace (forward, backward or their mean).
- Sign convention: the Kelvin controller nulls the electrostatic force with a DC bias applied
  either to the tip or to the sample, and the channel records that bias. ionscope's potential is
  the sample's: ``V_sample = SAMPLE_POTENTIAL_SIGN[bias_on] * recorded``. The controller nulls
  the force when the tip-sample potential difference vanishes: with the bias on the tip,
  ``V_dc = V_sample + V_CPD`` (the tip follows the sample: ``+recorded``); with the bias on the
  sample and the tip grounded, ``V_sample + V_dc = -V_CPD`` (``-recorded``) - the constant contact
  potential drops out of the referenced maps. Some vendors invert the stored channel, so check
  it once per instrument with a frame recorded at a known applied bias
  (:func:`check_sign_convention`), which says which ``bias_on`` the data support.

References
----------
W. Melitz, J. Shen, A.C. Kummel, S. Lee, Surf. Sci. Rep. 66, 1 (2011) (KPFM modes and the bias
sign); T. Glatzel, S. Sadewasser, M.Ch. Lux-Steiner, Appl. Surf. Sci. 210, 84 (2003).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError, InputError

__all__ = [
    "DIRECTIONS",
    "VOLT_UNITS",
    "SAMPLE_POTENTIAL_SIGN",
    "POTENTIAL_WORDS",
    "BIAS_WORDS",
    "TOPOGRAPHY_WORDS",
    "channel_table",
    "choose_channel",
    "choose_topography",
    "trace",
    "trace_pair",
    "trace_variables",
    "trace_from",
    "sample_potential_kernel",
    "sign_convention_text",
    "check_sign_convention",
]

#: Potential units and their size in V.
VOLT_UNITS: dict[str, float] = {"V": 1.0, "mV": 1e-3, "µV": 1e-6, "uV": 1e-6, "μV": 1e-6}
#: Trace directions of a channel; ``mean`` averages forward and backward.
DIRECTIONS = ("forward", "backward", "mean")
#: ``V_sample = sign * recorded`` for the bias applied to the sample or to the tip.
SAMPLE_POTENTIAL_SIGN: dict[str, float] = {"sample": -1.0, "tip": 1.0}
#: Words in a channel name that mark the Kelvin-controller (potential) output.
POTENTIAL_WORDS = ("kelvin", "kpfm", "skpm", "kpm", "cpd", "potential", "surfacepotential")
#: Words that mark a bias channel (the Kelvin output on instruments that record it as the bias).
BIAS_WORDS = ("bias",)
#: Words that mark a height channel.
TOPOGRAPHY_WORDS = ("z", "height", "topography", "topo")

_SUFFIX = re.compile(r"^(?P<channel>.+?)[_ ](?P<direction>forward|backward|fwd|bwd|trace|retrace)$", re.IGNORECASE)
_NORMAL = {"forward": "forward", "fwd": "forward", "trace": "forward",
           "backward": "backward", "bwd": "backward", "retrace": "backward"}


def _words(name: str) -> list[str]:
    """Lower-case words of a channel name (split at non-letters and camel case)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-z]+", spaced.lower()) if w]


def _matches(name: str, words: Sequence[str]) -> bool:
    parts = _words(name)
    joined = "".join(parts)
    return any(w in parts or (len(w) > 3 and w in joined) for w in words)


def channel_table(frame: xr.Dataset) -> dict[str, dict[str, str]]:
    """``{channel: {direction: variable}}`` of a frame's (y, x) variables.

    ``Potential_forward`` and ``Potential_backward`` are the two traces of channel
    ``Potential``; a variable without a direction suffix is a channel with a forward trace only.
    """
    if not isinstance(frame, xr.Dataset):
        raise InputError(f"a KPFM frame must be an xarray Dataset of channels, got {type(frame).__name__}")
    table: dict[str, dict[str, str]] = {}
    for name, var in frame.data_vars.items():
        if set(var.dims) != {"y", "x"}:
            continue
        m = _SUFFIX.match(str(name))
        channel, direction = (m["channel"], _NORMAL[m["direction"].lower()]) if m else (str(name), "forward")
        table.setdefault(channel, {})[direction] = str(name)
    return table


def _describe(frame: xr.Dataset, table: Mapping[str, Mapping[str, str]]) -> str:
    parts = []
    for channel, traces in table.items():
        unit = frame[next(iter(traces.values()))].attrs.get("units", "?")
        parts.append(f"{channel} [{unit}] ({'/'.join(sorted(traces))})")
    return ", ".join(parts) or "none"


def _unit(frame: xr.Dataset, traces: Mapping[str, str]) -> str:
    return str(frame[next(iter(traces.values()))].attrs.get("units", "")).strip()


def _source(frame: xr.Dataset) -> str:
    return str(frame.attrs.get("source_file") or "the frame")


def choose_channel(frame: xr.Dataset, channel: str | None = None) -> str:
    """The potential channel of a frame: ``channel`` when given, else the one channel in volts
    named like the Kelvin output.

    Names are matched case-insensitively on their words: first :data:`POTENTIAL_WORDS`
    (Kelvin, KPFM, CPD, potential...), then, when none of those is present, :data:`BIAS_WORDS`.
    Volts are any of :data:`VOLT_UNITS` (V, mV, µV).

    Raises
    ------
    InputError
        The channel does not exist, is not in volts, or there is none or more than one candidate;
        the message lists the frame's channels with their units.
    """
    table = channel_table(frame)
    if channel is not None:
        if channel not in table:
            folded = {c.lower(): c for c in table}
            if channel.lower() not in folded:
                raise InputError(f"{_source(frame)} has no channel {channel!r}; its channels are "
                                 f"{_describe(frame, table)}")
            channel = folded[channel.lower()]
        unit = _unit(frame, table[channel])
        if unit not in VOLT_UNITS:
            raise InputError(f"{_source(frame)}: channel {channel!r} is in {unit or 'no unit'!r}, not V; the "
                             f"potential channel must be in volts (channels: {_describe(frame, table)})")
        return channel
    volts = [c for c, traces in table.items() if _unit(frame, traces) in VOLT_UNITS]
    for words in (POTENTIAL_WORDS, BIAS_WORDS):
        found = [c for c in volts if _matches(c, words)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError(f"{_source(frame)}: several channels could be the Kelvin (potential) output: "
                             f"{', '.join(found)}; choose one (--channel NAME). Channels: {_describe(frame, table)}")
    raise InputError(f"{_source(frame)}: no channel in V looks like the Kelvin (potential/CPD/bias) output; "
                     f"choose one (--channel NAME). Channels: {_describe(frame, table)}")


def choose_topography(frame: xr.Dataset) -> str | None:
    """The height channel of a frame (a length unit and a name like Z / height / topography), or
    None when there is not exactly one."""
    from ionscope.units import length_to_nm

    table = channel_table(frame)
    found = [c for c, traces in table.items()
             if length_to_nm(frame[next(iter(traces.values()))].attrs.get("units", "")) is not None
             and _matches(c, TOPOGRAPHY_WORDS)]
    return found[0] if len(found) == 1 else None


def trace(frame: xr.Dataset, channel: str, direction: str = "forward") -> np.ndarray:
    """One trace of a channel as float64 (y, x): ``forward``, ``backward`` or their ``mean``.

    Lengths are converted to nm (:mod:`ionscope.units`), potentials to V; other units are kept.

    Raises
    ------
    ConfigError
        An unknown direction.
    InputError
        The channel has no such trace (the message lists those it has).
    """
    return trace_from(frame, trace_variables(frame, channel, direction))


def trace_from(frame: xr.Dataset, spec: Sequence[tuple[str, float]]) -> np.ndarray:
    """The trace of the variables ``spec`` names (``(name, factor)`` pairs, as
    :func:`trace_variables` gives them): one, or the mean of two, as float64 (y, x)."""
    arrays = [np.asarray(frame[name].transpose("y", "x").values, dtype=np.float64) * factor for name, factor in spec]
    return arrays[0] if len(arrays) == 1 else 0.5 * (arrays[0] + arrays[1])


def trace_variables(frame: xr.Dataset, channel: str, direction: str = "forward") -> list[tuple[str, float]]:
    """The variables a :func:`trace` averages and the factor that converts each to V or nm,
    checked without reading them (a lazy frame stays lazy).

    Raises
    ------
    ConfigError
        An unknown direction.
    InputError
        The channel has no such trace (the message lists those it has).
    """
    from ionscope.units import length_to_nm

    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    table = channel_table(frame)
    if channel not in table:
        raise InputError(f"{_source(frame)} has no channel {channel!r}; its channels are {_describe(frame, table)}")
    traces = table[channel]
    wanted = ("forward", "backward") if direction == "mean" else (direction,)
    missing = [d for d in wanted if d not in traces]
    if missing:
        raise InputError(f"{_source(frame)}: channel {channel!r} has no {' and no '.join(missing)} trace (it has "
                         f"{', '.join(sorted(traces))}); choose --direction {' or '.join(sorted(traces))}")
    out = []
    for d in wanted:
        unit = str(frame[traces[d]].attrs.get("units", "")).strip()
        out.append((traces[d], float(VOLT_UNITS.get(unit) or length_to_nm(unit) or 1.0)))
    return out


def trace_pair(frame: xr.Dataset, channel: str) -> tuple[np.ndarray, np.ndarray]:
    """The forward and the backward trace of a channel (float64, as recorded)."""
    return trace(frame, channel, "forward"), trace(frame, channel, "backward")


def sample_potential_kernel(recorded: np.ndarray, bias_on: str) -> np.ndarray:
    """The sample's potential (V) from the recorded Kelvin bias: ``SAMPLE_POTENTIAL_SIGN[bias_on]
    * recorded``."""
    if bias_on not in SAMPLE_POTENTIAL_SIGN:
        raise ConfigError(f"bias_on must be 'sample' or 'tip', got {bias_on!r}")
    return SAMPLE_POTENTIAL_SIGN[bias_on] * np.asarray(recorded, dtype=np.float64)


def sign_convention_text(bias_on: str) -> str:
    """A sentence that records the convention in a result's attrs."""
    if bias_on == "tip":
        return "Kelvin bias applied to the tip: potential = recorded bias"
    return "Kelvin bias applied to the sample: potential = -recorded bias"


def _box_values(image: np.ndarray, box: Sequence[int] | None) -> np.ndarray:
    if box is None:
        return image[np.isfinite(image)]
    y0, y1, x0, x1 = (int(v) for v in box)
    if not (0 <= y0 < y1 <= image.shape[0] and 0 <= x0 < x1 <= image.shape[1]):
        raise ConfigError(f"box {y0}:{y1},{x0}:{x1} is not inside the {image.shape[0]} x {image.shape[1]} px image")
    part = image[y0:y1, x0:x1]
    return part[np.isfinite(part)]


def check_sign_convention(recorded_biased: Any, recorded_zero: Any, applied_bias_V: float, *, bias_on: str,
                          region: Sequence[int] | None = None, reference: Sequence[int] | None = None,
                          rtol: float = 0.2) -> dict[str, Any]:
    """Check the sign convention with a known applied bias.

    Record the same area twice, once with the sample (or the biased electrode) at a known
    ``applied_bias_V`` against the grounded one and once at 0 V. With the right convention the
    sample potential of the biased region rises by ``applied_bias_V`` relative to the grounded
    reference.

    Parameters
    ----------
    recorded_biased, recorded_zero : array_like or xarray.DataArray (y, x)
        The Kelvin channel as recorded (V), with and without the bias.
    applied_bias_V : float
        The applied bias (V), non-zero.
    bias_on : {"sample", "tip"}
        The convention to check (:data:`SAMPLE_POTENTIAL_SIGN`).
    region, reference : (y0, y1, x0, x1), optional
        Pixel boxes (half-open) of the biased region and of the grounded reference; default the
        whole frame and no reference (a whole-sample bias against a grounded tip).
    rtol : float
        Relative tolerance of the measured change.

    Returns
    -------
    dict
        ``measured_V`` (median change of the region minus that of the reference, with this
        convention), ``applied_V``, ``bias_on``, ``consistent`` (the same sign and within
        ``rtol``) and ``suggested_bias_on`` (the convention the data support: the other one when
        the sign comes out inverted; None when neither fits).

    Examples
    --------
    >>> import numpy as np
    >>> zero = np.zeros((8, 8)); tip_bias = zero + 0.5   # the tip's bias follows a +0.5 V sample
    >>> check_sign_convention(tip_bias, zero, 0.5, bias_on="tip")["consistent"]
    True
    >>> check_sign_convention(zero - 0.5, zero, 0.5, bias_on="sample")["consistent"]   # the sample's bias nulls it
    True
    """
    if not np.isfinite(applied_bias_V) or applied_bias_V == 0:
        raise ConfigError(f"applied_bias_V must be a non-zero number of volts, got {applied_bias_V!r}")
    a = np.asarray(getattr(recorded_biased, "values", recorded_biased), dtype=np.float64)
    b = np.asarray(getattr(recorded_zero, "values", recorded_zero), dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"the two recordings must be 2-D maps of one shape, got {a.shape} and {b.shape}")
    diff = sample_potential_kernel(a, bias_on) - sample_potential_kernel(b, bias_on)
    change = float(np.median(_box_values(diff, region)))
    if reference is not None:
        change -= float(np.median(_box_values(diff, reference)))
    ok = bool(np.sign(change) == np.sign(applied_bias_V) and abs(change - applied_bias_V) <= rtol * abs(applied_bias_V))
    flipped = abs(-change - applied_bias_V) <= rtol * abs(applied_bias_V)
    other = "tip" if bias_on == "sample" else "sample"
    return {"measured_V": change, "applied_V": float(applied_bias_V), "bias_on": bias_on, "consistent": ok,
            "suggested_bias_on": bias_on if ok else (other if flipped else None)}
