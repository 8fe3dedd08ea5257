"""A channel's ablation effect, as rows of the explorer's channel panel (from ``convscope ablate`` results).

``convscope serve --ablate DIR`` loads an ablate result; the channel panel of its layer then shows, under
the channel's statistics on the current image, what removing the channel does over the ablated dataset:
the classes it hurts most (mean change of their own logit), its class selectivity and the accuracy change.
"""

from __future__ import annotations

from typing import Any


def ablation_rows(result: Any, channel: int, n: int = 3) -> list[list[str]]:
    """``[[label, text], ...]`` rows on one channel of an :class:`~convscope.diagnose.AblationResult`."""
    if not 0 <= channel < result.channels:
        return []
    sel = result.selectivity
    hurt = ", ".join(
        f"{result.class_label(k)} {result.delta_own[channel, k]:+.3f}" for k in result.top_classes(channel, n)
    )
    best = min(range(sel.shape[1]), key=lambda k: (sel[channel, k], k))
    rank = int((result.delta_own.min(axis=1) < result.delta_own[channel].min()).sum()) + 1
    how = "set to 0" if result.mode == "zero" else "set to its dataset mean"
    rows = [
        ["removed", f"{how}, over {result.images} images"],
        ["hurts most (Δ own logit)", hurt],
        ["most specific to", f"{result.class_label(best)} (sel {sel[channel, best]:+.3f})"],
        ["importance rank", f"{rank} of {result.channels} (by largest class-logit drop)"],
    ]
    acc = result.delta_accuracy
    if acc is not None:
        rows.append(["accuracy change", f"{acc[channel] * 100:+.2f} pts"])
    return rows


__all__ = ["ablation_rows"]
