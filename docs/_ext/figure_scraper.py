"""A sphinx-gallery image scraper for the figures ionscope's report functions return.

``ionscope.report`` draws on plain :class:`matplotlib.figure.Figure` objects with an Agg canvas
(no pyplot, so a report never opens a window or leaks figures), which sphinx-gallery's matplotlib
scraper does not see. This scraper saves every such figure that an example's code block leaves in
a variable; pyplot's own figures are left to the matplotlib scraper.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_SEEN: dict[str, set[int]] = {}


def report_figures(block, block_vars, gallery_conf):
    import matplotlib.pyplot as plt

    managed = {id(plt.figure(n)) for n in plt.get_fignums()}
    seen = _SEEN.setdefault(block_vars["src_file"], set())
    paths = []
    for value in list(block_vars["example_globals"].values()):
        if isinstance(value, Figure) and id(value) not in managed and id(value) not in seen:
            seen.add(id(value))
            path = next(block_vars["image_path_iterator"])
            value.savefig(path, dpi=100)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
