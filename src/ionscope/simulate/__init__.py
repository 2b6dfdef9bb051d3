"""Digital twins: forward models that make realistic data with known ground truth.

Each twin is a function registered under a short name with :func:`register_twin`; users call
:func:`simulate` with the name, a seed and the twin's parameters and get an
:class:`xarray.Dataset` whose ``attrs["primary"]`` names the observed variable. Noise is drawn
from :func:`numpy.random.default_rng` seeded with ``seed``, so a run is reproducible from its
name, seed and parameters (all three are recorded in ``attrs``).

A twin declares its parameters as a frozen dataclass of :func:`parameter` fields (a number in an
inclusive range with its unit, optionally an integer or None) and :func:`flag` fields (True or
False); :func:`check_parameters` (called from the dataclass's ``__post_init__``) enforces them with
the :class:`ionscope.validation.Interval` constraints of every other public function. The
registry lives in :mod:`ionscope.simulate.registry`, which the twins import (this package
imports the twins, so they never import it back).

Examples
--------
>>> from ionscope.simulate import simulate, TWINS
>>> "licoo2" in TWINS
True
>>> ds = simulate("licoo2", seed=1, ny=32, nx=32, charge_frames=2, rest1_frames=1,
...               discharge_frames=2, rest2_frames=1)
>>> ds[ds.attrs["primary"]].dims
('time', 'y', 'x')
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ionscope.errors import InputError
from ionscope.simulate.registry import (
    TWINS,
    cycler_table,
    ProgressCallback,
    check_parameters,
    flag,
    parameter,
    register_twin,
    simulate,
    twin_attrs,
    twin_provenance,
)


def state_names(ds: xr.Dataset) -> list[str]:
    """The electrochemical state of every frame as strings (e.g. ``"charge"``).

    Uses the ``flag_values`` / ``flag_meanings`` attributes of ``ds["state"]``.
    """
    if "state" not in ds:
        raise InputError("dataset has no 'state' variable; expected a simulated operando series")
    state = ds["state"]
    values = [int(v) for v in np.atleast_1d(state.attrs.get("flag_values", []))]
    meanings = str(state.attrs.get("flag_meanings", "")).split()
    if len(values) != len(meanings):
        raise InputError(
            "the 'state' variable's flag_values and flag_meanings differ in length "
            f"({len(values)} vs {len(meanings)})"
        )
    lookup = dict(zip(values, meanings))
    return [lookup.get(int(v), f"unknown({int(v)})") for v in np.asarray(state.values)]


__all__ = [
    "parameter",
    "flag",
    "twin_attrs",
    "twin_provenance",
    "TWINS",
    "ProgressCallback",
    "register_twin",
    "check_parameters",
    "simulate",
    "state_names",
    "cycler_table",
    "FILE_WRITERS",
]

# Twins register themselves on import; each new twin module adds one line here.
from ionscope.simulate import licoo2 as _licoo2  # noqa: E402,F401
from ionscope.simulate import eels as _eels  # noqa: E402,F401
from ionscope.simulate import holography as _holography  # noqa: E402,F401
from ionscope.simulate import composite_cathode as _composite_cathode  # noqa: E402,F401
from ionscope.simulate import cell_cycling as _cell_cycling  # noqa: E402
from ionscope.simulate import li_fronts as _li_fronts  # noqa: E402,F401

#: Twins whose output is a folder of instrument files, and the function that writes it:
#: ``writer(ds, out_dir, overwrite=...) -> paths`` (``ionscope simulate NAME --out DIR``).
from ionscope.simulate import composite_cathode_files as _composite_cathode_files  # noqa: E402

FILE_WRITERS = {"composite_cathode": _composite_cathode_files.write_scan_files,
                "cell_cycling": _cell_cycling.write_cycling_files}
