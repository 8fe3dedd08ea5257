"""Exactly mergeable sums of ablation effects, batch by batch (float64; memory independent of the dataset).

Images are grouped by class: their true class when the dataset has labels the model's classes name, else
the model's own top-1 class on the unchanged image. For every removed channel ``c`` and class ``k`` the
accumulator keeps the sum over images of the change of every logit, the sum over the images of group
``k`` of the change of logit ``k`` (the group's own class), and counts of correct and changed top-1
decisions, so effects over any split of the dataset add up to the effects over the whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def label_ids(
    labels: Sequence[str] | None, class_names: Sequence[str] | None, classes: int
) -> np.ndarray | None:
    """Class id of each dataset label (``-1`` when no class has that name), or ``None`` if none matches.

    A label names a class by its class name (``"espresso"``, ``"7"``) or by its id (``"967"``).
    """
    if labels is None:
        return None
    names = {str(n): i for i, n in enumerate(class_names or ())}
    ids = {}
    for text in dict.fromkeys(labels):
        if text in names:
            ids[text] = names[text]
        elif text.strip().lstrip("-").isdigit() and 0 <= int(text) < classes:
            ids[text] = int(text)
        else:
            ids[text] = -1
    out = np.fromiter((ids[t] for t in labels), np.int64, len(labels))
    return out if (out >= 0).any() else None


class AblationAccumulator:
    """Sums of the effects of removing each of ``channels`` channels on ``classes`` class logits.

    Args:
        channels: ``C``, the channels of the ablated layer.
        classes: ``K``, the class logits.
        labelled: Whether images come with true classes (then groups are true classes and accuracy is kept).
    """

    def __init__(self, channels: int, classes: int, labelled: bool) -> None:
        self.channels, self.classes, self.labelled = channels, classes, labelled
        self.images = 0
        self.delta = np.zeros((channels, classes))  # sum over images of (ablated - base) logits
        self.count = np.zeros(classes, np.int64)  # images per group
        self.own = np.zeros((channels, classes))  # sum over a group's images of its own logit's change
        self.correct_base = np.zeros(classes, np.int64)
        self.correct = np.zeros((channels, classes), np.int64)
        self.changed = np.zeros((channels, classes), np.int64)  # top-1 differs from the unchanged image's

    def groups(self, base: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
        """Each image's group: its true class (``-1`` unknown) with labels, else its top-1 class."""
        return truth if truth is not None else np.argmax(base, axis=1)

    def add_images(self, base: np.ndarray, truth: np.ndarray | None) -> None:
        """Count a batch's images (once per batch, before its channels)."""
        groups = self.groups(base, truth)
        known = groups >= 0
        self.images += len(base)
        self.count += np.bincount(groups[known], minlength=self.classes)
        if truth is not None:
            hits = known & (np.argmax(base, axis=1) == truth)
            self.correct_base += np.bincount(groups[hits], minlength=self.classes)

    def add_channels(
        self, base: np.ndarray, ablated: np.ndarray, channels: np.ndarray, truth: np.ndarray | None
    ) -> None:
        """Add the logits of a batch with each of ``channels`` removed.

        Args:
            base: float ``(b, K)`` logits of the unchanged images.
            ablated: float ``(n, b, K)`` logits with ``channels[j]`` removed in row ``j``.
            channels: int ``(n,)``.
            truth: int ``(b,)`` true classes (``-1`` unknown), or ``None``.
        """
        change = ablated.astype(np.float64) - base.astype(np.float64)[None]
        self.delta[channels] += change.sum(axis=1)
        groups = self.groups(base, truth)
        known = groups >= 0
        onehot = np.zeros((len(base), self.classes))
        onehot[np.flatnonzero(known), groups[known]] = 1.0
        own = np.take_along_axis(change, np.where(known, groups, 0)[None, :, None], axis=2)[..., 0]
        self.own[channels] += own @ onehot
        top = np.argmax(ablated, axis=2)  # (n, b)
        self.changed[channels] += ((top != np.argmax(base, axis=1)[None]) @ onehot).astype(np.int64)
        if truth is not None:
            self.correct[channels] += ((top == truth[None]) @ onehot).astype(np.int64)

    def merge(self, other: AblationAccumulator) -> None:
        """Add another accumulator's sums (disjoint images)."""
        self.images += other.images
        for name in ("delta", "count", "own", "correct_base", "correct", "changed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def arrays(self) -> dict[str, np.ndarray]:
        """The effects as means and fractions (NaN for a class without images).

        Returns:
            ``delta_logit`` ``(C, K)`` mean change of each logit over all images; ``delta_own`` ``(C, K)``
            mean change of logit ``k`` over group ``k``; ``changed`` ``(C, K)`` fraction of group ``k``
            whose top-1 changes; ``group_count`` ``(K,)``; with labels ``base_accuracy`` ``(K,)`` and
            ``accuracy`` ``(C, K)`` per true class.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(self.count > 0, self.count, np.nan)
            out = {
                "delta_logit": self.delta / max(self.images, 1),
                "delta_own": self.own / per,
                "changed": self.changed / per,
                "group_count": self.count.copy(),
            }
            if self.labelled:
                out["base_accuracy"] = self.correct_base / per
                out["accuracy"] = self.correct / per
                out["correct_base"] = self.correct_base.copy()
                out["correct"] = self.correct.copy()
        return out


__all__ = ["AblationAccumulator", "label_ids"]
