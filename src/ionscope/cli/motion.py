"""``ionscope motion``: Li flux, velocities, fronts and in-plane transport of a Li map series. The
chain is :func:`ionscope.transport.li_motion`; this module only parses options and writes the
results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import (
    CyclerOption, DimsOption, OutOption, OverwriteOption, StartOption, TimezoneOption, VariableOption, app,
    cell_timeline, input_role, options_named, out, start_run, series_command,
)


def _state_variable(spec: str):
    """The per-frame ``state`` data variable stored beside the series (a twin, a demo dataset), or
    None: a series file of one signal, or one without it."""
    from ionscope import io
    from ionscope.errors import IonscopeError

    path = spec if Path(spec).exists() or ":" not in spec else spec.rsplit(":", 1)[0]
    if not Path(path).is_dir():  # a store or result folder can hold it; other files hold one signal
        return None
    try:
        ds = io.open_dataset(path, lazy=True)
    except IonscopeError:
        return None
    state = ds.variables.get("state")
    return ds["state"].load() if state is not None and state.dims == ("time",) else None


@app.command("motion")
@series_command
def motion(
    series_path: Annotated[str, typer.Argument(metavar="SERIES", help="A Li-fraction (or concentration) series (time, y, x): FILE or FILE:VARIABLE, e.g. an 'eels lithium' or 'denoise' result.")],
    out_dir: OutOption,
    variable: VariableOption = None,
    electrolyte: Annotated[str, typer.Option("--electrolyte", help="Side of the map where the solid electrolyte is: top, bottom, left or right.")] = "top",
    method: Annotated[str, typer.Option("--method", help="Flux from the continuity equation (continuity), the optical flow (flow), or both.")] = "continuity",
    level: Annotated[Optional[float], typer.Option("--level", help="Front iso-value of the series (default 0.7 of the first frame's Li-rich level).")] = None,
    window: Annotated[int, typer.Option("--window", help="Frames per rate fit (odd, >= 3), within each cell state.")] = 5,
    mobility_path: Annotated[Optional[str], typer.Option("--mobility", metavar="MAP", help="A Li mobility (diffusivity) map (y, x) on the series' grid, absolute or relative, > 0: the flux becomes the Fickian -D grad(phi) with div(D grad phi) = dx/dt, which runs along fast paths. FILE or FILE:VARIABLE.")] = None,
    boundaries_path: Annotated[Optional[str], typer.Option("--boundaries", metavar="MASK", help="A domain-boundary mask (y, x; 1 = boundary) from a structure image, e.g. segmented HAADF registered to the series: the bulk and boundary mobilities are fitted to the maps per cell state (summary 'mobility') and the flux is the Fickian one. FILE or FILE:VARIABLE. Not with --mobility.")] = None,
    cycler: CyclerOption = None,
    start: StartOption = None,
    timezone: TimezoneOption = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Li flux (continuity equation), velocities, front positions and, per cell state, the in-plane fraction of the flux and the front velocity."""
    from ionscope import io
    from ionscope.transport import li_motion

    from ionscope.errors import ConfigError

    elapsed = start_run(out_dir, overwrite, inputs=(series_path, cycler, mobility_path, boundaries_path))
    if mobility_path is not None and boundaries_path is not None:
        raise ConfigError("give --mobility MAP or --boundaries MASK (whose mobilities are then fitted), not both")
    with input_role("SERIES"):
        series = io.load(series_path, lazy=True, dims=dims, variable=variable)
    structure = {}
    for key, option, path in (("mobility", "--mobility", mobility_path), ("boundaries", "--boundaries", boundaries_path)):
        if path is not None:
            with input_role(option):
                structure[key] = io.load(path)
    timed = cell_timeline(series, cycler, start, timezone, out_dir, overwrite)
    state = None
    if timed is not None:
        series = timed.timed
    elif "state" not in series.coords:
        state = _state_variable(series_path)
    with options_named():
        result, summary = li_motion(series, state=state, electrolyte=electrolyte, method=method, level=level,
                                    window=window, **structure)
    summary = {"command": "motion", "input": str(series_path), **summary}
    if timed is not None:
        result, part = timed.apply(result)
        summary.update(part)
    summary["run_time_s"] = elapsed()
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    def num(value, spec):
        return "n/a" if value is None else format(value, spec)

    states = ", ".join(f"{name} {num(s['in_plane_fraction'], '.2f')} in-plane, front "
                       f"{num(s['front_velocity_nm_per_s'], '.3g')} nm/s" for name, s in summary["states"].items())
    mob = summary["mobility"]
    fitted = (f"; fitted D_bulk {num(mob['d_bulk_nm2_s'], '.3g')} ± {num(mob['d_bulk_nm2_s_error'], '.2g')}, "
              f"D_boundary {num(mob['d_boundary_nm2_s'], '.3g')} ± {num(mob['d_boundary_nm2_s_error'], '.2g')} nm^2/s"
              if mob["source"].startswith("fitted") else "")
    out.print(f"Li motion of {summary['frames']} frames ({summary['method']}, mobility: {mob['source']}{fitted}): "
              f"{states}; wrote {out_dir}")
