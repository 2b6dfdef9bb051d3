"""The API reference, written from the code's ``__all__`` at build time so that it cannot drift.

Every module of ionscope that declares ``__all__`` (except the command line, which has its own
reference) gets one page, ``api/<module>.rst``: its docstring, a summary table of every name it
exports, and the full documentation of each name whose *home* it is. An object exported by
several modules (a package re-exporting its submodule's function) is documented once, on the
page of the shortest module path that exports it, and linked from the others.
:func:`check_coverage` (run when the build finishes) fails the build when a name of an ``__all__``
has no documented target.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

#: Modules left out of the API reference: the command line is documented from its Typer app.
EXCLUDED_PREFIXES = ("ionscope.cli",)


def public_modules() -> dict[str, object]:
    """Every importable ionscope module with an ``__all__``, by dotted name."""
    import ionscope

    found = {"ionscope": ionscope}
    for info in pkgutil.walk_packages(ionscope.__path__, "ionscope."):
        name = info.name
        if name.startswith(EXCLUDED_PREFIXES) or any(part.startswith("_") for part in name.split(".")):
            continue
        module = importlib.import_module(name)
        if hasattr(module, "__all__"):
            found[name] = module
    return dict(sorted(found.items()))


def _key(name: str, obj) -> tuple:
    """What makes two exports the same: the same object under the same name (an alias is
    documented under its own name; small ints and strings are shared by unrelated constants)."""
    return (name, id(obj))


def homes(modules: dict[str, object]) -> dict[tuple, str]:
    """For every exported object, the module whose page documents it (fewest dots, then name)."""
    home: dict[tuple, str] = {}
    for mod_name in sorted(modules, key=lambda m: (m.count("."), m)):
        module = modules[mod_name]
        for name in module.__all__:
            home.setdefault(_key(name, getattr(module, name)), f"{mod_name}.{name}")
    return home


def _directive(obj, name: str) -> tuple[str, list[str]]:
    if inspect.isclass(obj):
        return "autoclass", ["   :members:"] if not issubclass(obj, BaseException) else []
    if inspect.isroutine(obj) or callable(obj):
        return "autofunction", []
    value = repr(obj)
    return "autodata", [] if len(value) <= 80 and "\n" not in value else ["   :no-value:"]


def shadowed(modules: dict[str, object], home: dict[tuple, str]) -> set[str]:
    """Modules whose dotted name is also the documented name of an object (``ionscope.sims.normalise``
    is a module and the function the package exports): their page is not an index target."""
    return set(modules) & set(home.values())


def module_page(mod_name: str, module, home: dict[tuple, str], no_index: bool = False) -> str:
    title = f"``{mod_name}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {mod_name}", "   :no-members:",
             *(["   :no-index:"] if no_index else []), "",
             f".. currentmodule:: {mod_name}", ""]
    names = list(module.__all__)
    if names:
        lines += [".. rubric:: Contents", "", ".. autosummary::", ""]
        for name in names:
            target = home[_key(name, getattr(module, name))]
            lines.append(f"   {name}" if target == f"{mod_name}.{name}" else f"   ~{target}")
        lines.append("")
    own = [n for n in names if home[_key(n, getattr(module, n))] == f"{mod_name}.{n}"]
    if own:
        lines += [".. rubric:: Reference", ""]
    for name in own:
        obj = getattr(module, name)
        directive, options = _directive(obj, name)
        lines += [f".. {directive}:: {name}", *options, ""]
    return "\n".join(lines) + "\n"


def write_api_pages(folder: Path) -> list[str]:
    """Write ``folder/<module>.rst`` for every public module and ``folder/index.rst``; return the
    module names. Files whose text is unchanged are not rewritten (Sphinx then keeps them)."""
    modules = public_modules()
    home = homes(modules)
    folder.mkdir(parents=True, exist_ok=True)
    hidden = shadowed(modules, home)
    pages = {f"{name}.rst": module_page(name, mod, home, name in hidden) for name, mod in modules.items()}
    groups: dict[str, list[str]] = {}
    for name in modules:
        top = ".".join(name.split(".")[:2])
        groups.setdefault(top, []).append(name)
    index = ["API reference", "=============", "",
             "Every module that declares ``__all__`` has a page; the names it exports are documented on the "
             "page of the shortest module path that exports them (a package's page documents what the package "
             "re-exports, its modules' pages the rest). Written from the code at build time.", ""]
    for top, names in groups.items():
        index += [f"``{top}``", "-" * (len(top) + 4), "", ".. toctree::", "   :maxdepth: 1", ""]
        index += [f"   {name}" for name in names] + [""]
    pages["index.rst"] = "\n".join(index)
    for file, text in pages.items():
        path = folder / file
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in set(p.name for p in folder.glob("*.rst")) - set(pages):
        (folder / stale).unlink()
    return list(modules)


def check_coverage(app, exception) -> None:
    """Fail the build when a name of any public ``__all__`` has no documented Python target."""
    if exception is not None or app.builder.name != "html":
        return
    domain = app.env.domains["py"] if hasattr(app.env, "domains") else app.env.get_domain("py")
    documented = set(domain.objects)
    modules = public_modules()
    home = homes(modules)
    missing = sorted({target for target in home.values() if target not in documented})
    missing += sorted(m for m in set(modules) - shadowed(modules, home) if m not in documented)
    if missing:
        raise RuntimeError(f"{len(missing)} public names have no entry in the API reference: {missing[:20]}")
    app.env.ionscope_api_names = len(home)


def setup(app):
    app.connect("build-finished", check_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
