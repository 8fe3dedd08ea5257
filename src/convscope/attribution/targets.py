"""Which score is explained: the one home of the target grammar, for the API and the CLI.

Target forms (``convscope cam ... --target SPEC``; ``--class IDX`` is a synonym of ``class:IDX``):

* ``top1`` (default): the argmax of the class output, per image (resolved inside the pass);
* ``class:IDX`` (or a bare ``IDX``; in Python also an ``int`` or one int per image);
* ``output:NAME`` / ``output:NAME[IDX]`` / ``output:NAME[IDX,CLS]``: an output of a multi-output model by
  its name, and an element of it (a regression value, one anchor/box row and its class score). Axes left
  unindexed take their argmax, per image: ``output:cls`` is the top class of output ``cls``,
  ``output:det[3]`` is the best class of row 3 of a ``(N, A, C)`` output, ``output:box[2]`` is element 2;
* ``seg:CLS`` for a per-pixel output ``(N, H, W, K)``: the sum of class CLS's pre-softmax logits over a
  region (Seg-Grad-CAM, Vinogradova et al. 2020): ``region=(x0, y0, x1, y1)`` in input pixels
  (``--region``), or a ``mask`` (``--mask FILE.png``), by default the pixels predicted as CLS;
* in Python, a callable ``f(outputs) -> (N,)`` written with ``keras.ops`` (``outputs`` is the output
  tensor, or ``{name: tensor}`` for a multi-output model; logits where the head has a softmax/sigmoid).

A parsed target is a small frozen object whose ``str`` is its spec (:class:`Top1`, :class:`ClassTarget`,
:class:`OutputTarget`, :class:`SegTarget`, :class:`FunctionTarget`). :func:`plan_targets` checks it against
the model's outputs (names, shapes, index ranges) and gives a :class:`TargetPlan`; inside the compiled pass
:func:`score` reads ``sel``, one row of numbers per image, so one compiled function serves every choice of
classes, elements and regions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convscope.errors import AttributionError

ACCEPTED = (
    "top1, class:IDX, output:NAME, output:NAME[IDX], output:NAME[IDX,CLS], seg:CLS, a class index, "
    "one class index per image, or a callable f(outputs) -> (N,) scores"
)

_INT = r"[0-9]{1,9}"
_OUTPUT = re.compile(rf"^output:(?P<name>.+?)(?:\[(?P<index>\s*{_INT}(?:\s*,\s*{_INT})*\s*)\])?$", re.S)


@dataclass(frozen=True)
class Top1:
    """The top class of the (first) class output, per image."""

    def __str__(self) -> str:
        return "top1"


@dataclass(frozen=True)
class ClassTarget:
    """Class ``index`` of the (first) class output, for every image."""

    index: int

    def __str__(self) -> str:
        return f"class:{self.index}"


@dataclass(frozen=True)
class OutputTarget:
    """An output by name, and an element of it; unindexed trailing axes take their argmax per image."""

    name: str
    index: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"output:{self.name}" + (f"[{','.join(map(str, self.index))}]" if self.index else "")


@dataclass(frozen=True, eq=False)
class SegTarget:
    """Class ``cls`` of a per-pixel output, summed over a region (default: the pixels predicted as ``cls``).

    Attributes:
        cls: The class channel.
        region: ``(x0, y0, x1, y1)`` in input pixels (``x1``/``y1`` exclusive), or ``None``.
        mask: ``(H, W)`` (input or output size) or ``(N, H, W)`` weights, nonzero = in the region, or ``None``.
    """

    cls: int
    region: tuple[int, int, int, int] | None = None
    mask: np.ndarray | None = field(default=None, repr=False)

    def __str__(self) -> str:
        where = (
            f" region {','.join(map(str, self.region))}"
            if self.region
            else " mask"
            if self.mask is not None
            else ""
        )
        return f"seg:{self.cls}{where}"


@dataclass(frozen=True)
class FunctionTarget:
    """A user function ``f(outputs) -> (N,)``."""

    fn: Callable[[Any], Any]

    def __str__(self) -> str:
        return f"fn:{getattr(self.fn, '__name__', type(self.fn).__name__)}"


TargetSpec = Top1 | ClassTarget | OutputTarget | SegTarget | FunctionTarget
Target = str | int | Sequence[int] | np.ndarray | Callable[[Any], Any] | TargetSpec


def parse_target(
    spec: str | None, *, region: tuple[int, int, int, int] | None = None, mask: np.ndarray | None = None
) -> TargetSpec:
    """Parse a target spec string (see the module doc); ``None`` is ``top1``.

    Args:
        spec: The spec, e.g. ``"class:281"``, ``"output:box[2]"``, ``"seg:1"``.
        region: ``(x0, y0, x1, y1)`` for ``seg:`` (input pixels).
        mask: A region mask for ``seg:``.

    Raises:
        AttributionError: Not a spec of the grammar, or a region/mask with a target that is not ``seg:``.
    """
    text = "top1" if spec is None else str(spec).strip()
    low = text.lower()
    target: TargetSpec
    if low == "top1":
        target = Top1()
    elif re.fullmatch(_INT, low) or re.fullmatch(rf"class:\s*{_INT}", low):
        target = ClassTarget(int(low.split(":")[-1]))
    elif low.startswith("seg:") and re.fullmatch(rf"seg:\s*{_INT}", low):
        target = SegTarget(int(low[4:]), region, mask)
    elif low.startswith("output:") and (match := _OUTPUT.match(text)) and match.group("name").strip():
        index = match.group("index")
        parsed = tuple(int(v) for v in index.split(",")) if index else ()
        target = OutputTarget(match.group("name").strip(), parsed)
    else:
        raise AttributionError(f"target {text[:80]!r} is not understood; accepted: {ACCEPTED}")
    if (region is not None or mask is not None) and not isinstance(target, SegTarget):
        raise AttributionError(
            f"a region or mask applies to seg:CLS targets only, not to target {text[:80]!r}"
        )
    return target


@dataclass(frozen=True)
class OutputInfo:
    """One model output as attribution sees it.

    Attributes:
        name: Its name (the dict key of a dict-output model, else the output layer's name).
        aliases: Other accepted names (the output layer's name).
        shape: Per-sample shape.
        squash: ``"softmax"`` / ``"sigmoid"`` when a layer applies it to this output, else ``""``.
    """

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    squash: str = ""


@dataclass(frozen=True, eq=False)
class TargetPlan:
    """A target checked against the model, for ``n`` images.

    Attributes:
        target: The parsed target.
        mode: ``"element"`` (the argmax of ``sel``-allowed elements of one output), ``"seg"`` or ``"fn"``.
        output: Index of the explained output (in flattened output order); ``-1`` for a callable.
        sel: ``(n, P)`` float32 rows read by :func:`score`: for ``"element"`` the candidate elements of the
            flattened output (one 1 = that element, all 1 = top-1); for ``"seg"`` the region at the output's
            resolution (all 0 = the pixels predicted as the class); ``(n, 1)`` zeros for a callable.
        cls: The class channel of a ``seg`` target.
        fn: The callable target, or ``None``.
        class_like: The explained output is a class vector ``(K,)``, so probabilities make sense.
        describe: Short text for captions, e.g. ``"output box[2]"``.
        axis: The class axis of a per-pixel output (``-1``, or ``1`` for channels first).
    """

    target: TargetSpec
    mode: str
    output: int
    sel: np.ndarray
    cls: int = -1
    fn: Callable[[Any], Any] | None = None
    class_like: bool = False
    describe: str = ""
    axis: int = -1

    def selection(self, classes: np.ndarray | None = None) -> np.ndarray:
        """``sel``, or for element targets the one-hot rows of ``classes`` (``-1`` keeps the plan's row)."""
        if classes is None or self.mode != "element":
            return self.sel
        chosen = np.asarray(classes)
        sel = self.sel.copy()
        rows = np.flatnonzero(chosen >= 0)
        sel[rows] = 0.0
        sel[rows, chosen[rows]] = 1.0
        return sel

    def predicted(self, out: np.ndarray) -> np.ndarray:
        """``sel`` with each ``seg`` row that has no region set to the pixels ``out`` predicts as the class.

        Args:
            out: ``(n, ...)`` the explained output of the same images (logits or probabilities).

        Returns:
            ``(n, P)`` float32; ``sel`` itself for other modes or when every row has a region.
        """
        if self.mode != "seg" or self.sel.any(axis=1).all():
            return self.sel
        mine = (np.asarray(out).argmax(axis=self.axis) == self.cls).reshape(len(out), -1)
        empty = np.logical_not(self.sel.any(axis=1))
        return np.where(empty[:, None], mine.astype(np.float32), self.sel)

    @property
    def kind(self) -> Any:
        """Part of the compiled-pass cache key."""
        return (self.mode, self.output, self.cls) if self.fn is None else self.fn

    @property
    def classes(self) -> np.ndarray:
        """``(n,)`` the fixed element per image (``-1`` where it is chosen in the pass)."""
        if self.mode != "element":
            return np.full(len(self.sel), self.cls if self.mode == "seg" else -1, np.int64)
        single = self.sel.sum(axis=1) == 1
        return np.where(single, self.sel.argmax(axis=1), -1).astype(np.int64)


def _find_output(name: str, outputs: Sequence[OutputInfo]) -> int:
    for i, info in enumerate(outputs):
        if name == info.name or name in info.aliases:
            return i
    for i, info in enumerate(outputs):
        if name.lower() in (info.name.lower(), *(a.lower() for a in info.aliases)):
            return i
    names = ", ".join(f"{o.name} {o.shape}" for o in outputs)
    raise AttributionError(f"the model has no output named {name!r}; its outputs: {names}")


def class_output(outputs: Sequence[OutputInfo]) -> int:
    """The output that ``top1``/``class:`` targets explain: the only one, else the first ``(N, K)`` softmax
    output, else the first ``(N, K)`` with K > 1.

    Raises:
        AttributionError: No such output (the message lists the outputs and the ``output:`` form).
    """
    if len(outputs) == 1:
        return 0
    vectors = [i for i, info in enumerate(outputs) if len(info.shape) == 1 and info.shape[0] > 1]
    for i in vectors:
        if outputs[i].squash == "softmax":
            return i
    if vectors:
        return vectors[0]
    names = ", ".join(f"{o.name} {o.shape}" for o in outputs)
    raise AttributionError(
        f"the model has no class output (N, K) to take top1 or class:IDX from; "
        f"name one with output:NAME[...]; its outputs: {names}"
    )


def _element_plan(
    target: TargetSpec, n: int, index: int, info: OutputInfo, fixed: tuple[int, ...]
) -> TargetPlan:
    shape = info.shape
    if len(fixed) > len(shape):
        raise AttributionError(
            f"target {target} gives {len(fixed)} indices but output {info.name!r} has per-sample shape "
            f"{shape} ({len(shape)} axes); e.g. output:{info.name}[{','.join('0' * len(shape)) if shape else ''}]"
        )
    for axis, (value, size) in enumerate(zip(fixed, shape)):
        if not 0 <= value < size:
            raise AttributionError(
                f"index {value} of target {target} is out of range for axis {axis} of output {info.name!r} "
                f"(per-sample shape {shape}; valid 0..{size - 1})"
            )
    cand = np.zeros(shape if shape else (1,), np.float32)
    cand[tuple(fixed)] = 1.0
    flat = cand.reshape(1, -1)
    class_like = len(shape) == 1 and shape[0] > 1
    what = f"output {info.name}" + (f"[{','.join(map(str, fixed))}]" if fixed else "")
    return TargetPlan(
        target, "element", index, np.repeat(flat, n, axis=0), class_like=class_like, describe=what
    )


def _seg_plan(
    target: SegTarget, n: int, outputs: Sequence[OutputInfo], in_size: tuple[int, int], channels_first: bool
) -> TargetPlan:
    pixel = [i for i, o in enumerate(outputs) if len(o.shape) == 3]
    if not pixel:
        names = ", ".join(f"{o.name} {o.shape}" for o in outputs)
        raise AttributionError(
            f"target {target} needs a per-pixel output (N, H, W, K); the model's outputs are: {names}"
        )
    index = pixel[0]
    shape = outputs[index].shape
    (h, w), k = (shape[1:], shape[0]) if channels_first else (shape[:2], shape[2])
    if not 0 <= target.cls < k:
        raise AttributionError(
            f"class {target.cls} of target {target} is out of range: output {outputs[index].name!r} has {k} "
            f"classes per pixel (valid 0..{k - 1})"
        )
    sel = np.zeros((n, h, w), np.float32)
    H, W = in_size
    if target.region is not None:
        x0, y0, x1, y1 = target.region
        if not (0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H):
            raise AttributionError(
                f"region {x0},{y0},{x1},{y1} is not inside the {W}x{H} input (need 0 <= x0 < x1 <= {W} and "
                f"0 <= y0 < y1 <= {H}, in input pixels)"
            )
        # output pixel j covers input rows [j*H/h, (j+1)*H/h): keep those that overlap the region
        rows = np.flatnonzero((np.arange(h) + 1) * H / h > y0)
        rows = rows[rows * H / h < y1]
        cols = np.flatnonzero((np.arange(w) + 1) * W / w > x0)
        cols = cols[cols * W / w < x1]
        sel[:, rows[:, None], cols[None, :]] = 1.0
    elif target.mask is not None:
        mask = np.asarray(target.mask)
        if mask.ndim == 3 and mask.shape[0] in (1, n):
            pass
        elif mask.ndim == 2:
            mask = mask[None]
        else:
            raise AttributionError(
                f"the mask must be (H, W) or one per image (N, H, W), got shape {mask.shape}"
            )
        size = mask.shape[1:]
        if size == (h, w):
            small = mask != 0
        elif size == (H, W):
            ys = ((np.arange(h) + 0.5) * H / h).astype(int)
            xs = ((np.arange(w) + 0.5) * W / w).astype(int)
            small = mask[:, ys[:, None], xs[None, :]] != 0  # nearest: the input pixel at each output centre
        else:
            raise AttributionError(
                f"the mask is {size[1]}x{size[0]} but must match the input ({W}x{H}) or the output ({w}x{h})"
            )
        if not small.any():
            raise AttributionError("the mask selects no pixel; nonzero mask pixels form the region")
        sel[:] = np.broadcast_to(small, (n, h, w))
    return TargetPlan(
        target,
        "seg",
        index,
        sel.reshape(n, -1),
        cls=target.cls,
        axis=1 if channels_first else -1,
        describe=f"seg class {target.cls}"
        + (" in region" if target.region or target.mask is not None else ""),
    )


def as_spec(target: Target) -> TargetSpec | list[int]:
    """Any accepted target form as a :data:`TargetSpec`, or a per-image class list."""
    if isinstance(target, (Top1, ClassTarget, OutputTarget, SegTarget, FunctionTarget)):
        return target
    if isinstance(target, str):
        return parse_target(target)
    if callable(target):
        return FunctionTarget(target)
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        return ClassTarget(int(target))
    if isinstance(target, (list, tuple, np.ndarray)):
        values = list(np.asarray(target).reshape(-1)) if isinstance(target, np.ndarray) else list(target)
        for i, v in enumerate(values):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise AttributionError(
                    f"target class (image {i}) must be an integer, got {v!r}; accepted: {ACCEPTED}"
                )
        return [int(v) for v in values]
    raise AttributionError(f"target {target!r} is not understood; accepted: {ACCEPTED}")


def plan_targets(
    target: Target,
    n: int,
    outputs: Sequence[OutputInfo] | tuple[int, ...],
    in_size: tuple[int, int] = (0, 0),
    channels_first: bool = False,
) -> TargetPlan:
    """Check ``target`` for ``n`` images against the model's outputs.

    Args:
        target: Any form of the module doc.
        n: Number of images.
        outputs: The model's outputs (or, for one output, its per-sample shape).
        in_size: ``(H, W)`` of the input (for ``seg:`` regions and masks).
        channels_first: The model's data format (for per-pixel outputs).

    Raises:
        AttributionError: An unknown form or output name, an index out of range (naming the index and the
            valid range), a list of the wrong length, a region outside the image, a mask of the wrong
            size, ``seg:`` without a per-pixel output, a class target without a class output.
    """
    infos: list[OutputInfo] = (
        [OutputInfo("output", (), tuple(int(d) for d in outputs))]  # type: ignore[arg-type]
        if all(isinstance(d, (int, np.integer)) for d in outputs)
        else [o for o in outputs if isinstance(o, OutputInfo)]
    )
    spec = as_spec(target)
    if isinstance(spec, FunctionTarget):
        return TargetPlan(spec, "fn", -1, np.zeros((n, 1), np.float32), fn=spec.fn, describe=str(spec))
    if isinstance(spec, SegTarget):
        return _seg_plan(spec, n, infos, in_size, channels_first)
    if isinstance(spec, OutputTarget):
        index = _find_output(spec.name, infos)
        return _element_plan(spec, n, index, infos[index], spec.index)
    index = class_output(infos)
    info = infos[index]
    if len(info.shape) != 1:
        raise AttributionError(
            f"class targets need a (N, K) model output, but its per-sample output shape is {info.shape}; "
            f"use seg:CLS for per-pixel outputs, output:NAME[...] for an element, or a callable f(output) -> (N,)"
        )
    if isinstance(spec, list) and len(spec) != n:
        raise AttributionError(
            f"got {len(spec)} target classes for {n} images; give one per image or a single int"
        )
    for i, value in enumerate(
        spec if isinstance(spec, list) else [spec.index] if isinstance(spec, ClassTarget) else []
    ):
        _check_class(value, info, f" (image {i})" if isinstance(spec, list) else "")
    fixed = (spec.index,) if isinstance(spec, ClassTarget) else ()
    plan = replace(
        _element_plan(Top1() if isinstance(spec, list) else spec, n, index, info, fixed), describe="class"
    )
    return replace(plan, sel=plan.selection(np.asarray(spec))) if isinstance(spec, list) else plan


def _check_class(value: int, info: OutputInfo, where: str) -> None:
    k = info.shape[0]
    if not 0 <= value < k:
        raise AttributionError(
            f"class index {value}{where} is out of range: the model has {k} classes (valid indices 0..{k - 1})"
        )


def score(outputs: Sequence[Any], names: Sequence[str], sel: Any, plan: TargetPlan) -> tuple[Any, Any]:
    """Per-image target scores and chosen elements, in backend ops (runs inside the traced pass).

    Args:
        outputs: The model's outputs, flattened (logits where bypassed).
        names: Their names (for a callable target on a multi-output model).
        sel: ``(n, P)`` rows of :attr:`TargetPlan.sel`.
        plan: The plan (its mode, output and class pick the formula).

    Returns:
        ``(scores (n,), chosen (n,) int32)``: the flat element explained, the class of a ``seg`` target,
        ``-1`` for a callable.
    """
    from keras import ops

    if plan.fn is not None:
        arg = outputs[0] if len(outputs) == 1 else dict(zip(names, outputs))
        reference = outputs[0]
        scores = ops.reshape(plan.fn(arg), (-1,))
        if (
            scores.shape[0] is not None
            and reference.shape[0] is not None
            and scores.shape[0] != reference.shape[0]
        ):
            raise AttributionError(
                f"the target callable returned {scores.shape[0]} scores for {reference.shape[0]} images; "
                "it must return one score per image, shape (N,)"
            )
        return scores, ops.full(ops.shape(scores), -1, dtype="int32")
    out = outputs[plan.output]
    n = ops.shape(out)[0]
    if plan.mode == "seg":
        chosen = ops.take(out, plan.cls, axis=plan.axis)  # (n, h, w)
        flat = ops.reshape(
            chosen, (n, int(np.prod(chosen.shape[1:])) if None not in chosen.shape[1:] else -1)
        )
        predicted = ops.cast(ops.equal(ops.argmax(out, axis=plan.axis), plan.cls), flat.dtype)
        region = ops.cast(sel, flat.dtype)
        given = ops.sum(region, axis=-1, keepdims=True) > 0
        weights = ops.stop_gradient(ops.where(given, region, ops.reshape(predicted, (n, -1))))
        return ops.sum(flat * weights, axis=-1), ops.full((n,), plan.cls, dtype="int32")
    size = int(np.prod(out.shape[1:])) if None not in out.shape[1:] else -1
    flat = ops.reshape(out, (n, size))
    cand = ops.cast(sel, flat.dtype)
    masked = ops.where(cand > 0, flat, ops.full_like(flat, -np.inf))
    pick = ops.argmax(masked, axis=-1)
    onehot = ops.stop_gradient(ops.one_hot(pick, size if size > 0 else ops.shape(flat)[-1], dtype=flat.dtype))
    return ops.sum(flat * onehot, axis=-1), ops.cast(pick, "int32")
