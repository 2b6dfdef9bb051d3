"""Shared fixtures: small labelled arrays and files written by RosettaSciIO."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ionscope.data import signal


@pytest.fixture
def series():
    """A (time, y, x) float32 Li-fraction series with calibrated axes."""
    rng = np.random.default_rng(0)
    return signal(
        rng.random((4, 6, 5), dtype=np.float32), ("time", "y", "x"), name="li_fraction", units="1",
        coords={"time": 60.0, "y": 2.5, "x": 2.5}, long_name="Li fraction",
    )


@pytest.fixture
def run_cli():
    """Run the real ``ionscope`` console entry point in a subprocess."""

    def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
        env = dict(os.environ, COLUMNS="200")
        return subprocess.run(
            [sys.executable, "-m", "ionscope", *map(str, args)],
            capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
        )

    return run
