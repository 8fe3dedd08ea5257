"""HTML tables shared by the report and the notebook display.

Every value that came from a model, a file name or the user goes through :func:`esc` (``html.escape``
with quotes), so a layer called ``<img src=x onerror=alert(1)>`` shows up as text, never as markup.
Nothing here imports Keras.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from convscope.models.inspect import format_axes

LAYER_COLUMNS: tuple[str, ...] = (
    "layer",
    "class",
    "output shape",
    "params",
    "kernel/stride/dil",
    "pad",
    "rf",
    "jump",
    "start",
)


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and quoted attribute values."""
    return html.escape(str(value), quote=True)


def fmt_value(value: Any) -> str:
    """A short text form of a table cell: ints with thousands separators, floats to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join("None" if v is None else fmt_value(v).replace(",", "") for v in value) + ")"
    return str(value)


def fmt_axes(values: Sequence[Any] | None) -> str:
    """``[3, 3]`` -> ``3x3``; ``None`` -> ``-`` (the one formatter ``convscope inspect`` uses too)."""
    return format_axes(values)


def _geometry(row: Mapping[str, Any]) -> str:
    kernel = row.get("kernel")
    if kernel is None:
        return "-"
    dilation = row.get("dilation") or [1] * len(kernel)
    return "/".join(fmt_axes(v) for v in (kernel, row.get("strides"), dilation))


def layer_rows(info: Any) -> list[dict[str, Any]]:
    """The layer table rows of a :class:`~convscope.models.inspect.ModelInfo` (or already a list of dicts)."""
    if hasattr(info, "to_dicts"):
        return list(info.to_dicts())
    return [dict(r) for r in info]


def layer_table_html(
    info: Any, *, links: Mapping[str, str] | None = None, css_class: str = "cs-table"
) -> str:
    """The layer table (as ``convscope inspect`` prints it) as an HTML ``<table>``.

    Args:
        info: A ``ModelInfo`` or its ``to_dicts()`` rows.
        links: ``{layer path: anchor id}``; those rows link to the anchor (e.g. the layer's feature maps).
        css_class: Class of the ``<table>`` element.

    Returns:
        HTML text; every name is escaped.
    """
    links = links or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in LAYER_COLUMNS)
    body = []
    for row in layer_rows(info):
        path = str(row.get("path", ""))
        label = path.rsplit("/", 1)[-1] + (f" (call {int(row['call']) + 1})" if row.get("call") else "")
        indent = int(row.get("depth") or 0)
        name = esc(label)
        anchor = links.get(path)
        if anchor is not None:
            name = f'<a href="#{esc(anchor)}">{name}</a>'
        mark = "" if row.get("rf_exact", True) or row.get("rf_size") is None else "~"
        cells = [
            f'<td class="name" style="padding-left:{0.4 + 1.2 * indent:.1f}em" title="{esc(path)}">{name}</td>',
            f"<td>{esc(row.get('class', ''))}</td>",
            f"<td>{esc(fmt_value(row.get('output_shape')))}</td>",
            f'<td class="num">{esc(fmt_value(row.get("params", 0)))}</td>',
            f"<td>{esc(_geometry(row))}</td>",
            f"<td>{esc(row.get('padding') or '-')}</td>",
            f"<td>{esc(fmt_axes(row.get('rf_size')) + mark)}</td>",
            f"<td>{esc(fmt_axes(row.get('rf_jump')))}</td>",
            f"<td>{esc(fmt_axes(row.get('rf_start')))}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def info_summary(info: Any) -> str:
    """One line about a ``ModelInfo``: name, kind, input shape, parameters (plain text, not escaped)."""
    return (
        f"{info.name} ({info.kind}), input {fmt_value(info.input_shape)}, "
        f"{info.total_params:,} parameters ({info.trainable_params:,} trainable)"
    )


def info_html(info: Any) -> str:
    """A ``ModelInfo`` as a self-contained HTML fragment (summary line, notes and layer table)."""
    notes = "".join(f"<p><em>{esc(n)}</em></p>" for n in getattr(info, "notes", ()))
    legend = (
        "<p><small>kernel/stride/dil per spatial axis; rf = receptive field in input pixels "
        "(~ = estimate, - = not spatial or the whole input); jump = input pixels between "
        "neighbouring positions; start = centre of position 0's field.</small></p>"
    )
    return (
        f'<div class="convscope-info"><p><strong>{esc(info_summary(info))}</strong></p>{notes}'
        f"{layer_table_html(info)}{legend}</div>"
    )


def as_row(item: Any) -> dict[str, Any]:
    """A dict from a mapping, a dataclass or an object with ``to_dict()``."""
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "to_dict"):
        return dict(item.to_dict())
    if is_dataclass(item) and not isinstance(item, type):
        return asdict(item)
    return {"value": item}


def dict_table_html(
    rows: Iterable[Any],
    columns: Sequence[str] | None = None,
    *,
    css_class: str = "cs-table",
    max_rows: int = 500,
) -> str:
    """Rows of dicts (or dataclasses / objects with ``to_dict``) as an escaped HTML table.

    Args:
        rows: The rows; the columns are the union of their keys in first-seen order unless given.
        columns: Which keys to show, in order.
        css_class: Class of the ``<table>``.
        max_rows: Rows beyond this are left out (a last row says how many).
    """
    items = [as_row(r) for r in rows]
    if columns is None:
        columns = list(dict.fromkeys(k for r in items for k in r))
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for r in items[:max_rows]:
        cells = []
        for c in columns:
            value = r.get(c)
            num = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(f"<td{' class=num' if num else ''}>{esc(fmt_value(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if len(items) > max_rows:
        body.append(
            f'<tr><td colspan="{len(columns)}">... {len(items) - max_rows} more rows not shown</td></tr>'
        )
    return (
        f'<table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
