"""The in-situ TOF-SIMS section of the demo (ionscope.pipeline.sims_demo): the composite-cathode
twin's TOF-SIMS written as imzML files, processed from them with lithium_states, scored against
the twin's truth.

Measured on the quick run (seed 0: 28 x 28 px of 100 nm, 3 states): LATP Li after the first charge
0.879 +- 0.007 (truth 0.88), kept at discharge (0.892); per-phase errors at most 0.012; phases
98.6 % of the pixels; 7Li / (12.2 x 6Li) corrected within 0.6 % (observed ~0.62).
"""

from __future__ import annotations

import json

import pytest

from ionscope import io
from ionscope.pipeline import sims_demo  # noqa: F401  (registers the section)
from ionscope.pipeline.demo import SECTION_MODULES, registered_sections, run_demo

SECTION = "ionscope.pipeline.sims_demo.sims_section"
FIGURES = ["sims_li_maps.png", "sims_phases.png", "sims_li_per_phase.png", "sims_isotope_check.png"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sims_demo")
    return out, run_demo(out, quick=True, sections=[SECTION])


def test_section_is_registered():
    assert "ionscope.pipeline.sims_demo" in SECTION_MODULES
    assert SECTION in {s.name for s in registered_sections()}


def test_the_section_runs_from_the_imzml_files_and_meets_the_targets(quick_run):
    out, summary = quick_run
    sims = summary["sims"]
    assert all(sims["targets"]["holds"].values()), sims["targets"]
    assert sims["states"] == ["pristine", "charge 1", "discharge 1"]
    assert sims["phases"][:3] == ["LiCoPO4", "LATP", "Pd"]
    loss = sims["latp_first_charge"]
    assert loss["z"] < -5 and abs(loss["rel"] - loss["truth"]) < 0.02
    assert all(abs(v - loss["truth"]) < 0.02 for v in loss["kept"])  # kept lost at discharge
    for name in FIGURES:
        assert (out / name).stat().st_size > 10_000
    files = sorted(p.name for p in (out / "sims_states").iterdir())
    assert files[:2] == ["sims_0_pristine.ibd", "sims_0_pristine.imzML"] and "sims_truth.zarr" in files
    assert io.open_dataset(out / "sims_states" / "sims_1_charge1.imzML")["counts"].dims == ("y", "x", "peak")
    report = (out / "report.html").read_text()
    assert "In-situ TOF-SIMS" in report and "LATP loses Li on the first charge" in report
    assert json.loads((out / "summary.json").read_text())["sims"]["phase_accuracy"] >= 0.95


def test_a_simulator_without_the_twin_skips_the_section(tmp_path):
    def fake(name, *, seed, **params):
        raise AssertionError("the section must not ask for a twin the simulator does not make")

    summary = run_demo(tmp_path / "demo", quick=True, sections=[SECTION], simulator=fake)
    assert "sims" not in summary and "In-situ TOF-SIMS" not in (tmp_path / "demo" / "report.html").read_text()
