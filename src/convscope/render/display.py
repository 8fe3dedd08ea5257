"""How result objects show themselves: a one-line ``repr`` and a compact HTML card for Jupyter.

Every result class of the public API builds its ``__repr__`` with :func:`one_line` (class, key shapes and
sizes, layer, method, ranges; never array contents, at most :data:`REPR_LIMIT` characters) and its
``_repr_html_`` with :func:`html_card` (a small key/value table, an optional column table, pictures inline
as base64 PNG). Every value goes through :func:`esc`, so a layer called ``<script>`` shows as text.
Pure Python: nothing here imports numpy, Pillow or Keras.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any, Final

REPR_LIMIT: Final = 200
NAME_LIMIT: Final = 48
_CSS: Final = (
    "<style>.convscope-result table{font-family:monospace;font-size:12px;border-collapse:collapse;"
    "margin:2px 0}.convscope-result th,.convscope-result td{padding:1px 8px;text-align:left;"
    "vertical-align:top;border-bottom:1px solid #ddd}</style>"
)


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and quoted attribute values."""
    return html.escape(str(value), quote=True)


def short(text: Any, limit: int = NAME_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut); one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def dims(shape: Iterable[Any]) -> str:
    """A shape as ``4x28x28`` (``None`` as ``?``); ``()`` as ``scalar``."""
    parts = ["?" if d is None else str(d) for d in shape]
    return "x".join(parts) if parts else "scalar"


def few(items: Sequence[Any], limit: int = 3) -> str:
    """The first ``limit`` items and a count, e.g. ``[3, 1, 4, ...] (10)``; all of them when few."""
    shown = ", ".join(repr(short(i, 24)) if isinstance(i, str) else str(i) for i in items[:limit])
    return f"[{shown}]" if len(items) <= limit else f"[{shown}, ...] ({len(items)})"


def one_line(name: str, *parts: str, limit: int = REPR_LIMIT) -> str:
    """``name(part, part, ...)`` on one line, at most ``limit`` characters (cut with an ellipsis)."""
    text = " ".join(f"{name}({', '.join(p for p in parts if p)})".split())
    return text if len(text) <= limit else text[: limit - 2] + "\u2026)"


def png_img(png: bytes, alt: str, *, width: int | None = None) -> str:
    """An ``<img>`` with the PNG inline as a base64 data URI (pixelated when scaled)."""
    data = base64.b64encode(png).decode("ascii")
    size = f"width:{int(width)}px;" if width else "max-width:100%;"
    return (
        f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}" title="{esc(alt)}" '
        f'style="{size}image-rendering:pixelated;margin:2px">'
    )


def html_card(
    title: str,
    rows: Sequence[tuple[str, Any]],
    *,
    images: Sequence[tuple[bytes, str]] = (),
    image_width: int | None = None,
    table: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None,
    pre: tuple[str, str] | None = None,
    note: str = "",
) -> str:
    """A compact HTML card: a title, a key/value table, optional pictures and an optional column table.

    Args:
        title: First line, e.g. the class name and what it holds.
        rows: ``(key, value)`` pairs; values are shown with ``str`` (escaped).
        images: ``(png bytes, alt text)`` pairs, shown inline.
        image_width: CSS width of each picture (``None``: natural size, at most the cell width).
        table: ``(header, rows)`` of a column table shown under the pictures.
        pre: ``(summary, text)``: preformatted text in a collapsible block (open), e.g. a printed table.
        note: A last line of plain text (escaped), e.g. ``"first 8 of 100 shown"``.

    Returns:
        HTML text in which every value is escaped.
    """
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    out = [
        f'<div class="convscope-result">{_CSS}<div style="font-weight:bold">{esc(title)}</div>',
        f"<table>{body}</table>",
    ]
    if images:
        out.append("<div>" + "".join(png_img(png, alt, width=image_width) for png, alt in images) + "</div>")
    if table is not None:
        header, lines = table
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        cells = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in line) + "</tr>" for line in lines)
        out.append(f'<div style="max-height:360px;overflow:auto"><table><tr>{head}</tr>{cells}</table></div>')
    if pre is not None:
        out.append(
            f"<details open><summary>{esc(pre[0])}</summary>"
            f'<pre style="max-height:360px;overflow:auto">{esc(pre[1])}</pre></details>'
        )
    if note:
        out.append(f'<div style="font-size:11px;color:#666">{esc(note)}</div>')
    return "".join(out) + "</div>"
