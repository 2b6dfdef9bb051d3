"""The documentation's sources: every public name has a page, the pages and the code cite no
document outside the repository, the intersphinx inventories are valid, the CLI reference sees
every command. (``make docs`` builds the site and checks the built API reference itself.)"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import apiref  # noqa: E402
import clidoc  # noqa: E402
import inventories  # noqa: E402

#: Documents that live outside this repository (the project's shared folder) and must not be cited.
OUTSIDE = re.compile(r"METHODS\.md|\bMETHODS sections?\b|DESIGN\.md|\bCONTRACTS\b|REAL_DATA\.md|\.\./shared")


def test_every_public_name_has_a_home_page_and_a_directive(tmp_path):
    names = apiref.write_api_pages(tmp_path)
    modules = apiref.public_modules()
    assert names == list(modules) and "ionscope.holography" in names and "ionscope.cli" not in names
    pages = {p.stem: p.read_text() for p in tmp_path.glob("ionscope*.rst")}
    assert set(pages) == set(modules)
    for target in set(apiref.homes(modules).values()):
        module, name = target.rsplit(".", 1)
        assert re.search(rf"^\.\. auto(function|class|data):: {re.escape(name)}$", pages[module], re.M), target


def test_a_re_exported_name_is_documented_once_and_linked_from_the_package():
    modules = apiref.public_modules()
    home = apiref.homes(modules)
    fn = modules["ionscope.eels"].mlls_fit
    assert home[apiref._key("mlls_fit", fn)] == "ionscope.eels.mlls_fit"
    assert "mlls_fit" in modules["ionscope.eels.mlls"].__all__
    page = apiref.module_page("ionscope.eels.mlls", modules["ionscope.eels.mlls"], home)
    assert "   ~ionscope.eels.mlls_fit" in page and ".. autofunction:: mlls_fit" not in page
    assert ".. autofunction:: mlls_fit" in apiref.module_page("ionscope.eels", modules["ionscope.eels"], home)


def test_no_page_docstring_or_comment_cites_a_document_outside_the_repository():
    sources = [p for p in DOCS.rglob("*") if p.suffix in (".rst", ".py", ".txt", ".md")
               and not {"_build", "api", "auto_examples"} & set(p.relative_to(DOCS).parts)]
    files = [ROOT / "README.md", *sources, *(ROOT / "src").rglob("*.py"), *(ROOT / "tests").glob("*.py")]
    cited = [str(f.relative_to(ROOT)) for f in files if f.name != "test_docs.py" and OUTSIDE.search(f.read_text())]
    assert not cited


def test_the_guide_pages_the_code_points_to_exist():
    targets = set()
    for f in (ROOT / "src").rglob("*.py"):
        targets |= set(re.findall(r":doc:`(/[\w/]+)`", f.read_text()))
    assert targets, "the code points to no page"
    missing = [t for t in targets if not (DOCS / f"{t.lstrip('/')}.rst").exists()]
    assert not missing


def test_inventories_are_in_sphinx_format(tmp_path):
    """The inventory format Sphinx reads: four header lines, then zlib-compressed ``name domain:role
    priority uri display`` lines (``make docs`` loads them with Sphinx itself, where a broken one
    is a warning and ``-W`` fails the build)."""
    data = inventories.inventory_bytes("numpy", "2.0", [("numpy.fft.rfft", "py:function",
                                                         "reference/generated/numpy.fft.rfft.html")])
    header, body = data.split(b"zlib.\n", 1)
    lines = header.decode().splitlines()
    assert lines[0] == "# Sphinx inventory version 2" and lines[1] == "# Project: numpy" and lines[2] == "# Version: 2.0"
    entry = zlib.decompress(body).decode().splitlines()[0].split(" ")
    assert entry[:3] == ["numpy.fft.rfft", "py:function", "1"]
    assert entry[3] == "reference/generated/numpy.fft.rfft.html" and entry[4] == "-"


def test_numpy_inventory_has_the_names_docstrings_use():
    names = {name for name, _, _ in inventories.numpy_entries()}
    assert {"numpy.ndarray", "numpy.float32", "numpy.fft.rfft", "numpy.random.Generator", "array_like"} <= names


def test_cli_reference_walks_every_command():
    from ionscope.cli import _command

    paths = [" ".join(p) for p, _ in clidoc.walk(_command())]
    for command in ("ionscope", "ionscope holo reconstruct", "ionscope eels lithium", "ionscope kpfm process",
                    "ionscope sims lithium", "ionscope spacecharge fit", "ionscope run", "ionscope correlate"):
        assert command in paths


@pytest.mark.parametrize("page", ["holography", "eels", "denoising", "superres", "kpfm", "sims", "echem", "timeline",
                                  "correlate", "spacecharge", "simulate", "experiments", "motion"])
def test_every_technique_has_a_guide_page_in_the_toctree(page):
    assert (DOCS / "guide" / f"{page}.rst").exists()
    assert re.search(rf"^   {page}$", (DOCS / "guide" / "index.rst").read_text(), re.M)


def test_the_gallery_has_twins_real_files_and_workflows_and_every_example_draws():
    examples = {p.name: p.read_text() for p in (DOCS / "examples").glob("plot_*.py")}
    assert len(examples) >= 14
    real = [n for n, t in examples.items() if "fetch_real_file" in t or "holospy.__file__" in t]
    assert len(real) >= 4 and len([n for n in examples if n.startswith("plot_workflow_")]) >= 2
    for name, text in examples.items():
        assert "plt.subplots" in text or "_figure(" in text, name


def test_the_cli_reference_names_what_a_command_really_writes(run_cli, tmp_path):
    """The reference shows each command's help; the variables and summary keys its 'Writes'
    paragraph names are the ones the command writes (checked on a command that runs in ms)."""
    import json

    from ionscope import io
    from ionscope.cli import _command

    command = _command().commands["spacecharge"].commands["profile"]
    writes = command.help.split("Writes", 1)[1]
    result = run_cli("spacecharge", "profile", "--psi0", "1.3", "--theta", "0.99", "--eps-r", "50", "--c0", "6e27",
                     "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    variables = set(io.open_dataset(tmp_path / "out" / "result.zarr").data_vars)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    named = set(re.findall(r"[A-Za-z][A-Za-z0-9_]+", writes))
    assert {"psi", "c_li", "rho", "field"} <= named & variables
    assert {"w90_nm", "debye_length_nm", "surface_charge_C_per_m2"} <= named & set(summary)
