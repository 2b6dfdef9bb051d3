"""ionscope: operando lithium and potential maps of all-solid-state batteries.

Read the instruments' files, reconstruct, fit, denoise, quantify, simulate and report the
electrostatic potential and the lithium distribution at electrode / solid-electrolyte
interfaces. See the README for the command line and the methods.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ionscope")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
