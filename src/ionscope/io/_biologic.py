"""BioLogic EC-Lab files (``.mpr`` binary, ``.mpt`` text export) into the cycler model."""

from __future__ import annotations

from pathlib import Path

from ionscope.errors import FormatError
from ionscope.io._cycler import RawLog, _head


def is_mpt(path: Path) -> bool:
    """Whether a text file is an EC-Lab text export (first line ``EC-Lab ASCII FILE``)."""
    lines = _head(path, 1)
    return bool(lines) and lines[0].strip().upper().startswith("EC-LAB ASCII FILE")


def read_mpt(path: Path) -> RawLog:
    raise FormatError(f"{path}: the EC-Lab .mpt reader is not available yet")


def read_mpr(path: Path) -> RawLog:
    raise FormatError(f"{path}: the EC-Lab .mpr reader is not available yet")
