"""Show a scan (:class:`convscope.scan.ScanResult`, e.g. ``load_scan(dir)``) in the report.

The section has the number of images, the model's most frequent top-1 classes over them, the layer health
table (``result.health()``: sparsity, dead, rare, saturated and near-duplicate channels, the channels to
look at first) and, per layer, the top-k receptive-field crop overview the scan drew
(``<scan>/layers/<slug>/top.png``), inlined as is. At most :data:`MAX_LAYERS` layers are drawn.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from convscope.present.report.content import Picture, anchor_id
from convscope.present.report.tables import dict_table_html, esc
from convscope.scan.result import ScanResult

MAX_LAYERS = 32


def _indices(values: Any, limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit]) + (", ..." if len(values) > limit else "")
    return f"{len(values)}" + (f" ({shown})" if values else "")


def health_table(result: ScanResult) -> str:
    """One summary row per layer of ``result.health()``."""
    rows = [
        {
            "layer": key,
            "channels": h.channels,
            "sparsity": round(float(h.sparsity), 3),
            "dead": _indices(h.dead),
            "rare": _indices(h.rare),
            "saturated": _indices(h.saturated),
            "near-duplicate pairs": len(h.duplicates),
            "look first": "; ".join(f"{c}: {why}" for c, why in list(h.worst)[:4]),
        }
        for key, h in result.health().items()
    ]
    return dict_table_html(rows)


def overview_pictures(result: ScanResult) -> list[tuple[str, Picture]]:
    """``(layer, picture)`` of the top-k overview each layer of a scan folder has (``layers/<slug>/top.png``)."""
    if result.path is None:
        return []
    out = []
    for meta in result.manifest.get("layers", [])[:MAX_LAYERS]:
        path = Path(result.path) / "layers" / str(meta["slug"]) / "top.png"
        if path.is_file():
            data = path.read_bytes()
            width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR
            out.append(
                (
                    str(meta["key"]),
                    Picture(
                        data,
                        width,
                        height,
                        f"{meta['key']}: top-k receptive-field crops per channel (from the scan)",
                    ),
                )
            )
    return out


def scan_html(result: ScanResult) -> str:
    """The scan section's HTML (every name escaped)."""
    parts = [f"<p class=meta>{esc(result.images)} images scanned.</p>"]
    if result.predictions is not None and len(result.predictions.top1):
        counts = ", ".join(f"{label}: {n}" for label, n in result.predictions.counts(5))
        parts.append(f"<p class=meta>Model's top-1 class, most frequent: {esc(counts)}.</p>")
    parts.append(f"<h3>Layer health</h3>{health_table(result)}")
    pictures = overview_pictures(result)
    if pictures:
        parts.append("<h3>Top-k examples per channel</h3>")
        for j, (layer, picture) in enumerate(pictures):
            parts.append(
                f'<div class="layer" id="{anchor_id("scan", j, layer)}"><h4>{esc(layer)}</h4>'
                f"<figure>{picture.img_tag()}<figcaption>{esc(picture.caption)}</figcaption></figure></div>"
            )
    elif result.path is None:
        parts.append("<p class=meta>An in-memory scan has no crop pictures; scan with an output folder.</p>")
    return "".join(parts)
