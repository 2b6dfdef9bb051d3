"""The demo run: simulate an operando cell, make figures, a movie, an HTML report and a summary.

``ionscope demo --out DIR [--quick]`` calls :func:`run_demo`. The report is assembled from
*sections*: functions registered with :func:`demo_section` that take a :class:`DemoContext`
and return one :class:`~ionscope.report.html.Section` (or a list of them, or ``None`` to skip).
Sections run in ``order``; each reads simulated data from the shared cache
(:meth:`DemoContext.dataset`), saves its figures and movies through the context (which writes
the files atomically and returns report items), and records key numbers in
:attr:`DemoContext.summary`, which becomes ``summary.json``.

Adding a panel to the demo is one function::

    @demo_section(order=50, title="EELS Li map")
    def eels_section(ctx: DemoContext) -> Section:
        ds = ctx.dataset("eels_licoo2")             # simulated once, saved, reused
        fig = my_eels_figure(ds)                     # a function in ionscope.report.figures
        ctx.summary["eels_rms_error"] = float(...)   # numbers for summary.json
        return Section("EELS Li map", [ctx.figure(fig, "eels_map", "What is shown, units.")])

Put it in this module, or in a module listed in :data:`SECTION_MODULES` (imported by
:func:`run_demo`), and give the twin's quick/full parameters in :data:`DEMO_PARAMETERS`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import xarray as xr

from ionscope.data import jsonable
from ionscope.errors import ConfigError
from ionscope.report.html import FigureItem, MovieItem, Report, Section, TableItem, TextItem

#: ``progress(done, total)``: called after each demo step (the CLI draws a progress bar).
ProgressCallback = Callable[[int, int], None]

SectionResult = Union[Section, list[Section], None]

#: Simulation parameters per twin for the full and the quick demo (passed to ``simulate``).
#: The quick run samples the same cell and protocol more coarsely (half the pixels per axis,
#: half the frames, each twice as long), so its figures tell the same story.
DEMO_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "licoo2": {
        "full": {},
        "quick": {
            "ny": 32, "nx": 32, "pixel_nm": 5.0, "frame_time_s": 120.0,
            "charge_frames": 30, "rest1_frames": 10, "discharge_frames": 28, "rest2_frames": 10,
        },
    },
    # EELS twins (sections in ionscope.pipeline.eels_demo). The demo dose 1e8 e/px/frame is the
    # lowest of the ladder 1e6, 3e6, ... 1e9 at which the 3-reference MLLS Li fraction has a mean
    # absolute error <= 0.03 (benchmarks/eels_accuracy.py); references ~100 pixels' worth of it.
    # Frames: start, end of charge, mid-discharge, end of the licoo2 protocol above.
    "eels_licoo2": {
        "full": {"dose": 1e8, "reference_dose": 1e10, "frames": [0, 59, 108, 156],
                 "li_params": {"ny": 64, "nx": 64}},
        "quick": {"dose": 1e8, "reference_dose": 1e10, "frames": [0, 29, 54],
                  "li_params": {"ny": 32, "nx": 32, "pixel_nm": 5.0, "frame_time_s": 120.0,
                                "charge_frames": 30, "rest1_frames": 10, "discharge_frames": 28,
                                "rest2_frames": 10}},
    },
    "eels_sr": {"full": {}, "quick": {}},
    # Holography twins (section in ionscope.pipeline.holography_demo): the quick run images the
    # same lamella on a smaller field of view; the phase-shifting stack has half the frames.
    "holography": {"full": {}, "quick": {"ny": 192, "nx": 192}},
    "holography_ps": {"full": {}, "quick": {"ny": 192, "nx": 192, "frames": 8}},
}

#: Modules whose ``@demo_section`` functions join the demo (imported by :func:`run_demo`).
SECTION_MODULES: tuple[str, ...] = ("ionscope.pipeline.demo", "ionscope.pipeline.eels_demo", "ionscope.pipeline.denoise_demo", "ionscope.pipeline.transport_demo", "ionscope.pipeline.spacecharge_demo", "ionscope.pipeline.holography_demo", "ionscope.pipeline.kpfm_demo", "ionscope.pipeline.sims_demo", "ionscope.pipeline.study_demo", "ionscope.pipeline.echem_demo")

#: Parameter dataclasses of the twins, for units in the parameter table ("module:Class").
_PARAMETER_CLASSES = {"licoo2": "ionscope.simulate.licoo2:LiCoO2Params"}

MOVIE_FPS = 12.0


# --------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class DemoSection:
    """A registered demo section: ``func(ctx)`` returns Section(s); lower ``order`` runs first."""

    name: str
    title: str
    order: float
    func: Callable[[DemoContext], SectionResult]


_SECTIONS: dict[str, DemoSection] = {}


def demo_section(order: float, title: str, *, name: str | None = None):
    """Register a function ``(ctx: DemoContext) -> Section | list[Section] | None`` as a section
    of the demo report.

    Parameters
    ----------
    order : float
        Position in the report (sections run and appear in increasing order; the built-in ones
        use 10, 20, ... 90, so e.g. 45 slots between the movie and the dataset table).
    title : str
        Human-readable title (used for progress and the run-time table; the Section returned by
        the function carries the heading shown in the report).
    name : str, optional
        Registry key; defaults to ``module.function``. Registering the same name again replaces
        the entry (so re-imports are harmless).

    Returns
    -------
    callable
        A decorator returning the function unchanged.
    """

    def decorator(func: Callable[[DemoContext], SectionResult]):
        key = name or f"{func.__module__}.{func.__qualname__}"
        _SECTIONS[key] = DemoSection(key, title, float(order), func)
        return func

    return decorator


def remove_section(name: str) -> None:
    """Unregister the section ``name`` (no error if it is not registered)."""
    _SECTIONS.pop(name, None)


def registered_sections() -> list[DemoSection]:
    """The registered sections in run order."""
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))


# --------------------------------------------------------------------------- context


def _simulate(name: str, *, seed: int, **params: Any) -> xr.Dataset:
    from ionscope.simulate import simulate

    return simulate(name, seed=seed, **params)


class DemoContext:
    """What a demo section works with.

    Attributes
    ----------
    out_dir : Path
        Output folder (exists).
    quick : bool
        Quick run (smaller maps, fewer frames).
    seed : int
        Seed passed to every simulation.
    summary : dict
        Key numbers for ``summary.json`` (JSON-serialisable after numpy scalars are converted).
    metadata : dict
        Extra run metadata for the report header (label -> text).
    files : list of str
        Files written so far, relative to ``out_dir``.
    results : dict
        Intermediate results of chains that several sections use (:meth:`once`).
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        quick: bool = False,
        seed: int = 0,
        simulator: Callable[..., xr.Dataset] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.quick = bool(quick)
        self.seed = int(seed)
        self.summary: dict[str, Any] = {}
        self.metadata: dict[str, str] = {}
        self.files: list[str] = []
        self.parameters_used: dict[str, dict[str, Any]] = {}
        self.provenance: list[tuple[str, Any, bool]] = []
        self._simulator = simulator or _simulate
        self._datasets: dict[tuple[str, str], xr.Dataset] = {}
        self.results: dict[str, Any] = {}

    # ---- data

    @property
    def simulator(self) -> Callable[..., xr.Dataset]:
        """The function that makes twins (the built-in :func:`ionscope.simulate.simulate`
        unless a run swapped in its own)."""
        return self._simulator

    def makes(self, name: str) -> bool:
        """Whether this run's simulator makes twin ``name``: the built-in one makes every
        registered twin; a replacement (e.g. the synthetic licoo2 twin of the report tests) only
        those it lists in its ``twins`` attribute - the other sections skip (return None)."""
        return self._simulator is _simulate or name in getattr(self._simulator, "twins", ())
    def parameters(self, name: str) -> dict[str, Any]:
        """The demo's simulation parameters of twin ``name`` for this run (quick or full)."""
        table = DEMO_PARAMETERS.get(name, {})
        return dict(table.get("quick" if self.quick else "full", {}))

    def dataset(self, name: str, *, save: bool = True, **overrides: Any) -> xr.Dataset:
        """Simulate twin ``name`` once (demo parameters plus ``overrides``) and reuse it.

        The first call also saves the Dataset as ``<name>.zarr`` in the output folder (when
        ``save``) and records its parameters and provenance for the report footer.
        """
        params = {**self.parameters(name), **overrides}
        key = (name, json.dumps(params, sort_keys=True, default=str))
        if key in self._datasets:
            return self._datasets[key]
        ds = self._simulator(name, seed=self.seed, **params)
        self._datasets[key] = ds
        label = name if len([k for k in self._datasets if k[0] == name]) == 1 else f"{name} ({key[1]})"
        raw = ds.attrs.get("parameters")
        try:
            full = json.loads(raw) if isinstance(raw, str) else dict(raw or params)
        except (TypeError, ValueError):
            full = dict(params)
        self.parameters_used[label] = full
        if ds.attrs.get("model"):
            self.provenance.append((f"{label}: forward model", ds.attrs["model"], True))
        self.provenance.append((f"{label}: parameters (seed {self.seed})", full, False))
        if ds.attrs.get("derived"):
            self.provenance.append((f"{label}: derived quantities", ds.attrs["derived"], False))
        if ds.attrs.get("provenance"):
            self.provenance.append((f"{label}: processing steps", ds.attrs["provenance"], False))
        if save:
            self.save_dataset(ds, f"{name}.zarr" if label == name else f"{name}_{len(self._datasets)}.zarr")
        return ds

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for in this run, its value afterwards:
        a chain that several sections show (e.g. the composite cathode's KPFM and TOF-SIMS
        results, which the study section correlates) runs once, whichever section asks first."""
        if key not in self.results:
            self.results[key] = compute()
        return self.results[key]

    def save_dataset(self, ds: xr.Dataset, filename: str) -> Path | None:
        """Save ``ds`` as a Zarr store in the output folder (atomic, replaces an old one)."""
        from ionscope import io

        path = self.path(filename)
        io.save(ds, path, overwrite=True)
        self._record(filename)
        return path

    # ---- outputs
    def path(self, filename: str) -> Path:
        """Absolute path of ``filename`` in the output folder."""
        return self.out_dir / filename

    def _record(self, filename: str) -> None:
        if filename not in self.files:
            self.files.append(filename)

    def write_bytes(self, filename: str, data: bytes) -> Path:
        """Write bytes to ``out_dir/filename`` atomically and record the file."""
        from ionscope import io

        path = io.write_bytes(self.path(filename), data, overwrite=True)
        self._record(filename)
        return path

    def write_text(self, filename: str, text: str) -> Path:
        """Write UTF-8 text to ``out_dir/filename`` atomically and record the file."""
        return self.write_bytes(filename, text.encode("utf-8"))

    def figure(self, fig, name: str, caption: str, *, alt: str = "") -> FigureItem:
        """Save a matplotlib Figure as ``name.png`` and return the report item showing it."""
        from ionscope.report.figures import figure_to_png

        png = figure_to_png(fig)
        width = int(round(fig.get_size_inches()[0] * 96))  # CSS px: show at physical size
        fig.clear()
        filename = f"{name}.png"
        self.write_bytes(filename, png)
        return FigureItem(png, caption, alt=alt or caption.split(".")[0], filename=filename, width=width)

    def movie(self, frames: np.ndarray, name: str, caption: str, *, fps: float = MOVIE_FPS,
              alt: str = "") -> MovieItem:
        """Write frames as ``name.mp4`` (H.264) and ``name.webp`` (animated) and return the
        report item (the WebP plays inline, the MP4 is embedded as a player)."""
        from ionscope.report.movie import encode_webp, write_mp4

        mp4_name, webp_name = f"{name}.mp4", f"{name}.webp"
        write_mp4(frames, self.path(mp4_name), fps=fps, overwrite=True)
        self._record(mp4_name)
        webp = encode_webp(frames, fps=fps)
        self.write_bytes(webp_name, webp)
        return MovieItem(webp, caption, mp4=self.path(mp4_name).read_bytes(),
                         files=(mp4_name, webp_name), alt=alt or caption.split(".")[0])


# --------------------------------------------------------------------------- scoring against a twin


def majority_truth(found: np.ndarray, truth: np.ndarray, n: int | None = None, *,
                   min_fraction: float = 0.0) -> np.ndarray:
    """For every found label 1..n (default: the largest in ``found``), the true label (> 0) under
    most of its pixels; 0 when true labels cover less than ``min_fraction`` of it (or none).

    Examples
    --------
    >>> found = np.array([[1, 1, 2], [1, 0, 2]])
    >>> truth = np.array([[5, 5, 0], [7, 0, 0]])
    >>> majority_truth(found, truth).tolist(), majority_truth(found, truth, min_fraction=0.5).tolist()
    ([5, 0], [5, 0])
    """
    found, truth = np.asarray(found), np.asarray(truth)
    n = int(found.max()) if n is None else int(n)
    out = np.zeros(n, dtype=np.int64)
    for j in range(1, n + 1):
        under = truth[found == j]
        labels = under[under > 0]
        if labels.size and labels.size >= min_fraction * under.size:
            counts = np.bincount(labels)
            best = int(counts.argmax())
            out[j - 1] = best if counts[best] >= min_fraction * under.size else 0
    return out


# --------------------------------------------------------------------------- run


def _version() -> str:
    from ionscope import __version__

    return __version__


def run_demo(
    out_dir: Path,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    simulator: Callable[..., xr.Dataset] | None = None,
    sections: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the demo and write the report, figures, movie, data and ``summary.json``.

    Parameters
    ----------
    out_dir : Path
        Output folder; created if missing, replaced as a whole if it exists (the CLI asks for
        ``--overwrite`` first). The demo is written into a temporary folder beside it and
        swapped in when complete.
    quick : bool
        Smaller maps and fewer frames (see :data:`DEMO_PARAMETERS`), for tests and a first look.
    seed : int
        Seed of every simulation.
    progress : callable, optional
        ``progress(done, total)`` after each step.
    simulator : callable, optional
        Replacement for :func:`ionscope.simulate.simulate` (``simulator(name, seed=..., **params)``),
        e.g. a small synthetic twin in tests.
    sections : sequence of str, optional
        Names of the registered sections to run (see :func:`registered_sections`); default all.

    Returns
    -------
    dict
        The summary written to ``summary.json`` (``report`` holds the report's path).
    """
    t0 = time.perf_counter()
    from ionscope.validation import SEED, check_parameter

    check_parameter("seed", seed, [SEED], where="run_demo")
    from ionscope import io

    # written into a temporary folder beside out_dir and swapped in when complete: a killed or
    # failed run leaves the previous demo untouched, never old and new files mixed
    final = Path(out_dir)
    created = _make_parents(final)
    try:
        summary = _run_demo_into(final, io, quick=quick, seed=seed, progress=progress,
                                 simulator=simulator, sections=sections, t0=t0)
    except BaseException:
        for folder in created:  # a failed run leaves no folder it made behind
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return summary


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; returns them, innermost first. An ancestor
    that is a file, or a folder where nothing can be created, is an
    :class:`~ionscope.errors.OutputError`."""
    from ionscope.errors import OutputError

    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is a file, not a folder; give --out in a folder")
    created = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.insert(0, folder)
    except OSError as exc:
        for folder in created:
            folder.rmdir()
        raise OutputError(f"{path}: cannot create {folder} ({exc.strerror or exc}); give --out where you "
                          "can write") from None
    return created


def _run_demo_into(final: Path, io, *, quick, seed, progress, simulator, sections, t0) -> dict[str, Any]:
    with io.atomic_path(final, overwrite=True) as out_dir:
        out_dir.mkdir()
        for module in SECTION_MODULES:
            importlib.import_module(module)
        chosen = registered_sections()
        if sections is not None:
            known = {s.name for s in chosen}
            unknown = sorted(set(sections) - known)
            if unknown:
                raise ConfigError(f"unknown demo section(s) {unknown}; registered: {sorted(known)}")
            chosen = [s for s in chosen if s.name in set(sections)]
        total = len(chosen) + 1
        ctx = DemoContext(out_dir, quick=quick, seed=int(seed), simulator=simulator)
        created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        built: list[Section] = []
        timings: list[dict[str, Any]] = []
        for done, spec in enumerate(chosen, start=1):
            ts = time.perf_counter()
            result = spec.func(ctx)
            if isinstance(result, Section):
                built.append(result)
            elif result:
                built.extend(result)
            timings.append({"section": spec.title, "run_time_s": round(time.perf_counter() - ts, 3)})
            if progress is not None:
                progress(done, total)

        version = _version()
        files = sorted({*ctx.files, "report.html", "summary.json"})
        summary: dict[str, Any] = {
            "ionscope_version": version,
            "created": created.isoformat(),
            "seed": int(seed),
            "quick": bool(quick),
            "parameters": ctx.parameters_used,
            "files": files,
            **ctx.summary,
            "sections": timings,
            "run_time_s": None,  # filled in below, after the report is written
            "report": str((final / "report.html").resolve()),
        }

        report = Report(
            "ionscope demo: operando Li maps of a LiCoO2 cathode",
            subtitle="Simulated operando STEM-EELS Li-fraction maps of an all-solid-state cell "
            "through charge, rest and discharge, with the cycler log and known ground truth.",
            metadata={
                "ionscope version": version,
                "created (UTC)": created.strftime("%Y-%m-%d %H:%M"),
                "seed": str(seed),
                "run": "quick" if quick else "full",
                **ctx.metadata,
                "command": f"ionscope demo --out DIR --seed {seed}" + (" --quick" if quick else ""),
                "python / numpy": f"{platform.python_version()} / {np.__version__}",
            },
            footer=(
                f"Generated by ionscope {version} on {created.strftime('%Y-%m-%d %H:%M UTC')}. Every "
                "dataset in this report is simulated by an ionscope digital twin (forward model with "
                "known ground truth, Poisson counting noise at the stated dose); nothing is measured. "
                "The whole report is reproducible from the version, the seed and the parameters "
                "below; the simulated data are saved next to this file as Zarr stores. Output files: "
                + ", ".join(files) + "."
            ),
        )
        for section in built:
            report.add(section)
        for label, content, is_open in ctx.provenance:
            report.add_provenance(label, content, open=is_open)
        report.write(out_dir / "report.html", overwrite=True)

        summary["run_time_s"] = round(time.perf_counter() - t0, 3)
        io.write_text(out_dir / "summary.json", json.dumps(jsonable(summary), indent=2) + "\n", overwrite=True)
        if progress is not None:
            progress(total, total)
    return summary


# --------------------------------------------------------------------------- LiCoO2 sections

_TWIN = "licoo2"


def _state_labels(ds: xr.Dataset) -> list[str]:
    from ionscope.report.figures import state_names

    names = state_names(ds["state"])
    return [names.get(int(s), str(int(s))) for s in ds["state"].values]


def _fmt_si(value: float, unit: str) -> str:
    from ionscope.report.figures import si_scale

    factor, label = si_scale([value], unit)
    return f"{value * factor:.3g} {label}"


@demo_section(order=10, title="Cell and cycler")
def electrochemistry_section(ctx: DemoContext) -> Section:
    """Cycling protocol table, cell voltage and current with the frame times."""
    from ionscope.report.figures import electrochemistry_figure, phase_runs, state_names

    ds = ctx.dataset(_TWIN)
    names = state_names(ds["state"])
    t = np.asarray(ds["time"].values, dtype=float)
    frame_dt = float(t[1] - t[0]) if t.size > 1 else 0.0
    rows = []
    for code, a, b in phase_runs(ds["state"].values):
        current = float(np.mean(ds["current"].values[a:b]))
        rows.append([
            names.get(code, str(code)), f"{a + 1}-{b}", f"{(b - a) * frame_dt / 60:.0f}",
            _fmt_si(current, "A") if current else "0",
            f"{float(ds['voltage'].values[a]):.3f} → {float(ds['voltage'].values[b - 1]):.3f}",
            _fmt_si(float(ds["charge"].values[b - 1]), "C"),
        ])
    charge = np.asarray(ds["charge"].values, dtype=float)
    ctx.summary["frames"] = int(ds.sizes["time"])
    ctx.summary["frame_time_s"] = frame_dt
    ctx.summary["map_shape_px"] = [int(ds.sizes["y"]), int(ds.sizes["x"])]
    ctx.summary["pixel_size_nm"] = float(ds["x"].values[1] - ds["x"].values[0]) if ds.sizes["x"] > 1 else None
    ctx.summary["charge_passed_C"] = float(charge[-1])
    ctx.summary["charge_passed_max_C"] = float(charge.max())
    ctx.summary["voltage_range_V"] = [float(ds["voltage"].min()), float(ds["voltage"].max())]
    ny, nx = ctx.summary["map_shape_px"]
    ctx.metadata["simulated cell"] = (
        f"LiCoO2 twin, {ny} × {nx} px at {ctx.summary['pixel_size_nm']:g} nm, "
        f"{ctx.summary['frames']} frames × {frame_dt:g} s"
    )
    if "cycler_voltage" in ds:
        from ionscope.simulate import cycler_table

        ctx.write_text(f"{_TWIN}_cycler.csv", cycler_table(ds))
    fig = electrochemistry_figure(ds)
    item = ctx.figure(
        fig, "cell_voltage_current",
        "Cell voltage (V, top) and current (bottom, prefixed A; positive on charge) against time "
        "(min). Lines: the cycler log; markers: the cell state at the mid-time of each map frame, "
        "coloured by the cycler state (orange charge, grey rest, purple discharge). During rest "
        "the voltage relaxes although no current flows.",
    )
    return Section(
        "Cell and cycler",
        [
            item,
            TableItem(rows, ["phase", "frames", "duration (min)", "mean current", "voltage (V)",
                             "charge passed at end"],
                      caption="Cycling protocol (galvanostatic charge and discharge; charge passed "
                      "counts Li removed from the cathode since the start)."),
        ],
        intro=(
            "A LiCoO2 thin-film cathode on a solid electrolyte is seen in cross-section while the "
            "cell is charged, rested, discharged and rested again. The cycler records voltage, "
            "current and charge; every Li map below is tied to the cell state at its frame time. "
            "The data are simulated by the licoo2 digital twin, so the true Li field is known."
        ),
    )


@demo_section(order=20, title="Li-fraction maps")
def li_maps_section(ctx: DemoContext) -> Section:
    """Observed and true Li maps at the protocol's key moments; key numbers."""
    from ionscope.report.figures import key_frames, li_maps_figure

    ds = ctx.dataset(_TWIN)
    frames = key_frames(ds)
    obs = ds["li_fraction"].mean(("y", "x")).values
    true = ds["li_fraction_true"].mean(("y", "x")).values
    labels = _state_labels(ds)
    charge_idx = [i for i, s in enumerate(labels) if s == "charge"]
    end_charge = charge_idx[-1] if charge_idx else 0
    picks = {"start": 0, "end_of_charge": end_charge, "end": int(ds.sizes["time"]) - 1}
    ctx.summary["mean_li_fraction"] = {k: float(obs[i]) for k, i in picks.items()}
    ctx.summary["mean_li_fraction_true"] = {k: float(true[i]) for k, i in picks.items()}
    diff = ds["li_fraction"].values.astype(np.float64) - ds["li_fraction_true"].values
    ctx.summary["rms_error"] = float(np.sqrt(np.mean(diff**2)))
    ctx.summary["key_frames"] = {k: int(v) for k, v in frames.items()}
    dose = ds["li_fraction"].attrs.get("dose")
    noise = f" at a dose of {dose:g} counts per pixel per frame" if isinstance(dose, (int, float)) else ""
    fig = li_maps_figure(ds, frames)
    item = ctx.figure(
        fig, "li_fraction_maps",
        "Li fraction x in LiₓCoO₂ (dimensionless, colour scale 0-1, viridis) at key moments of "
        "the protocol; column titles give the frame's time (min) and cell voltage (V) and are "
        "coloured by cycler state. Top row: observed maps (Poisson counting noise" + noise + "); "
        "bottom row: ground truth. Axes in nm; y is depth, with the solid-electrolyte interface "
        "at the top (y = 0) and the current collector at the bottom. The Li-poor interfacial "
        "layer is the dark band along the electrolyte.",
    )
    table = TableItem(
        [[k.replace("_", " "), f"{ctx.summary['mean_li_fraction'][k]:.4f}",
          f"{ctx.summary['mean_li_fraction_true'][k]:.4f}"] for k in picks],
        ["moment", "mean x observed", "mean x true"],
        caption=f"Mean Li fraction of the field of view. RMS error of the observed maps against "
        f"the truth over all frames and pixels: {ctx.summary['rms_error']:.4f}.",
    )
    return Section(
        "Li-fraction maps",
        [item, table],
        intro=(
            "On charge Li leaves through the electrolyte interface; on discharge it returns first "
            "at the current-collector side, and during rest it keeps redistributing, fastest "
            "along domain boundaries. Single frames are noisy; the ground truth shows what a "
            "denoising or fitting method should recover."
        ),
    )


@demo_section(order=30, title="Mass balance")
def mass_balance_section(ctx: DemoContext) -> Section:
    """Mean Li fraction against charge passed, with the mass-balance line."""
    from ionscope.report.figures import charge_per_unit_fraction, li_vs_charge_figure

    ds = ctx.dataset(_TWIN)
    qx = charge_per_unit_fraction(ds)
    caption = (
        "Mean Li fraction of the field of view (dimensionless) against the charge passed by the "
        "cycler (bottom axis in prefixed coulomb, top axis in prefixed ampere-hours; 1 Ah = "
        "3600 C). Markers: observed maps, coloured by cycler state; solid line: ground truth."
    )
    if qx is not None:
        q = np.asarray(ds["charge"].values, dtype=float)
        true = ds["li_fraction_true"].mean(("y", "x")).values
        expected = float(true[0]) - (q - q[0]) / qx
        ctx.summary["charge_per_unit_li_fraction_C"] = qx
        ctx.summary["mass_balance_max_deviation"] = float(np.max(np.abs(true - expected)))
        caption += (
            f" Dashed: mass balance, x = x₀ − (Q − Q₀)/Qₓ with Qₓ = {_fmt_si(qx, 'C')}, the charge "
            "that moves the mean Li fraction of the imaged volume by one (Faraday constant × mol "
            "of Li sites in the volume). Largest deviation of the truth from the line: "
            f"{ctx.summary['mass_balance_max_deviation']:.2e}."
        )
    fig = li_vs_charge_figure(ds, charge_per_unit_fraction_C=qx)
    return Section(
        "Mass balance",
        [ctx.figure(fig, "li_fraction_vs_charge", caption)],
        intro=(
            "Every coulomb the cycler counts is one Faraday's worth of Li leaving or entering the "
            "cathode. Within the imaged volume the mean Li fraction must therefore fall on a "
            "straight line against the charge passed; charge and discharge retrace it."
        ),
    )


@demo_section(order=40, title="Operando movie")
def movie_section(ctx: DemoContext) -> Section:
    """The Li field through the whole protocol as MP4 + animated WebP."""
    from ionscope.report.movie import operando_frames

    ds = ctx.dataset(_TWIN)
    frames = operando_frames(ds)
    n = int(ds.sizes["time"])
    ctx.summary["movie"] = {"frames": n, "fps": MOVIE_FPS, "height_px": int(frames.shape[1]),
                            "width_px": int(frames.shape[2])}
    item = ctx.movie(
        frames, f"{_TWIN}_li_movie",
        f"Li fraction x (0-1, viridis) through the whole protocol, {n} frames at "
        f"{MOVIE_FPS:g} frames/s: observed (left) and ground truth (right). Each frame shows the "
        "time (min), the cell voltage (V) and the cycler state; the solid electrolyte is at the "
        "top edge, the current collector at the bottom edge; scale bar in nm. The animation "
        "loops; the MP4 (H.264) file next to this report is the same movie.",
    )
    from ionscope.report.interactive import InteractiveSeriesItem

    cycler = (ds["record"].values, ds["cycler_voltage"].values) if "cycler_voltage" in ds else None
    explorer = InteractiveSeriesItem(
        {"observed": ds["li_fraction"].values, "ground truth": ds["li_fraction_true"].values},
        x_nm=ds["x"].values, y_nm=ds["y"].values, time_s=ds["time"].values, voltage_V=ds["voltage"].values,
        cycler=cycler, states=_state_labels(ds), name="Li fraction x", unit="1", vmin=0.0, vmax=1.0,
        caption="The same frames to explore: the slider (or ▶) steps through them and moves the red marker along "
        "the cycler's cell voltage (V) against time (min); click the curve to jump to a frame. The buttons switch "
        "between the observed maps and the ground truth (Li fraction x, 0-1, viridis; axes in nm, the solid "
        "electrolyte at the top). Right: the depth profile - each map's mean across x against y (nm) - of the "
        "frame shown. Point at a map or a curve for its values.",
    )
    return Section("Operando movie", [item, explorer])


@demo_section(order=90, title="Data and parameters")
def data_section(ctx: DemoContext) -> Section:
    """Variables of the simulated dataset and the simulation parameters with units."""
    ds = ctx.dataset(_TWIN)
    var_rows = []
    for name, var in ds.data_vars.items():
        var_rows.append([name, "(" + ", ".join(map(str, var.dims)) + ")",
                         " × ".join(str(n) for n in var.shape), var.attrs.get("units", ""),
                         var.attrs.get("long_name", "")])
    units: dict[str, str] = {}
    spec = _PARAMETER_CLASSES.get(_TWIN)
    if spec:
        try:
            module, cls = spec.split(":")
            units = {f.name: f.metadata.get("unit", "")
                     for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
        except (ImportError, AttributeError, TypeError):
            units = {}
    params = next(iter(ctx.parameters_used.values()), {})
    cells = [[k, "none" if v is None else v, units.get(k, "")] for k, v in params.items()]
    half = (len(cells) + 1) // 2
    par_rows = [a + (cells[half + i] if half + i < len(cells) else ["", "", ""])
                for i, a in enumerate(cells[:half])]
    files = TextItem(
        f"The simulated dataset is saved as {_TWIN}.zarr (open it with ionscope.io.open_dataset "
        f"or xarray.open_zarr) and the cycler log as {_TWIN}_cycler.csv."
    )
    return Section(
        "Data and parameters",
        [
            TableItem(var_rows, ["variable", "dims", "shape", "units", "description"],
                      caption=f"Variables of the simulated {_TWIN} dataset."),
            TableItem(par_rows, ["parameter", "value", "unit"] * 2,
                      caption=f"Simulation parameters ({'quick' if ctx.quick else 'full'} run, "
                      f"seed {ctx.seed})."),
            files,
        ],
    )


__all__ = [
    "DEMO_PARAMETERS",
    "SECTION_MODULES",
    "DemoContext",
    "DemoSection",
    "demo_section",
    "majority_truth",
    "remove_section",
    "registered_sections",
    "run_demo",
]
