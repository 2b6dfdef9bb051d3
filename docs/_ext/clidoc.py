"""``.. ionscope-cli::``: the command-line reference, read from the Typer app at build time.

The directive walks the click command that Typer builds from :data:`ionscope.cli.app` (the same
object ``ionscope`` runs) and writes one section per command: its help text (which names what the
command writes), the usage line, and every argument and option with its type, default and help.
Nothing is copied by hand, so the page cannot drift from the code.
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import Directive


def _command():
    from ionscope.cli import _command as build

    return build()


def walk(command, path=("ionscope",)):
    """``(path, command)`` for the root and every sub-command, depth first in help order."""
    yield path, command
    subs = getattr(command, "commands", None) or {}
    for name in (command.list_commands(None) if subs else []):
        yield from walk(subs[name], (*path, name))


def _paragraphs(text: str) -> list[nodes.Node]:
    out = []
    for block in (text or "").strip().split("\n\n"):
        block = " ".join(line.strip() for line in block.splitlines() if line.strip())
        if block:
            out.append(nodes.paragraph(text=block))
    return out


def _param_item(param, ctx) -> nodes.definition_list_item:
    """One argument or option as ``--help`` shows it: names and metavar, help, default, required."""
    names, help_text = param.get_help_record(ctx) or (param.name, "")
    item = nodes.definition_list_item()
    term = nodes.term()
    term += nodes.literal(text=names)
    item += term
    body = nodes.definition()
    body += nodes.paragraph(text=" ".join(help_text.split()))
    item += body
    return item


class CliReference(Directive):
    has_content = False

    def run(self):
        root = _command()
        sections = []
        parents: dict[tuple, nodes.section] = {}
        for path, command in walk(root):
            name = " ".join(path)
            section = nodes.section(ids=[nodes.make_id("cli-" + name)], names=[nodes.fully_normalize_name(name)])
            section += nodes.title(text=name)
            section.extend(_paragraphs(command.help))
            ctx = root.context_class(command, info_name=name)
            usage = " ".join(command.collect_usage_pieces(ctx))
            section += nodes.literal_block(text=f"{name} {usage}", language="text")
            params = [p for p in command.params if not getattr(p, "hidden", False)]
            if params:
                dl = nodes.definition_list()
                for param in params:
                    dl += _param_item(param, ctx)
                section += dl
            subs = getattr(command, "commands", None)
            if subs:
                lst = nodes.bullet_list()
                for sub in command.list_commands(ctx):
                    item = nodes.list_item()
                    para = nodes.paragraph()
                    para += nodes.literal(text=f"{name} {sub}")
                    para += nodes.Text(" - " + (subs[sub].get_short_help_str(limit=200)))
                    item += para
                    lst += item
                section += lst
            parent = parents.get(path[:-1])
            if parent is None or len(path) <= 1:
                sections.append(section)
            else:
                parent += section
            parents[path] = section
        return sections


def setup(app):
    app.add_directive("ionscope-cli", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
