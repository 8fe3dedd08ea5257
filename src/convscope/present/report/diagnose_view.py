"""Show the diagnose results in the report: a ``compare`` folder (dataset shift) and a ``similarity`` folder (CKA).

* Dataset shift: the two datasets, a per-layer summary table (median and max shift, mean |d|), and per
  layer (at most :data:`MAX_LAYERS`) its most shifted channels as a table, the histogram picture and the
  top images of those channels in A and in B, as the compare folder drew them.
* Representation similarity: the CKA heatmap, the matrix as a table, and the same-layer diagonal when
  both models have the same layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convscope.diagnose.compare_result import CompareResult, load_compare
from convscope.diagnose.similarity_result import SimilarityResult, load_similarity
from convscope.present.report.content import Picture, Section, anchor_id
from convscope.present.report.tables import dict_table_html, esc

MAX_LAYERS = 16
MAX_ROWS = 8


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _file_picture(path: Path, caption: str) -> Picture | None:
    if not path.is_file():
        return None
    import struct

    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    return Picture(data, int(width), int(height), caption)


def _figure(picture: Picture | None) -> str:
    if picture is None:
        return ""
    return f"<figure>{picture.img_tag()}<figcaption>{esc(picture.caption)}</figcaption></figure>"


def compare_html(result: CompareResult) -> str:
    """The dataset-shift section's HTML (every name escaped)."""
    a, b = result.names()
    d = result.manifest["datasets"]
    summary = result.summary(MAX_ROWS)
    parts = [
        f"<p class=meta>A = {esc(a)} ({esc(d['a']['size'])} images), B = {esc(b)} ({esc(d['b']['size'])} "
        "images). Per channel: <i>shift</i> = Wasserstein-1 distance between the histograms of the "
        "per-image spatial max in A and B, divided by their pooled standard deviation; <i>d</i> = Cohen's d "
        "of the spatial max (B - A).</p>",
        dict_table_html(
            [
                {
                    "layer": s["key"],
                    "channels": s["channels"],
                    "median shift": _f(s["median_shift"]),
                    "max shift": _f(s["max_shift"]),
                    "mean |d|": _f(s["mean_abs_effect"]),
                }
                for s in summary["layers"]
            ]
        ),
    ]
    for j, s in enumerate(summary["layers"][:MAX_LAYERS]):
        rows = [
            {
                "channel": c["channel"],
                "shift": _f(c["shift"]),
                "d": _f(c["effect"]),
                "W1": _f(c["w1"]),
                "spatial max A": _f(c["spatial_max_mean_a"]),
                "spatial max B": _f(c["spatial_max_mean_b"]),
                "top images A": ", ".join(map(str, c["top_a"][:4])),
                "top images B": ", ".join(map(str, c["top_b"][:4])),
            }
            for c in s["top"]
        ]
        parts.append(
            f'<div class="layer" id="{anchor_id("compare", j, s["key"])}"><h4>{esc(s["key"])}</h4>'
            f"{dict_table_html(rows)}"
        )
        if result.path is not None:
            folder = Path(result.path) / "layers"
            slug = next(m["slug"] for m in result.manifest["layers"] if m["key"] == s["key"])
            for name, what in (
                ("shift", "spatial-max histograms (A blue, B orange)"),
                ("top_a", f"top images in A ({a})"),
                ("top_b", f"top images in B ({b})"),
            ):
                caption = f"{s['key']}: {what} of the most shifted channels"
                parts.append(_figure(_file_picture(folder / str(slug) / f"{name}.png", caption)))
        parts.append("</div>")
    return "".join(parts)


def similarity_html(result: SimilarityResult) -> str:
    """The representation-similarity section's HTML."""
    a, b = result.names
    matrix = result.matrix
    rows = [
        {"layer": r, **{f"{j}: {c}": _f(float(v)) for j, (c, v) in enumerate(zip(result.cols, row))}}
        for r, row in zip(result.rows, matrix)
    ]
    parts = [
        f"<p class=meta>Linear CKA of every layer of {esc(a)} (rows) with every layer of {esc(b)} (columns) "
        f"over {esc(result.sums.examples)} images, the unbiased HSIC averaged over {esc(result.sums.batches)} "
        "minibatches (1 = the same representation up to rotation and scale).</p>",
        _figure(Picture.from_array(result.picture(), "linear CKA heatmap")),
        dict_table_html(rows),
    ]
    diagonal = result.diagonal()
    if diagonal is not None and a != b:
        parts.append("<h4>Same layer, the two models</h4>")
        parts.append(dict_table_html([{"layer": k, "CKA": _f(v)} for k, v in diagonal.items()]))
    return "".join(parts)


def diagnose_sections(compare_dir: Any = None, similarity_dir: Any = None) -> list[Section]:
    """The report sections of the given folders (each read with its loader; errors propagate)."""
    sections = []
    if compare_dir is not None:
        html = compare_html(load_compare(compare_dir))
        sections.append(
            Section(anchor="compare", title="Dataset shift: channels that respond differently", html=html)
        )
    if similarity_dir is not None:
        html = similarity_html(load_similarity(similarity_dir))
        sections.append(
            Section(anchor="similarity", title="Representation similarity (linear CKA)", html=html)
        )
    return sections
