"""Tests of the HTML report builder, the figures, the movie writer and the demo run."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

# --------------------------------------------------------------------------- a small twin


def synthetic_licoo2(seed: int = 0, *, n_charge: int = 8, n_rest: int = 3, n_discharge: int = 7,
                     ny: int = 12, nx: int = 20, **_ignored) -> xr.Dataset:
    """A tiny Dataset with the schema of ``ionscope.simulate.simulate("licoo2")``.

    Charge (Li leaves), rest, discharge (Li returns), rest; the mean true Li fraction follows
    mass balance exactly: ``x = x0 - Q / capacity_C``.
    """
    rng = np.random.default_rng(seed)
    states = np.array([1] * n_charge + [0] * n_rest + [2] * n_discharge + [0] * n_rest, dtype=np.int8)
    nt = states.size
    dt = 60.0
    time = (np.arange(nt) + 0.5) * dt
    current_a = 2e-9
    current = np.where(states == 1, current_a, np.where(states == 2, -current_a, 0.0))
    charge = np.cumsum(current * dt) - current * dt / 2  # at mid-exposure
    capacity = current_a * dt * n_charge / 0.6  # charging removes 0.6 Li per formula unit
    x0 = 0.95
    mean_true = x0 - charge / capacity
    yy = np.linspace(0, 1, ny)[:, None] * np.ones((1, nx))
    shape = 0.15 * (yy - 0.5)  # Li-richer towards the current collector
    truth = (mean_true[:, None, None] + shape[None] * np.sign(charge)[:, None, None]).astype(np.float32)
    observed = (truth + rng.normal(0, 0.05, truth.shape)).astype(np.float32)
    voltage = 3.9 + 0.3 * (x0 - mean_true) / max(1e-12, (x0 - mean_true).max()) + 0.02 * np.sign(current)
    rec_t = np.arange(0, nt * dt + 1, dt / 4)
    idx = np.minimum((rec_t // dt).astype(int), nt - 1)
    coords = {
        "time": ("time", time, {"units": "s"}),
        "y": ("y", np.arange(ny) * 2.0, {"units": "nm"}),
        "x": ("x", np.arange(nx) * 2.0, {"units": "nm"}),
        "record": ("record", rec_t, {"units": "s"}),
    }
    ds = xr.Dataset(
        {
            "li_fraction": (("time", "y", "x"), observed, {"units": "1"}),
            "li_fraction_true": (("time", "y", "x"), truth, {"units": "1"}),
            "domain": (("y", "x"), (np.arange(nx)[None] // 7 + 0 * yy).astype(np.int32), {"units": "1"}),
            "boundary": (("y", "x"), np.zeros((ny, nx), np.uint8), {"units": "1"}),
            "region": (("y", "x"), (yy < 0.15).astype(np.int8), {"units": "1"}),
            "voltage": ("time", voltage, {"units": "V"}),
            "current": ("time", current, {"units": "A"}),
            "charge": ("time", charge, {"units": "C"}),
            "state": ("time", states, {"units": "1", "flag_values": [0, 1, 2],
                                       "flag_meanings": "rest charge discharge"}),
            "cycler_voltage": ("record", voltage[idx], {"units": "V"}),
            "cycler_current": ("record", current[idx], {"units": "A"}),
            "cycler_charge": ("record", charge[idx], {"units": "C"}),
        },
        coords=coords,
        attrs={
            "primary": "li_fraction",
            "twin": "licoo2",
            "seed": seed,
            "parameters": json.dumps({"ny": ny, "nx": nx}),
            "derived": json.dumps({"coulomb_per_pixel_at_x1": capacity / (ny * nx)}),
            "model": "synthetic test twin",
            "provenance": json.dumps([{"step": "tests.synthetic_licoo2", "version": "0", "params": {}, "inputs": []}]),
        },
    )
    return ds


def synthetic_simulator(name: str, *, seed: int = 0, **params) -> xr.Dataset:
    assert name == "licoo2"
    return synthetic_licoo2(seed)


# --------------------------------------------------------------------------- helpers

_IMAGE_FORMATS = {"PNG", "WEBP", "GIF"}


def _img_sources(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)


def _decode_data_uri(uri: str) -> tuple[str, bytes]:
    m = re.fullmatch(r"data:([a-z]+/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=]+)", uri)
    assert m, f"not a base64 data URI: {uri[:60]}"
    return m.group(1), base64.b64decode(m.group(2), validate=True)


def assert_self_contained(html: str) -> None:
    """No network URLs, no scripts, stylesheets or fonts from elsewhere (scripts only inline, and
    they fetch nothing); every image and media source is an embedded data URI holding a valid image."""
    from PIL import Image

    assert not re.search(r"https?://", html), "report refers to a network URL"
    assert all("src" not in tag for tag in re.findall(r"<script\b[^>]*>", html, re.I))
    assert "fetch(" not in html and "XMLHttpRequest" not in html and "import(" not in html
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    for src in re.findall(r"\bsrc=\"([^\"]*)\"", html):
        assert src.startswith("data:"), f"non-embedded source {src[:60]}"
    sources = _img_sources(html)
    assert sources
    for src in sources:
        mime, data = _decode_data_uri(src)
        with Image.open(io.BytesIO(data)) as im:
            assert im.format in _IMAGE_FORMATS
            assert mime == f"image/{im.format.lower()}"
            im.verify()


def assert_no_temporary_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob("*") if ".tmp" in p.name or ".old-" in p.name]
    assert leftovers == []


def _png(color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- html


def test_report_is_self_contained_and_escapes_text():
    from ionscope.report import FigureItem, Report, Section, TableItem, TextItem

    report = Report("Run <1>", subtitle="a & b", metadata={"seed": 3, "params": {"ny": 4}})
    report.add(Section("Maps", [FigureItem(_png(), "Li fraction <x> (1).", filename="a.png", width=300),
                                TextItem("first\n\nsecond"), "plain string"], intro="Intro."))
    report.add(Section("Numbers", [TableItem([["a", 1.234567], ["b", 2]], ["name", "value"])]))
    report.add_provenance("model", '{"step": "x"}', open=True)
    html = report.render()
    assert_self_contained(html)
    assert "Run &lt;1&gt;" in html and "Li fraction &lt;x&gt; (1)." in html
    assert html.count("<section") == 2 and 'href="#maps"' in html and 'id="numbers"' in html
    assert "<p>first</p><p>second</p>" in html and "1.235" in html
    assert 'width="300"' in html and "<details open>" in html


def test_report_write_is_atomic_and_refuses_to_overwrite(tmp_path):
    from ionscope.errors import OutputExistsError
    from ionscope.report import Report, Section

    path = tmp_path / "report.html"
    Report("one").add(Section("A", ["a"])).write(path)
    with pytest.raises(OutputExistsError):
        Report("two").write(path)
    Report("two").write(path, overwrite=True)
    assert "<h1>two</h1>" in path.read_text()
    assert_no_temporary_files(tmp_path)


def test_sniff_mime_and_data_uri():
    from ionscope.report.html import data_uri, sniff_mime

    assert sniff_mime(_png()) == "image/png"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"GIF89a....") == "image/gif"
    assert sniff_mime(b"\x00\x00\x00\x20ftypisom") == "video/mp4"
    with pytest.raises(ValueError, match="unrecognised"):
        sniff_mime(b"hello world")
    mime, data = _decode_data_uri(data_uri(_png()))
    assert mime == "image/png" and data == _png()


# --------------------------------------------------------------------------- figures


def test_figures_leave_no_global_matplotlib_state():
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from ionscope.report import figures

    ds = synthetic_licoo2()
    before_rc, before_figs = dict(matplotlib.rcParams), plt.get_fignums()
    for make in (figures.electrochemistry_figure, figures.li_maps_figure, figures.li_vs_charge_figure):
        fig = make(ds)
        assert isinstance(fig, Figure)
        png = figures.figure_to_png(fig)
        assert png.startswith(b"\x89PNG")
    assert plt.get_fignums() == before_figs
    assert dict(matplotlib.rcParams) == before_rc


def test_key_frames_follow_the_protocol():
    from ionscope.report.figures import key_frames, phase_runs

    ds = synthetic_licoo2(n_charge=8, n_rest=3, n_discharge=7)
    assert phase_runs(ds["state"].values) == [(1, 0, 8), (0, 8, 11), (2, 11, 18), (0, 18, 21)]
    assert key_frames(ds) == {"start": 0, "end of charge": 7, "end of rest": 10,
                              "mid-discharge": 14, "end of discharge": 17, "end": 20}


def test_si_scale_and_mass_balance_slope():
    from ionscope.report.figures import charge_per_unit_fraction, si_scale

    assert si_scale([3e-12], "C") == (pytest.approx(1e12), "pC")
    assert si_scale([-2.5e-13, 1e-14], "C") == (pytest.approx(1e15), "fC")
    assert si_scale([0.0], "A") == (1.0, "A")
    ds = synthetic_licoo2()
    q = ds["charge"].values
    x = ds["li_fraction_true"].mean(("y", "x")).values
    slope = np.polyfit(q, x, 1)[0]
    assert -1 / slope == pytest.approx(charge_per_unit_fraction(ds), rel=1e-4)


# --------------------------------------------------------------------------- movie


def test_movie_files_have_every_frame(tmp_path):
    import imageio_ffmpeg
    from PIL import Image

    from ionscope.report.movie import operando_frames, write_movie

    ds = synthetic_licoo2()
    frames = operando_frames(ds, panel_width=60)
    nt = ds.sizes["time"]
    assert frames.dtype == np.uint8 and frames.shape[0] == nt
    assert frames.shape[1] % 16 == 0 and frames.shape[2] % 16 == 0
    assert not np.array_equal(frames[0], frames[-1])  # header text and maps change
    write_movie(frames, tmp_path / "m.mp4", fps=10)
    n, _secs = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "m.mp4"))
    assert n == nt
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "m.mp4"))
    meta = next(reader)
    reader.close()
    assert tuple(meta["size"]) == (frames.shape[2], frames.shape[1])
    assert "h264" in meta["codec"]
    for suffix, fmt in ((".webp", "WEBP"), (".gif", "GIF")):
        write_movie(frames, tmp_path / f"m{suffix}", fps=10)
        with Image.open(tmp_path / f"m{suffix}") as im:
            assert im.format == fmt and im.n_frames == nt and im.is_animated
            assert im.size == (frames.shape[2], frames.shape[1])
    assert_no_temporary_files(tmp_path)


def test_map_series_movie_from_a_dataarray(tmp_path, series):
    from PIL import Image

    from ionscope.errors import InputError
    from ionscope.report.movie import map_series_movie

    out = map_series_movie(series, tmp_path / "s.webp", fps=4)
    with Image.open(out) as im:
        assert im.n_frames == series.sizes["time"]
    with pytest.raises(InputError, match=".mp4"):
        map_series_movie(series, tmp_path / "s.avi")


# --------------------------------------------------------------------------- demo


def _extra_section(ctx):
    """A section a user registers (test_registered_section_appears_in_the_report)."""
    from ionscope.report import Section
    from ionscope.report.figures import new_figure, style

    ds = ctx.dataset("licoo2")  # the cached dataset, not a new simulation
    with style():
        fig = new_figure(3, 2)
        fig.subplots().plot(ds["voltage"].values)
    ctx.summary["extra_number"] = 42
    return Section("Extra panel title", [ctx.figure(fig, "extra", "An extra figure (V).")])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The quick demo on the synthetic twin, with one extra section registered for the run (and
    removed after it): one run serves the demo tests and the registered-section test."""
    from ionscope.pipeline.demo import demo_section, registered_sections, remove_section, run_demo

    out = tmp_path_factory.mktemp("demo")
    calls, simulated = [], []

    def counting(name, **kw):
        simulated.append(name)
        return synthetic_simulator(name, **kw)

    demo_section(order=35, title="Extra panel", name="tests.extra")(_extra_section)
    try:
        registered = [s.name for s in registered_sections()]
        summary = run_demo(out, quick=True, seed=3, simulator=counting,
                           progress=lambda done, total: calls.append((done, total)))
    finally:
        remove_section("tests.extra")
    extra = {"registered_during": registered, "registered_after": [s.name for s in registered_sections()],
             "simulated": simulated}
    return out, summary, calls, extra


@pytest.mark.slow
def test_demo_writes_report_figures_movie_and_summary(demo_run):
    out, summary, calls, _ = demo_run
    on_disk = sorted(p.name for p in out.iterdir())
    assert on_disk == summary["files"]
    for name in ("report.html", "summary.json", "licoo2.zarr", "licoo2_li_movie.mp4",
                 "licoo2_li_movie.webp", "licoo2_cycler.csv"):
        assert name in on_disk
    pngs = [n for n in on_disk if n.endswith(".png")]
    assert len(pngs) >= 3
    for name in pngs:
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    html = (out / "report.html").read_text()
    assert_self_contained(html)
    # the synthetic simulator only makes the licoo2 twin: its four sections, the data section
    # and the space-charge section (a model, no twin), and the extra section the fixture
    # registers; the other technique sections skip
    assert html.count("<section") == 7 and "<video" in html
    assert calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert_no_temporary_files(out)


@pytest.mark.slow
def test_demo_summary_matches_the_data(demo_run):
    out, summary, *_ = demo_run
    on_file = json.loads((out / "summary.json").read_text())
    for key in ("ionscope_version", "seed", "quick", "parameters", "files", "frames",
                "charge_passed_C", "mean_li_fraction", "mean_li_fraction_true", "rms_error",
                "run_time_s", "movie"):
        assert key in on_file, key
    assert on_file["seed"] == 3 and on_file["quick"] is True
    ds = synthetic_licoo2(3)
    assert on_file["frames"] == ds.sizes["time"]
    assert on_file["charge_passed_C"] == float(ds["charge"].values[-1])
    mean = ds["li_fraction"].mean(("y", "x")).values
    end_of_charge = int(np.flatnonzero(ds["state"].values == 1)[-1])
    assert on_file["mean_li_fraction"] == pytest.approx(
        {"start": mean[0], "end_of_charge": mean[end_of_charge], "end": mean[-1]}, rel=1e-6)
    rms = np.sqrt(np.mean((ds["li_fraction"].values.astype(float) - ds["li_fraction_true"].values) ** 2))
    assert on_file["rms_error"] == pytest.approx(rms, rel=1e-6)
    assert on_file["mass_balance_max_deviation"] < 1e-5
    assert on_file["movie"]["frames"] == ds.sizes["time"]
    assert on_file["parameters"]["licoo2"] == json.loads(ds.attrs["parameters"])


@pytest.mark.slow
def test_demo_movie_has_one_frame_per_map(demo_run):
    import imageio_ffmpeg
    from PIL import Image

    out, summary, *_ = demo_run
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out / "licoo2_li_movie.mp4"))
    assert n == summary["frames"]
    with Image.open(out / "licoo2_li_movie.webp") as im:
        assert im.n_frames == summary["frames"]
        assert im.size == (summary["movie"]["width_px"], summary["movie"]["height_px"])


@pytest.mark.slow
def test_demo_report_in_a_browser(demo_run, browser):
    """The quick demo's report in headless Chromium: every figure and the movie decoded, the
    interactive Li series drawn and answering its slider, its layer buttons and the pointer."""
    from browser import check_report

    seen = check_report(browser, demo_run[0] / "report.html")
    assert seen["images"] >= 5 and seen["series"] == seen["sliders"] == 1
    assert "Li fraction x = " in seen["readouts"][0] and " nm" in seen["readouts"][0]


@pytest.mark.slow
def test_registered_section_appears_in_the_report(demo_run):
    """A section registered with demo_section runs in a default run (all sections), in its
    order, on the cached twin; remove_section takes it out again (the module's demo run)."""
    out, summary, _, extra = demo_run
    assert "tests.extra" in extra["registered_during"]
    html = (out / "report.html").read_text()
    assert "Extra panel title" in html and "An extra figure (V)." in html
    assert html.index("Mass balance") < html.index("Extra panel title") < html.index("Operando movie")
    assert summary["extra_number"] == 42 and "extra.png" in summary["files"]
    assert extra["simulated"] == ["licoo2"]
    assert "tests.extra" not in extra["registered_after"]


def test_failing_section_leaves_old_outputs_and_no_temporary_files(tmp_path):
    from ionscope.pipeline.demo import demo_section, remove_section, run_demo

    only = ["ionscope.pipeline.demo.mass_balance_section"]
    run_demo(tmp_path, quick=True, simulator=synthetic_simulator, sections=only)
    before = (tmp_path / "report.html").read_bytes(), (tmp_path / "summary.json").read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())

    @demo_section(order=99, title="Broken", name="tests.broken")
    def broken(ctx):
        ctx.write_bytes("partial.bin", b"complete file")
        raise RuntimeError("section failed")

    try:
        with pytest.raises(RuntimeError, match="section failed"):
            run_demo(tmp_path, quick=True, simulator=synthetic_simulator, sections=[*only, "tests.broken"])
    finally:
        remove_section("tests.broken")
    assert ((tmp_path / "report.html").read_bytes(), (tmp_path / "summary.json").read_bytes()) == before
    assert_no_temporary_files(tmp_path)
    # the failed run wrote into a temporary folder: nothing of it is mixed into the old demo
    assert sorted(p.name for p in tmp_path.iterdir()) == listing and not (tmp_path / "partial.bin").exists()
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.tmp-")]


@pytest.mark.slow
def test_quick_demo_with_the_licoo2_twin(tmp_path):
    """The real simulator end to end: the summary agrees with the saved dataset. The LiCoO2
    sections only: the technique sections run their own quick demos in their test modules."""
    pytest.importorskip("ionscope.simulate.licoo2")
    from ionscope import io as ionscope_io
    from ionscope.pipeline.demo import registered_sections, run_demo

    core = [s.name for s in registered_sections() if s.name.startswith("ionscope.pipeline.demo.")]
    summary = run_demo(tmp_path, quick=True, seed=1, sections=core)
    ds = ionscope_io.open_dataset(tmp_path / "licoo2.zarr")
    assert summary["frames"] == ds.sizes["time"]
    assert summary["charge_passed_C"] == float(ds["charge"].values[-1])
    mean_true = ds["li_fraction_true"].mean(("y", "x")).values
    assert summary["mean_li_fraction_true"]["start"] == pytest.approx(float(mean_true[0]), rel=1e-6)
    assert summary["mean_li_fraction_true"]["end_of_charge"] < summary["mean_li_fraction_true"]["start"]
    assert summary["mass_balance_max_deviation"] < 1e-3
    assert_self_contained((tmp_path / "report.html").read_text())
    assert_no_temporary_files(tmp_path)


def test_unknown_section_name_is_a_config_error(tmp_path):
    from ionscope.errors import ConfigError
    from ionscope.pipeline.demo import run_demo

    with pytest.raises(ConfigError, match="unknown demo section"):
        run_demo(tmp_path, sections=["no.such.section"], simulator=synthetic_simulator)
    with pytest.raises(ConfigError, match="seed"):
        run_demo(tmp_path, seed=-1, simulator=synthetic_simulator)
