"""What a model's output says about one input: its top classes, named and scored the same everywhere.

One rule decides how an output vector is shown, for every surface (CLI, report, explorer, API): a vector
of non-negative numbers that sums to 1 (within :data:`SUM_TOLERANCE`) is a probability distribution and is
shown in percent; any other vector is a raw score (a logit, a regression value) and is shown as a number.
A per-pixel output ``(H, W, K)`` (or ``(D, H, W, K)``) with ``2 <= K <=`` :data:`MAX_PIXEL_CLASSES`
(segmentation logits or probabilities) is shown as the classes that win most pixels (``"2 (45.0% of pixels)"``); any other tensor by its shape and range.

A model with several outputs (a dict or list: ``{"cls": ..., "box": ...}``) has one prediction per head
(:func:`head_predictions`); its first declared output is the one a single line speaks of.

Example:
    >>> p = top_classes(np.array([0.1, 0.7, 0.2]), ("cat", "dog", "cow"), k=2)
    >>> p.text()
    '1 dog (70.0%), 2 cow (20.0%)'
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: How far from 1 the sum of a vector may be for it to count as probabilities.
SUM_TOLERANCE = 1e-3
#: A per-pixel output with more channels than this is a feature map (a headless backbone), not classes.
MAX_PIXEL_CLASSES = 256

Kind = Literal["probability", "score", "pixels", "none"]


@dataclass(frozen=True)
class ClassScore:
    """One class of a prediction.

    Attributes:
        index: Class id (position in the output vector).
        name: Class name, or ``None`` when the model has none.
        value: The output value (a probability in [0, 1] when the prediction's kind is ``"probability"``).
    """

    index: int
    name: str | None
    value: float

    def label(self) -> str:
        """``"967 espresso"``, or ``"967"`` when there is no name (or the name is the index itself)."""
        return f"{self.index} {self.name}" if self.name and self.name != str(self.index) else str(self.index)


@dataclass(frozen=True)
class Prediction:
    """The top classes of one model output.

    Attributes:
        kind: ``"probability"``, ``"score"`` (a vector that is not a distribution, shown raw: no softmax is
            invented for logits), ``"pixels"`` (a per-pixel class output ``(H, W, K)``: each class's value
            is the fraction of positions where it is the highest), or ``"none"`` (any other tensor).
        top: The ``k`` highest classes, best first (empty when ``kind`` is ``"none"``).
        shape: Shape of the output of this one input.
        value_range: ``(min, max)`` of the finite output values (``None`` if there are none).
    """

    kind: Kind
    top: tuple[ClassScore, ...]
    shape: tuple[int, ...]
    value_range: tuple[float, float] | None

    @property
    def best(self) -> ClassScore | None:
        """The top-1 class, or ``None``."""
        return self.top[0] if self.top else None

    def format_value(self, score: ClassScore) -> str:
        """``"85.1%"`` for a probability, ``"45.0% of pixels"`` for a per-pixel output, else ``"score 3.217"``."""
        if self.kind == "pixels":
            return f"{score.value:.1%} of pixels"
        return f"{score.value:.1%}" if self.kind == "probability" else f"score {score.value:.4g}"

    def text(self, k: int | None = None) -> str:
        """``"967 espresso (85.1%), 968 cup (5.2%)"``: the top ``k`` (default all kept) on one line; a single
        value (a regression output ``(1,)``) reads ``"output -0.233"``."""
        if self.kind == "none":
            lo_hi = (
                "no finite values"
                if self.value_range is None
                else f"range [{self.value_range[0]:.4g}, {self.value_range[1]:.4g}]"
            )
            return f"output shape {self.shape}, {lo_hi}"
        if self.kind == "score" and self.shape == (1,) and self.top:  # a regression value, not a class
            return f"output {self.top[0].value:.4g}"
        return ", ".join(f"{s.label()} ({self.format_value(s)})" for s in self.top[:k])

    def headline(self) -> str:
        """One sentence for a caption: ``"predicted 967 espresso (85.1%)"``."""
        if self.best is None:
            return self.text()
        if self.kind == "score" and self.shape == (1,):  # one number: text() says "output -0.233"
            return self.text()
        verb = "mostly" if self.kind == "pixels" else "predicted"
        return f"{verb} {self.best.label()} ({self.format_value(self.best)})"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: kind, shape, range and the top classes (index, name, value)."""
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "range": self.value_range,
            "top": [{"index": s.index, "name": s.name, "value": s.value} for s in self.top],
        }

    def __repr__(self) -> str:
        return f"Prediction({self.headline()})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{s.index}</td><td>{html.escape(s.name or '')}</td>"
            f"<td>{html.escape(self.format_value(s))}</td></tr>"
            for s in self.top
        )
        return f"<table><tr><th>class</th><th>name</th><th>{self.kind}</th></tr>{rows}</table>"


def is_distribution(rows: np.ndarray) -> np.ndarray:
    """Per row of ``(N, K)`` outputs, whether it is a probability distribution (the module's rule), bool ``(N,)``."""
    arr = np.asarray(rows, dtype=np.float64)
    if arr.shape[-1] < 2:
        return np.zeros(arr.shape[:-1], bool)
    ok = np.isfinite(arr).all(axis=-1) & (arr >= 0).all(axis=-1)
    return ok & (np.abs(arr.sum(axis=-1) - 1.0) <= SUM_TOLERANCE)


def output_kind(row: np.ndarray) -> Kind:
    """How one input's output is shown: ``probability``, ``score``, ``pixels`` or ``none`` (see the module doc)."""
    arr = np.asarray(row, dtype=np.float64)
    if arr.ndim in (3, 4) and 2 <= arr.shape[-1] <= MAX_PIXEL_CLASSES and arr.size > 0:  # (H, W, K)
        return "pixels"
    if arr.ndim != 1 or arr.size < 1:
        return "none"
    return "probability" if bool(is_distribution(arr)) else "score"


def _pixel_shares(arr: np.ndarray) -> np.ndarray:
    """``(..., K)`` -> ``(K,)``: the fraction of positions where each class is the highest (NaN ranks last)."""
    flat = np.nan_to_num(arr.reshape(-1, arr.shape[-1]), nan=-np.inf)
    winners = np.argmax(flat, axis=-1)
    return np.bincount(winners, minlength=arr.shape[-1]) / max(1, len(winners))


def top_classes(row: np.ndarray, class_names: Sequence[str] | None = None, k: int = 5) -> Prediction:
    """The top ``k`` classes of one input's model output.

    Args:
        row: The model's output for one input, e.g. ``(1000,)`` probabilities.
        class_names: Names by class id (shorter lists name only their first classes).
        k: How many classes to keep (clipped to the vector's length; must be >= 1).

    Returns:
        A :class:`Prediction`; ties are ordered by class id, NaN ranks last.
    """
    arr = np.asarray(row, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    span = (float(finite.min()), float(finite.max())) if finite.size else None
    kind = output_kind(arr)
    if kind == "none":
        return Prediction("none", (), tuple(int(d) for d in arr.shape), span)
    values = _pixel_shares(arr) if kind == "pixels" else arr
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[: max(1, int(k))]
    names = tuple(class_names or ())
    top = tuple(ClassScore(int(i), names[i] if i < len(names) else None, float(values[i])) for i in order)
    return Prediction(kind, top, tuple(int(d) for d in arr.shape), span)


def head_class_names(
    outputs: Mapping[str, np.ndarray], class_names: Sequence[str] | None
) -> dict[str, Sequence[str] | None]:
    """Which heads the class names name: every head when there is one, else the heads with exactly
    ``len(class_names)`` classes (a box-regression head next to a classifier keeps plain indices)."""
    result: dict[str, Sequence[str] | None] = {}
    for name, row in outputs.items():
        shape = np.shape(row)
        fits = len(outputs) == 1 or (
            class_names is not None and len(shape) >= 1 and shape[-1] == len(class_names)
        )
        result[name] = class_names if fits else None
    return result


def head_predictions(
    outputs: Mapping[str, np.ndarray], class_names: Sequence[str] | None = None, k: int = 5
) -> dict[str, Prediction]:
    """One input's prediction per output head of a multi-output model, in the model's declared order.

    Args:
        outputs: ``{head name: that head's output for one input}``.
        class_names: Names by class id, given to the heads :func:`head_class_names` picks.
        k: Classes kept per head.
    """
    names = head_class_names(outputs, class_names)
    return {name: top_classes(np.asarray(row), names[name], k) for name, row in outputs.items()}


__all__ = [
    "MAX_PIXEL_CLASSES",
    "SUM_TOLERANCE",
    "ClassScore",
    "Prediction",
    "head_class_names",
    "head_predictions",
    "is_distribution",
    "output_kind",
    "top_classes",
]
