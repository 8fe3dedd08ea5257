"""The model's own verdict on every scanned image, from the same forward pass as the statistics.

Each image's top-1 class and its value are kept by row (``8`` bytes per image: 10 MB for ImageNet-1k),
merged exactly across batches and Ray shards, and named with the resolved model's class names, so the scan
states the same top-1 class, name and probability as ``cam``, ``report``, ``serve`` and ``predict()``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convscope.models.predictions import ClassScore, is_distribution

FILE = "predictions.npz"


class OutputAccumulator:
    """Collects the top-1 class and value of each row of the model's output ``(N, K)``.

    It has the interface of the layer accumulators (``add_batch``, ``merge``), so engines keep it next to
    them under the extractor's output key.
    """

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._top: list[np.ndarray] = []
        self._value: list[np.ndarray] = []
        self._prob: list[np.ndarray] = []

    def add_batch(self, output: np.ndarray, first: int) -> None:
        """Add the output of rows ``first .. first + len(output)``."""
        out = np.asarray(output)
        flat = out.reshape(len(out), -1).astype(np.float64, copy=False)
        top = np.argmax(np.nan_to_num(flat, nan=-np.inf), axis=1)
        self._rows.append(np.arange(first, first + len(out), dtype=np.int64))
        self._top.append(top.astype(np.int32))
        self._value.append(flat[np.arange(len(out)), top].astype(np.float32))
        self._prob.append(is_distribution(flat))

    def merge(self, other: OutputAccumulator) -> None:
        """Take ``other``'s rows (rows are disjoint across shards)."""
        self._rows += other._rows
        self._top += other._top
        self._value += other._value
        self._prob += other._prob

    def state(self) -> dict[str, np.ndarray]:
        """The rows seen so far as four arrays (see :meth:`from_state`)."""

        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        return {
            "rows": cat(self._rows, np.int64),
            "top": cat(self._top, np.int32),
            "value": cat(self._value, np.float32),
            "prob": cat(self._prob, bool),
        }

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> OutputAccumulator:
        """The accumulator :meth:`state` described (its :meth:`finish` gives the same arrays)."""
        acc = cls()
        if len(arrays["rows"]):
            acc._rows, acc._top = [np.asarray(arrays["rows"])], [np.asarray(arrays["top"])]
            acc._value, acc._prob = [np.asarray(arrays["value"])], [np.asarray(arrays["prob"])]
        return acc

    def finish(self, class_names: tuple[str, ...] | None) -> ScanPredictions:
        """The predictions ordered by row."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)
        order = np.argsort(rows, kind="stable")

        def cat(parts, dtype):
            return np.concatenate(parts)[order] if parts else np.zeros(0, dtype)

        return ScanPredictions(
            top1=cat(self._top, np.int32),
            value=cat(self._value, np.float32),
            probability=cat(self._prob, bool),
            class_names=class_names,
        )


@dataclass(frozen=True, eq=False)
class ScanPredictions:
    """Per image, the model's top-1 class.

    Attributes:
        top1: int32 ``(N,)`` the class id with the highest output.
        value: float32 ``(N,)`` its output value (a probability where ``probability`` is true).
        probability: bool ``(N,)`` whether that image's output is a probability distribution.
        class_names: The resolved model's class names, or ``None``.
    """

    top1: np.ndarray
    value: np.ndarray
    probability: np.ndarray
    class_names: tuple[str, ...] | None = None

    def label(self, index: int) -> str:
        """``"967 espresso"`` (the same words as every other view)."""
        names = self.class_names or ()
        return ClassScore(index, names[index] if 0 <= index < len(names) else None, 0.0).label()

    def text(self, row: int) -> str:
        """``"967 espresso (85.1%)"`` for one image."""
        value = float(self.value[row])
        shown = f"{value:.1%}" if bool(self.probability[row]) else f"score {value:.4g}"
        return f"{self.label(int(self.top1[row]))} ({shown})"

    def counts(self, k: int = 10) -> list[tuple[str, int]]:
        """The ``k`` most predicted classes with their image counts."""
        return [(self.label(int(c)), n) for c, n in Counter(self.top1.tolist()).most_common(k)]

    def save(self, folder: Path) -> None:
        """Write ``folder/predictions.npz``."""
        np.savez(folder / FILE, top1=self.top1, value=self.value, probability=self.probability)

    @classmethod
    def load(cls, folder: Path, class_names: tuple[str, ...] | None) -> ScanPredictions | None:
        """Read ``folder/predictions.npz`` (``None`` when the scan has none)."""
        path = folder / FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return cls(npz["top1"], npz["value"], npz["probability"], class_names)

    def __repr__(self) -> str:
        return f"ScanPredictions(images={len(self.top1)}, classes={len(set(self.top1.tolist()))})"


__all__ = ["FILE", "OutputAccumulator", "ScanPredictions"]
