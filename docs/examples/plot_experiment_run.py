"""
Experiments: a chain of commands in one file (``ionscope run``)
===============================================================

An experiment file (TOML) names the inputs and the steps - any ``ionscope`` command that takes an
input and ``--out`` - with their options by their long names. ``ionscope run EXPERIMENT.toml``
(:func:`ionscope.pipeline.run.run_experiment`) checks the whole file before any step runs, writes
``OUT/STEP/result.zarr`` and ``OUT/STEP/summary.json`` exactly as ``--out OUT/STEP`` would, and
records every step's status, times and checksums in ``OUT/run.json``; ``--resume`` continues an
interrupted run and keeps the steps that are done and unchanged. Here: the ``li_fronts`` twin,
denoised with a Gaussian baseline and then with sparse coding.
"""

import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from ionscope import io
from ionscope.pipeline.run import run_experiment
from ionscope.simulate import simulate

folder = Path(tempfile.mkdtemp())
io.save(simulate("li_fronts", seed=0), folder / "fronts.zarr")
(folder / "experiment.toml").write_text('''
[experiment]
name = "fronts"
out = "results"

[[inputs]]
name = "maps"
path = "fronts.zarr"

[[steps]]
name = "smooth"
command = "denoise"
input = "maps"
[steps.options]
method = "gaussian"

[[steps]]
name = "sparse"
command = "denoise"
input = "maps"
[steps.options]
method = "sparse"
atoms = 64
sparsity = 4
patch = 6
''')
record = run_experiment(folder / "experiment.toml")
print(record["status"], {name: step["status"] for name, step in record["steps"].items()})
print(sorted(p.name for p in (folder / "results").iterdir()))
print(json.loads((folder / "results" / "sparse" / "summary.json").read_text())["method"])

# %%
# Frame 20 of the input and of both steps' results.
maps = io.load(folder / "fronts.zarr:li_fraction")
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
for ax, (title, da) in zip(axes, [("input", maps), ("smooth", io.load(folder / "results/smooth/result.zarr")),
                                  ("sparse", io.load(folder / "results/sparse/result.zarr"))]):
    da.isel(time=20).plot(ax=ax, vmin=0, vmax=1, yincrease=False, add_colorbar=False)
    ax.set_title(title)
fig.tight_layout()
