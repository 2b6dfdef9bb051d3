"""The one units table of ionscope: which unit strings mean what, and the factor to each kind's
vocabulary unit (lengths to nm, energies to eV, times to s; mass-to-charge stays in u).

Every package that reads a unit from a file, a coordinate's ``units`` attribute or a user's
option converts it here, so that ``"µm"``, ``"um"``, ``"μm"`` (Greek mu) and ``"micron"`` mean the
same everywhere and ``"MeV"`` is never read as ``"meV"``.

Lookup is exact first; a case-folded match is accepted only for units whose case carries no
meaning (``"NM"``, ``"Angstrom"``, ``"EV"``), never for prefixes that differ by case
(``m``/``M``).

Examples
--------
>>> length_to_nm("µm"), length_to_nm("Å"), length_to_nm("micron")
(1000.0, 0.1, 1000.0)
>>> energy_to_ev("keV"), energy_to_ev("MeV"), energy_to_ev("meV")
(1000.0, 1000000.0, 0.001)
>>> unit_kind("ms"), unit_kind("px")
('time', None)
"""

from __future__ import annotations

from ionscope.errors import InputError

__all__ = [
    "LENGTH_TO_NM",
    "ENERGY_TO_EV",
    "TIME_TO_S",
    "MASS_UNITS",
    "CONCENTRATION_UNITS",
    "UNCALIBRATED",
    "normalise_unit",
    "length_to_nm",
    "energy_to_ev",
    "time_to_s",
    "unit_kind",
    "require_length_to_nm",
]

#: Length units and their size in nm (exact spellings).
LENGTH_TO_NM: dict[str, float] = {
    "pm": 1e-3, "Å": 0.1, "A": 0.1, "nm": 1.0, "µm": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9,
}
#: Energy units and their size in eV (exact spellings).
ENERGY_TO_EV: dict[str, float] = {"meV": 1e-3, "eV": 1.0, "keV": 1e3, "MeV": 1e6}
#: Time units and their length in s (exact spellings).
TIME_TO_S: dict[str, float] = {
    "ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0,
}
#: Mass-to-charge units (all mean u per elementary charge).
MASS_UNITS = frozenset({"m/z", "Th", "u", "Da", "amu"})
#: Amount-of-substance concentrations (exact spellings): what a Li concentration map may be in.
CONCENTRATION_UNITS = frozenset({"mol/m^3", "mol/m3", "mol m^-3", "mol/L", "mol/l", "M", "mM", "mol/cm^3",
                                 "1/m^3", "m^-3", "1/cm^3", "cm^-3", "1/nm^3", "nm^-3"})
#: Unit strings that mean "no calibration".
UNCALIBRATED = frozenset({"", "<undefined>", "undefined", "px", "pixel", "pixels", "none", "1", "a.u."})

# Other spellings of the exact units above (case-insensitive: matched after case folding).
_ALIASES = {
    "å": "Å", "\u212b": "Å", "a": "Å", "angstrom": "Å", "angstroms": "Å", "ångström": "Å",
    "nanometer": "nm", "nanometre": "nm", "nanometers": "nm", "nanometres": "nm",
    "um": "µm", "μm": "µm", "micron": "µm", "microns": "µm", "micrometer": "µm", "micrometre": "µm",
    "us": "µs", "μs": "µs",
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "hr": "h", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
    "th": "Th", "da": "Da",
}
# Units whose case carries no meaning: a case-folded spelling is accepted.
_CASELESS = {u.casefold(): u for u in ("nm", "pm", "eV", "keV", "Å")}


def normalise_unit(unit: object) -> str:
    """The canonical spelling of a unit string (``"um"`` -> ``"µm"``, ``"Angstrom"`` -> ``"Å"``,
    ``"EV"`` -> ``"eV"``); unknown strings come back stripped but otherwise unchanged."""
    text = str(unit if unit is not None else "").strip()
    if text in LENGTH_TO_NM or text in ENERGY_TO_EV or text in TIME_TO_S or text in MASS_UNITS:
        return text
    folded = text.casefold()
    if folded in _ALIASES:
        return _ALIASES[folded]
    return _CASELESS.get(folded, text)


def _factor(table: dict[str, float], unit: object) -> float | None:
    value = table.get(normalise_unit(unit))
    return None if value is None else float(value)


def length_to_nm(unit: object) -> float | None:
    """Size of one ``unit`` in nm, or None when ``unit`` is not a length unit."""
    return _factor(LENGTH_TO_NM, unit)


def energy_to_ev(unit: object) -> float | None:
    """Size of one ``unit`` in eV, or None when ``unit`` is not an energy unit."""
    return _factor(ENERGY_TO_EV, unit)


def time_to_s(unit: object) -> float | None:
    """Length of one ``unit`` in s, or None when ``unit`` is not a time unit."""
    return _factor(TIME_TO_S, unit)


def unit_kind(unit: object) -> str | None:
    """``"length"``, ``"energy"``, ``"time"`` or ``"mass"``, or None (uncalibrated or unknown)."""
    canonical = normalise_unit(unit)
    for kind, table in (("length", LENGTH_TO_NM), ("energy", ENERGY_TO_EV), ("time", TIME_TO_S)):
        if canonical in table:
            return kind
    return "mass" if canonical in MASS_UNITS else None


def require_length_to_nm(unit: object, what: str) -> float:
    """Size of one ``unit`` in nm; an :class:`~ionscope.errors.InputError` naming ``what`` (e.g.
    ``"the position axis"``) when it is not a length."""
    factor = length_to_nm(unit)
    if factor is None:
        raise InputError(
            f"{what} is in {str(unit)!r}, not a length; calibrate it in nm (set the coordinate's "
            "units attribute, e.g. da[dim].attrs['units'] = 'nm')"
        )
    return factor
