"""Cross-instrument studies: a KPFM potential change against a TOF-SIMS Li change, particle by
particle (issue 16; METHODS sections 4-5).

- :mod:`~ionscope.correlate.stats`: the Pearson coefficient of per-particle pairs with a
  percentile-bootstrap and a Fisher-z confidence interval.

The multimodal registration that brings a KPFM map onto a TOF-SIMS grid lives in
:mod:`ionscope.register` (shared by the technique packages).
"""

from ionscope.correlate.stats import Correlation, bootstrap_pearson, pearson_kernel

__all__ = ["Correlation", "bootstrap_pearson", "pearson_kernel"]
