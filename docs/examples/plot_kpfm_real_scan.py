"""
A real Nanonis scan: channels, orientation and row times
========================================================

The pynxtools-spm package ships a real Nanonis non-contact AFM scan (128 x 128 px over 2 nm,
recorded with ``SCAN_DIR up``). It is fetched once with ``pip download`` into the test suite's
cache. ionscope's reader gives one variable per channel and direction (``Z_forward``,
``Z_backward``, ...), turns the image so that row 0 is the top as Gwyddion displays it (an
up-scan stores its first line at the bottom), mirrors backward traces, and gives every row the
time it was scanned (``row_time``, s from the scan's start): the clock that ties a KPFM row to
the cell's state.
"""

import matplotlib.pyplot as plt

from _real_files import fetch_real_file
from ionscope import io
from ionscope.kpfm import level_topography

path = fetch_real_file("pynxtools-spm==0.4.1",
                       "pynxtools_spm/nomad/example_uploads/afm/AFMExampleWithCustomization/A151216.123306-02602.sxm")
scan = io.open_dataset(path)
print(scan.attrs["source_format"], scan.attrs["start_time"], "scan direction:", scan.attrs["scan_direction"])
print([name for name in scan.data_vars][:6], "...")
z = scan["Z_forward"]
print(z.dims, z.shape, z.attrs["units"], "| row_time of the top and bottom rows:",
      round(float(z.row_time[0]), 1), round(float(z.row_time[-1]), 1), "s")

# %%
# Raw height (a tilted plane), the levelled topography, and when each row was scanned: the top
# row last, because the tip moved up the image.
level = level_topography(z)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
z.plot(ax=axes[0], yincrease=False, cmap="afmhot")
axes[0].set_title("Z forward (raw)")
level.plot(ax=axes[1], yincrease=False, cmap="afmhot")
axes[1].set_title("levelled")
axes[2].plot(z.row_time, z.y)
axes[2].invert_yaxis()
axes[2].set_xlabel("row time (s)")
axes[2].set_ylabel("y (nm), top = row 0")
axes[2].set_title("scan order")
fig.tight_layout()
