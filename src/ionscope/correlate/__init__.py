"""Cross-instrument studies: a KPFM potential change against a TOF-SIMS Li change, particle by
particle (issue 16; :doc:`/guide/correlate`).

- :mod:`~ionscope.correlate.stats`: the Pearson coefficient of per-particle pairs with a
  percentile-bootstrap and a Fisher-z confidence interval.
- :mod:`~ionscope.correlate.pairs`: which KPFM frames go with which TOF-SIMS states
  (``--pairs FRAME:STATE,...``, the cell's charge, or the contract's default).
- :mod:`~ionscope.correlate.workflow`: :func:`correlate_results`, the chain of ``ionscope
  correlate`` (registration, the potential on the TOF-SIMS grid, per-particle changes, the
  correlation).

The multimodal registration that brings a KPFM map onto a TOF-SIMS grid lives in
:mod:`ionscope.register` (shared by the technique packages).
"""

from ionscope.correlate.pairs import default_pairs, pairs_by_charge, parse_pairs
from ionscope.correlate.stats import Correlation, bootstrap_pearson, pearson_kernel
from ionscope.correlate.workflow import correlate_results

__all__ = ["correlate_results", "Correlation", "bootstrap_pearson", "pearson_kernel", "parse_pairs", "default_pairs", "pairs_by_charge"]
