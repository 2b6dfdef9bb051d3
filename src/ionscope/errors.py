"""The ionscope exception family.

Every error that a user can cause derives from :class:`IonscopeError`. Messages say what was
wrong, where, and what to do; the CLI prints them on one line and exits with status 2.
"""

from __future__ import annotations


class IonscopeError(Exception):
    """Base class of every error ionscope raises on purpose."""


class InputError(IonscopeError, ValueError):
    """An input (file, array or parameter) is unusable as given."""


class FileMissingError(InputError, FileNotFoundError):
    """An input path does not exist."""


class FormatError(InputError):
    """A file exists but cannot be read as the format its name claims (empty, truncated, wrong bytes)."""


class DimensionError(InputError):
    """An array has the wrong dims or dimensionality for the operation."""


class NonFiniteError(InputError):
    """An array holds NaN or infinite values where finite numbers are required."""


class EmptyDataError(InputError):
    """An array has no elements."""


class NonUniformAxisError(InputError):
    """A coordinate that must be evenly spaced is not."""


class MissingReaderError(IonscopeError, ImportError):
    """Reading a file needs an optional package that is not installed (the file is fine)."""

    #: Optional packages that RosettaSciIO readers import, and the ionscope extra that installs them.
    EXTRAS = {"sparse": "velox", "pySPM": "iontof", "galvani": "cycler", "NewareNDA": "cycler",
              "python_calamine": "cycler"}

    @classmethod
    def for_module(cls, path, reader: str, exc: ModuleNotFoundError) -> MissingReaderError:
        """The error for ``path``, which ``reader`` could not read because ``exc.name`` is missing."""
        import re

        # ModuleNotFoundError names the module; RosettaSciIO raises its own with the name quoted
        quoted = re.search(r"'([A-Za-z_][\w.]*)'", str(exc))
        module = (exc.name or (quoted[1] if quoted else str(exc))).split(".")[0]
        extra = cls.EXTRAS.get(module)
        how = f"pip install 'ionscope[{extra}]'" if extra else f"pip install {module}"
        return cls(
            f"{path}: the {reader} reader needs the optional package {module!r}, which is not installed; "
            f"install it ({how}) and run again - the file itself may be fine"
        )


class OutputExistsError(IonscopeError, FileExistsError):
    """An output path already exists and overwriting was not requested."""


class OutputError(IonscopeError, OSError):
    """An output cannot be written where it was asked for (under a file, read-only, no space)."""


class ConfigError(IonscopeError, ValueError):
    """A parameter, option or combination of them is invalid (also a ``ValueError``, as numpy and
    scikit-learn raise for bad parameters). Bad data - files, arrays, their dims, units or
    values - raise :class:`InputError` instead."""


class ConvergenceError(IonscopeError):
    """An iterative method did not converge."""


class ClusterError(IonscopeError):
    """A dask scheduler does not answer, or a computation lost its workers (nothing was written)."""


class ChunkMemoryError(ConfigError):
    """A lazy input's chunks are too large for the memory of one worker thread."""


class IonscopeWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one
    ``warning: ...`` line on stderr)."""


__all__ = [
    "IonscopeError",
    "InputError",
    "FileMissingError",
    "FormatError",
    "DimensionError",
    "NonFiniteError",
    "EmptyDataError",
    "NonUniformAxisError",
    "MissingReaderError",
    "OutputExistsError",
    "OutputError",
    "ConfigError",
    "ConvergenceError",
    "ClusterError",
    "ChunkMemoryError",
    "IonscopeWarning",
]
