"""The fast-EELS sparse-coding section of the demo (ionscope.pipeline.denoise_demo) and the Li-motion
section that analyses its denoised movie (ionscope.pipeline.transport_demo)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest

from ionscope.pipeline import denoise_demo, transport_demo  # noqa: F401  (registers the sections)
from ionscope.pipeline.demo import SECTION_MODULES, registered_sections, run_demo

SECTION = "ionscope.pipeline.denoise_demo.sparse_coding_section"
MOTION = "ionscope.pipeline.transport_demo.motion_section"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("denoise_demo")
    return out, run_demo(out, quick=True, sections=[SECTION, MOTION])


def test_section_is_registered():
    assert "ionscope.pipeline.denoise_demo" in SECTION_MODULES
    assert "ionscope.pipeline.transport_demo" in SECTION_MODULES
    names = {s.name for s in registered_sections()}
    assert SECTION in names and MOTION in names


@pytest.mark.slow
def test_quick_run_writes_movie_figures_and_summary(quick_run):
    out, summary = quick_run
    for name in ("eels_sparse_quality.png", "eels_sparse_atoms.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    n = summary["denoise"]["frames"]
    frames = iio.imread(out / "eels_sparse_movie.mp4")
    assert frames.shape[0] == n and frames.shape[-1] == 3
    assert "Fast operando EELS: sparse coding" in (out / "report.html").read_text(encoding="utf-8")
    saved = json.loads((out / "summary.json").read_text())
    for key, scores in summary["denoise"]["methods"].items():
        assert saved["denoise"]["methods"][key] == pytest.approx(scores)


@pytest.mark.slow
def test_sparse_coding_beats_mlls_which_beats_the_window_ratio(quick_run):
    dn = quick_run[1]["denoise"]
    # 1/10 of the EELS demo dose
    assert dn["dose_e_per_px_per_frame"] == pytest.approx(1e8 * denoise_demo.DOSE_FRACTION)
    m = dn["methods"]
    raw, mlls, sparse = m["raw (S_A/S_B)"], m["MLLS"], m["MLLS + sparse coding"]
    # measured on the quick twin, seed 0: 16.2, 23.4 and 39.4 dB
    assert raw["psnr"] < mlls["psnr"] - 5 < sparse["psnr"] - 15
    assert sparse["ssim"] > 0.95 > 0.5 > mlls["ssim"]
    # the seed's "10x faster": sparse-coded maps at 1/10 dose are closer to the truth than
    # MLLS maps at the full dose (MAE 0.017)
    assert sparse["mae"] < 0.012
    # Li is neither invented nor lost: frame sums of the MLLS maps kept to < 2 %
    assert dn["li_conservation"]["max_abs"] < 0.02
    assert dn["mean_li_max_abs_error"]["MLLS + sparse coding"] < 0.015


@pytest.mark.slow
def test_motion_section_shows_the_flux_front_and_in_plane_fraction(quick_run):
    out, summary = quick_run
    for name in ("li_motion_flux.png", "li_motion_front.png", "li_motion_in_plane.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Li motion" in html and "in-plane" in html
    saved = json.loads((out / "summary.json").read_text())["motion"]
    assert set(saved["states"]) == {"charge", "rest", "discharge"}


@pytest.mark.slow
def test_motion_on_the_denoised_movie_against_the_twin(quick_run):
    motion = quick_run[1]["motion"]
    s = motion["states"]
    # measured on the quick run, seed 0: charge front 12.7 pm/s (truth 13.8); rest |J| 1.44 (1.77) pm/s
    charge, rest = s["charge"], s["rest"]
    assert charge["front_velocity_nm_per_s"] == pytest.approx(charge["truth"]["front_velocity_nm_per_s"], rel=0.15)
    assert rest["mean_flux_nm_per_s"] == pytest.approx(rest["truth"]["mean_flux_nm_per_s"], rel=0.35)
    assert motion["direction_error_deg_median"] < 20
    lower = motion["minimum_norm_in_plane_fraction"]
    for name in ("charge", "rest", "discharge"):  # the maps alone bound the in-plane transport from below
        assert lower[name] < s[name]["truth"]["in_plane_fraction"] - 0.1
    # with the twin's domain-boundary mask and the mobilities fitted to the maps (quick run, seed 0:
    # D_boundary / D_bulk 33 +- 8, the twin's 40; in-plane 0.241 / 0.306 vs 0.251 / 0.328)
    mob = motion["mobility"]
    assert 20 < mob["ratio"] < 60 and set(mob["pooled_states"]) == {"rest", "charge"}
    # the mobility fitted on charge and rest routes every state's flux, discharge included (the twin
    # supplies inserted Li along its own D)
    assert mob["fickian_states"] == ["rest", "charge", "discharge"]
    for name in ("charge", "rest", "discharge"):
        assert s[name]["in_plane_fraction"] == pytest.approx(s[name]["truth"]["in_plane_fraction"], abs=0.05)


@pytest.mark.slow
def test_the_li_maps_play_in_a_browser(quick_run, browser):
    """Headless Chromium: the raw / fitted / denoised Li series follows its slider and the marker
    on the cell voltage, and the page logs no JavaScript error."""
    from browser import check_report

    seen = check_report(browser, quick_run[0] / "report.html")
    assert seen["images"] >= 3 and seen["series"] == seen["sliders"] == 1
    html = (quick_run[0] / "report.html").read_text(encoding="utf-8")
    assert "fitted (MLLS)" in html and "denoised (MLLS + sparse coding)" in html
