"""The cross-sectional KPFM section of the demo (ionscope.pipeline.kpfm_demo): the composite-cathode
twin written as .sxm files and cycler.csv, processed from them, scored against the twin's truth.

Measured on the quick run (seed 0: 256 x 256 px at 5 nm, 4 frames, the twin's PSF given, the
study's sample reaching 1.8 um beyond the field): noise 10.02 mV against 10; RMS error against
the unblurred truth 32 % lower after deconvolution in the worst frame; particle edges 88 %
narrower; the active mask's IoU 0.93, 6 of 6 particles' active flags right (3 active; a fourth
active particle of the twin shows only a 10800 nm^2 sliver at the field's edge); registration
within 0.03 px of the drift (2 px). The
full run (the default twin, 10 nm pixels) misses two targets - deconvolution 24 %, edges 40 % -
for reasons benchmarks/RESULTS.md (KPFM) shows: the PSF core is finer than a pixel there.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope import io
from ionscope.pipeline import kpfm_demo
from ionscope.pipeline.demo import SECTION_MODULES, registered_sections, run_demo

SECTION = "ionscope.pipeline.kpfm_demo.kpfm_section"
FIGURES = ["kpfm_maps.png", "kpfm_active_particles.png", "kpfm_particle_dv.png", "kpfm_electrolyte.png"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kpfm_demo")
    return out, run_demo(out, quick=True, sections=[SECTION])


def test_section_is_registered():
    assert "ionscope.pipeline.kpfm_demo" in SECTION_MODULES
    assert SECTION in {s.name for s in registered_sections()}


def test_key_states_come_from_the_cycler_current():
    current = np.array([0.0, 1e-5, 1e-5, 1e-5, 1e-5, 0.0, 0.0])
    assert kpfm_demo.key_states(current) == {"OCV": 0, "mid-charge": 2, "end of charge": 4, "rest": 6}
    assert kpfm_demo.key_states(np.array([1e-5, 1e-5])) == {"mid-charge": 0, "end of charge": 1}
    assert kpfm_demo.key_states(np.zeros(3)) == {"first": 0, "last": 2}


def test_the_profile_starts_in_the_collector_and_avoids_particles_for_every_edge():
    labels = np.zeros((64, 48), int)
    labels[30:40, 4:20] = 1
    start, end, width = kpfm_demo.profile_band(labels, labels > 0, (56, 64, 0, 48), "bottom", width=8, reach=20)
    assert start[0] > 56 > end[0] == 36 and width == 8 and not labels[36:56, int(start[1]) - 4:int(start[1]) + 4].any()
    start, end, _ = kpfm_demo.profile_band(labels.T, labels.T > 0, (0, 48, 0, 8), "left", width=8, reach=20)
    assert start[1] < 8 < end[1] == 27 and start[0] == end[0]  # 20 px beyond the band's last column


def test_a_simulator_without_the_twin_skips_the_section(tmp_path):
    def fake(name, *, seed, **params):
        raise AssertionError("the section must not ask for a twin the simulator does not make")

    summary = run_demo(tmp_path / "demo", quick=True, sections=[SECTION], simulator=fake)
    assert "kpfm" not in summary and "Cross-sectional KPFM" not in (tmp_path / "demo" / "report.html").read_text()


@pytest.mark.slow
def test_quick_run_writes_the_instruments_files_figures_and_summary(quick_run):
    out, summary = quick_run
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    k = summary["kpfm"]
    scans = sorted((out / kpfm_demo.SCAN_FOLDER).glob("frame_*.sxm"))
    assert len(scans) == k["frames"] == 4
    assert (out / kpfm_demo.SCAN_FOLDER / "cycler.csv").is_file()
    assert io.open_dataset(scans[0])["KPFM_forward"].attrs["units"] == "V"  # files a user can open
    assert set(FIGURES) <= set(summary["files"]) and f"{kpfm_demo.SCAN_FOLDER}/cycler.csv" in summary["files"]
    assert "Cross-sectional KPFM" in (out / "report.html").read_text(encoding="utf-8")
    saved = json.loads((out / "summary.json").read_text())
    assert saved["kpfm"]["iou_active"] == pytest.approx(k["iou_active"])
    assert k["key_frames"] == {"OCV": 0, "mid-charge": 1, "end of charge": 2, "rest": 3}
    assert k["scan_directions"] == ["up", "down", "up", "down"]


@pytest.mark.slow
def test_the_table_meets_the_targets_on_the_quick_twin(quick_run):
    """Issue 13's targets, each number measured in the run against the twin's truth."""
    k = quick_run[1]["kpfm"]
    assert abs(k["noise_mV"] / k["noise_truth_mV"] - 1) <= 0.2
    assert abs(k["noise_trace_mV"] / k["noise_truth_mV"] - 1) <= 0.2
    assert k["deconvolution_gain"]["min"] >= 0.30
    assert k["resolution"]["narrowing"] >= 0.40 and k["resolution"]["edge_profiles"] >= 100
    assert k["resolution"]["particle_edge_nm"] < k["resolution"]["particle_edge_raw_nm"]
    assert k["iou_active"] >= 0.9
    assert k["registration_error_px"]["max"] <= 0.1 < k["registration_error_px"]["drift_max_px"]
    # every particle found gets the twin's active flag (a sliver at the field's edge is not a particle)
    assert k["active_flags_agree"] == f"{k['particles']} of {k['particles']}" and k["particles"] >= 5
    assert 0 < k["active_particles"] <= k["active_particles_truth"]
    assert all(k["targets"]["holds"].values())


@pytest.mark.slow
def test_the_electrolyte_rises_near_active_particles_and_deconvolution_removes_their_spill(quick_run):
    rise = {name: np.array(v) for name, v in quick_run[1]["kpfm"]["electrolyte_rise_mV"].items()}
    assert rise["near_truth"][-1] > 10 and rise["near_deconvolved"][-1] > 10  # the twin's first-charge rise
    # the PSF tail spills the particles' own +150 mV change into their surroundings; deconvolution
    # brings the electrolyte's change closer to the truth over the same pixels
    err_raw = np.abs(rise["near_raw"] - rise["near_truth"])[1:].mean()
    err_dec = np.abs(rise["near_deconvolved"] - rise["near_truth"])[1:].mean()
    assert err_dec < err_raw


@pytest.mark.slow
def test_the_psf_estimate_at_a_collector_along_the_scan_lines_is_flagged(quick_run):
    """The twin's collector lies along the bottom edge: its edge profile crosses scan lines, so
    process_frames warns for psf='auto' and notes the collector-edge resolution; the section
    uses the given PSF and reports the estimate beside it."""
    k = quick_run[1]["kpfm"]
    assert any("crosses the scan lines" in w for w in k["psf_auto"]["warnings"])
    assert "across the scan lines" in k["resolution"]["collector_edge_note"]
    assert k["psf_given"] == {"core_sigma_nm": 7.0, "tail_weight": 0.3, "tail_sigma_nm": 80.0}


@pytest.mark.slow
def test_the_potential_maps_play_in_a_browser(quick_run, browser):
    """Headless Chromium: the deconvolved / raw / truth potential series follows its slider and the
    marker on cycler.csv's voltage; the read-out is in mV and nm."""
    from browser import check_report

    seen = check_report(browser, quick_run[0] / "report.html")
    assert seen["images"] >= 4 and seen["series"] == seen["sliders"] == 1
    assert " mV at x = " in seen["readouts"][0]
