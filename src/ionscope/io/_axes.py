"""Map calibrated (or uncalibrated) file axes onto ionscope dims and units.

An axis is described the way RosettaSciIO does it: ``{"name", "units", "scale", "offset",
"size"}``, listed in array order. Energy units map to ``energy``, time units to ``time``, a
mass-to-charge axis to ``mass``, and the last two length axes to ``y``, ``x`` (a single length
axis is a ``position`` along a profile). Axes without usable calibration are named from what is
left, in array order; anything ambiguous asks the user for ``--dims``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ionscope.data import AUX_DIMS, DIM_ORDER, DIMS
from ionscope.errors import DimensionError, IonscopeWarning
from ionscope.units import UNCALIBRATED, energy_to_ev, length_to_nm, time_to_s, unit_kind

_NAME_HINTS = {
    "energy": "energy", "energy loss": "energy", "e": "energy",
    "time": "time", "t": "time", "frame": "time", "frames": "time",
    "mass": "mass", "m/z": "mass",
    "position": "position",
    "y": "length", "x": "length", "z": "length",
    "shift": "shift", "phase step": "shift",
}


#: Axis names that mark a spectral wavelength, whose unit (nm) is a length but which is no place.
_WAVELENGTH_NAMES = {"wavelength", "lambda", "λ", "wave length"}


def _kind(axis: dict[str, Any]) -> tuple[str | None, float]:
    """Kind of an axis (energy/time/length/mass or None) and the factor to vocabulary units."""
    unit = str(axis.get("units") or "").strip()
    if str(axis.get("name") or "").strip().lower() in _WAVELENGTH_NAMES:
        raise DimensionError(
            f"the {axis.get('name')!r} axis (size {int(axis['size'])}, in {unit or 'no unit'}) is a spectral "
            "wavelength (e.g. cathodoluminescence), not a length in the specimen; ionscope has no "
            "wavelength dim - convert it to an energy axis (E = 1239.84 eV nm / wavelength) first"
        )
    kind = unit_kind(unit)
    if kind is not None:
        factor = {"length": length_to_nm, "energy": energy_to_ev, "time": time_to_s}.get(kind)
        return kind, factor(unit) if factor else 1.0
    hint = _NAME_HINTS.get(str(axis.get("name") or "").strip().lower())
    if hint is not None and unit.lower() in UNCALIBRATED:
        return hint, 1.0
    return None, 1.0


def assign_dims(axes: Sequence[dict[str, Any]], dims: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Name each axis with an ionscope dim and convert its calibration to vocabulary units.

    Parameters
    ----------
    axes : sequence of dict
        RosettaSciIO-style axis dicts in array order (``name``, ``units``, ``scale``,
        ``offset``, ``size``).
    dims : sequence of str, optional
        Explicit dim names in array order (the ``--dims`` override). Calibrated axes keep
        their calibration; the override only decides the names.

        Auxiliary dims (:data:`~ionscope.data.AUX_DIMS`: ``ion``, ``state``, ``phase``, ``peak``,
        ``depth``, ...) are accepted for axes that are indices, e.g. ``ion,y,x`` for an ion-image
        stack; they hold 0, 1, 2, ... in unit ``"1"``.

    Returns
    -------
    list of dict
        ``{"dim", "scale", "offset", "size", "units", "original_units", "file_scale",
        "file_offset"}`` per axis. An axis whose scale or offset the file gives without a unit
        ionscope knows stays in pixels, with an :class:`~ionscope.errors.IonscopeWarning`.
    """
    n = len(axes)
    kinds = [_kind(a) for a in axes]
    if dims is not None:
        dims = [d.strip() for d in dims]
        if len(dims) != n:
            raise DimensionError(
                f"--dims names {len(dims)} axes ({','.join(dims)}) but the data has {n} "
                f"(shape {tuple(int(a['size']) for a in axes)}); give one name per axis"
            )
        unknown = [d for d in dims if d not in DIMS and d not in AUX_DIMS]
        if unknown or len(set(dims)) != n:
            raise DimensionError(
                f"--dims {','.join(dims)} is not a list of distinct names from "
                f"{', '.join(DIMS)} (physical axes) or {', '.join(AUX_DIMS)} (indices, e.g. an ion-image "
                "stack ion,y,x)"
            )
        names = _names_in_shown_order(axes, kinds, dims)
    else:
        names = _infer_names(axes, kinds)
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    for axis, (kind, factor), dim in zip(axes, kinds, names):
        unit = str(axis.get("units") or "").strip()
        expected = "length" if dim in ("y", "x", "position") else dim
        calibrated = kind == expected and unit.lower() not in UNCALIBRATED
        scale, offset = float(axis.get("scale") or 1.0), float(axis.get("offset") or 0.0)
        if not calibrated and (scale != 1.0 or offset != 0.0 or unit.lower() not in UNCALIBRATED):
            dropped.append(f"{axis.get('name') or 'unnamed'} ({dim}, size {int(axis['size'])}: scale {scale:g}, "
                           f"offset {offset:g}, unit {unit or 'none'!r})")
        out.append(
            {
                "dim": dim,
                "size": int(axis["size"]),
                "scale": scale * factor if calibrated else 1.0,
                "offset": offset * factor if calibrated else 0.0,
                "file_scale": scale,
                "file_offset": offset,
                "units": DIMS[dim] if calibrated else AUX_DIMS.get(dim, "px"),
                "original_units": unit,
            }
        )
    if dropped:
        warnings.warn(
            f"axis calibration without a unit ionscope knows, kept as pixel indices: {'; '.join(dropped)} - the "
            "file's numbers are in the coordinate's attrs (file_scale, file_offset); calibrate the file "
            "(e.g. set the axis units in HyperSpy) to use them",
            IonscopeWarning, stacklevel=3,
        )
    return out


def _names_in_shown_order(axes: Sequence[dict[str, Any]], kinds: Sequence[tuple[str | None, float]],
                          dims: Sequence[str]) -> list[str]:
    """The ``--dims`` names, given in the order ``ionscope info`` shows the axes (the canonical
    dim order of the names ionscope infers; the file's own order when it cannot infer them),
    as names in the file's array order. A name that contradicts an axis' calibrated unit (an
    energy axis named ``y``) is refused rather than its calibration dropped."""
    try:
        inferred = _infer_names(axes, kinds)
    except DimensionError:  # nothing to show: the names follow the file's order
        shown = list(range(len(axes)))
    else:
        rank = {d: i for i, d in enumerate(DIM_ORDER)}
        shown = sorted(range(len(axes)), key=lambda i: rank.get(inferred[i], len(rank)))
    names: list[str] = [""] * len(axes)
    for position, index in enumerate(shown):
        names[index] = dims[position]
    for axis, (kind, _), name in zip(axes, kinds, names):
        expected = "length" if name in ("y", "x", "position") else name
        unit = str(axis.get("units") or "").strip()
        if kind is not None and unit.lower() not in UNCALIBRATED and kind != expected:
            raise DimensionError(
                f"--dims names the {axis.get('name') or 'unnamed'} axis (size {int(axis['size'])}, in {unit}) "
                f"{name!r}, but {unit} is a unit of {kind}; give the names in the order `ionscope info` "
                f"shows the axes ({', '.join(dims)} was given)"
            )
    return names


def _infer_names(axes: Sequence[dict[str, Any]], kinds: Sequence[tuple[str | None, float]]) -> list[str]:
    n = len(axes)
    names: list[str | None] = [None] * n
    for i, (kind, _) in enumerate(kinds):
        if kind in ("energy", "time", "mass", "position", "shift"):
            names[i] = kind
    lengths = [i for i, (kind, _) in enumerate(kinds) if kind == "length"]
    if len(lengths) > 2:
        raise DimensionError(
            f"the file has {len(lengths)} length axes; ionscope maps at most two (y, x): "
            "name them with --dims"
        )
    if len(lengths) == 2:
        names[lengths[0]], names[lengths[1]] = "y", "x"
    elif len(lengths) == 1:
        names[lengths[0]] = "position"
    taken = [d for d in names if d is not None]
    if len(set(taken)) != len(taken):
        raise DimensionError(
            f"two axes map to the same dim ({', '.join(str(a.get('name')) for a in axes)}); "
            "name them with --dims"
        )
    free = [i for i in range(n) if names[i] is None]
    if free:
        # Uncalibrated axes take what is left of (time, y, x), from the end; y and x are
        # only ever named together, so a lone uncalibrated axis beside a spectrum is refused.
        pool = ["position"] if n == 1 else [d for d in ("time", "y", "x") if d not in taken]
        chosen = pool[-len(free):] if len(free) <= len(pool) else None
        if chosen is None or ("y" in chosen) != ("x" in chosen):
            raise DimensionError(
                f"cannot tell what the uncalibrated axis/axes of size "
                f"{tuple(int(axes[i]['size']) for i in free)} are; name every axis with "
                "--dims, e.g. --dims time,y,x"
            )
        for i, dim in zip(free, chosen):
            names[i] = dim
    return [str(d) for d in names]
