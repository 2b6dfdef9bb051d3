"""Sphinx configuration of the ionscope documentation (``make docs``; see docs/README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import apiref  # noqa: E402
import inventories  # noqa: E402

import ionscope  # noqa: E402

project = "ionscope"
author = "ionscope developers"
copyright = "ionscope developers, GPL-3.0-or-later"
release = ionscope.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "apiref",
    "clidoc",
]

root_doc = "index"
exclude_patterns = ["_build", "README.md", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.json", "examples/README.txt"]
templates_path: list[str] = []
html_theme = "pydata_sphinx_theme"
html_title = f"ionscope {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
# MathJax is loaded by the reader's browser from its CDN (nothing is fetched at build time)

# ---------------------------------------------------------------- API reference (apiref.py)
API_MODULES = apiref.write_api_pages(HERE / "api")
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types (with units)
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = True
numpydoc_xref_ignore = {"optional", "default", "of", "or", "shape", "sequence", "mapping", "callable", "None",
                        "array-like", "array_like", "same", "as", "the", "a", "an", "one", "each", "per", "in", "to"}
numpydoc_validation_checks: set[str] = set()

# ---------------------------------------------------------------- intersphinx without downloads
# The inventories are written from the installed packages (docs/_ext/inventories.py explains why);
# intersphinx reads them from the build folder and links to the projects' stable sites.
intersphinx_mapping = {name: (url, (path,)) for name, (url, path)
                       in inventories.write_inventories(HERE / "_build" / "inventories").items()}

# ---------------------------------------------------------------- the gallery
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(^|/)_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 0,
    "show_memory": False,
    "reference_url": {"ionscope": None},
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib", "figure_scraper.report_figures"),
    "first_notebook_cell": None,
    "plot_gallery": "True",
    "parallel": 2,
}
