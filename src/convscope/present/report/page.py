"""The report's HTML: one file, inline CSS, pictures as ``data:`` URIs, no script, no external request.

A Content-Security-Policy ``<meta>`` (``default-src 'none'; img-src data:; style-src 'unsafe-inline'``)
makes the browser refuse any script or outside fetch even if some markup slipped through; every text
from the model or the user is escaped anyway (:func:`~convscope.present.report.tables.esc`).
"""

from __future__ import annotations

from convscope.models.keys import ActivationKey
from convscope.present.report.content import NORM_TEXT, InputEntry, LayerEntry, ReportContent
from convscope.present.report.tables import esc, info_summary, layer_table_html

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{margin-left:17em;padding:1em 2em 4em;max-width:1400px}
nav{position:fixed;top:0;left:0;bottom:0;width:15.5em;overflow-y:auto;padding:1em;background:#f0f0f3;
 border-right:1px solid #ddd;font-size:13px}
nav ul{list-style:none;padding-left:.8em;margin:.2em 0}nav>ul{padding-left:0}
nav a{color:#1a4d8f;text-decoration:none;word-break:break-all}nav a:hover{text-decoration:underline}
h1{font-size:1.5em;word-break:break-all}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{margin-bottom:.3em;word-break:break-all}
section,div.layer,div.input{scroll-margin-top:.5em}
.facts td{padding:.1em 1em .1em 0;vertical-align:top}.facts td:first-child{color:#666}
.notes li{color:#5a4500}
table.cs-table{border-collapse:collapse;font-size:12.5px;margin:.5em 0}
table.cs-table th,table.cs-table td{border:1px solid #ddd;padding:.15em .5em;text-align:left}
table.cs-table th{background:#eee}table.cs-table td.num{text-align:right}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:.4em;max-width:100%}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555;max-width:40em;word-break:break-word}
img.pixel{image-rendering:pixelated}
.meta{color:#555}.pred{font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:1em}.cards>div.input{background:#fff;border:1px solid #ddd;padding:0 .8em .8em}
.cards h3{font-size:1.05em}.cards p{margin:.2em 0}
"""


def _toc(content: ReportContent) -> str:
    items = ['<li><a href="#model">Model</a></li>']
    inputs = "".join(f'<li><a href="#{e.anchor}">{esc(e.name)}</a></li>' for e in content.inputs)
    items.append(f'<li><a href="#inputs">Inputs and predictions</a><ul>{inputs}</ul></li>')
    layers = "".join(f'<li><a href="#{e.anchor}">{esc(e.key)}</a></li>' for e in content.layers)
    items.append(f'<li><a href="#maps">Feature maps</a><ul>{layers}</ul></li>')
    items += [f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in content.sections]
    return f'<nav aria-label="contents"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def _header(content: ReportContent) -> str:
    facts = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in content.facts)
    notes = "".join(f"<li>{esc(n)}</li>" for n in content.notes)
    notes_html = f'<ul class="notes">{notes}</ul>' if notes else ""
    return f'<h1>{esc(content.title)}</h1><table class="facts">{facts}</table>{notes_html}'


def _model(content: ReportContent) -> str:
    if content.info is None:
        return '<section id="model"><h2>Model</h2><p>The layer table could not be computed (see notes).</p></section>'
    links: dict[str, str] = {}
    for entry in content.layers:
        links.setdefault(ActivationKey.parse(entry.key).path, entry.anchor)
    info = content.info
    notes = "".join(f"<p><em>{esc(n)}</em></p>" for n in info.notes)
    return (
        f'<section id="model"><h2>Model</h2><p>{esc(info_summary(info))}</p>{notes}'
        f"{layer_table_html(info, links=links)}"
        "<p class=meta><small>kernel/stride/dil per spatial axis; rf = receptive field in input pixels "
        "(~ = estimate; - = not spatial, or every value sees the whole input); jump = input pixels between "
        "neighbouring output positions; start = centre of position 0's field. Linked rows have feature "
        "maps below.</small></p></section>"
    )


def _input_block(entry: InputEntry) -> str:
    pics = []
    if entry.picture is not None:
        pics.append(
            f"<figure>{entry.picture.img_tag(min_width=112, css_class='pixel')}"
            f"<figcaption>input as the model sees it</figcaption></figure>"
        )
    if entry.cam is not None:
        pics.append(
            f"<figure>{entry.cam.img_tag()}<figcaption>{esc(entry.cam.caption)}</figcaption></figure>"
        )
    top = ""
    if entry.top:
        cells = "".join(
            f"<tr><td>{esc(label)}</td><td class=num>{score:.4g}</td></tr>" for label, score in entry.top
        )
        top = f'<table class="cs-table"><thead><tr><th>class</th><th>score</th></tr></thead><tbody>{cells}</tbody></table>'
    return (
        f'<div class="input" id="{entry.anchor}"><h3>{esc(entry.name)}</h3>'
        f'<p class=meta>{esc(entry.source)}</p><p class="pred">{esc(entry.prediction)}</p>'
        f'<div class="row">{"".join(pics)}{top}</div></div>'
    )


def _layer_block(entry: LayerEntry, inputs: tuple[InputEntry, ...]) -> str:
    shown = (
        f"all {entry.n_channels} channels"
        if entry.n_shown >= entry.n_channels
        else f"{entry.n_shown} of {entry.n_channels} channels shown (capped)"
    )
    if entry.factor > 1:
        shown += f"; maps drawn at 1/{entry.factor} size (means of {entry.factor}x{entry.factor} blocks)"
    figures = []
    for grid, item in zip(entry.grids, inputs):
        figures.append(
            f'<figure>{grid.img_tag()}<figcaption><a href="#{item.anchor}">{esc(item.name)}</a>: '
            f"{esc(grid.caption)}</figcaption></figure>"
        )
    return (
        f'<div class="layer" id="{entry.anchor}"><h3>{esc(entry.key)}</h3>'
        f"<p class=meta>{esc(entry.class_name)}, activation shape {esc(entry.shape)}, {esc(shown)}</p>"
        f'<div class="row">{"".join(figures)}</div></div>'
    )


def render_page(content: ReportContent) -> str:
    """The whole HTML document for ``content``."""
    norm_line = f"Normalization: {content.norm} — {NORM_TEXT.get(content.norm, '')}; colormap {content.cmap}."
    inputs = "".join(_input_block(e) for e in content.inputs)
    layers = "".join(_layer_block(e, content.inputs) for e in content.layers)
    sections = "".join(
        f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{s.html}</section>' for s in content.sections
    )
    body = (
        f"{_header(content)}{_model(content)}"
        f'<section id="inputs"><h2>Inputs and predictions</h2><div class="cards">{inputs}</div></section>'
        f'<section id="maps"><h2>Feature maps</h2><p>{esc(norm_line)} Each grid states its layer, shape, '
        f"normalization, colormap, channels, inactive channels (zero on that image) and value range.</p>{layers}</section>{sections}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="convscope">'
        f"<title>{esc(content.title)}</title><style>{CSS}</style></head>"
        f"<body>{_toc(content)}<main>{body}</main></body></html>\n"
    )
