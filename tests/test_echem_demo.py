"""The electrochemistry section of the demo (ionscope.pipeline.echem_demo): the cell_cycling twin's
two cycler logs written as CSV, read, summarised and compared, against the truth.

Measured on the quick run (seed 0: 2 cycles logged every 30 s): every capacity and efficiency equals
the twin's truth to rounding; dQ/dV charge peaks at 4.8475 and 4.9525 V against 4.85 and 4.95 V
(the OCV plateaus + I R); cycle 1 differs (the fresh cell's first-charge loss), cycle 2 agrees.
"""

from __future__ import annotations

import pytest

from ionscope.pipeline import echem_demo  # noqa: F401  (registers the section)
from ionscope.pipeline.demo import SECTION_MODULES, registered_sections, run_demo

SECTION = "ionscope.pipeline.echem_demo.echem_section"
FIGURES = ["echem_voltage_capacity.png", "echem_cycles.png", "echem_dqdv.png"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("echem_demo")
    return out, run_demo(out, quick=True, sections=[SECTION])


def test_section_is_registered():
    assert "ionscope.pipeline.echem_demo" in SECTION_MODULES
    assert SECTION in {s.name for s in registered_sections()}


def test_the_logs_are_read_summarised_and_compared_against_the_truth(quick_run):
    out, summary = quick_run
    e = summary["echem"]
    assert max(e["relative_error_vs_truth"].values()) < 1e-3  # the 0.1 %
    for got, want in zip(e["dqdv_charge_peaks_V"], e["dqdv_charge_peaks_expected_V"]):
        assert got == pytest.approx(want, abs=0.01)
    agree = [r["agree"] for r in e["compare"]["rows"]]
    assert agree == [False, True] and e["compare"]["later_cycles_agree"]
    assert "first-cycle irreversible loss" in e["compare"]["verdict"]
    for name in FIGURES:
        assert (out / name).stat().st_size > 10_000
    assert sorted(p.name for p in (out / "cycler_logs").iterdir()) == ["after.csv", "before.csv", "truth.zarr"]
    report = (out / "report.html").read_text()
    assert "capacity before and after polishing" in report and "echem compare" in report
