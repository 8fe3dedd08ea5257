"""Show an ``ablate`` result (:class:`convscope.diagnose.AblationResult`, e.g. ``load_ablation(dir)``) in the
report.

The section states what was removed and how (layer, mode, route, images, how classes were assigned), a
table of the channels whose removal lowers each class's logit most (with their selectivity and accuracy
change), the most class-specific channels, and the per-class crop pictures the ablate folder drew
(``classes/classNNNN.png``: the listed channels' top-k receptive-field crops), inlined as is.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from convscope.diagnose.ablate_result import AblationResult
from convscope.present.report.content import Picture, anchor_id
from convscope.present.report.tables import dict_table_html, esc

#: Channels listed per class in the table.
LISTED = 3


def class_rows(result: AblationResult, n: int = LISTED) -> list[dict[str, Any]]:
    """One row per class with images: its top ``n`` channels and their effects."""
    sel = result.selectivity
    rows = []
    for k in range(result.delta_own.shape[1]):
        if result.group_count[k] == 0:
            continue
        row: dict[str, Any] = {"class": result.class_label(k), "images": int(result.group_count[k])}
        if result.base_accuracy is not None:
            row["accuracy"] = f"{result.base_accuracy[k]:.1%}"
        for j, c in enumerate(result.top_channels(k, n), start=1):
            cell = f"ch {c}: {result.delta_own[c, k]:+.3f} (sel {sel[c, k]:+.3f}"
            if result.accuracy is not None and result.base_accuracy is not None:
                cell += f", acc {(result.accuracy[c, k] - result.base_accuracy[k]) * 100:+.1f} pts"
            row[f"#{j} channel"] = cell + ")"
        rows.append(row)
    return rows


def class_pictures(result: AblationResult) -> list[tuple[int, Picture]]:
    """``(class, picture)`` of the crop pictures an ablate folder holds (``classes/classNNNN.png``)."""
    if result.path is None:
        return []
    out = []
    for k in range(result.delta_own.shape[1]):
        path = Path(result.path) / "classes" / f"class{k:04d}.png"
        if path.is_file():
            data = path.read_bytes()
            width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR
            caption = (
                f"class {result.class_label(k)}: top-k crops of the channels of {result.layer} whose removal "
                "lowers its logit most"
            )
            out.append((k, Picture(data, width, height, caption)))
    return out


def ablate_html(result: AblationResult) -> str:
    """The ablate section's HTML (every name escaped)."""
    grouped = "true class (dataset labels)" if result.labelled else "the model's top-1 class"
    mode = "set to 0" if result.mode == "zero" else "set to its mean over the dataset and all positions"
    parts = [
        f"<p class=meta>Each of the {esc(result.channels)} channels of {esc(result.layer)} removed in turn "
        f"({esc(mode)}) over {esc(result.images)} images ({esc(result.route)} route). An image's class is "
        f"its {esc(grouped)}; an effect is the mean change of that class's logit (negative = removing the "
        "channel hurts the class); sel = that change minus its mean over the other classes.</p>"
    ]
    acc = result.delta_accuracy
    if acc is not None:
        worst = [int(c) for c in acc.argsort(kind="stable")[:LISTED]]
        parts.append(
            "<p class=meta>Largest drops of overall accuracy: "
            + esc(", ".join(f"ch {c} {acc[c] * 100:+.2f} pts" for c in worst))
            + ".</p>"
        )
    specific = ", ".join(
        f"ch {c} -> {result.class_label(k)} ({result.selectivity[c, k]:+.3f})"
        for c, k in result.specific_channels(5)
    )
    parts.append(f"<p class=meta>Most class-specific channels: {esc(specific)}.</p>")
    parts.append(f"<h3>Top channels per class</h3>{dict_table_html(class_rows(result))}")
    pictures = class_pictures(result)
    if pictures:
        parts.append("<h3>Their top-k examples</h3>")
        for k, picture in pictures:
            parts.append(
                f'<div class="layer" id="{anchor_id("ablate", k, result.class_label(k))}">'
                f"<figure>{picture.img_tag()}<figcaption>{esc(picture.caption)}</figcaption></figure></div>"
            )
    return "".join(parts)


__all__ = ["ablate_html", "class_pictures", "class_rows"]
