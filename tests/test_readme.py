"""The README's Python example runs as printed."""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest


def _run_example(index: int, tmp_path, monkeypatch, capsys) -> str:
    """Run the README's ``index``-th Python example (at most 10 lines) in ``tmp_path``; what it printed."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[index]
    assert len(code.strip().splitlines()) <= 10
    script = tmp_path / f"example{index}.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script))
    return capsys.readouterr().out


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    printed = _run_example(0, tmp_path, monkeypatch, capsys)
    assert "'time': 157, 'y': 64, 'x': 64" in printed and "ionscope.simulate.licoo2" in printed
    assert (tmp_path / "licoo2.zarr").is_dir()


def test_readme_workflow_example_runs_and_finds_the_twins_layer(tmp_path, monkeypatch, capsys):
    printed = _run_example(1, tmp_path, monkeypatch, capsys)
    fit = ast.literal_eval(printed.split("}")[0] + "}")  # the printed dict of numbers
    truth = [float(v) for v in printed.split("}")[1].split()]
    # the erfc model through the recorded aperture, one noisy hologram: within 15 % of the twin's layer
    assert abs(fit["drop_V"] / truth[0] - 1) < 0.15 and abs(fit["w90_nm"] / truth[1] - 1) < 0.15


@pytest.mark.filterwarnings("ignore:7Li reaches:ionscope.errors.IonscopeWarning")  # the twin's 7Li saturates
def test_readme_sims_example_runs_and_finds_the_latp_loss(tmp_path, monkeypatch, capsys):
    printed = _run_example(2, tmp_path, monkeypatch, capsys)
    phases, latp = printed.strip().split("] [")
    assert "'LiCoPO4', 'LATP', 'Pd'" in phases
    values = [float(v) for v in latp.rstrip("]").split(",")]
    # the twin's LATP loses 12 % of its Li on the first charge and keeps it lost
    assert values[0] == 1.0 and all(abs(v - 0.88) <= 0.02 for v in values[1:])


def test_readme_eels_example_finds_the_enriched_layer(tmp_path, monkeypatch, capsys):
    interface, width, truth = map(float, _run_example(3, tmp_path, monkeypatch, capsys).split())
    assert interface == pytest.approx(30.0, abs=0.5) and width == pytest.approx(truth, rel=0.1)


def test_readme_denoising_example_lowers_the_error(tmp_path, monkeypatch, capsys):
    model, noisy, _, clean = _run_example(4, tmp_path, monkeypatch, capsys).split()
    assert model == "poisson" and float(clean) < 0.5 * float(noisy)


def test_readme_spacecharge_example_shows_the_asymmetry(tmp_path, monkeypatch, capsys):
    lines = _run_example(5, tmp_path, monkeypatch, capsys).strip().splitlines()
    w90 = {line.split()[0]: float(line.split()[2]) for line in lines}
    # the table of docs/guide/spacecharge.rst: theta 0.99, eps_r 50 -> 0.93 nm and 7.7 nm
    assert w90["1.3"] == pytest.approx(0.93, abs=0.01) and w90["-1.3"] == pytest.approx(7.7, abs=0.05)


def test_readme_cycler_example_gives_every_cycle(tmp_path, monkeypatch, capsys):
    rows = ast.literal_eval(_run_example(6, tmp_path, monkeypatch, capsys).strip())
    assert [r[0] for r in rows] == [1, 2, 3] and all(0.8 < r[2] <= 1.0 for r in rows)


def test_readme_timeline_example_names_the_cell_states(tmp_path, monkeypatch, capsys):
    printed = _run_example(7, tmp_path, monkeypatch, capsys)
    states = ast.literal_eval(printed.split("]")[0] + "]")
    assert states[0] == "charge" and set(states) <= {"charge", "rest", "discharge"} and printed.strip().endswith("V")
