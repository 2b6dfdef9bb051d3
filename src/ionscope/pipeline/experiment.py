"""Experiment files: a whole experiment declared in TOML, checked before anything runs.

The schema is :doc:`/guide/experiments`: an ``[experiment]`` table (``name``,
``out``), ``[[inputs]]`` (``name``, ``path`` - a file or a glob relative to the TOML file, several
files form a series - and optional ``dims``, ``cycler``, ``start``, and the calibration
``pixel_size_nm`` and ``beam_energy_kV``, which override the files' own when they are read) and ``[[steps]]`` (``name``,
``command`` - any ionscope command that takes an input and ``--out`` -, ``input`` - an input's
name or an earlier step's -, and ``[steps.options]``, the command's options by their long names
without the dashes).

:func:`load_experiment` reads and validates the whole file against the command line itself (the
commands, their options and which of them repeat), so a bad key, value, path, unknown command or
option, or a step whose input does not exist (or comes later: a cycle) is refused with the file,
the line, the key and what is allowed - before any step runs. The result says, for every step,
the command line it stands for (:meth:`Experiment.argv`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import hashlib
import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ionscope.errors import ConfigError, InputError

__all__ = ["Experiment", "ExperimentInput", "ExperimentStep", "load_experiment", "command_options", "takes_series"]

_EXPERIMENT_KEYS = {"name": str, "out": str}
_INPUT_KEYS = {"name": str, "path": str, "dims": str, "cycler": str, "start": str, "pixel_size_nm": (int, float),
               "beam_energy_kV": (int, float)}
#: Per-input calibration the experiment file may give (applied when the input's files are read).
CALIBRATION_KEYS = ("pixel_size_nm", "beam_energy_kV")
_STEP_KEYS = {"name": str, "command": str, "input": str, "options": dict}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class ExperimentInput:
    """One ``[[inputs]]`` entry: its name, the files it matched (a series when several, in name
    order), and its optional per-input metadata."""

    name: str
    paths: tuple[Path, ...]
    dims: str | None = None
    cycler: Path | None = None
    start: str | None = None
    line: int = 0
    pattern: str = ""  # the path or glob as written (relative to the experiment file)
    calibration: dict[str, float] = dataclasses.field(default_factory=dict)  # pixel_size_nm, beam_energy_kV


@dataclasses.dataclass(frozen=True)
class ExperimentStep:
    """One ``[[steps]]`` entry: the command's words, its input (an input's or a step's name) and
    its options (long names without dashes)."""

    name: str
    command: tuple[str, ...]
    input: str
    options: dict[str, Any]
    line: int = 0


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A validated experiment file (:func:`load_experiment`)."""

    path: Path
    sha256: str
    name: str
    out: Path
    inputs: tuple[ExperimentInput, ...]
    steps: tuple[ExperimentStep, ...]
    live: str | None = None  # the input whose files are still to come (ionscope watch)

    def with_files(self, name: str, paths: Sequence[Path]) -> Experiment:
        """The experiment with the input ``name`` reading ``paths`` (e.g. the live input's files
        so far)."""
        return dataclasses.replace(self, inputs=tuple(dataclasses.replace(i, paths=tuple(paths)) if i.name == name
                                                      else i for i in self.inputs))

    def input_paths(self, step: ExperimentStep) -> list[Path]:
        """What a step reads: its input's files, or the earlier step's ``result.zarr``."""
        for inp in self.inputs:
            if inp.name == step.input:
                return list(inp.paths)
        return [self.out / step.input / "result.zarr"]

    def input_of(self, step: ExperimentStep) -> ExperimentInput | None:
        """The ``[[inputs]]`` entry a step reads, or None when it reads an earlier step."""
        return next((i for i in self.inputs if i.name == step.input), None)

    def argv(self, step: ExperimentStep, *, paths: list[Path] | None = None, out: Path | None = None,
             frame: bool = False) -> list[str]:
        """The command line the step stands for, with its output in ``OUT/STEP``.

        ``paths`` and ``out`` replace its input files and output folder, e.g. for one frame of a
        series (``frame``: the input's ``cycler`` and ``start`` are then left out - they are
        attached to the whole series).
        """
        args = [*step.command, *map(str, self.input_paths(step) if paths is None else paths)]
        inp = self.input_of(step)
        extra = {} if inp is None else {"dims": inp.dims, "cycler": None if frame else inp.cycler,
                                        "start": None if frame else inp.start}
        options = {k: v for k, v in extra.items() if v is not None and k not in step.options
                   and k in command_options(step.command)}
        for key, value in {**options, **step.options}.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, bool):
                    args.append(f"--{key}" if item else f"--no-{key}")
                else:
                    args += [f"--{key}", str(item)]
        return [*args, "--out", str(self.out / step.name if out is None else out)]


# --------------------------------------------------------------------------- the command line


def _commands() -> dict[tuple[str, ...], Any]:
    """Every leaf command of the ``ionscope`` app by its words (the click commands Typer builds;
    groups are told by their ``commands``, as Typer vendors its own click)."""
    from ionscope.cli import _command

    out: dict[tuple[str, ...], Any] = {}

    def walk(cmd, words):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*words, name))
        else:
            out[words] = cmd

    walk(_command(), ())
    return out


def command_options(words: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The long options of the command ``words`` (without dashes): ``{"flag": bool, "multiple":
    bool}`` each (``--x/--no-x`` flags as ``x``)."""
    cmd = _commands()[tuple(words)]
    opts: dict[str, dict[str, Any]] = {}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("--") and not name.startswith("--no-"):
                opts[name[2:]] = {"flag": bool(param.is_flag), "multiple": bool(param.multiple)}
    return opts


def takes_series(words: tuple[str, ...]) -> bool:
    """Whether the command ``words`` reads several files as one series itself (its input argument
    takes many, e.g. ``kpfm process SCAN [SCAN ...]``); other commands run once per file of a
    series."""
    cmd = _commands()[tuple(words)]
    args = [p for p in cmd.params if getattr(p, "param_type_name", "") == "argument"]
    return bool(args) and args[0].nargs == -1


def _relative_file(value: Any, base: Path) -> Any:
    """An option's value that names a file relative to the experiment file (``refs/rich.msa``,
    ``refs.zarr:ref_licoo2``) as an absolute path; any other value unchanged."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    if (base / value).exists():
        return str(base / value)
    head, _, variable = value.rpartition(":")
    if head and (base / head).exists():
        return f"{base / head}:{variable}"
    return value


#: Commands that run experiments (or the demo) themselves: not steps of one.
_NOT_STEPS = {("run",), ("watch",), ("demo",)}


def _step_command(words: tuple[str, ...]) -> bool:
    """Whether the command ``words`` can be a step: it takes an input and ``--out``."""
    return tuple(words) not in _NOT_STEPS and "out" in command_options(words)


# --------------------------------------------------------------------------- reading


def _lines(text: str) -> dict[tuple[str, int, str], int]:
    """Line numbers (1-based) of every ``key = ...`` by (table, index, key): ``("inputs", 2,
    "path")`` is the key ``path`` of the third ``[[inputs]]``; the table of ``[steps.options]``
    is ``"steps.options"`` with its step's index; a table header's own line under key ``""``."""
    where: dict[tuple[str, int, str], int] = {}
    counts: dict[str, int] = {}
    table, index = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.match(r"^\[\[\s*([\w.-]+)\s*\]\]$", line) or re.match(r"^\[\s*([\w.-]+)\s*\]$", line)
        if header:
            table = header[1]
            if line.startswith("[["):
                counts[table] = counts.get(table, -1) + 1
                index = counts[table]
            elif "." in table:  # a sub-table of the last array entry
                index = counts.get(table.split(".")[0], 0)
            else:
                index = 0
            where.setdefault((table, index, ""), number)
            continue
        key = re.match(r"^([\"']?)([\w.-]+)\1\s*=", line)
        if key:
            where.setdefault((table, index, key[2]), number)
    return where


class _Where:
    """Error messages that name the file, the line and the key."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, _lines(text)

    def error(self, table: str, index: int, key: str, message: str, kind=ConfigError) -> Exception:
        line = self.lines.get((table, index, key)) or self.lines.get((table, index, "")) or 0
        label = f"[[{table}]] #{index + 1}" if table in ("inputs", "steps", "steps.options") else f"[{table}]"
        what = f"key {key!r}" if key else "the table"
        return kind(f"{self.path}:{line}: {label}, {what}: {message}")


def _check_keys(entry: dict, allowed: dict[str, type], where: _Where, table: str, index: int,
                required: tuple[str, ...]) -> None:
    for key, value in entry.items():
        if key not in allowed:
            raise where.error(table, index, key, f"unknown key; allowed: {', '.join(allowed)}")
        kinds = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            what = " or ".join("number" if k in (int, float) else k.__name__ for k in dict.fromkeys(
                float if k is int else k for k in kinds))
            raise where.error(table, index, key, f"must be a {what}, got {value!r}")
    for key in required:
        if key not in entry:
            raise where.error(table, index, "", f"{key!r} is missing; give {key} = ...")


def load_experiment(path: str | Path, *, live: str | bool | None = None) -> Experiment:
    """Read and validate an experiment file; nothing runs and nothing is written.

    ``live`` names an input whose files are still to come (``ionscope watch``; ``True``: the
    file's only input given as a glob): its path may match no file yet.

    Raises
    ------
    ConfigError
        A TOML syntax error, an unknown table or key, a value of the wrong type, a duplicate or
        malformed name, an unknown command or option, a step whose input does not exist or comes
        later (a cycle) - each naming the file, the line and the key, and what is allowed.
    InputError
        The file cannot be read, an input's path or glob matches no file, a cycler log that does
        not exist.
    """
    path = Path(path).absolute()  # the run's record and its command lines hold absolute paths
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the experiment file {path}: {exc.strerror or exc}") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(f"{path}:{match[1] if match else 0}: TOML syntax error: {exc}") from None
    where = _Where(path, text)
    base = path.parent
    for table in data:
        if table not in ("experiment", "inputs", "steps"):
            raise where.error(table, 0, "", "unknown table; an experiment file has [experiment], [[inputs]] and "
                                            "[[steps]]")
    exp = data.get("experiment", {})
    if not isinstance(exp, dict):
        raise where.error("experiment", 0, "", "must be a table: [experiment]")
    _check_keys(exp, _EXPERIMENT_KEYS, where, "experiment", 0, ("name",))
    names: set[str] = set()

    def name_of(entry, table, index):
        name = entry["name"]
        if not _NAME.match(name):
            raise where.error(table, index, "name", f"{name!r} is not a name (letters, digits, _ and -, not starting "
                                                    "with a digit)")
        if name in names:
            raise where.error(table, index, "name", f"{name!r} is used twice; every input and step needs its own name")
        names.add(name)
        return name

    inputs = []
    raw_inputs = data.get("inputs", [])
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise where.error("inputs", 0, "", "give at least one [[inputs]] entry with name and path")
    if live is True:
        globs = [e.get("name") for e in raw_inputs if isinstance(e, dict) and any(c in str(e.get("path", ""))
                                                                                 for c in "*?[")]
        if len(globs) != 1:
            what = "none is" if not globs else f"{len(globs)} are ({', '.join(map(str, globs))})"
            raise ConfigError(f"{path}: say which input's files are still to come (--input NAME): {what} given as a "
                              "glob")
        live = globs[0]
    elif live is not None:
        named = sorted(str(e.get("name")) for e in raw_inputs if isinstance(e, dict))
        if live not in named:
            raise ConfigError(f"{path}: no input named {live!r}; the inputs are: {', '.join(named)}")
    for k, entry in enumerate(raw_inputs):
        _check_keys(entry, _INPUT_KEYS, where, "inputs", k, ("name", "path"))
        name = name_of(entry, "inputs", k)
        pattern = str(base / entry["path"]) if not Path(entry["path"]).is_absolute() else entry["path"]
        matched = sorted(Path(p) for p in glob.glob(pattern))
        if not matched and name != live:
            raise where.error("inputs", k, "path", f"{entry['path']!r} matches no file (relative to {base})", InputError)
        cycler = None
        if "cycler" in entry:
            cycler = base / entry["cycler"]
            if not cycler.is_file():
                raise where.error("inputs", k, "cycler", f"{entry['cycler']!r} is not a file (relative to {base})",
                                  InputError)
        if "start" in entry:
            try:
                dt.datetime.fromisoformat(entry["start"])
            except ValueError:
                raise where.error("inputs", k, "start", f"{entry['start']!r} is not an ISO 8601 time (e.g. "
                                                        "2026-01-01T10:00:00+09:00)") from None
        calibration = {}
        for key in CALIBRATION_KEYS:
            if key in entry:
                value = float(entry[key])
                if not (math.isfinite(value) and value > 0):
                    raise where.error("inputs", k, key, f"must be a number > 0, got {entry[key]!r}")
                calibration[key] = value
        inputs.append(ExperimentInput(name, tuple(matched), entry.get("dims"), cycler, entry.get("start"),
                                      where.lines.get(("inputs", k, ""), 0), entry["path"], calibration))

    commands = _commands()
    steps: list[ExperimentStep] = []
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise where.error("steps", 0, "", "give at least one [[steps]] entry with name, command and input")
    known_inputs = {i.name for i in inputs}
    for k, entry in enumerate(raw_steps):
        _check_keys(entry, _STEP_KEYS, where, "steps", k, ("name", "command", "input"))
        name = name_of(entry, "steps", k)
        words = tuple(entry["command"].split())
        if words[:1] == ("ionscope",):
            words = words[1:]
        cmd = commands.get(words)
        runnable = sorted(" ".join(w) for w in commands if _step_command(w))
        if cmd is None or not _step_command(words):
            raise where.error("steps", k, "command", f"{entry['command']!r} is not an ionscope command that takes an "
                                                     f"input and --out; choose one of: {', '.join(runnable)}")
        earlier = {s.name for s in steps}
        if entry["input"] not in known_inputs | earlier:
            later = {e.get("name") for e in raw_steps[k:]}
            why = ("it is this step or a later one: steps read inputs or earlier steps only (no cycles)"
                   if entry["input"] in later else "no input or earlier step has that name")
            raise where.error("steps", k, "input", f"{entry['input']!r}: {why}; choose one of: "
                                                   f"{', '.join(sorted(known_inputs | earlier))}")
        allowed = command_options(words)
        options = dict(entry.get("options", {}))
        for key, value in options.items():
            spec = allowed.get(key)
            if spec is None or key in ("out", "overwrite"):
                shown = ", ".join(sorted(a for a in allowed if a not in ("out", "overwrite", "help")))
                raise where.error("steps.options", k, key, f"not an option of `ionscope {' '.join(words)}`; its options: "
                                                           f"{shown}")
            if isinstance(value, list) and not spec["multiple"]:
                raise where.error("steps.options", k, key, f"`--{key}` takes one value, not a list")
            if spec["flag"] and not isinstance(value, bool):
                raise where.error("steps.options", k, key, f"`--{key}` is a switch: give true or false, not {value!r}")
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, (str, int, float, bool)) for v in items):
                raise where.error("steps.options", k, key, f"give a string, a number or a boolean, not {value!r}")
            resolved = [_relative_file(v, base) for v in items]
            options[key] = resolved if isinstance(value, list) else resolved[0]
        steps.append(ExperimentStep(name, words, entry["input"], options, where.lines.get(("steps", k, ""), 0)))

    out = base / exp.get("out", "results")
    return Experiment(path=path, sha256=hashlib.sha256(raw).hexdigest(), name=exp["name"], out=out,
                      inputs=tuple(inputs), steps=tuple(steps), live=live or None)
