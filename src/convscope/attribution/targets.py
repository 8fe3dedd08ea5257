"""Which score is explained: a class per image, the top-1 class, or a user function of the output.

Accepted ``target`` forms:

* ``"top1"`` (default): the argmax of the model output, per image (resolved inside the pass);
* an ``int``: that class for every image;
* a sequence / array of ints, one per image;
* a callable ``f(output) -> (N,) scores`` written with ``keras.ops`` (it runs inside the compiled pass on
  backend tensors; ``output`` is the logits when they are used). Pass the same function object again to
  reuse the compiled pass.

Inside the pass a class target is a one-hot row (an all-zero row means "top-1"), so one compiled function
serves every choice of classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.errors import AttributionError

Target = str | int | Sequence[int] | np.ndarray | Callable[[Any], Any]

ACCEPTED = (
    "'top1', a class index, a list of class indices (one per image), or a callable f(output) -> (N,) scores"
)


@dataclass(frozen=True, eq=False)
class TargetPlan:
    """A validated target for ``n`` images.

    Attributes:
        classes: ``(n,)`` int64 class per image, ``-1`` = top-1 (or a callable target).
        fn: The callable target, or ``None``.
        n_classes: Length of the model's ``(N, K)`` output (1 for other outputs with a callable).
    """

    classes: np.ndarray
    fn: Callable[[Any], Any] | None
    n_classes: int

    def selection(self, classes: np.ndarray | None = None) -> np.ndarray:
        """``(n, K)`` float32 one-hot rows of ``classes`` (default: the plan's); ``-1`` gives a zero row."""
        chosen = self.classes if classes is None else np.asarray(classes)
        sel = np.zeros((len(chosen), self.n_classes), np.float32)
        rows = np.flatnonzero(chosen >= 0)
        sel[rows, chosen[rows]] = 1.0
        return sel

    @property
    def kind(self) -> Any:
        """Part of the compiled-pass cache key: ``"class"`` or the callable itself."""
        return "class" if self.fn is None else self.fn


def _check_index(value: Any, n_classes: int, where: str = "") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise AttributionError(f"target class{where} must be an integer, got {value!r}; accepted: {ACCEPTED}")
    if not 0 <= int(value) < n_classes:
        raise AttributionError(
            f"class index {int(value)}{where} is out of range: the model has {n_classes} "
            f"classes (valid indices 0..{n_classes - 1})"
        )
    return int(value)


def plan_targets(target: Target, n: int, output_shape: tuple[int, ...]) -> TargetPlan:
    """Validate ``target`` for ``n`` images of a model whose per-sample output shape is ``output_shape``.

    Raises:
        AttributionError: An unknown form, a class index out of range (the message names the index and the
            number of classes), a list of the wrong length, or a class target on a non-``(N, K)`` output.
    """
    if callable(target) and not isinstance(target, str):
        k = output_shape[0] if len(output_shape) == 1 else 1
        return TargetPlan(np.full(n, -1, np.int64), target, k)
    if len(output_shape) != 1:
        raise AttributionError(
            f"class targets need a (N, K) model output, but its per-sample output shape is "
            f"{output_shape}; pass target=callable returning one score per image"
        )
    k = output_shape[0]
    if isinstance(target, str):
        if target.strip().lower() != "top1":
            raise AttributionError(f"target {target!r} is not understood; accepted: {ACCEPTED}")
        return TargetPlan(np.full(n, -1, np.int64), None, k)
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        return TargetPlan(np.full(n, _check_index(target, k), np.int64), None, k)
    if isinstance(target, (list, tuple, np.ndarray)):
        values = list(np.asarray(target).reshape(-1)) if isinstance(target, np.ndarray) else list(target)
        if len(values) != n:
            raise AttributionError(
                f"got {len(values)} target classes for {n} images; give one per image or a single int"
            )
        return TargetPlan(
            np.array([_check_index(v, k, f" (image {i})") for i, v in enumerate(values)], np.int64), None, k
        )
    raise AttributionError(f"target {target!r} is not understood; accepted: {ACCEPTED}")


def score(output: Any, sel: Any, fn: Callable[[Any], Any] | None) -> tuple[Any, Any]:
    """Per-image target scores and classes, in backend ops (runs inside the traced pass).

    Args:
        output: ``(n, K)`` model output (logits when used).
        sel: ``(n, K)`` one-hot rows; a zero row selects the argmax of ``output``.
        fn: A callable target (``sel`` is then ignored).

    Returns:
        ``(scores (n,), classes (n,) int32)``; classes are ``-1`` for a callable target.
    """
    from keras import ops

    if fn is not None:
        scores = ops.reshape(fn(output), (-1,))
        if scores.shape[0] is not None and output.shape[0] is not None and scores.shape[0] != output.shape[0]:
            raise AttributionError(
                f"the target callable returned {scores.shape[0]} scores for "
                f"{output.shape[0]} images; it must return one score per image, shape (N,)"
            )
        return scores, ops.full(ops.shape(scores), -1, dtype="int32")
    top = ops.one_hot(ops.argmax(output, axis=-1), output.shape[-1], dtype=output.dtype)
    given = ops.sum(sel, axis=-1, keepdims=True) > 0
    chosen = ops.stop_gradient(ops.where(given, ops.cast(sel, output.dtype), top))
    return ops.sum(output * chosen, axis=-1), ops.cast(ops.argmax(chosen, axis=-1), "int32")
