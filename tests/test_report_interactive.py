"""The interactive report: the map-series item (ionscope.report.interactive), the report of an
``ionscope run`` (ionscope.report.experiment), and that report in a real browser (headless
Chromium: tests/browser.py)."""

from __future__ import annotations

import base64
import json
import re
import textwrap

import numpy as np
import pytest
from browser import check_report
from test_run_experiment import EXPERIMENT

from ionscope import io
from ionscope.data import signal
from ionscope.report.experiment import experiment_report
from ionscope.report.html import Report, Section
from ionscope.report.interactive import InteractiveSeriesItem


def _payload(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" class="is-data">(.*?)</script>', html, re.S)
                      .group(1).replace("<\\/", "</"))


def _decode(layer: dict, shape) -> np.ndarray:
    codes = np.frombuffer(base64.b64decode(layer["data"]), np.uint8).reshape(shape).astype(float)
    return np.where(codes == 255, np.nan, layer["lo"] + (layer["hi"] - layer["lo"]) * codes / 254)


def test_the_maps_are_embedded_within_half_a_quantisation_step_and_nan_survives():
    rng = np.random.default_rng(1)
    maps = rng.normal(0.5, 0.2, (5, 12, 9))
    maps[2, 3, 4] = np.nan
    item = InteractiveSeriesItem({"raw": maps}, x_nm=np.arange(9) * 5.0, y_nm=np.arange(12) * 5.0,
                                 time_s=np.arange(5) * 60.0, voltage_V=np.linspace(3.5, 4.0, 5), unit="1")
    data = _payload(Report("r").add(Section("s", [item])).render())
    back = _decode(data["layers"][0], (5, 12, 9))
    step = (np.nanmax(maps) - np.nanmin(maps)) / 254
    assert np.isnan(back[2, 3, 4]) and np.isfinite(back).sum() == maps.size - 1
    assert np.nanmax(np.abs(back - maps)) <= step / 2 + 1e-12
    assert data["v"][-1] == 4.0 and data["tunit"] == "s" and data["frames"] == [0, 1, 2, 3, 4]


def test_large_series_are_binned_and_thinned_to_the_limits_and_say_so():
    maps = np.arange(40 * 64 * 64, dtype=float).reshape(40, 64, 64)
    item = InteractiveSeriesItem({"a": maps, "b": -maps}, x_nm=np.arange(64.0), y_nm=np.arange(64.0),
                                 max_pixels=32 * 32, max_values=2 * 32 * 32 * 10)
    html = item.to_html()
    data = _payload(html)
    assert (data["nx"], data["ny"], len(data["t"])) == (32, 32, 10)
    assert data["frames"][0] == 0 and data["frames"][-1] == 39
    assert data["x"][:2] == [0.5, 2.5]  # the block centres
    assert "binned 2 × 2" in html and "10 of 40 frames" in html


def test_a_script_shared_by_items_is_on_the_page_once_and_nothing_is_fetched():
    items = [InteractiveSeriesItem({"m": np.ones((4, 4))}, x_nm=np.arange(4.0), y_nm=np.arange(4.0)) for _ in range(3)]
    html = Report("r").add(Section("s", items)).render()
    assert html.count("function ionscopeSeries") == 1 and html.count('<figure class="item iseries"') == 3
    assert "http://" not in html and "https://" not in html and "src=\"//" not in html
    assert 'class="is-slider"' not in html  # one frame: no slider


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, run_cli):
    """A series of 8 Li maps with the cycler's voltage per frame, smoothed twice by `ionscope run`."""
    folder = tmp_path_factory.mktemp("run_report")
    rng = np.random.default_rng(0)
    t = np.arange(8) * 120.0
    da = signal(np.clip(rng.poisson(20, (8, 24, 32)) / 20.0 * np.linspace(1, 0.5, 8)[:, None, None], 0, None),
                ("time", "y", "x"), name="li", units="1", coords={"time": t, "y": 5.0, "x": 5.0},
                attrs={"dose": 20.0})
    da = da.assign_coords(cell_voltage=("time", 3.6 + t / 4000, {"units": "V"}))
    io.save(da.to_dataset(), folder / "series.zarr")
    (folder / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="gaussian")))
    res = run_cli("run", folder / "exp.toml")
    assert res.returncode == 0, res.stderr
    return folder


def test_the_run_report_shows_every_step_with_its_maps_and_the_cycler(run_folder):
    html = (run_folder / "results" / "report.html").read_text()
    assert "ionscope run: two-steps" in html and html.count('<figure class="item iseries"') == 2
    data = _payload(html)
    assert len(data["t"]) == 8 and data["v"][0] == 3.6 and data["layers"][0]["label"] == "denoised"
    assert "input (smooth: denoised)" in html  # the second step's input is a layer to switch to
    assert "Summary: " in html and "<td>method</td>" in html


def test_the_run_report_survives_a_failed_step_and_an_unreadable_result(tmp_path):
    rng = np.random.default_rng(0)
    io.save(signal(rng.random((16, 16)), ("y", "x"), name="li", units="1", coords={"y": 2.0, "x": 2.0})
            .to_dataset(), tmp_path / "series.zarr")
    (tmp_path / "exp.toml").write_text(textwrap.dedent(EXPERIMENT.format(second="bogus")))
    from ionscope.errors import IonscopeError
    from ionscope.pipeline.run import run_experiment

    with pytest.raises(IonscopeError):
        run_experiment(tmp_path / "exp.toml")
    out = tmp_path / "results"
    html = (out / "report.html").read_text()
    assert "Failed: " in html and "bogus" in html and html.count('<figure class="item iseries"') == 1  # one map, no slider
    # a result damaged since: the step says so, the rest of the report is there
    for p in (out / "smooth" / "result.zarr").rglob("*"):  # the metadata of Zarr 3 (zarr.json) or 2 (.z*)
        if p.name in ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"):
            p.write_text("{")
    html = experiment_report(out).read_text()
    assert "cannot be shown" in html and "Failed: " in html
    # no record at all (a run that has not started): an empty report, not an error
    (out / "run.json").unlink()
    assert "0 steps" in experiment_report(out).read_text()


def test_the_run_report_in_a_browser(run_folder, browser):
    seen = check_report(browser, run_folder / "results" / "report.html", series=2)
    assert seen["sliders"] == 2 and seen["canvases"] == 6  # map, cycler curve and profile per step
    assert any("Li" in r or "denoised" in r for r in seen["readouts"])


def test_a_live_report_opens_at_the_newest_frame_and_reloads_on_a_new_version(run_folder, tmp_path):
    import shutil

    from ionscope.report.experiment import LIVE_SCRIPT

    out = shutil.copytree(run_folder / "results", tmp_path / "results")
    html = experiment_report(out, live=True).read_text()
    assert LIVE_SCRIPT in html and _payload(html)["frame"] == 7
    html = experiment_report(out).read_text()
    assert LIVE_SCRIPT not in html and _payload(html)["frame"] == 0
