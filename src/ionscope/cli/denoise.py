"""``ionscope denoise``: sparse-coding denoising of map series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ionscope.cli._app import (
    CyclerOption, DimsOption, OverwriteOption, StartOption, TimezoneOption, app, cell_timeline, load_input,
    options_named, out, dask_progress, start_run, series_command,
)


# --------------------------------------------------------------------------- denoise


def _int_or_auto(text: str, option: str) -> int | str:
    """``auto`` or a whole number, else a ConfigError naming the option."""
    from ionscope.errors import ConfigError

    value = str(text).strip().lower()
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: give a whole number or auto") from None


@app.command()
@series_command
def denoise(
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help="A map series (time, y, x) or one map (y, x): FILE or FILE:VARIABLE.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (result.zarr with 'denoised', summary.json).")],
    method: Annotated[str, typer.Option("--method", help="sparse, sparse3d, pca, gaussian, gaussian3d, nlmeans, tv or tv3d (bm3d, bm4d when installed).")] = "sparse",
    patch: Annotated[int, typer.Option("--patch", help="Patch size (px).")] = 8,
    atoms: Annotated[str, typer.Option("--atoms", help="Dictionary atoms, or auto: chosen from the data (a split of the noise; the summary's criterion says how).")] = "auto",
    sparsity: Annotated[str, typer.Option("--sparsity", help="Atoms per patch at most, or auto (chosen from the data).")] = "auto",
    temporal: Annotated[str, typer.Option("--temporal", help="Frames per space-time patch (sparse3d), or auto (chosen from the data).")] = "auto",
    noise: Annotated[str, typer.Option("--noise", help="poisson, gaussian or auto.")] = "auto",
    dose: Annotated[Optional[float], typer.Option("--dose", help="Counts per unit value (maps given as fractions), for Poisson noise.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    wiener: Annotated[Optional[bool], typer.Option("--wiener/--no-wiener", help="Follow the sparse coding with the collaborative Wiener filter of matched space-time groups (default: on for sparse3d, off for sparse).")] = None,
    cycler: CyclerOption = None,
    start: StartOption = None,
    timezone: TimezoneOption = None,
    dims: DimsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Denoise a map series by sparse coding (or a baseline) -> DIR/result.zarr variable 'denoised'.

    Writes DIR/result.zarr with denoised (the input's dims, coordinates and units) and
    DIR/summary.json with the method, the parameters (and how auto chose them), sigma and the run
    time.
    """
    from dask import is_dask_collection

    from ionscope import io
    from ionscope.denoise.methods import denoise as run_denoise

    atoms, sparsity, temporal = (_int_or_auto(v, name) for v, name in ((atoms, "--atoms"), (sparsity, "--sparsity"),
                                                                        (temporal, "--temporal")))
    extra = {} if wiener is None else {"wiener": wiener}
    if extra and method not in ("sparse", "sparse3d"):
        from ionscope.errors import ConfigError

        raise ConfigError(f"--wiener/--no-wiener applies to the sparse methods, not to {method!r}")
    elapsed = start_run(out_dir, overwrite, inputs=(input_path, cycler))
    da = load_input(input_path, lazy=True, dims=dims)  # every method stays lazy: it runs as the result is written
    timed = cell_timeline(da, cycler, start, timezone, out_dir, overwrite)
    with dask_progress(f"denoise ({method}): sample"), options_named():
        result, info = run_denoise(da, method=method, patch=patch, atoms=atoms, sparsity=sparsity,
                                   temporal=temporal, noise=noise, dose=dose, seed=seed, **extra)
    # a lazy result's statistics (mean_atoms, sure_per_pixel, residual_var) are dask scalars of the same
    # tasks: computed as the result is written
    lazy_stats = {k: v for k, v in info.items() if is_dask_collection(v)}
    summary = {"command": "denoise", "input": str(input_path), "method": method,
               "parameters": {"patch": patch, "atoms": atoms, "sparsity": sparsity, "temporal": temporal,
                              "noise": noise, "dose": dose, "seed": seed,
                              "wiener": info.get("parameters", {}).get("wiener", wiener)},
               "sigma": info.get("sigma"),
               "info": {k: v for k, v in info.items() if k != "dictionary" and k not in lazy_stats}}
    if "criterion" in info:
        used = info["parameters"]
        summary["chosen"] = {k: used.get(k) for k in ("temporal", "atoms", "sparsity")}
        summary["criterion"] = info["criterion"]
    result = result.rename("denoised").to_dataset()
    if timed is not None:
        result, part = timed.apply(result)
        summary.update(part)
    def finish(stats: dict | None = None) -> dict:
        if stats:
            summary["info"].update({k: np.asarray(v).tolist() for k, v in stats.items()})  # int, float or list
        return {**summary, "run_time_s": elapsed()}

    with dask_progress(f"denoise ({method})"):  # a lazy result is computed as it is written, chunk by chunk
        io.write_result(out_dir, result, finish, overwrite=overwrite, compute_with=lazy_stats or None)
    out.print(f"denoised {dict(da.sizes)} with {method}; wrote {out_dir}")
