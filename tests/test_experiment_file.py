"""Experiment files (ionscope.pipeline.experiment): the whole file is checked against the command
line before anything runs, and every refusal names the file, the line and the key."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from ionscope import io
from ionscope.data import signal
from ionscope.errors import ConfigError, InputError
from ionscope.pipeline.experiment import command_options, load_experiment

GOOD = """
[experiment]
name = "operando-licoo2"
out = "results"

[[inputs]]
name = "si"
path = "frames/*.zarr"            # several files: a series
dims = "time,y,x"

[[steps]]
name = "li_denoised"
command = "denoise"
input = "si"
[steps.options]
method = "sparse3d"
temporal = 3
seed = 1

[[steps]]
name = "movie"
command = "ionscope movie"
input = "li_denoised"
[steps.options]
fps = 5
"""


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "frames").mkdir()
    for k in (1, 0):
        da = signal(np.zeros((2, 8, 8)), ("time", "y", "x"), name="li", units="1")
        io.save(da.to_dataset(), tmp_path / "frames" / f"frame_{k}.zarr")
    return tmp_path


def _write(folder, text, name="exp.toml"):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_file_gives_the_command_line_of_every_step(folder):
    exp = load_experiment(_write(folder, GOOD))
    assert exp.name == "operando-licoo2" and exp.out == folder / "results" and len(exp.sha256) == 64
    (si,) = exp.inputs
    assert [p.name for p in si.paths] == ["frame_0.zarr", "frame_1.zarr"] and si.dims == "time,y,x"
    first, second = exp.steps
    assert first.command == ("denoise",) and second.command == ("movie",) and first.line == 11
    argv = exp.argv(first)
    assert argv[:3] == ["denoise", str(si.paths[0]), str(si.paths[1])]
    assert argv[argv.index("--method") + 1] == "sparse3d" and argv[argv.index("--temporal") + 1] == "3"
    assert argv[argv.index("--dims") + 1] == "time,y,x"  # the input's metadata, as the command's option
    assert argv[-2:] == ["--out", str(folder / "results" / "li_denoised")]
    assert exp.argv(second)[:2] == ["movie", str(folder / "results" / "li_denoised" / "result.zarr")]
    assert command_options(("denoise",))["temporal"] == {"flag": False, "multiple": False}


@pytest.mark.parametrize("change, kind, needle", [
    (('name = "li_denoised"', 'name = "li_denoised"\nbogus = 1'), ConfigError,
     ":13: [[steps]] #1, key 'bogus': unknown key; allowed: name, command, input, options"),
    (('command = "denoise"', 'command = "denoize"'), ConfigError, "'denoize' is not an ionscope command"),
    (("temporal = 3", "temporall = 3"), ConfigError,
     ":17: [[steps.options]] #1, key 'temporall': not an option of `ionscope denoise`"),
    (('input = "li_denoised"', 'input = "movie"'), ConfigError, "steps read inputs or earlier steps only"),
    (('input = "si"', 'input = "nothing"'), ConfigError, "'nothing': no input or earlier step has that name"),
    (('path = "frames/*.zarr"', 'path = "nowhere/*.zarr"'), InputError, ":8: [[inputs]] #1, key 'path'"),
    (('name = "movie"', 'name = "si"'), ConfigError, "'si' is used twice"),
    (("temporal = 3", "temporal = [3, 5]"), ConfigError, "`--temporal` takes one value, not a list"),
    (('dims = "time,y,x"', 'start = "yesterday"'), ConfigError, "'yesterday' is not an ISO 8601 time"),
    (("fps = 5", "out = 'x'"), ConfigError, "key 'out': not an option"),
    (('[experiment]', '[experimnt]'), ConfigError, "unknown table"),
])
def test_careless_files_are_refused_with_the_file_line_and_key(folder, change, kind, needle):
    path = _write(folder, GOOD.replace(*change, 1))
    with pytest.raises(kind) as info:
        load_experiment(path)
    assert needle in str(info.value) and str(path) in str(info.value)
    assert not (folder / "results").exists()


def test_a_syntax_error_names_its_line(folder):
    path = _write(folder, GOOD.replace('method = "sparse3d"', 'method = "sparse3d'))
    with pytest.raises(ConfigError, match=r"exp\.toml:16: TOML syntax error"):
        load_experiment(path)
    with pytest.raises(InputError, match="cannot read the experiment file"):
        load_experiment(folder / "missing.toml")
