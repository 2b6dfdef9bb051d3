"""The composite-cathode sections of the demo that run on one quick run here: in-situ TOF-SIMS
(ionscope.pipeline.sims_demo: the twin's TOF-SIMS written as imzML files, processed from them with
lithium_states, scored against the twin's truth) and the study (ionscope.pipeline.study_demo: the
KPFM chain and the TOF-SIMS chain registered and correlated). The KPFM section has its own test
file (test_kpfm_demo.py); the study runs the KPFM chain itself when that section is not in the run.

Measured on the quick run (seed 0: 64 x 64 px of 50 nm, 3 states, the field turned 3.5 degrees
against the 1.28 um KPFM field): LATP Li after the first charge 0.877 +- 0.003 (truth 0.88);
registration within 0.001 degrees and 0.02 px; 6 particles in the KPFM field, 3 active, KPFM
and TOF-SIMS right on all 6; r = -1.00 (truth -1.00); the electrolyte's potential rise 15.9 +-
0.9 mV (the unblurred truth 12.7: the PSF's tail carries the active particles' rise into it).
"""

from __future__ import annotations

import json

import pytest

from ionscope import io
from ionscope.pipeline import sims_demo, study_demo  # noqa: F401  (registers the sections)
from ionscope.pipeline.demo import SECTION_MODULES, registered_sections, run_demo

SECTION = "ionscope.pipeline.sims_demo.sims_section"
STUDY = "ionscope.pipeline.study_demo.study_section"
FIGURES = ["sims_li_maps.png", "sims_phases.png", "sims_li_per_phase.png", "sims_isotope_check.png"]
STUDY_FIGURES = ["study_registration.png", "study_correlation.png", "study_timeline.png"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("composite_demo")
    return out, run_demo(out, quick=True, sections=[SECTION, STUDY])


def test_sections_are_registered():
    assert {"ionscope.pipeline.sims_demo", "ionscope.pipeline.study_demo"} <= set(SECTION_MODULES)
    assert {SECTION, STUDY} <= {s.name for s in registered_sections()}


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


def test_the_study_registers_the_kpfm_field_and_states_its_conclusions_with_errors(quick_run):
    out, summary = quick_run
    study = summary["study"]
    assert all(study["targets"]["holds"].values()), study["targets"]  # 0.1 degrees, 0.3 px, the sign
    reg = study["registration"]
    assert reg["truth"]["rotation_deg"] == -3.5 and reg["converged"]
    assert abs(reg["rotation_error_deg"]) <= 0.1 and max(map(abs, reg["shift_error_px"])) <= 0.3
    n = study["particles_in_field"]
    assert n >= 5 and study["active"]["truth"] >= 2
    for who in ("kpfm", "tof_sims"):  # both instruments find the twin's active particles
        agree = int(study["active"][f"{who}_agrees_with_truth"].split(" of ")[0])
        assert agree >= n - 1, study["active"]
    latp = study["latp_li_first_charge"]
    assert abs(latp["rel"] - latp["truth"]) < 0.02 and (1 - latp["rel"]) > 5 * latp["err"]
    rise = study["electrolyte_rise_mV"]
    assert rise["truth"] > 5 and rise["value"] > 5 * rise["err"] and abs(rise["value"] - rise["truth"]) < 0.5 * rise["truth"]
    assert study["pearson"]["r"] < -0.8 and study["pearson"]["ci_high"] < 0 and study["pearson_truth"] < -0.8
    for name in STUDY_FIGURES:
        assert (out / name).stat().st_size > 10_000
    report = (out / "report.html").read_text()
    assert "Composite cathode: KPFM + TOF-SIMS" in report and "The electrolyte loses Li on the first charge" in report
    # the study ran the KPFM chain itself (the KPFM section is not in this run): its files are there
    assert (out / "kpfm_scans" / "cycler.csv").is_file() and "kpfm" not in summary


def test_a_simulator_without_the_twin_skips_the_sections(tmp_path):
    def fake(name, *, seed, **params):
        raise AssertionError("the section must not ask for a twin the simulator does not make")

    summary = run_demo(tmp_path / "demo", quick=True, sections=[SECTION, STUDY], simulator=fake)
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "sims" not in summary and "study" not in summary
    assert "In-situ TOF-SIMS" not in report and "KPFM + TOF-SIMS" not in report
