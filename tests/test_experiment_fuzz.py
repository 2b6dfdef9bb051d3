"""Generated careless experiment files (hypothesis): whatever the file holds - random tables, keys
and values, a valid file with any of its values replaced, a valid file cut anywhere or with bytes
changed - load_experiment either accepts it or refuses it with one IonscopeError of one line, and
nothing is written."""

from __future__ import annotations

import copy
import textwrap
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_run_experiment import EXPERIMENT

from ionscope import io
from ionscope.data import signal
from ionscope.errors import IonscopeError
from ionscope.pipeline.experiment import load_experiment

#: The two-step experiment of test_run_experiment (a step reading an earlier step), as bytes.
VALID = textwrap.dedent(EXPERIMENT.format(second="tv")).encode()

KEYS = st.sampled_from(["name", "out", "path", "command", "input", "options", "dims", "cycler", "start", "method",
                        "temporal", "patch", "bogus", "a b", "\u00e9"])
TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)
SCALARS = st.one_of(st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True), TEXT,
                    st.sampled_from(["series.zarr", "denoise", "maps", "smooth", "smoother", "*", "../x", "eels lithium",
                                     "ionscope denoise", "gaussian", "2026-01-01T10:00:00", "y,x"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=3)), max_leaves=6)


def _value(v) -> str:
    """A value in TOML."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        return repr(v) if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_value(k)} = {_value(x)}" for k, x in v.items()) + "}"


def _toml(data: dict) -> str:
    """A dict of tables (a table, or a list of tables whose ``options`` is a sub-table) in TOML."""
    lines = []
    for table, content in data.items():
        entries = content if isinstance(content, list) else [content]
        for entry in entries:
            if not isinstance(entry, dict):
                lines.append(f"{_value(table)} = {_value(entry)}")
                continue
            lines.append(f"[[{table}]]" if isinstance(content, list) else f"[{table}]")
            sub = {k: v for k, v in entry.items() if isinstance(v, dict) and k == "options"}
            lines += [f"{_value(k)} = {_value(v)}" for k, v in entry.items() if k not in sub]
            for k, v in sub.items():
                lines.append(f"[{table}.{k}]")
                lines += [f"{_value(kk)} = {_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    io.save(signal(np.zeros((2, 8, 8)), ("time", "y", "x"), name="li", units="1").to_dataset(), root / "series.zarr")
    return root


def _check(folder, data: bytes) -> None:
    path = folder / "exp.toml"
    path.write_bytes(data)
    before = sorted(p.name for p in folder.iterdir())
    try:
        load_experiment(path)
    except IonscopeError as exc:
        assert "\n" not in str(exc).strip() and str(exc).strip(), repr(str(exc))
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written


#: The same examples on every run (derandomised): a failure is reproducible, not a coin toss.
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(tables=st.dictionaries(st.sampled_from(["experiment", "inputs", "steps", "other"]),
                              st.one_of(st.dictionaries(KEYS, VALUES, max_size=4),
                                        st.lists(st.dictionaries(KEYS, VALUES, max_size=4), max_size=3)),
                              max_size=4))
def test_generated_tables_are_accepted_or_refused_in_one_line(folder, tables):
    _check(folder, _toml(tables).encode())


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(["experiment", "inputs", "steps", "options"]),
                                  st.integers(0, 2), KEYS, st.one_of(VALUES, st.none())), min_size=1, max_size=3))
def test_a_valid_file_with_values_replaced_is_accepted_or_refused_in_one_line(folder, changes):
    data = copy.deepcopy(tomllib.loads(VALID.decode()))
    for table, index, key, value in changes:
        if table == "experiment":
            entry = data["experiment"]
        elif table == "inputs":
            entry = data["inputs"][min(index, len(data["inputs"]) - 1)]
        else:
            step = data["steps"][min(index, len(data["steps"]) - 1)]
            if table == "options" and not isinstance(step.get("options"), dict):
                step["options"] = {}  # an earlier change put a non-table there
            entry = step["options"] if table == "options" else step
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    _check(folder, _toml(data).encode())


@SETTINGS
@given(cut=st.integers(0, len(VALID)), flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                                                       max_size=4))
def test_cut_or_damaged_files_are_accepted_or_refused_in_one_line(folder, cut, flips):
    data = bytearray(VALID[:cut] if cut < len(VALID) // 2 else VALID)
    for at, byte in flips:
        if at < len(data):
            data[at] = byte
    _check(folder, bytes(data))


def test_the_serialiser_writes_the_valid_file_back():
    assert tomllib.loads(_toml(tomllib.loads(VALID.decode()))) == tomllib.loads(VALID.decode())


# ---------------------------------------------------------------- damaged data files through a run

DATA_EXPERIMENT = """
[experiment]
name = "damaged"
out = "results"

[[inputs]]
name = "frames"
path = "frames/*.{ext}"

[[steps]]
name = "clean"
command = "denoise"
input = "frames"
[steps.options]
method = "gaussian"
"""


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Two valid frames per format, as bytes: HyperSpy (HDF5), NumPy and EMSA/MSA."""
    import hyperspy.api as hs

    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    blobs = {}
    for ext in ("hspy", "npy", "msa"):
        blobs[ext] = []
        for k in range(2):
            path = root / f"f{k}.{ext}"
            if ext == "hspy":
                hs.signals.Signal2D(rng.random((12, 12)).astype("float32")).save(path)
            elif ext == "npy":
                np.save(path, rng.random((12, 12)))
            else:
                s = hs.signals.Signal1D(rng.random(64))
                s.axes_manager[0].units, s.axes_manager[0].scale = "eV", 0.5
                s.save(path)
            blobs[ext].append(path.read_bytes())
    return blobs


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from(["hspy", "npy", "msa"]), which=st.integers(0, 1), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=6))
def test_damaged_data_files_fail_in_one_line_and_leave_no_half_output(tmp_path_factory, run_cli, frames, ext, which,
                                                                       cut, flips):
    folder = tmp_path_factory.mktemp("run")
    (folder / "frames").mkdir()
    for k, blob in enumerate(frames[ext]):
        data = bytearray(blob)
        if k == which:
            data = data[: int(cut * len(data))] if cut < 0.5 else data
            for at, byte in flips:
                if data:
                    data[min(int(at * len(data)), len(data) - 1)] = byte
        (folder / "frames" / f"f{k}.{ext}").write_bytes(bytes(data))
    (folder / "exp.toml").write_text(textwrap.dedent(DATA_EXPERIMENT.format(ext=ext)))
    result = run_cli("run", folder / "exp.toml")
    assert result.returncode in (0, 2), result.stderr  # 1 would be an internal error (a traceback)
    if result.returncode == 2:  # one error line, last; before it at most the readers' warnings (one line each)
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
        assert all(line.startswith("warning: ") for line in lines[:-1]), result.stderr
        # the step's output is whole or absent: never half-written
        assert not (folder / "results" / "clean").exists()
    else:
        assert (folder / "results" / "clean" / "summary.json").is_file()
