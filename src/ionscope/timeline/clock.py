"""Absolute times: ISO 8601 parsing, time zones, and the rule that naive and zone-aware times are
never mixed silently.

A microscope and a cycler run on two clocks. A time without a zone (EC-Lab, Neware, DM's
DataBar, Nanonis headers: the local wall clock) and a time with one (Velox, a zone given by the
user) can only be compared when the user says which zone the naive one is in (``timezone``); two
naive times are taken to be on the same wall clock. Nothing here guesses a zone.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from ionscope.errors import ConfigError, InputError

__all__ = ["parse_time", "parse_timezone", "with_zone", "seconds_between", "iso"]

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_time(value: Any, what: str) -> dt.datetime:
    """An ISO 8601 time (``str``, :class:`datetime.datetime` or :class:`numpy.datetime64`).

    Parameters
    ----------
    value : str, datetime or numpy.datetime64
        ``2024-05-01T10:00:00``, ``2024-05-01 10:00:00.5+09:00``, ``...Z``.
    what : str
        What the time is (named in the error).

    Raises
    ------
    InputError
        Not an ISO 8601 time.

    Examples
    --------
    >>> parse_time("2024-05-01T10:00:00Z", "start").isoformat()
    '2024-05-01T10:00:00+00:00'
    """
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise InputError(f"{what} is not a time (NaT)")
        return dt.datetime.fromisoformat(str(value.astype("datetime64[us]")))
    text = str(value).strip()
    try:
        if not text or text[0] not in "0123456789":
            raise ValueError(text)
        return dt.datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text))
    except ValueError:
        raise InputError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2024-05-01T10:00:00 or "
                         "2024-05-01T10:00:00+02:00)") from None


def parse_timezone(value: Any) -> dt.tzinfo:
    """A time zone from an IANA name (``Europe/Berlin``), ``UTC``/``Z`` or an offset (``+09:00``).

    Raises
    ------
    ConfigError
        A name the zone database does not know and not an offset.

    Examples
    --------
    >>> parse_timezone("+09:00").utcoffset(None)
    datetime.timedelta(seconds=32400)
    """
    if isinstance(value, dt.tzinfo):
        return value
    text = str(value).strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match[1], int(match[2]), int(match[3] or 0)
        if hours > 23 or minutes > 59:
            raise ConfigError(f"time zone {text!r}: the offset must be within +-23:59")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        return dt.timezone(-delta if sign == "-" else delta)
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, ModuleNotFoundError):
        raise ConfigError(f"time zone {text!r} is neither an IANA name (e.g. Europe/Berlin, Asia/Tokyo) nor an "
                          "offset (e.g. +09:00, UTC)") from None


def with_zone(time: dt.datetime, timezone: Any) -> dt.datetime:
    """``time`` in ``timezone`` when it has no zone (the wall clock there); aware times unchanged."""
    if time.tzinfo is not None or timezone is None:
        return time
    return time.replace(tzinfo=parse_timezone(timezone))


def seconds_between(a: dt.datetime, b: dt.datetime, what: str = "the times", *, timezone: Any = None) -> float:
    """``b - a`` in s.

    Both naive (the same wall clock), both aware, or one naive and ``timezone`` given (the naive
    one is on the wall clock of that zone).

    Raises
    ------
    InputError
        One time has a zone and the other does not, and no ``timezone`` says where the naive one
        was taken.
    """
    if (a.tzinfo is None) != (b.tzinfo is None):
        if timezone is None:
            naive, aware = (a, b) if a.tzinfo is None else (b, a)
            raise InputError(
                f"{what}: {naive.isoformat()} has no time zone but {aware.isoformat()} has one; give the zone of the "
                "naive time (--timezone, e.g. Europe/Berlin or +09:00) or a start time with a zone (--start)")
        a, b = with_zone(a, timezone), with_zone(b, timezone)
    return (b - a).total_seconds()


def iso(time: dt.datetime | None) -> str:
    """ISO 8601 text of a time ('' for None)."""
    return "" if time is None else time.isoformat()
