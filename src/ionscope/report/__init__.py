"""Reports: self-contained HTML (:mod:`~ionscope.report.html`), matplotlib figures
(:mod:`~ionscope.report.figures`), movies (:mod:`~ionscope.report.movie`), interactive map
series for the browser (:mod:`~ionscope.report.interactive`) and the report of an
``ionscope run`` experiment (:mod:`~ionscope.report.experiment`).

The HTML builder is independent of any pipeline::

    from ionscope.report import Report, Section, FigureItem
    report = Report("My run", metadata={"seed": 0})
    report.add(Section("Maps", [FigureItem(png_bytes, "Li fraction (1); axes in nm.")]))
    report.write("report.html", overwrite=True)

:mod:`~ionscope.report.figures` and :mod:`~ionscope.report.movie` import matplotlib, Pillow
and imageio, so they are imported on demand (``from ionscope.report.figures import ...``).
"""

from ionscope.report import html
from ionscope.report.html import *  # noqa: F403 - the builder's public names

__all__ = list(html.__all__)
