"""The explorer's layer list: collapsible groups and the layer shown first. Pure functions over layer rows.

Rows are the explorer's layer dicts (``path``, ``class``, ``depth``, ``key``, ``viewable``, ``spatial``,
...), one per layer call, depth-first with a nested model's row before its layers. Two kinds of groups
fold the list of a real-sized model (EfficientNet-Lite0: 158 layers) into a screenful:

* ``model``: a nested sub-model; its own row is the group's header, its layers are the members;
* ``block``: consecutive layers sharing a name prefix (``block3b_expand_conv``, ``block3b_bn``, ... ->
  ``block3b``; ``conv2_block1_1_conv`` -> ``conv2``; ``block_1_expand`` -> ``block_1``); the page draws
  a header row for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Layers that only reshape or rescale the input: never the layer a page opens on.
PLUMBING = frozenset(
    {
        "InputLayer",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Rescaling",
        "Normalization",
        "Resizing",
        "CenterCrop",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomCrop",
        "RandomTranslation",
        "RandomContrast",
        "RandomBrightness",
    }
)


def block_of(name: str) -> str | None:
    """The block prefix of a layer name, or ``None`` when the name has none.

    The prefix is the first ``_``-separated word and any all-digit words right after it, provided
    something follows: ``block3b_expand_conv`` -> ``block3b``, ``block_1_expand`` -> ``block_1``,
    ``conv2_block1_1_conv`` -> ``conv2``; ``conv_0``, ``dense`` and ``_x`` have none.
    """
    words = name.split("_")
    n = 1
    while n < len(words) and words[n].isdigit():
        n += 1
    if not words[0] or n >= len(words) or not "_".join(words[n:]):
        return None
    return "_".join(words[:n])


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def _ancestors(path: str) -> list[str]:
    words = path.split("/")
    return ["/".join(words[:n]) for n in range(1, len(words))]


def _leaf(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def layer_groups(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Group the layer list into nested sub-models and runs of layers with a common block prefix.

    A block group needs at least two consecutive rows with the same prefix under the same parent (one
    layer alone is not a block); a nested model is a group whenever it has layers.

    Args:
        rows: Layer rows in display order.

    Returns:
        ``(rows, groups)``: copies of the rows with ``group`` (innermost group id or ``None``) and ``short``
        (the name shown inside its group: the leaf name without the block prefix), and the groups in
        display order as ``{"id", "kind": "model" | "block", "label", "parent", "size", "last_key"}``
        (``size`` = layers inside, at any depth; ``last_key`` = the last viewable member's activation key,
        whose output is the group's output).
    """
    containers = {path for row in rows for path in _ancestors(row["path"])}
    # Block prefix of each row, kept only where two or more consecutive siblings share it.
    prefixes = [None if row["path"] in containers else block_of(_leaf(row["path"])) for row in rows]
    blocks: list[str | None] = [None] * len(rows)
    i = 0
    while i < len(rows):
        j = i + 1
        key = (_parent(rows[i]["path"]), prefixes[i])
        while j < len(rows) and prefixes[i] is not None and (_parent(rows[j]["path"]), prefixes[j]) == key:
            j += 1
        if prefixes[i] is not None and j - i >= 2:
            parent = key[0]
            for m in range(i, j):
                blocks[m] = f"{parent}/{prefixes[i]}" if parent else f"{prefixes[i]}"
        i = j

    groups: dict[str, dict[str, Any]] = {}
    out = []
    for row, block in zip(rows, blocks):
        parent = _parent(row["path"])
        if row["path"] in containers and row["path"] not in groups:
            groups[row["path"]] = {
                "id": row["path"],
                "kind": "model",
                "label": _leaf(row["path"]),
                "parent": parent if parent in groups else None,
                "size": 0,
                "last_key": None,
            }
        if block is not None and block not in groups:
            groups[block] = {
                "id": block,
                "kind": "block",
                "label": _leaf(block),
                "parent": parent if parent in groups else None,
                "size": 0,
                "last_key": None,
            }
        group = block if block is not None else (parent if parent in groups else None)
        short = _leaf(row["path"])
        if block is not None:
            short = short[len(_leaf(block)) + 1 :]
        g = group
        while g is not None:
            groups[g]["size"] += 1
            if row.get("viewable") and row.get("key"):
                groups[g]["last_key"] = row["key"]
            g = groups[g]["parent"]
        out.append({**row, "group": group, "short": short})
    return out, list(groups.values())


def default_layer(rows: Sequence[dict[str, Any]]) -> str | None:
    """The activation key a page opens on: the first convolution with 2-D maps, else the first 2-D layer
    that does more than pad, crop, rescale or augment the input, else the first viewable layer."""
    viewable = [row for row in rows if row.get("viewable") and row.get("key")]
    for keep in (
        lambda r: r.get("spatial") and "Conv" in r["class"],
        lambda r: r.get("spatial") and r["class"] not in PLUMBING,
        lambda r: r["class"] not in PLUMBING,
        lambda r: True,
    ):
        for row in viewable:
            if keep(row):
                return str(row["key"])
    return None
