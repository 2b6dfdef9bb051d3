"""The ``ionscope`` command line: argument parsing, progress and exit codes - nothing else.

Every error a user can cause is an :class:`~ionscope.errors.IonscopeError`; it is printed as one
line ``error: ...`` on stderr and the command exits with status 2 (``--debug`` shows the
traceback instead). One module per technique registers its sub-commands on the shared app.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer

from ionscope.cli import core, eels, denoise, superres, spacecharge, holo, kpfm, sims, echem, timeline, correlate, motion, run  # noqa: F401, I001  (register the commands, in help order)
from ionscope.cli._app import (  # noqa: F401  (public helpers)
    CREATED_OUT_DIRS, EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, UsageError, _one_line, app, dask_progress,
    discard_created_out_dirs, err, load_input, out, parse_window, progress_bar,
)
from ionscope.errors import IonscopeError


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning that reaches the user is one ``warning: ...`` line on stderr (no source line,
    no colour codes); where it came from is said briefly when it is not ionscope's own."""
    from ionscope.errors import IonscopeWarning

    where = "" if issubclass(category, IonscopeWarning) else f" ({category.__name__} in {Path(filename).name}:{lineno})"
    err.print(f"warning: {_one_line(message)}{where}", markup=False)


_COMMAND: tuple = ((), None)


def _command():
    """The app's click command, built once: Typer builds it anew on every call (some 50 ms of
    signature inspection), rebuilt only when commands were registered since."""
    global _COMMAND
    key = (len(app.registered_commands), len(app.registered_groups),
           *(len(g.typer_instance.registered_commands) for g in app.registered_groups))
    if _COMMAND[0] != key:
        _COMMAND = (key, typer.main.get_command(app))
    return _COMMAND[1]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn errors into one line and an exit status."""
    argv = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    debug = "--debug" in argv
    CREATED_OUT_DIRS.clear()
    with warnings.catch_warnings():  # the process's warning settings are restored afterwards
        warnings.showwarning = _show_warning
        if not debug:  # deprecations are for developers: they say nothing about the user's data
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
        code = _run(argv, debug)
    if code != 0:
        discard_created_out_dirs()
    sys.exit(code)


def _run(argv: list[str], debug: bool) -> int:
    """Run the app; an error becomes one line on stderr and the exit status is returned."""
    try:
        result = _command().main(args=argv, prog_name="ionscope", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except IonscopeError as exc:
        if debug:
            raise
        err.print(f"error: {_one_line(exc)}", markup=False)
        code = EXIT_USER_ERROR
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        err.print("error: aborted", markup=False)
        code = 130
    except UsageError as exc:  # usage errors: bad options, missing arguments
        if debug:
            raise
        hint = f"; see 'ionscope {exc.ctx.info_name} --help'" if getattr(exc, "ctx", None) and exc.ctx.info_name != "ionscope" else "; see 'ionscope --help'"
        err.print(f"error: {_one_line(exc.format_message()).rstrip('.')}{hint}", markup=False)
        code = EXIT_USER_ERROR
    except KeyboardInterrupt:
        err.print("error: interrupted", markup=False)
        code = 130
    except Exception as exc:  # a bug: still one line, with a way to see more
        if debug:
            raise
        err.print(
            f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with --debug "
            "and report the traceback",
            markup=False,
        )
        code = EXIT_INTERNAL_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
