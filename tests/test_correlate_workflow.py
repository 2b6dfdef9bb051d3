"""`ionscope correlate` (and :func:`ionscope.correlate.workflow.correlate_results`) on the
composite-cathode twin: its KPFM frames through `kpfm process`, its TOF-SIMS states through
`sims lithium`, registered and correlated, against the twin's geometry and physics."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_careless_input import _error_line

from ionscope import io
from ionscope.correlate.workflow import correlate_results
from ionscope.errors import InputError
from ionscope.pipeline import kpfm_demo
from ionscope.simulate import simulate
from ionscope.simulate.composite_cathode_files import write_scan_files
from ionscope.simulate.composite_cathode_params import CompositeCathodeParams
from ionscope.simulate.composite_cathode_sims import simulate_sims

#: The study's geometry (the demo's, ionscope.pipeline.kpfm_demo.PARAMETERS["full"]): a 2.56 um
#: KPFM field (here at 10 nm pixels, 4 frames: open circuit, 2 of charge, rest) inside a 48 x 48 px
#: TOF-SIMS field of 100 nm, rotated 3.5 degrees and 1 um off its centre; 3 states of charge, the
#: first at the log's start, the second at its end, the third an hour later.
PARAMS = dict(kpfm_demo.PARAMETERS["full"], ny=256, nx=256, pixel_nm=10.0, charge_frames=2, rest_frames=1,
              sims_states=3)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, run_cli):
    root = tmp_path_factory.mktemp("correlate")
    truth = simulate_sims(CompositeCathodeParams(**PARAMS), seed=0)
    written = write_scan_files(simulate("composite_cathode", seed=0, **PARAMS), root, sims=truth)
    scans = [p for p in written if p.suffix == ".sxm"]
    spectra = [p for p in written if p.suffix == ".imzML"]
    assert run_cli("kpfm", "process", *scans, "--cycler", root / "cycler.csv", "--out", root / "k").returncode == 0
    res = run_cli("sims", "lithium", *spectra, "--pulses", str(int(truth.attrs["pulses_per_pixel"])),
                  "--cycler", root / "cycler.csv", "--out", root / "s")
    assert res.returncode == 0, res.stderr
    assert "states 2 (1 of 3) lie outside the cycler log" in res.stderr  # discharge1: after the KPFM session
    res = run_cli("correlate", root / "k", root / "s", "--out", root / "c")
    assert res.returncode == 0, res.stderr
    return root, truth


def test_the_kpfm_field_lands_where_the_twin_put_it(chain):
    root, truth = chain
    summary = json.loads((root / "c" / "summary.json").read_text())
    # the twin's geometry in register_rigid's convention: the KPFM content turned by -3.5 degrees
    # (the TOF-SIMS raster is turned by +3.5) and shifted; issue 16's targets: 0.1 degrees, 0.3 px
    true = json.loads(truth.attrs["kpfm_to_sims"])
    pixel = float(truth.attrs["pixel_size_nm"])
    assert true["rotation_deg"] == -3.5
    assert abs(summary["rotation_deg"] - true["rotation_deg"]) < 0.1
    assert abs(summary["shift_y_nm"] - true["shift_y_nm"]) < 0.3 * pixel
    assert abs(summary["shift_x_nm"] - true["shift_x_nm"]) < 0.3 * pixel
    result = io.open_dataset(root / "c")
    on = result["potential_on_sims"]
    assert on.dims == ("time", "y", "x") and on.attrs["units"] == "V" and on.sizes["time"] == 4
    covered = np.isfinite(on.values[0])
    # the KPFM field (2.56 um square) inside the TOF-SIMS one: its area less the pixels its edges cut
    kpfm_px = (256 * 10.0 / pixel) ** 2
    assert 0.85 * kpfm_px < covered.sum() < kpfm_px < covered.size
    assert (root / "c" / "correlation.png").stat().st_size > 10_000


def test_active_particles_gain_potential_and_lose_li(chain):
    root, _ = chain
    summary = json.loads((root / "c" / "summary.json").read_text())
    assert summary["particles_correlated"] >= 8
    p = summary["pearson"]
    assert p["r"] < -0.6 and p["ci_high"] < 0  # the twin's active particles: potential up, Li down
    with open(root / "c" / "correlation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["particle", "phase", "pair", "frames", "states", "dV_mV", "dV_err_mV", "dLi_rel",
                             "dLi_rel_err", "pixels"]
    latp = [r for r in rows if r["phase"] == "LATP" and not r["particle"]]
    # the electrolyte: Li lost (the twin: 12 %), potential up, each beyond 5 of its errors
    assert latp and float(latp[0]["dLi_rel"]) + 5 * float(latp[0]["dLi_rel_err"]) < 0
    assert abs(float(latp[0]["dLi_rel"]) + 0.12) < 0.02
    assert float(latp[0]["dV_mV"]) - 5 * float(latp[0]["dV_err_mV"]) > 0


def test_both_timelines_pair_the_frames_with_the_states_by_the_cells_charge(chain):
    root, truth = chain
    sims = io.open_dataset(root / "s")
    # the states on the cell's log: pristine at its start (no charge), charge1 at its end
    assert sims["charge"].dims == ("state",) and sims["charge"].attrs["units"] == "mAh"
    assert sims["charge"].values[0] == pytest.approx(0.0, abs=1e-9) and sims["charge"].values[1] > 0
    assert np.isnan(sims["charge"].values[2]) and (root / "s" / "timeline.png").stat().st_size > 10_000
    summary = json.loads((root / "c" / "summary.json").read_text())
    assert summary["pairing"].startswith("by the cell's charge")
    assert [p["state_indices"] for p in summary["pairs"]] == [[0, 1]]
    assert summary["pairs"][0]["frame_indices"] == [0, 3]  # the open-circuit frame, the rest after the charge


def test_pairs_and_careless_input(chain, run_cli, tmp_path):
    root, _ = chain
    k, s = io.open_dataset(root / "k"), io.open_dataset(root / "s")
    _, _, summary = correlate_results(k, s, pairs="0:0,-1:2", search=False)
    assert summary["pairs"][0]["states"] == [str(s["state"].values[0]), str(s["state"].values[2])]
    with pytest.raises(InputError, match="not a `sims lithium` result"):
        correlate_results(k, k)
    cases = [((root / "s", root / "k"), "not a `kpfm process` result"),
             ((root / "k", root / "s", "--pairs", "0:0,7:1"), "frame 7 does not exist"),
             ((root / "k", root / "s", "--pairs", "0:sims_0_pristine,2:charge9"), "no state 'charge9'"),
             ((root / "k", root / "s", "--init-shift", "1,2,3"), "--init-shift"),
             ((root / "k", root / "s", "--init-shift", "20000,0"), "overlaps the fixed one by 0 pixel(s)")]
    spectra = sorted(root.glob("*.imzML"))
    untimed = tmp_path / "untimed.imzML"
    io.write_imzml(untimed, io.open_dataset(spectra[0])["peak_mass"].values, io.open_dataset(spectra[0])["counts"].values,
                   pixel_size_um=0.1)
    line = _error_line(run_cli("sims", "lithium", untimed, spectra[1], "--cycler", root / "cycler.csv", "--out",
                               tmp_path / "o"))
    assert "untimed.imzML" in line and "acquisition time" in line and not (tmp_path / "o").exists()
    line = _error_line(run_cli("sims", "lithium", *spectra, "--start", "2025-06-02T10:00:00", "--out", tmp_path / "o"))
    assert "--start" in line and "--cycler" in line and not (tmp_path / "o").exists()
    for args, needle in cases:
        line = _error_line(run_cli("correlate", *args, "--out", tmp_path / "o"))
        assert needle in line, line
        assert not (tmp_path / "o").exists()
