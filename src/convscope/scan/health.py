"""Layer health from scan statistics: dead, saturated, rarely active and near-duplicate channels.

All of it is computed from the typed :class:`~convscope.scan.layerstats.LayerStats`, so thresholds can be
changed after the scan (``result.health(duplicate=0.99)``) without scanning again. The words mean one
thing everywhere in convscope:

* dead: zero at every position of every scanned image (``max == 0`` and ``mean == 0``). A channel that is
  zero on one image is *inactive* on that image, which says nothing about the dataset;
* saturated (tanh / sigmoid-like layers only): at least ``saturated`` of its values lie within 1% of the
  activation's range from a bound;
* rare: positive on fewer than ``rare`` of the positions (but not dead);
* near-duplicate: two channels whose maps coincide pixel by pixel: their Pearson correlation ``r`` over all
  positions of all scanned images (``LayerStats.corr``) is ``>= duplicate`` (:data:`DUPLICATE`). A copy
  of a channel, or a scaled copy, has ``r = 1``; one of the pair is likely redundant.

This module imports :mod:`~convscope.scan.layerstats` and :mod:`~convscope.scan.stats`, never the result
(which imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from convscope.scan import stats as stats_module
from convscope.scan.layerstats import CORR_MEANING, LayerStats

#: Pixelwise correlation from which two channels are reported as near-duplicates.
DUPLICATE = 0.9
SATURATED = 0.9
RARE = 0.01
MAX_PAIRS = 50


@dataclass(frozen=True)
class LayerHealth:
    """Health of one layer.

    Attributes:
        key: Activation key.
        channels: Number of channels.
        sparsity: Fraction of values that are not positive.
        dead: Channels that are zero at every position of every scanned image.
        saturated: Channels near a bound most of the time (bounded activations only).
        rare: Channels positive on fewer than ``rare`` of positions (dead excluded).
        duplicates: ``(a, b, r)`` near-duplicate channel pairs: pixelwise correlation ``r >= duplicate``
            over all positions of the scanned images, strongest first (at most 50).
        worst: ``(channel, reason)`` for the channels to look at first, worst first.
        correlated: Whether the correlation was measured (``False`` for a layer too wide for it: then
            ``duplicates`` is empty because nothing was compared).
    """

    key: str
    channels: int
    sparsity: float
    dead: tuple[int, ...]
    saturated: tuple[int, ...]
    rare: tuple[int, ...]
    duplicates: tuple[tuple[int, int, float], ...]
    worst: tuple[tuple[int, str], ...]
    correlated: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        data = asdict(self)
        data["duplicates"] = [[a, b, round(r, 4)] for a, b, r in self.duplicates]
        data["worst"] = [{"channel": c, "reason": why} for c, why in self.worst]
        data["sparsity"] = round(self.sparsity, 4)
        return data


def _pairs(corr: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    upper = np.triu(np.nan_to_num(corr, nan=-2.0), k=1)
    a, b = np.nonzero(upper >= threshold)
    pairs = sorted(
        ((int(i), int(j), float(corr[i, j])) for i, j in zip(a, b)), key=lambda p: (-p[2], p[0], p[1])
    )
    return pairs[:MAX_PAIRS]


def layer_health(
    stats: LayerStats, *, duplicate: float = DUPLICATE, saturated: float = SATURATED, rare: float = RARE
) -> LayerHealth:
    """Judge one layer's channels (see the module docstring for the rules)."""
    pos = np.nan_to_num(np.asarray(stats.frac_positive), nan=0.0)
    zero = (np.asarray(stats.max) == 0) & (np.asarray(stats.mean) == 0)  # all values <= 0, averaging 0: all 0
    dead = [int(c) for c in np.flatnonzero(zero)]
    rare_list = [int(c) for c in np.argsort(pos, kind="stable") if 0 < pos[c] < rare and not zero[c]]
    sat: list[int] = []
    if stats.frac_saturated is not None:
        frac = np.nan_to_num(np.asarray(stats.frac_saturated), nan=0.0)
        sat = [int(c) for c in np.argsort(-frac, kind="stable") if frac[c] >= saturated]
    pairs = _pairs(np.asarray(stats.corr), duplicate) if stats.corr is not None else []
    worst: list[tuple[int, str]] = []
    seen: set[int] = set()

    def add(channel: int, reason: str) -> None:
        if channel not in seen:
            seen.add(channel)
            worst.append((channel, reason))

    for c in dead:
        add(c, f"dead: zero on all {stats.images} scanned images")
    for c in sat:
        frac_c = float(stats.frac_saturated[c])  # type: ignore[index]
        add(c, f"saturated: {frac_c:.0%} of values near the bounds of {stats.activation}")
    for a, b, r in pairs:
        add(b, f"near-duplicate of channel {a} (pixelwise r={r:.3f})")
    for c in rare_list:
        add(c, f"rarely active: positive on {pos[c]:.2%} of positions")
    return LayerHealth(
        stats.key,
        stats.channels,
        stats.sparsity,
        tuple(dead),
        tuple(sat),
        tuple(rare_list),
        tuple(pairs),
        tuple(worst),
        stats.corr is not None,
    )


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def summary_dict(manifest: Mapping[str, Any], layers: Mapping[str, LayerStats]) -> dict[str, Any]:
    """JSON summary of a scan: per layer, its health and the most active channels with their top images.

    Args:
        manifest: The scan's manifest (model, dataset, options).
        layers: ``{key: LayerStats}`` in model order.
    """
    images = int(manifest.get("dataset", {}).get("size", 0))
    out_layers = []
    for key, stats in layers.items():
        health = layer_health(stats)
        order = np.argsort(-np.nan_to_num(np.asarray(stats.mean_spatial_max), nan=-np.inf), kind="stable")[:5]
        out_layers.append(
            {
                "key": key,
                "shape": list(stats.shape),
                "activation": stats.activation,
                "mean": round(float(np.nanmean(stats.mean)), 6),
                "max": float(np.nanmax(stats.max)),
                **health.to_dict(),
                "most_active": [
                    {
                        "channel": int(c),
                        "mean_spatial_max": round(float(stats.mean_spatial_max[c]), 6),
                        "top_images": [int(i) for i in stats.top_index[c, :5]],
                        **(
                            {"top_labels": [str(v) for v in stats.top_label[c, :5]]}
                            if stats.top_label is not None
                            else {}
                        ),
                    }
                    for c in order
                ],
            }
        )
    return {
        "model": manifest.get("model", {}),
        "images": images,
        "words": words(images),
        "layers": out_layers,
    }


def words(images: int) -> dict[str, str]:
    """What the summaries' words and numbers mean (written into ``summary.json``)."""
    return {
        "dead": f"zero at every position of all {images} scanned images",
        "near_duplicate": f"a channel pair with r >= {DUPLICATE}",
        "r": CORR_MEANING.format(images=images),
        "rare": f"positive on fewer than {RARE:.0%} of all positions",
    }


def summary_text(manifest: Mapping[str, Any], layers: Mapping[str, LayerStats], max_worst: int = 6) -> str:
    """A short plain-text report naming the worst channels of every layer (see :func:`summary_dict`)."""
    model = manifest.get("model", {})
    options = manifest.get("options", {})
    images = int(manifest.get("dataset", {}).get("size", 0))
    head = (
        f"convscope scan of {model.get('name', '?')} (sha256 {str(model.get('sha256', ''))[:12]}) over "
        f"{images} images of {manifest.get('dataset', {}).get('source', '?')}, "
        f"top-{options.get('top_k', '?')} per channel"
    )
    lines = [
        head,
        f"dead = {words(images)['dead']}; near-duplicate = r >= {DUPLICATE}, "
        f"r = {CORR_MEANING.format(images=images)}",
    ]
    for key, stats in layers.items():
        h = layer_health(stats)
        word = "patch" if stats.tokens is not None else "rf"  # a token's field is its patch's, and beyond
        rf = "" if stats.rf_size is None else f"  {word} {'x'.join(_fmt(v) for v in stats.rf_size)}"
        if stats.tokens is not None:
            rf += f"  [{stats.tokens}]"
        sat = f"  saturated {len(h.saturated)}" if stats.frac_saturated is not None else ""
        dup = (
            f"near-duplicate pairs {len(h.duplicates)}"
            if h.correlated
            else f"near-duplicates not measured ({stats.channels} channels > {stats_module.MAX_GRAM_CHANNELS})"
        )
        lines.append(
            f"{key} {tuple(stats.shape)} {stats.activation or 'linear'}{rf}: sparsity {h.sparsity:.1%}  "
            f"dead {len(h.dead)}/{stats.channels}{sat}  rare {len(h.rare)}  {dup}"
        )
        for channel, reason in h.worst[:max_worst]:
            lines.append(f"  ch {channel}: {reason}")
        if len(h.worst) > max_worst:
            lines.append(f"  ... {len(h.worst) - max_worst} more in summary.json")
        best = int(np.nanargmax(stats.mean_spatial_max)) if np.isfinite(stats.mean_spatial_max).any() else 0
        label = ""
        if stats.top_label is not None:
            values, counts = np.unique(np.asarray(stats.top_label[best]), return_counts=True)
            label = f"; its top images are mostly label {values[np.argmax(counts)]} ({counts.max()}/{len(stats.top_label[best])})"
        lines.append(
            f"  most active: ch {best} (mean spatial max {_fmt(float(stats.mean_spatial_max[best]))}, "
            f"max {_fmt(float(stats.max[best]))}){label}"
        )
    return "\n".join(lines) + "\n"
