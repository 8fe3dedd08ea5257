"""Show a scan result (``convscope.scan.load_scan(dir)``) in the report: layer health and top-k crops.

A :class:`convscope.scan.ScanResult` gives a health table (``result.health()``: sparsity, dead, rare,
saturated and near-duplicate channels, the channels to look at first) and, per layer, the top-k
receptive-field crop overview the scan drew (``<scan>/layers/<slug>/top.png``), inlined as is.

Other scan-like results are read by duck typing:

* **health**: the first of the attributes (or no-argument methods) ``health``, ``layer_health``,
  ``summary``, ``to_dicts`` that exists. Accepted: rows (dicts, dataclasses or objects with
  ``to_dict()``), or a mapping ``{layer: row}``. Shown as a table, columns as found.
* **top-k crops**: the first of ``topk``, ``top_k``, ``crops``, ``examples``. Accepted: a mapping
  ``{layer: {channel: [crop, ...]}}`` or ``{layer: [[crop, ...] per channel]}``, or a sequence of
  records with ``layer``, ``channel`` and ``crops`` (or ``images``). A crop is an image array
  (``(h, w)``, ``(h, w, 1|3|4)``, uint8 or float in [0, 1]) or an object with ``image`` / ``crop``
  (and optionally ``score``).

At most :data:`MAX_LAYERS` layers, :data:`MAX_CHANNELS` channels per layer and :data:`MAX_CROPS` crops
per channel are drawn.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convscope.present.report.content import Picture, anchor_id
from convscope.present.report.tables import as_row, dict_table_html, esc

HEALTH_NAMES = ("health", "layer_health", "summary", "to_dicts")
TOPK_NAMES = ("topk", "top_k", "crops", "examples")
MAX_LAYERS, MAX_CHANNELS, MAX_CROPS, CROP_PX = 32, 16, 8, 64


def _lookup(obj: Any, names: Iterable[str]) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if callable(value):
            try:
                value = value()
            except TypeError:  # needs arguments: not the accessor we look for
                continue
        if value is not None:
            return value
    return None


def health_rows(value: Any) -> list[dict[str, Any]]:
    """Rows of the health table from any of the accepted forms (see the module docstring)."""
    if isinstance(value, Mapping):
        return [{"layer": str(k), **as_row(v)} for k, v in value.items()]
    if hasattr(value, "to_dicts"):
        return [dict(r) for r in value.to_dicts()]
    return [as_row(r) for r in value]


def _crop_image(crop: Any) -> tuple[np.ndarray, str]:
    from convscope.render.overlay import as_rgb_image
    from convscope.render.resize import resize

    score = ""
    if not isinstance(crop, np.ndarray):
        s = getattr(crop, "score", None)
        score = f"{float(s):.3g}" if isinstance(s, (int, float, np.number)) else ""
        crop = next((getattr(crop, a) for a in ("image", "crop", "array") if getattr(crop, a, None) is not None), crop)
    rgb = as_rgb_image(np.asarray(crop))
    h, w = rgb.shape[:2]
    size = (CROP_PX, max(1, round(w * CROP_PX / h)))
    return resize(rgb, size, "nearest" if h < CROP_PX else "bilinear"), score


def crop_groups(value: Any) -> list[tuple[str, list[tuple[int, list[Any]]]]]:
    """``[(layer, [(channel, crops), ...]), ...]`` from any of the accepted forms."""
    groups: dict[str, list[tuple[int, list[Any]]]] = {}
    if isinstance(value, Mapping):
        for layer, per_channel in value.items():
            items = per_channel.items() if isinstance(per_channel, Mapping) else enumerate(per_channel)
            groups[str(layer)] = [(int(c), list(crops)) for c, crops in items]
    else:
        for record in value:
            crops = getattr(record, "crops", None)
            crops = getattr(record, "images", None) if crops is None else crops
            groups.setdefault(str(record.layer), []).append((int(record.channel), list(crops or [])))
    return list(groups.items())


def strip(crops: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Crops side by side, each ``CROP_PX`` high, with 2 px white gaps; and their scores."""
    images, scores = zip(*(_crop_image(c) for c in crops[:MAX_CROPS]))
    width = sum(i.shape[1] for i in images) + 2 * (len(images) - 1)
    out = np.full((CROP_PX, width, 3), 255, np.uint8)
    x = 0
    for image in images:
        out[:, x : x + image.shape[1]] = image
        x += image.shape[1] + 2
    return out, list(scores)


def _indices(values: Any, limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit]) + (", ..." if len(values) > limit else "")
    return f"{len(values)}" + (f" ({shown})" if values else "")


def health_table(health: Any) -> str:
    """The health table: a summary row per layer for ``LayerHealth``-like values, else the rows as found."""
    items = list(health.items()) if isinstance(health, Mapping) else None
    if not items or not all(hasattr(v, "worst") and hasattr(v, "dead") for _, v in items):
        return dict_table_html(health_rows(health))
    rows = [{"layer": key, "channels": h.channels, "sparsity": round(float(h.sparsity), 3),
             "dead": _indices(h.dead), "rare": _indices(h.rare), "saturated": _indices(h.saturated),
             "near-duplicate pairs": len(h.duplicates),
             "look first": "; ".join(f"{c}: {why}" for c, why in list(h.worst)[:4])} for key, h in items]
    return dict_table_html(rows)


def overview_pictures(result: Any) -> list[tuple[str, Picture]]:
    """``(layer, picture)`` of the top-k overview each layer of a scan folder has (``layers/<slug>/top.png``)."""
    root, manifest = getattr(result, "path", None), getattr(result, "manifest", None)
    if root is None or not isinstance(manifest, Mapping):
        return []
    out = []
    for meta in manifest.get("layers", [])[:MAX_LAYERS]:
        path = Path(root) / "layers" / str(meta.get("slug", "")) / "top.png"
        if meta.get("slug") and path.is_file():
            data = path.read_bytes()
            width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR
            out.append((str(meta.get("key", meta["slug"])), Picture(data, width, height,
                        f"{meta.get('key', '')}: top-k receptive-field crops per channel (from the scan)")))
    return out


def scan_html(result: Any) -> str:
    """The scan section's HTML (escaped), or a sentence saying the result had nothing to show."""
    parts = []
    images = getattr(result, "images", None)
    if isinstance(images, int):
        parts.append(f"<p class=meta>{esc(images)} images scanned.</p>")
    health = _lookup(result, HEALTH_NAMES)
    if health is not None:
        parts.append(f"<h3>Layer health</h3>{health_table(health)}")
    pictures = overview_pictures(result)
    if pictures:
        parts.append("<h3>Top-k examples per channel</h3>")
        for j, (layer, picture) in enumerate(pictures):
            parts.append(f'<div class="layer" id="{anchor_id("scan", j, layer)}"><h4>{esc(layer)}</h4>'
                         f"<figure>{picture.img_tag()}<figcaption>{esc(picture.caption)}</figcaption></figure></div>")
    topk = None if pictures else _lookup(result, TOPK_NAMES)
    if topk is not None:
        parts.append("<h3>Top-k examples per channel</h3>")
        for j, (layer, channels) in enumerate(crop_groups(topk)[:MAX_LAYERS]):
            figures = []
            for channel, crops in channels[:MAX_CHANNELS]:
                if not crops:
                    continue
                image, scores = strip(crops)
                caption = f"{layer} channel {channel}" + (f", scores {', '.join(s for s in scores if s)}" if any(scores) else "")
                picture = Picture.from_array(image, caption)
                figures.append(f"<figure>{picture.img_tag(css_class='pixel')}<figcaption>{esc(caption)}</figcaption></figure>")
            more = f"<p class=meta>{len(channels) - MAX_CHANNELS} more channels not shown.</p>" if len(channels) > MAX_CHANNELS else ""
            parts.append(f'<div class="layer" id="{anchor_id("scan", j, layer)}"><h4>{esc(layer)}</h4>'
                         f'<div class="row">{"".join(figures)}</div>{more}</div>')
    if not parts:
        return f"<p>The scan result ({esc(type(result).__name__)}) has no layer health or top-k examples to show.</p>"
    return "".join(parts)
