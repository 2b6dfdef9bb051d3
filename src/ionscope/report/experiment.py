"""The report of an ``ionscope run`` experiment: ``OUT/report.html``.

:func:`experiment_report` reads what a run left in its output folder - the record ``run.json``
and every step's ``STEP/summary.json`` and ``STEP/result.zarr`` - and writes one self-contained
HTML page: a table of the steps (status, times), then per step its command line, its key summary
values and its main result variable (``attrs["primary"]``) shown as an
:class:`~ionscope.report.interactive.InteractiveSeriesItem`: a map, or a series of maps with a
frame slider and, when the result carries the cycler's ``cell_voltage`` per frame, the voltage
curve with the frame's marker. Variables of the same dims and units (e.g. ``potential_raw``
beside ``potential``) and the step's input when it is an earlier step's result of the same shape
are further layers to switch to. Results that are not maps get a table of their variables.

A step that failed, is pending, or whose result cannot be read is shown as such; the report never
fails because a step did. The page is written atomically (:meth:`Report.write
<ionscope.report.html.Report.write>`), so a browser that reloads it - ``ionscope watch`` rewrites
it after every frame - sees the old page or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ionscope.report.html import Report, Section, TableItem, TextItem

__all__ = ["experiment_report", "REPORT_NAME", "LIVE_SCRIPT"]

#: The report's file name in the output folder.
REPORT_NAME = "report.html"

#: Summary values shown per step (the first ones, flattened).
MAX_SUMMARY_ROWS = 60
#: Layers shown per step at most.
MAX_LAYERS = 4
_SPATIAL = ("y", "x")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _flatten(summary: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Scalar summary values as ``(key.path, text)``; short lists shown whole, long ones as a length."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if key == "experiment" and not prefix:
            continue  # the run's own record, shown in the steps table
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            if len(value) <= 6 and all(not isinstance(v, (dict, list)) for v in value):
                rows.append((name, ", ".join(_text(v) for v in value)))
            else:
                rows.append((name, f"({len(value)} values)"))
        else:
            rows.append((name, _text(value)))
    return rows


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "none" if value is None else str(value)


def _step_input(entry: dict[str, Any], out: Path, names: list[str]) -> str | None:
    """The earlier step whose result this step read, if it read one."""
    for path in entry.get("inputs") or {}:
        p = Path(path)
        if p.name == "result.zarr" and p.parent.parent == out and p.parent.name in names:
            return p.parent.name
    return None


def _primary(ds) -> str | None:
    names = [str(n) for n in ds.data_vars]
    name = ds.attrs.get("primary")
    return name if name in names else (names[0] if len(names) == 1 else None)


def _is_map(da) -> bool:
    return set(_SPATIAL) <= set(da.dims) and set(da.dims) <= {"time", *_SPATIAL} and da.sizes["y"] > 1 \
        and da.sizes["x"] > 1


def _result_items(out: Path, step: str, earlier: str | None, *, live: bool = False) -> list[Any]:
    """The figures (or the variables table) of one step's result."""
    from ionscope import io
    from ionscope.report.interactive import series_item

    ds = io.open_dataset(out / step / "result.zarr", lazy=True)
    main = _primary(ds)
    items: list[Any] = []
    if main is not None and _is_map(ds[main]):
        da = ds[main]
        layers = {main: da}
        for name, other in ds.data_vars.items():
            if len(layers) < MAX_LAYERS and name != main and other.dims == da.dims and other.shape == da.shape \
                    and other.attrs.get("units") == da.attrs.get("units"):
                layers[str(name)] = other
        if earlier is not None and len(layers) < MAX_LAYERS:
            try:
                prev = io.open_dataset(out / earlier / "result.zarr", lazy=True)
            except Exception:  # noqa: BLE001 - an unreadable input only loses its layer
                prev = None
            prev_main = _primary(prev) if prev is not None else None
            if prev_main is not None and prev[prev_main].dims == da.dims and prev[prev_main].shape == da.shape:
                layers[f"input ({earlier}: {prev_main})"] = prev[prev_main]
        layers = {k: v.load() for k, v in layers.items()}
        n = da.sizes.get("time", 1)
        what = f"{n} frames" if "time" in da.dims else "one map"
        cycler = " and moves the marker on the cell voltage" if "cell_voltage" in da.coords else ""
        caption = (f"{main} ({da.attrs.get('units', '1')}), {what} of {da.sizes['y']} × {da.sizes['x']} px; axes in "
                   f"nm" + (f". The slider steps through the frames{cycler}" if n > 1 else "")
                   + (f"; the buttons switch to {', '.join(list(layers)[1:])}" if len(layers) > 1 else "")
                   + ". Right: the mean across x against y. Point at the map for values.")
        items.append(series_item(layers, caption, frame=-1 if live else 0))
    rows = [[str(name), "(" + ", ".join(map(str, v.dims)) + ")", " × ".join(map(str, v.shape)),
             str(v.attrs.get("units", "")), "primary" if name == main else ""] for name, v in ds.data_vars.items()]
    items.append(TableItem(rows, ["variable", "dims", "shape", "units", ""],
                           caption=f"Variables of {step}/result.zarr."))
    return items


def _frames(entry: dict[str, Any]) -> str:
    """``done/total`` of a step run frame by frame, else empty."""
    frames = [f for f in entry.get("frames") or [] if isinstance(f, dict)]
    return f"{sum(f.get('status') == 'done' for f in frames)}/{len(frames)}" if frames else ""


def _step_section(out: Path, name: str, entry: dict[str, Any], names: list[str], *, live: bool = False) -> Section:
    status = entry.get("status", "pending")
    argv = entry.get("argv") or []
    intro = f"ionscope {' '.join(map(str, argv))}" if argv else ""
    items: list[Any] = []
    if status == "failed":
        items.append(TextItem(f"Failed: {entry.get('error', 'no message')}"))
    elif status != "done":
        frames = _frames(entry)
        items.append(TextItem(f"Status: {status}" + (f", {frames} frames done" if frames else "")
                              + " - no result yet."))
    failed = entry.get("failed_frames") or {}
    if isinstance(failed, dict) and failed:
        items.append(TableItem([[Path(str(k)).name, v] for k, v in failed.items()], ["frame file", "error"],
                               caption="Frames that failed (left out of the result)."))
    if status == "done":
        try:
            items.extend(_result_items(out, name, _step_input(entry, out, names), live=live))
        except Exception as exc:  # noqa: BLE001 - one unreadable result must not take the report down
            items.append(TextItem(f"The result {name}/result.zarr cannot be shown: {type(exc).__name__}: {exc}"))
        rows = _flatten(_read_json(out / name / "summary.json"))
        if rows:
            more = len(rows) - MAX_SUMMARY_ROWS
            table = TableItem([list(r) for r in rows[:MAX_SUMMARY_ROWS]], ["value", ""],
                              caption=f"{name}/summary.json" + (f" ({more} more values there)" if more > 0 else ""))
            items.append(TextItem(f'<details class="item"><summary>Summary: {len(rows)} values</summary>'
                                  f"{table.to_html()}</details>", raw_html=True))
    return Section(f"Step {name}", items, intro=intro, anchor=f"step-{name}")


#: In a live report (served by ``ionscope watch --serve``): reload the page when the session's
#: ``report.version`` (written after every update of the report) changes.
LIVE_SCRIPT = """(function(){var seen=null;function poll(){fetch("report.version",{cache:"no-store"})
.then(function(r){return r.ok?r.json():null;}).then(function(d){if(!d)return;if(seen===null)seen=d.version;
else if(d.version!==seen)location.reload();}).catch(function(){});}poll();setInterval(poll,1000);})();"""


def experiment_report(out_dir: str | os.PathLike, *, live: bool = False) -> Path:
    """Write ``OUT/report.html`` for the run in ``out_dir`` (atomically, replacing an old one).

    Parameters
    ----------
    out_dir : path-like
        The output folder of ``ionscope run`` (holds ``run.json``).
    live : bool
        A report of a session still running (``ionscope watch --serve``): the series open at
        their newest frame and the page reloads itself when ``OUT/report.version`` changes.

    Returns
    -------
    Path
        The report's path.
    """
    from ionscope import __version__

    out = Path(out_dir).absolute()
    record = _read_json(out / "run.json")
    steps: dict[str, Any] = record.get("steps") if isinstance(record.get("steps"), dict) else {}
    exp = record.get("experiment") or {}
    names = list(steps)
    report = Report(
        f"ionscope run: {exp.get('name', out.name)}",
        subtitle=f"{len(names)} steps, status {record.get('status', 'unknown')}",
        metadata={"experiment file": exp.get("file", ""), "sha256": str(exp.get("sha256", ""))[:16],
                  "status": record.get("status", "unknown"), "started (UTC)": record.get("started", ""),
                  "finished (UTC)": record.get("finished", ""), "ionscope version": __version__,
                  "output folder": str(out)},
        footer="Written by ionscope run from the run's record (run.json) and each step's summary.json and "
               "result.zarr in the output folder; every result's provenance names the experiment file and its "
               "inputs' sha256.",
    )
    rows = []
    for name, entry in steps.items():
        note = "kept from the previous run" if entry.get("kept") else entry.get("error", "")
        argv = [str(a) for a in entry.get("argv") or []]
        command = " ".join(next(iter([argv[:i] for i, a in enumerate(argv) if os.sep in a or a.startswith("-")]),
                                argv))
        rows.append([name, command, entry.get("status", "pending"), _frames(entry),
                     entry.get("run_time_s", ""), entry.get("started", ""), entry.get("finished", ""), note])
    overview: list[Any] = [TableItem(rows, ["step", "command", "status", "frames", "run time (s)", "started",
                                            "finished", "note"])]
    if live:
        overview.append(TextItem("<p>Live: this page reloads itself when the session adds a frame.</p>"
                                 f"<script>{LIVE_SCRIPT}</script>", raw_html=True))
    report.add(Section("Steps", overview))
    for name, entry in steps.items():
        report.add(_step_section(out, name, entry if isinstance(entry, dict) else {}, names, live=live))
    if exp.get("file"):
        try:
            report.add_provenance(f"experiment file {exp['file']}", Path(exp["file"]).read_text())
        except OSError:
            pass
    if record:
        report.add_provenance("run.json", record)
    return report.write(out / REPORT_NAME, overwrite=True)
