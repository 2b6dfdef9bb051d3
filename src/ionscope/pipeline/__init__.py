"""Declarative runs built from the technique packages: the demo (:mod:`ionscope.pipeline.demo`)
and, later, TOML-configured pipelines with provenance and checkpoints.

Submodules are imported on demand (``from ionscope.pipeline.demo import run_demo``) so that
importing :mod:`ionscope.pipeline` stays cheap.
"""

__all__: list[str] = []
