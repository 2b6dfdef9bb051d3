"""ionscope: operando lithium and potential maps of all-solid-state batteries.

Read the instruments' files, reconstruct, fit, denoise, quantify, simulate and report the
electrostatic potential and the lithium distribution at electrode / solid-electrolyte
interfaces. See the README for the command line and the methods.

The shape every technique package follows (holography, eels, denoise, and the ones to come):

- **Kernels** are pure numpy functions (no xarray, no I/O, no plotting), tested directly. Where a
  kernel and its wrapper would share a name, the kernel ends in ``_kernel`` (``_stack`` in
  :mod:`ionscope.denoise`, whose kernels take ``(n_frames, ny, nx)`` stacks); a wrapper's kernels
  may live in a ``*_kernels`` module beside it.
- **Wrappers** take labelled arrays, validate their parameters with declared constraints
  (:mod:`ionscope.validation`: a bad parameter is a :class:`~ionscope.errors.ConfigError`, also a
  ``ValueError``; bad data an :class:`~ionscope.errors.InputError`), read units through
  :mod:`ionscope.units`, return a Dataset (or a documented DataArray) with units in attrs and a
  provenance step, and say in their docstring whether they stay lazy or compute.
- **Workflows** (the chains users run) are library functions; the CLI and the demo call them
  (e.g. :mod:`ionscope.holography.workflow`, :mod:`ionscope.spacecharge.workflow`).
- **Shared pieces** live once: registration and its sign convention in :mod:`ionscope.register`,
  names that moved stay importable through :func:`ionscope.compat.moved_names`; no module
  imports another package's private names.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ionscope")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
