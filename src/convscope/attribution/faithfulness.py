"""What :func:`~convscope.attribution.evaluate.evaluate` returns: per-method faithfulness scores and the
:class:`Evaluation` of several methods beside the random-map baseline, with its summary table and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.errors import OptionError
from convscope.render.display import few, one_line

#: The name of the random-map baseline row.
RANDOM = "random"
#: The summary metrics: ``(id, label, "lower" | "higher" is better)``, in table order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("deletion_auc", "deletion AUC", "lower"),
    ("insertion_auc", "insertion AUC", "higher"),
    ("road_morf", "ROAD MoRF", "lower"),
    ("road_lerf", "ROAD LeRF", "higher"),
    ("average_drop", "avg drop %", "lower"),
    ("increase", "increase %", "higher"),
)
FORMAT = "convscope-evaluation/1"


def _frozen(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.setflags(write=False)


@dataclass(frozen=True, eq=False)
class MethodScores:
    """Faithfulness of one method's maps, per image (``N`` images, ``S`` steps, ``F`` ROAD fractions).

    Attributes:
        method: The method's name (``"random"`` for the baseline row).
        deletion: ``(N, S + 1)`` score after removing the first ``k / S`` of the pixels, ``k = 0..S``.
        insertion: ``(N, S + 1)`` score after inserting the first ``k / S`` of the pixels into the
            insertion baseline.
        deletion_auc: ``(N,)`` trapezoid area under ``deletion`` over ``x`` in [0, 1] (lower is better).
        insertion_auc: ``(N,)`` the same for ``insertion`` (higher is better).
        road_morf: ``(N, F)`` score with the most relevant fraction of pixels removed and imputed.
        road_lerf: ``(N, F)`` score with the least relevant fraction removed and imputed.
        explanation_scores: ``(N,)`` score ``O`` of the explanation map ``E = b + M * (x - b)``.
        drop: ``(N,)`` ``max(0, Y - O) / Y * 100`` (NaN where ``Y <= 0``).
        increase: ``(N,)`` bool, ``O > Y``.
    """

    method: str
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    road_morf: np.ndarray
    road_lerf: np.ndarray
    explanation_scores: np.ndarray
    drop: np.ndarray
    increase: np.ndarray

    def __post_init__(self) -> None:
        _frozen(
            self.deletion,
            self.insertion,
            self.deletion_auc,
            self.insertion_auc,
            self.road_morf,
            self.road_lerf,
            self.explanation_scores,
            self.drop,
            self.increase,
        )

    @property
    def average_drop(self) -> float:
        """Average Drop in percent (mean of :attr:`drop` over images with a positive score)."""
        return _nanmean(self.drop)

    @property
    def increase_in_confidence(self) -> float:
        """Increase in Confidence: percent of images whose explanation map scores higher than the image."""
        return float(np.mean(self.increase) * 100.0) if len(self.increase) else math.nan

    def per_image(self, metric: str) -> np.ndarray:
        """``(N,)`` values of a :data:`METRICS` id per image (ROAD: mean over the fractions; increase: 0/100).

        Raises:
            OptionError: Unknown metric id.
        """
        values = {
            "deletion_auc": lambda: self.deletion_auc,
            "insertion_auc": lambda: self.insertion_auc,
            "road_morf": lambda: self.road_morf.mean(axis=1),
            "road_lerf": lambda: self.road_lerf.mean(axis=1),
            "average_drop": lambda: self.drop,
            "increase": lambda: self.increase.astype(np.float32) * 100.0,
        }
        if metric not in values:
            raise OptionError(f"unknown metric {metric!r}; choose one of {', '.join(values)}")
        return np.asarray(values[metric](), np.float32)

    def summary(self) -> dict[str, float]:
        """``{metric id: mean over images}`` for every :data:`METRICS` id."""
        return {metric: _nanmean(self.per_image(metric)) for metric, _, _ in METRICS}

    def __repr__(self) -> str:
        s = self.summary()
        return one_line(
            "MethodScores",
            f"method={self.method!r}",
            f"images={len(self.deletion_auc)}",
            *(f"{k}={v:.4g}" for k, v in s.items()),
        )


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Faithfulness metrics of several methods on the same images, beside the random-map baseline.

    Attributes:
        methods: One :class:`MethodScores` per method, in the order given, then the ``"random"`` row.
        scores: ``(N,)`` score ``Y`` of each unperturbed image.
        targets: The class (or flat output element, or ``seg`` class) scored, per image (``-1`` for a
            callable target).
        score: What the scores measure: ``"probability"``, ``"logit"``, ``"output"`` or ``"custom"``.
        steps: Deletion / insertion steps ``S``.
        fractions: ROAD removal fractions.
        deletion: What removed pixels became: a number (``"0"``), ``"the blurred image (sigma 2.8 px)"`` or
            ``"the given baseline"``.
        insertion: What insertion started from (same forms).
        road_noise: ROAD noise std, as a fraction of each image's standard deviation.
        seed: Seed of the random maps, the tie order and the ROAD noise.
        random_grid: ``(rows, cols)`` of the random maps before resizing to the image.
        explained: What the scores are of: ``"class"``, ``"output box[2]"``, ``"seg class 1"``, ``"fn:f"``
            (a ``seg`` score is the sum of the class's logits over its region, fixed at the unperturbed image).
    """

    methods: tuple[MethodScores, ...]
    scores: np.ndarray
    targets: tuple[int, ...]
    score: str
    steps: int
    fractions: tuple[float, ...]
    deletion: str
    insertion: str
    road_noise: float
    seed: int
    random_grid: tuple[int, int] = (0, 0)
    explained: str = "class"

    def __post_init__(self) -> None:
        _frozen(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def names(self) -> tuple[str, ...]:
        """The method names, ``"random"`` last."""
        return tuple(m.method for m in self.methods)

    def __getitem__(self, name: str) -> MethodScores:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(f"no method {name!r} in this evaluation; it has {', '.join(self.names)}")

    @property
    def random(self) -> MethodScores:
        """The random-map baseline row."""
        return self[RANDOM]

    @property
    def x(self) -> np.ndarray:
        """``(S + 1,)`` the removed (deletion) / inserted (insertion) fraction of each curve point."""
        return np.arange(self.steps + 1, dtype=np.float64) / self.steps

    def table(self) -> list[dict[str, Any]]:
        """One row per method (random last): ``{"method", "images", <METRICS ids>: mean over images}``."""
        return [{"method": m.method, "images": len(self), **m.summary()} for m in self.methods]

    def versus_random(self, metric: str = "deletion_auc") -> dict[str, float]:
        """Per method, the fraction of images on which it beats the random row on ``metric``.

        "Beats" is strictly lower for the lower-is-better metrics (deletion AUC, ROAD MoRF, Average Drop)
        and strictly higher for the others.
        """
        direction = {k: d for k, _, d in METRICS}
        if metric not in direction:
            raise OptionError(f"unknown metric {metric!r}; choose one of {', '.join(direction)}")
        base = self.random.per_image(metric)
        out = {}
        for m in self.methods:
            if m.method == RANDOM:
                continue
            mine = m.per_image(metric)
            wins = mine < base if direction[metric] == "lower" else mine > base
            out[m.method] = float(np.mean(wins)) if len(wins) else math.nan
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything as JSON-ready data: settings, the summary table, per-image values and curves.

        NaN becomes ``None``.
        """
        return {
            "format": FORMAT,
            "images": len(self),
            "score": self.score,
            "targets": list(self.targets),
            "explained": self.explained,
            "scores": _listed(self.scores),
            "settings": {
                "steps": self.steps,
                "fractions": list(self.fractions),
                "deletion": self.deletion,
                "insertion": self.insertion,
                "road_noise": self.road_noise,
                "seed": self.seed,
                "order": "decreasing map value; ties in one random order of the pixel positions (seed)",
                "auc": "trapezoid rule over the fraction of pixels in [0, 1] (mean height of the curve)",
                "random": "uniform random maps, image i: numpy.random.default_rng([seed, 1, i]).random(grid), "
                "bilinear-resized to the image when the grid is coarser",
                "random_grid": list(self.random_grid),
            },
            "summary": [{k: _jsonable(v) for k, v in row.items()} for row in self.table()],
            "versus_random": {k: self.versus_random(k) for k, _, _ in METRICS if k != "increase"},
            "methods": {
                m.method: {
                    "deletion_auc": _listed(m.deletion_auc),
                    "insertion_auc": _listed(m.insertion_auc),
                    "deletion_curve": _listed(m.deletion),
                    "insertion_curve": _listed(m.insertion),
                    "road_morf": _listed(m.road_morf),
                    "road_lerf": _listed(m.road_lerf),
                    "explanation_scores": _listed(m.explanation_scores),
                    "drop": _listed(m.drop),
                    "increase": [bool(v) for v in m.increase],
                }
                for m in self.methods
            },
        }

    def __repr__(self) -> str:
        return one_line(
            "Evaluation",
            f"methods={few(self.names, 4)}",
            f"images={len(self)}",
            f"score={self.score}",
            f"steps={self.steps}",
            f"fractions={list(self.fractions)}",
        )


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _listed(array: np.ndarray) -> Any:
    """A float array as nested lists with NaN as ``None`` (6 significant digits are kept by float32)."""
    out = np.asarray(array, np.float64).astype(object)
    out[np.isnan(array)] = None
    return out.tolist()


__all__ = ["FORMAT", "METRICS", "RANDOM", "Evaluation", "MethodScores"]
