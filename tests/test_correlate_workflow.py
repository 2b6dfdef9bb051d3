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
from ionscope.simulate import simulate
from ionscope.simulate.composite_cathode_files import write_scan_files
from ionscope.simulate.composite_cathode_params import CompositeCathodeParams
from ionscope.simulate.composite_cathode_sims import simulate_sims

#: The default sample (2.56 um field, so the default 28 x 28 px TOF-SIMS field fits) at 10 nm
#: KPFM pixels, 3 frames (open circuit, 2 of charge), 3 states of charge.
PARAMS = dict(ny=256, nx=256, pixel_nm=10.0, charge_frames=2, rest_frames=0, sims_states=3)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, run_cli):
    root = tmp_path_factory.mktemp("correlate")
    truth = simulate_sims(CompositeCathodeParams(**PARAMS), seed=0)
    written = write_scan_files(simulate("composite_cathode", seed=0, **PARAMS), root, sims=truth)
    scans = [p for p in written if p.suffix == ".sxm"]
    spectra = [p for p in written if p.suffix == ".imzML"]
    assert run_cli("kpfm", "process", *scans, "--cycler", root / "cycler.csv", "--out", root / "k").returncode == 0
    res = run_cli("sims", "lithium", *spectra, "--pulses", str(int(truth.attrs["pulses_per_pixel"])), "--out", root / "s")
    assert res.returncode == 0, res.stderr
    res = run_cli("correlate", root / "k", root / "s", "--out", root / "c")
    assert res.returncode == 0, res.stderr
    return root, truth


def test_the_kpfm_field_lands_where_the_twin_put_it(chain):
    root, truth = chain
    summary = json.loads((root / "c" / "summary.json").read_text())
    # the TOF-SIMS field's first pixel sits at field_origin_in_kpfm_nm of the KPFM grid: a KPFM point
    # r lies at r - origin on the TOF-SIMS grid (no rotation in this twin)
    oy, ox = truth.attrs["field_origin_in_kpfm_nm"]
    pixel = float(truth.attrs["pixel_size_nm"])
    assert abs(summary["rotation_deg"]) < 0.3
    assert abs(summary["shift_y_nm"] + oy) < 0.3 * pixel and abs(summary["shift_x_nm"] + ox) < 0.3 * pixel
    result = io.open_dataset(root / "c")
    on = result["potential_on_sims"]
    assert on.dims == ("time", "y", "x") and on.attrs["units"] == "V" and on.sizes["time"] == 3
    covered = np.isfinite(on.values[0])
    assert 0.5 * covered.size < covered.sum() < covered.size  # the KPFM field inside the TOF-SIMS one
    assert (root / "c" / "correlation.png").stat().st_size > 10_000


def test_active_particles_gain_potential_and_lose_li(chain):
    root, _ = chain
    summary = json.loads((root / "c" / "summary.json").read_text())
    assert summary["particles_correlated"] >= 8
    p = summary["pearson"]
    assert p["r"] < -0.6 and p["ci_high"] < 0  # the twin's active particles: potential up, Li down
    with open(root / "c" / "correlation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["particle", "phase", "pair", "frames", "states", "dV_mV", "dLi_rel", "pixels"]
    latp = [r for r in rows if r["phase"] == "LATP" and not r["particle"]]
    assert latp and float(latp[0]["dLi_rel"]) < -0.05 and float(latp[0]["dV_mV"]) > 0  # the electrolyte: Li lost, potential up


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
             ((root / "k", root / "s", "--init-shift", "1,2,3"), "--init-shift")]
    for args, needle in cases:
        line = _error_line(run_cli("correlate", *args, "--out", tmp_path / "o"))
        assert needle in line, line
        assert not (tmp_path / "o").exists()
