"""``ionscope superres``: sparse-coding super-resolution of maps with coupled dictionaries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import (
    DimsOption, OverwriteOption, app, load_input, options_named, out, dask_progress, start_run, series_command,
)


@app.command()
@series_command
def superres(
    input_path: Annotated[str, typer.Argument(metavar="INPUT", help="A map series (time, y, x) or one map (y, x): FILE or FILE:VARIABLE.")],
    train: Annotated[str, typer.Option("--train", help="High-resolution training maps (time, y, x) or (y, x) at the target pixel size: FILE or FILE:VARIABLE.")],
    factor: Annotated[int, typer.Option("--factor", help="Up-sampling factor: 2 or 3.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (result.zarr with 'superres', summary.json).")],
    patch: Annotated[Optional[int], typer.Option("--patch", help="High-resolution patch size (px of the fine grid); default 5 for x2, 7 for x3.")] = None,
    atoms: Annotated[int, typer.Option("--atoms", help="Dictionary atoms.")] = 256,
    sparsity: Annotated[int, typer.Option("--sparsity", help="Atoms per patch.")] = 3,
    iterations: Annotated[int, typer.Option("--iterations", help="Back-projection (conjugate-gradient) iterations; 0: exact orthogonal projection only.")] = 20,
    train_iterations: Annotated[int, typer.Option("--train-iterations", help="K-SVD iterations.")] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    dims: DimsOption = None,
    train_dims: Annotated[Optional[str], typer.Option("--train-dims", help="Dim names of the training file's axes (like --dims).")] = None,
    pixel_check: Annotated[bool, typer.Option("--pixel-check/--no-pixel-check", help="Require training pixels = input pixels / factor (when calibrated).")] = True,
    overwrite: OverwriteOption = False,
) -> None:
    """Super-resolve maps x2 or x3 (coupled dictionaries + back-projection) -> DIR/result.zarr variable 'superres'.

    Writes DIR/result.zarr with superres (the input's dims on the finer grid) and DIR/summary.json
    with the training and consistency numbers.
    """
    from ionscope import io
    from ionscope.denoise.superres import METHOD, super_resolve

    elapsed = start_run(out_dir, overwrite, inputs=(input_path, train))
    da = load_input(input_path, lazy=True, dims=dims)  # a series stays lazy: super-resolved block by block on write
    hr = load_input(train, dims=train_dims, what="training maps")
    with dask_progress(f"superres x{factor}: training"), options_named(check_pixel_size="--pixel-check"):
        result, info = super_resolve(da, hr, factor, patch=patch, atoms=atoms, sparsity=sparsity,
                                     iterations=iterations, train_iterations=train_iterations, seed=seed,
                                     check_pixel_size=pixel_check)
    summary = {
        "command": "superres", "input": str(input_path), "train": str(train), "method": METHOD,
        "factor": info["factor"], "parameters": info["parameters"],
        "training": info["training"], "consistency": info["consistency"],
        "mean_atoms": info["mean_atoms"], "pixel_size": info["pixel_size"],
        "input_sizes": dict(da.sizes), "output_sizes": dict(result.sizes),
        "timings_s": info["timings_s"],
    }
    # a lazy result, its residuals and mean_atoms (summed by the same tasks): computed in one pass on write
    with dask_progress(f"superres x{factor}"):
        io.write_result(out_dir, result.to_dataset(),
                        lambda stats: {**summary, **stats, "mean_atoms": float(stats["mean_atoms"]),
                                       "run_time_s": elapsed()},
                        overwrite=overwrite,
                        compute_with={"consistency": info["consistency"], "mean_atoms": info["mean_atoms"]})
    out.print(f"super-resolved {dict(da.sizes)} x{info['factor']} -> {dict(result.sizes)}; wrote {out_dir}")
