"""Self-contained HTML reports.

A :class:`Report` is a title, run metadata, an ordered list of :class:`Section` objects and a
provenance footer. Each section holds items - :class:`TextItem`, :class:`FigureItem`,
:class:`MovieItem`, :class:`TableItem`, or any object with a ``to_html()`` method, such as
:class:`~ionscope.report.interactive.InteractiveSeriesItem`; an item's optional ``script`` and
``style`` attributes (page-wide JavaScript and CSS) are included once per page - and :meth:`Report.render` turns them into a single HTML
document: every image and movie is embedded as a base64 ``data:`` URI and the CSS is inline, so
the file opens offline and can be mailed to a colleague as it is. Nothing here knows about the
demo or about any instrument; any pipeline can build a report.

:meth:`Report.write` writes atomically through :func:`ionscope.io.write_text` (a temporary name
beside the target, renamed into place), so a reader sees the old report or the new one.

Examples
--------
>>> report = Report("My run", metadata={"seed": 0})
>>> _ = report.add(Section("Notes", [TextItem("Nothing to see.")]))
>>> html = report.render()
>>> "<h2" in html and "http://" not in html and "https://" not in html
True
"""

from __future__ import annotations

import base64
import html as _html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

# --------------------------------------------------------------------------- data URIs

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"<svg", 0, "image/svg+xml"),
)


def sniff_mime(data: bytes) -> str:
    """The MIME type of an image or movie from its first bytes.

    Knows PNG, GIF, JPEG, WebP, SVG, MP4 and WebM; raises :class:`ValueError` otherwise.
    """
    head = bytes(data[:64])
    for magic, offset, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    if head.lstrip()[:5] == b"<?xml" and b"<svg" in bytes(data[:512]):
        return "image/svg+xml"
    raise ValueError(f"unrecognised image/movie bytes (starting {head[:12]!r})")


def data_uri(data: bytes, mime: str | None = None) -> str:
    """A ``data:<mime>;base64,...`` URI embedding ``data`` (MIME sniffed when not given)."""
    mime = mime or sniff_mime(data)
    return f"data:{mime};base64," + base64.b64encode(bytes(data)).decode("ascii")


def _read(src: bytes | str | os.PathLike) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    return Path(src).read_bytes()


# --------------------------------------------------------------------------- items


def _esc(text: Any) -> str:
    return _html.escape(str(text), quote=True)


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return "".join(f"<p>{_esc(' '.join(b.split()))}</p>" for b in blocks)


@dataclass
class TextItem:
    """Plain text; blank lines separate paragraphs. ``raw_html=True`` inserts it unescaped
    (the caller then answers for it being self-contained)."""

    text: str
    raw_html: bool = False

    def to_html(self) -> str:
        return self.text if self.raw_html else _paragraphs(self.text)


@dataclass
class FigureItem:
    """A still image (PNG, GIF, JPEG, WebP or SVG bytes, or a path to one) with a caption.

    ``filename`` (optional) names the file the image was also saved as; it is shown under the
    caption so a reader knows where the full-resolution file is. ``width`` (CSS px, optional)
    is the display width, e.g. the figure's size in inches times 96 so that a 140-dpi PNG shows
    at its physical size; images never grow wider than the page.
    """

    image: bytes | str | os.PathLike
    caption: str = ""
    alt: str = ""
    filename: str | None = None
    width: int | None = None

    def to_html(self) -> str:
        data = _read(self.image)
        alt = self.alt or (self.caption.split(".")[0] if self.caption else "figure")
        file_note = f' <span class="file">{_esc(self.filename)}</span>' if self.filename else ""
        return (
            '<figure class="item">'
            f'<img src="{data_uri(data)}" alt="{_esc(alt)}"'
            + (f' width="{int(self.width)}"' if self.width else "")
            + ">"
            f"<figcaption>{_esc(self.caption)}{file_note}</figcaption></figure>"
        )


@dataclass
class MovieItem:
    """A movie: an animated image (WebP or GIF) that plays in any browser, plus optionally the
    MP4 (H.264) version embedded as a ``<video>`` with controls.

    Parameters
    ----------
    animation : bytes or path
        Animated WebP or GIF, shown as an ``<img>`` (autoplays and loops everywhere).
    caption : str
        What is shown, with units.
    mp4 : bytes or path, optional
        H.264 MP4 of the same frames. Embedded when ``embed_mp4`` is true.
    files : sequence of str
        Names of the files the movie was saved as (listed under the caption).
    embed_mp4 : bool
        Embed the MP4 as a second, controllable player (doubles the movie's share of the report).
    """

    animation: bytes | str | os.PathLike
    caption: str = ""
    mp4: bytes | str | os.PathLike | None = None
    files: Sequence[str] = ()
    alt: str = ""
    embed_mp4: bool = True

    def to_html(self) -> str:
        anim = _read(self.animation)
        alt = self.alt or "movie"
        parts = ['<figure class="item movie">', f'<img src="{data_uri(anim)}" alt="{_esc(alt)}">']
        files = " ".join(f'<span class="file">{_esc(f)}</span>' for f in self.files)
        parts.append(f"<figcaption>{_esc(self.caption)} {files}</figcaption>")
        if self.mp4 is not None and self.embed_mp4:
            mp4 = _read(self.mp4)
            parts.append(
                '<details class="video"><summary>MP4 player (H.264) with pause and seek</summary>'
                f'<video controls loop muted playsinline preload="metadata" '
                f'src="{data_uri(mp4, "video/mp4")}"></video></details>'
            )
        parts.append("</figure>")
        return "".join(parts)


@dataclass
class TableItem:
    """A table of values; ``header`` names the columns. Floats are shown with ``float_format``."""

    rows: Sequence[Sequence[Any]]
    header: Sequence[str] | None = None
    caption: str = ""
    float_format: str = "{:.4g}"

    def _cell(self, value: Any) -> str:
        if isinstance(value, float):
            return _esc(self.float_format.format(value))
        return _esc(value)

    def to_html(self) -> str:
        out = ['<div class="item"><table>']
        if self.caption:
            out.append(f"<caption>{_esc(self.caption)}</caption>")
        if self.header:
            out.append("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in self.header) + "</tr></thead>")
        out.append("<tbody>")
        for row in self.rows:
            out.append("<tr>" + "".join(f"<td>{self._cell(v)}</td>" for v in row) + "</tr>")
        out.append("</tbody></table></div>")
        return "".join(out)


Item = Union[TextItem, FigureItem, MovieItem, TableItem]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


@dataclass
class Section:
    """A titled part of a report: an optional introduction and a list of items.

    Strings in ``items`` are taken as :class:`TextItem`.
    """

    title: str
    items: list[Item | str] = field(default_factory=list)
    intro: str = ""
    anchor: str | None = None

    def add(self, item: Item | str) -> Section:
        self.items.append(item)
        return self

    def to_html(self, anchor: str) -> str:
        body = [f'<section id="{_esc(anchor)}"><h2>{_esc(self.title)}</h2>']
        if self.intro:
            body.append(f'<div class="intro">{_paragraphs(self.intro)}</div>')
        for item in self.items:
            body.append(TextItem(item).to_html() if isinstance(item, str) else item.to_html())
        body.append("</section>")
        return "".join(body)


# --------------------------------------------------------------------------- the report

_CSS = """
:root{--fg:#1f2933;--muted:#52606d;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2c6e8f}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:#102a43;color:#f0f4f8;padding:28px 0 22px}
.wrap{max-width:1120px;margin:0 auto;padding:0 28px}
header.top h1{margin:0 0 4px;font-size:28px;font-weight:650;letter-spacing:.2px}
header.top p.sub{margin:0;color:#bcccdc;font-size:15px}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px 22px;margin:18px 0 0}
dl.meta div{min-width:0}
dl.meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:#9fb3c8}
dl.meta dd{margin:0;font-size:14px;color:#f0f4f8;overflow-wrap:anywhere}
nav.toc{background:var(--card);border-bottom:1px solid var(--line);padding:10px 0;font-size:14px}
nav.toc a{color:var(--accent);text-decoration:none;margin-right:18px;white-space:nowrap}
nav.toc a:hover{text-decoration:underline}
main{padding:8px 0 24px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:22px 0;padding:20px 26px 14px}
section h2{margin:0 0 10px;font-size:20px;font-weight:620;color:#102a43}
.intro p,section>p{margin:0 0 10px;color:var(--fg);max-width:80ch}
figure.item{margin:14px 0 12px}
figure.item img,figure.item video{display:block;max-width:100%;height:auto;margin:0 auto;border-radius:4px}
figure.movie img{image-rendering:auto}
figcaption{font-size:13.5px;color:var(--muted);margin-top:8px;max-width:95ch}
span.file{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;
background:#f0f4f8;border:1px solid var(--line);border-radius:4px;padding:0 5px;margin-left:4px;white-space:nowrap}
details.video{margin-top:8px;font-size:13.5px;color:var(--muted)}
details.video summary{cursor:pointer}
details.video video{margin-top:8px}
div.item{margin:12px 0;overflow-x:auto}
table{border-collapse:collapse;font-size:13.5px;min-width:50%}
caption{text-align:left;color:var(--muted);font-size:13px;padding-bottom:6px}
th,td{border-bottom:1px solid var(--line);padding:5px 12px 5px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#334e68;font-size:12.5px;text-transform:uppercase;letter-spacing:.04em}
td{font-variant-numeric:tabular-nums}
footer{border-top:1px solid var(--line);padding:18px 0 40px;color:var(--muted);font-size:13px}
footer h2{font-size:15px;color:#334e68;margin:0 0 8px}
footer details{margin:6px 0}
footer summary{cursor:pointer;color:var(--fg)}
footer pre{background:#f0f4f8;border:1px solid var(--line);border-radius:6px;padding:10px 12px;
overflow-x:auto;font-size:12px;line-height:1.45;white-space:pre-wrap;overflow-wrap:anywhere}
@media print{body{background:#fff}section{break-inside:avoid;border:none}nav.toc{display:none}}
"""


def _pretty(value: Any) -> str:
    """Pretty-print JSON (strings that hold JSON are parsed first)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, TypeError):
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class Report:
    """A self-contained HTML report.

    Parameters
    ----------
    title : str
        Shown as the page heading and the document title.
    subtitle : str, optional
        One line under the title.
    metadata : mapping, optional
        Run metadata shown in the header (version, date, seed, parameters...). Values that are
        not strings are shown as compact JSON.
    footer : str, optional
        Text at the top of the provenance footer.

    Examples
    --------
    >>> r = Report("Run", metadata={"seed": 1})
    >>> _ = r.add(Section("A", ["text"])).add_provenance("model", "a forward model")
    >>> r.render().count("<section")
    1
    """

    def __init__(
        self,
        title: str,
        *,
        subtitle: str = "",
        metadata: Mapping[str, Any] | None = None,
        footer: str = "",
    ) -> None:
        self.title = title
        self.subtitle = subtitle
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.footer = footer
        self.sections: list[Section] = []
        self.provenance: list[tuple[str, str, bool]] = []

    def add(self, section: Section) -> Report:
        """Append a section (returns the report, for chaining)."""
        if not isinstance(section, Section):
            raise TypeError(f"Report.add expects a Section, got {type(section).__name__}")
        self.sections.append(section)
        return self

    def add_provenance(self, label: str, content: Any, *, open: bool = False) -> Report:
        """Add a collapsible provenance entry to the footer (text or JSON-able content; JSON
        strings are pretty-printed). ``open`` shows it expanded."""
        self.provenance.append((label, _pretty(content), bool(open)))
        return self

    def _anchors(self) -> list[str]:
        seen: dict[str, int] = {}
        anchors = []
        for s in self.sections:
            base = s.anchor or _slug(s.title)
            n = seen.get(base, 0)
            seen[base] = n + 1
            anchors.append(base if n == 0 else f"{base}-{n + 1}")
        return anchors

    def render(self) -> str:
        """The report as one HTML string."""
        anchors = self._anchors()
        meta = "".join(
            f"<div><dt>{_esc(k)}</dt><dd>{_esc(v if isinstance(v, str) else json.dumps(v, default=str))}</dd></div>"
            for k, v in self.metadata.items()
        )
        toc = "".join(f'<a href="#{_esc(a)}">{_esc(s.title)}</a>' for s, a in zip(self.sections, anchors))
        body = "".join(s.to_html(a) for s, a in zip(self.sections, anchors))
        prov = "".join(
            f"<details{' open' if is_open else ''}><summary>{_esc(label)}</summary>"
            f"<pre>{_esc(text)}</pre></details>"
            for label, text, is_open in self.provenance
        )
        # page-wide code of interactive items (e.g. report.interactive): each distinct one once
        items = [i for s in self.sections for i in s.items if not isinstance(i, str)]
        styles = "".join(dict.fromkeys(getattr(i, "style", "") or "" for i in items))
        scripts = "".join(f"<script>{js}</script>" for js in dict.fromkeys(getattr(i, "script", "") or ""
                                                                             for i in items) if js)
        footer = ""
        if self.footer or prov:
            footer = (
                '<footer><div class="wrap"><h2>Provenance</h2>'
                + (_paragraphs(self.footer) if self.footer else "")
                + prov
                + "</div></footer>"
            )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(self.title)}</title><style>{_CSS}{styles}</style></head><body>"
            '<header class="top"><div class="wrap">'
            f"<h1>{_esc(self.title)}</h1>"
            + (f'<p class="sub">{_esc(self.subtitle)}</p>' if self.subtitle else "")
            + (f'<dl class="meta">{meta}</dl>' if meta else "")
            + "</div></header>"
            + (f'<nav class="toc"><div class="wrap">{toc}</div></nav>' if len(self.sections) > 1 else "")
            + f'<main><div class="wrap">{body}</div></main>'
            + footer
            + scripts
            + "</body></html>\n"
        )

    def write(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Render and write the report atomically; returns the path.

        Raises :class:`~ionscope.errors.OutputExistsError` if ``path`` exists and ``overwrite``
        is false.
        """
        from ionscope import io

        return io.write_text(path, self.render(), overwrite=overwrite)


__all__ = [
    "Report",
    "Section",
    "TextItem",
    "FigureItem",
    "MovieItem",
    "TableItem",
    "Item",
    "data_uri",
    "sniff_mime",
]
