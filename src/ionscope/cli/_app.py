"""The shared parts of the command line: the Typer app, consoles, progress bars, option parsers.

Every error a user can cause is an :class:`~ionscope.errors.IonscopeError`; it is printed as one
line ``error: ...`` on stderr and the command exits with status 2 (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ionscope import __version__

# Typer vendors its own click; take its exception base from a public class.
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1

app = typer.Typer(
    name="ionscope",
    help="Operando lithium and potential maps of all-solid-state batteries.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DimsOption = Annotated[
    Optional[str],
    typer.Option("--dims", help="Dim names in the file's axis order, e.g. time,y,x (for uncalibrated files)."),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder (result.zarr, summary.json).")]
VariableOption = Annotated[Optional[str], typer.Option("--variable", help="Variable of a multi-variable input.")]
CyclerOption = Annotated[Optional[Path], typer.Option(
    "--cycler", help="Cycler log (.mpr, .mpt, .nda, .ndax, .res, .xlsx, Maccor, CSV): the cell's voltage, current, "
                     "charge and state at every frame's mid-exposure time (and scan row).")]
StartOption = Annotated[Optional[str], typer.Option(
    "--start", help="ISO 8601 time: the series' start when its file records none (then also the log's zero when "
                    "the log has none), else the cycler log's zero.")]
TimezoneOption = Annotated[Optional[str], typer.Option(
    "--timezone", help="Zone of naive times (IANA name such as Europe/Berlin, or +09:00): needed when one start "
                       "has a zone and the other not.")]


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"ionscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """ionscope: operando lithium and potential maps of all-solid-state batteries."""


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator:
    """A Rich progress bar on stderr; yields a ``progress(done, total)`` callback."""
    if not err.is_terminal:
        # no bar at all, not a disabled one: rich < 14.3 prints an empty line on stderr when a
        # disabled Progress stops on a non-interactive console, which breaks the one-line errors
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def dask_progress(description: str) -> Iterator[None]:
    """Show a Rich progress bar for the dask computations run inside the block (e.g. a lazy
    file written chunk by chunk): local schedulers through dask's callbacks, a distributed
    cluster by the tasks its scheduler finished (:func:`ionscope.cluster.follow_tasks`)."""
    from dask.callbacks import Callback

    from ionscope.cluster import current_client, follow_tasks

    client = current_client()
    if client is not None:
        with progress_bar(description) as update, follow_tasks(client, update):
            yield
        return
    with progress_bar(description) as update:
        state = {"done": 0, "total": 0}

        def start_state(_dsk, s):
            state["total"] += sum(len(s[k]) for k in ("ready", "waiting", "running"))
            update(state["done"], state["total"])

        def posttask(*_args):
            state["done"] += 1
            update(state["done"], state["total"])

        with Callback(start_state=start_state, posttask=posttask):
            yield



SchedulerOption = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Where the work runs: threads, processes, synchronous, or a dask scheduler's address "
                        "tcp://HOST:PORT (a cluster started by dask-jobqueue or 'dask scheduler'). Default: "
                        "threads, or a local cluster with --workers.")]
WorkersOption = Annotated[Optional[int], typer.Option(
    "--workers", min=1, help="Start a dask.distributed LocalCluster of N worker processes on 127.0.0.1 (with "
                             "--scheduler threads|processes: N threads or processes).")]


def series_command(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command ``--scheduler`` and ``--workers`` and run its body on that scheduler
    (:func:`ionscope.cluster.use_scheduler`): the one place the series commands get them.

    Put it below the ``@app.command()`` decorator."""
    import functools
    import inspect

    from ionscope.cluster import use_scheduler

    signature = inspect.signature(command, eval_str=True)
    added = [inspect.Parameter("scheduler", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=SchedulerOption),
             inspect.Parameter("workers", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=WorkersOption)]

    @functools.wraps(command)
    def run(*args: Any, scheduler: str | None = None, workers: int | None = None, **kwargs: Any) -> Any:
        with use_scheduler(scheduler, workers):
            return command(*args, **kwargs)

    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])
    run.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()},
                           "scheduler": SchedulerOption, "workers": WorkersOption}
    return run


WindowOption = Optional[str]


def parse_window(text: str | None, option: str) -> tuple[float, float] | None:
    """Parse ``LO:HI`` (eV) into a tuple; None stays None."""
    from ionscope.errors import ConfigError

    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not LO:HI in eV (e.g. {option} 40:52)") from None
    if not lo < hi:
        raise ConfigError(f"{option} {text!r}: LO must be below HI (eV)")
    return lo, hi


def parse_point(text: str | None, option: str, unit: str = "pixels") -> tuple[float, float] | None:
    """``"Y,X"`` -> (y, x) floats (in ``unit``, for the message); None stays None."""
    from ionscope.errors import ConfigError

    if text is None:
        return None
    try:
        y, x = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not Y,X (two numbers, {unit}, e.g. {option} 120,16)") from None
    return y, x


@contextlib.contextmanager
def input_role(what: str | None) -> Iterator[None]:
    """An input that cannot be read inside is refused with its role in the command first
    (``--reference: ...``, ``LOG_B: ...``); ``None`` leaves the message as it is."""
    from ionscope.errors import InputError

    try:
        yield
    except InputError as exc:
        if what is None:
            raise
        raise type(exc)(f"{what}: {exc}") from exc


def load_input(spec: Path | str, *, lazy: bool = False, dims: str | None = None, what: str = "input"):
    """Load ``PATH`` or ``PATH:VARIABLE`` (a variable of a multi-variable or multi-signal file); a
    file that cannot be read is refused with its role in the command first (``--reference: ...``)."""
    from ionscope import io
    from ionscope.cluster import check_chunk_memory

    with input_role(None if what == "input" else what):
        da = io.load(spec, lazy=lazy, dims=dims)
    if lazy:
        check_chunk_memory(da, what if what != "input" else str(spec))
    return da


@contextlib.contextmanager
def options_named(**options: str) -> Iterator[None]:
    """Name a library function's parameters by the command's options in the errors raised
    inside the block: ``with options_named(temperature_K="--temperature"):`` turns "parameter
    'temperature_K' must be ..." into "--temperature must be ...". A parameter not listed is
    named ``--`` + its name with dashes."""
    from ionscope.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        name = getattr(exc, "parameter", None)
        if name is None:
            raise
        option = options.get(name, "--" + name.replace("_", "-"))
        raise ConfigError(f"{option} must be {exc.allowed}, got {exc.value!r}") from exc


#: Output folders this invocation created (removed again, if still empty, when it fails).
CREATED_OUT_DIRS: list[Path] = []


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str], *, overwrite: bool) -> None:
    """Write ``rows`` as a CSV table with ``columns`` (None -> empty cell), atomically."""
    import csv
    import io as _io

    from ionscope import io

    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    io.write_text(path, buffer.getvalue(), overwrite=overwrite)


def start_run(out_dir: Path, overwrite: bool, inputs=(), names=("result.zarr", "summary.json")):
    """Prepare a command's output folder (refusing one that holds a result, or one whose
    ``names`` - ``result.zarr`` / ``summary.json`` - would replace one of ``inputs``) and start its clock;
    returns the clock (seconds since the start, rounded to ms). A folder it creates is removed
    again if the command then fails before writing into it (:func:`discard_created_out_dirs`)."""
    from ionscope import io

    out_dir = Path(out_dir)
    io.check_not_input([out_dir / name for name in names], inputs)
    existed = out_dir.exists()
    io.prepare_out_dir(out_dir, overwrite=overwrite, names=names)
    if not existed:
        CREATED_OUT_DIRS.append(Path(out_dir))
    return _timer()


def discard_created_out_dirs() -> None:
    """Remove the output folders this invocation created and left empty: a refused command
    leaves nothing behind."""
    while CREATED_OUT_DIRS:
        folder = CREATED_OUT_DIRS.pop()
        with contextlib.suppress(OSError):  # not empty (something was written) or already gone
            folder.rmdir()


def _timer():
    import time

    start = time.perf_counter()
    return lambda: round(time.perf_counter() - start, 3)



def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- the cell timeline


#: The figure every command with ``--cycler`` writes beside its result.
TIMELINE_FIGURE = "timeline.png"


class CellTimeline:
    """``--cycler LOG [--start ISO] [--timezone TZ]`` of a series command: the input series'
    frame times tied to the log *before* the work (wrong clocks fail first, warnings once), put
    on the result afterwards (:meth:`apply`)."""

    def __init__(self, timed, log, cycler: Path, out_dir: Path, overwrite: bool) -> None:
        self.timed, self.log, self.cycler, self.out_dir, self.overwrite = timed, log, Path(cycler), Path(out_dir), overwrite

    def apply(self, result):
        """``result`` (same frames as the input) with the timeline's coordinates and attributes,
        and the summary entry ``{"timeline": ...}``; writes ``DIR/timeline.png``."""
        from ionscope.data import provenance
        from ionscope.errors import InputError
        from ionscope.timeline import TIMELINE_COORDS, timeline_summary
        from ionscope.timeline.attach import append_step

        n_in = self.timed.sizes.get("time")
        if n_in is not None and result.sizes.get("time") != n_in:
            raise InputError(f"the result has {result.sizes.get('time')} frames but the series {n_in}; --cycler needs "
                             "a result with the series' frames")
        coords = {name: self.timed[name].variable for name in TIMELINE_COORDS if name in self.timed.coords}
        replaced = [n for n in coords if n in result.coords or (hasattr(result, "data_vars") and n in result)]
        out = (result.drop_vars(replaced) if replaced else result).assign_coords(coords)
        out.attrs = {**result.attrs, "start_time": self.timed.attrs["start_time"],
                     "timeline": self.timed.attrs["timeline"]}
        step = provenance(self.timed)[-1]
        out = append_step(out, step["step"], step["params"], [self.cycler])
        self.write_figure(out)
        return out, {"timeline": timeline_summary(out)}

    def write_figure(self, result) -> None:
        from ionscope import io
        from ionscope.report.figures import figure_to_png
        from ionscope.report.timeline_figures import timeline_figure

        io.write_bytes(self.out_dir / TIMELINE_FIGURE, figure_to_png(timeline_figure(self.log, result)),
                       overwrite=self.overwrite)


def cell_timeline(series, cycler: Path | None, start: str | None, timezone: str | None, out_dir: Path,
                  overwrite: bool) -> CellTimeline | None:
    """The shared ``--cycler`` of the series commands: None without ``--cycler`` (``--start`` /
    ``--timezone`` alone are refused), else the input ``series`` tied to the log
    (:func:`ionscope.timeline.attach_cycler`), to be put on the result with
    :meth:`CellTimeline.apply`."""
    from ionscope import io
    from ionscope.errors import ConfigError
    from ionscope.timeline import attach_cycler

    if cycler is None:
        given = [name for name, value in (("--start", start), ("--timezone", timezone)) if value is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} only apply with --cycler LOG")
        return None
    io.check_output(Path(out_dir) / TIMELINE_FIGURE, overwrite=overwrite)
    log = load_cycler_log(cycler, timezone)
    return CellTimeline(attach_cycler(series, log, start=start, timezone=timezone), log, cycler, out_dir, overwrite)


def load_cycler_log(cycler: Path, timezone: str | None):
    """The ``--cycler`` file in the cycler model; its errors name the option."""
    from ionscope.errors import InputError
    from ionscope.timeline import cycler_log

    try:
        return cycler_log(cycler, timezone=timezone)
    except InputError as exc:
        text = str(exc)
        raise type(exc)(text if text.startswith("--cycler") else f"--cycler: {text}") from exc
