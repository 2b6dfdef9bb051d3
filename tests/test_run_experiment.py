"""``ionscope run EXPERIMENT.toml`` (ionscope.pipeline.run): the steps run as their command lines
would, the record says what was done, and --resume keeps what is done and unchanged and redoes
the rest."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from test_careless_input import _error_line

from ionscope import io
from ionscope.data import signal
from ionscope.data import file_sha256 as digest

EXPERIMENT = """
[experiment]
name = "two-steps"
out = "results"

[[inputs]]
name = "maps"
path = "series.zarr"

[[steps]]
name = "smooth"
command = "denoise"
input = "maps"
[steps.options]
method = "gaussian"

[[steps]]
name = "smoother"
command = "denoise"
input = "smooth"
[steps.options]
method = "{second}"
"""


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    io.save(signal(rng.poisson(20, (3, 16, 16)) / 20.0, ("time", "y", "x"), name="li", units="1",
                   attrs={"dose": 20.0}).to_dataset(), tmp_path / "series.zarr")
    (tmp_path / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="gaussian")))
    return tmp_path


def _record(folder):
    return json.loads((folder / "results" / "run.json").read_text())


def test_the_steps_write_what_their_command_lines_write(folder, run_cli):
    res = run_cli("run", folder / "exp.toml")
    assert res.returncode == 0, res.stderr
    record = _record(folder)
    assert record["status"] == "done" and record["experiment"]["sha256"] == digest(folder / "exp.toml").removeprefix("sha256:")
    smooth, smoother = record["steps"]["smooth"], record["steps"]["smoother"]
    assert smooth["status"] == smoother["status"] == "done" and not smooth["kept"]
    assert smoother["argv"][1] == str(folder / "results" / "smooth" / "result.zarr")  # an earlier step's result
    assert smooth["inputs"] == {str(folder / "series.zarr"): digest(folder / "series.zarr")}
    # the same as the command line itself
    direct = run_cli("denoise", folder / "series.zarr", "--method", "gaussian", "--out", folder / "direct")
    assert direct.returncode == 0
    a = io.open_dataset(folder / "results" / "smooth")["denoised"].values
    np.testing.assert_array_equal(a, io.open_dataset(folder / "direct")["denoised"].values)
    assert smooth["outputs"]["result.zarr"] == digest(folder / "results" / "smooth" / "result.zarr")
    # every output names the experiment file, its checksum and its inputs' checksums
    from ionscope.data import provenance

    step = provenance(io.open_dataset(folder / "results" / "smoother"))[-1]
    assert step["step"] == "ionscope.pipeline.run" and step["params"]["step"] == "smoother"
    assert step["params"]["experiment_sha256"] == record["experiment"]["sha256"]
    assert step["params"]["inputs"] == smoother["inputs"]
    summary = json.loads((folder / "results" / "smoother" / "summary.json").read_text())
    assert summary["experiment"]["experiment"] == str(folder / "exp.toml")
    assert "experiment" not in json.loads((folder / "direct" / "summary.json").read_text())


def test_resume_keeps_what_is_done_and_redoes_what_changed(folder, run_cli):
    assert run_cli("run", folder / "exp.toml").returncode == 0
    first = digest(folder / "results" / "smoother" / "result.zarr")
    # without --resume an existing output folder is refused, and left as it was
    line = _error_line(run_cli("run", folder / "exp.toml"))
    assert "exists; add --resume" in line
    res = run_cli("run", folder / "exp.toml", "--resume")
    assert res.returncode == 0 and "2 kept" in res.stdout
    assert all(s["kept"] for s in _record(folder)["steps"].values())
    assert digest(folder / "results" / "smoother" / "result.zarr") == first
    # a damaged output is redone, bit-identical: the next step's input is unchanged, so it is kept
    store = folder / "results" / "smooth" / "result.zarr"
    meta = next(store / n for n in ("zarr.json", ".zmetadata", ".zattrs") if (store / n).exists())  # zarr 3 or 2
    meta.write_bytes(meta.read_bytes()[:10])
    assert run_cli("run", folder / "exp.toml", "--resume").returncode == 0
    steps = _record(folder)["steps"]
    assert not steps["smooth"]["kept"] and steps["smoother"]["kept"]
    assert digest(folder / "results" / "smooth" / "result.zarr") == steps["smooth"]["outputs"]["result.zarr"]
    # a changed option redoes that step only
    (folder / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="tv")))
    assert run_cli("run", folder / "exp.toml", "--resume").returncode == 0
    steps = _record(folder)["steps"]
    assert steps["smooth"]["kept"] and not steps["smoother"]["kept"]
    assert "tv" in steps["smoother"]["argv"]


def test_an_interrupted_run_is_finished_by_resume(folder, run_cli):
    """As after a SIGKILL: the record says the second step is pending and its folder holds a
    partial result; --resume redoes it and gives the uninterrupted run's result."""
    assert run_cli("run", folder / "exp.toml", "--out", folder / "whole").returncode == 0
    assert run_cli("run", folder / "exp.toml").returncode == 0
    record = _record(folder)
    record["steps"]["smoother"] = {"status": "pending"}
    record["status"] = "running"
    (folder / "results" / "run.json").write_text(json.dumps(record))
    partial = folder / "results" / "smoother" / "result.zarr"
    for p in partial.rglob("*"):
        if p.is_file() and not p.name.startswith((".z", "zarr.json")):
            p.unlink()
            break
    res = run_cli("run", folder / "exp.toml", "--resume")
    assert res.returncode == 0, res.stderr
    steps = _record(folder)["steps"]
    assert steps["smooth"]["kept"] and not steps["smoother"]["kept"]
    np.testing.assert_array_equal(io.open_dataset(folder / "results" / "smoother")["denoised"].values,
                                  io.open_dataset(folder / "whole" / "smoother")["denoised"].values)


def test_a_failing_step_says_which_and_resume_continues(folder, run_cli):
    (folder / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="bogus")))
    line = _error_line(run_cli("run", folder / "exp.toml"))
    assert line.startswith("error: step 'smoother' (ionscope denoise): ") and "--resume" in line
    record = _record(folder)
    assert record["status"] == "failed" and record["steps"]["smooth"]["status"] == "done"
    assert record["steps"]["smoother"]["status"] == "failed" and "bogus" in record["steps"]["smoother"]["error"]
    (folder / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="gaussian")))
    res = run_cli("run", folder / "exp.toml", "--resume")
    assert res.returncode == 0 and "1 kept" in res.stdout


def test_careless_experiment_files_write_nothing(folder, run_cli):
    for change, needle in ((('command = "denoise"', 'command = "denoize"'), "'denoize' is not an ionscope command"),
                           (('path = "series.zarr"', 'path = "nothing*.zarr"'), "matches no file"),
                           (('input = "smooth"', 'input = "smoother"'), "earlier steps only")):
        (folder / "bad.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="gaussian")).replace(*change, 1))
        line = _error_line(run_cli("run", folder / "bad.toml"))
        assert needle in line and "bad.toml:" in line
        assert not (folder / "results").exists()
    line = _error_line(run_cli("run", folder / "exp.toml", "--out", folder / "series.zarr" / "inside"))
    assert "overlap" in line
