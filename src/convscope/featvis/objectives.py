"""Objectives: what to make large, composable with ``+``, ``-``, ``*`` and unary ``-``.

An :class:`Objective` maps what a forward pass recorded (:class:`~convscope.featvis.taps.Taps`) to one
value **per image**, shape ``(B,)``. The optimizer maximizes their sum, so the images of a batch are
independent: a *batched* objective such as :func:`channels` gives image ``b`` its own target and draws a
whole layer's worth of channels in one optimization.

    obj = channel("conv_1", 7) + 0.5 * channel("conv_0", 3) - 0.05 * total_variation()

Constructors: :func:`channel`, :func:`channels` (batched), :func:`neuron`, :func:`layer_mean`,
:func:`class_logit` (pre-softmax) and the regularizers :func:`total_variation` and :func:`l2`. Strings
such as ``"conv_1:7 + 0.5*conv_0:3"`` are parsed by :func:`convscope.featvis.parse.parse_objective`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from convscope.errors import OptionError
from convscope.featvis.taps import Need, Taps

Tensor = Any
Fn = Callable[[Taps], Tensor]


def _fmt(weight: float) -> str:
    return repr(float(weight)).removesuffix(".0") if float(weight).is_integer() else repr(float(weight))


class Objective:
    """A per-image objective.

    Args:
        fn: ``fn(taps) -> (B,)`` (or a scalar, broadcast to every image), built from ``keras.ops``.
        needs: What ``fn`` reads from the forward pass.
        name: Description; also the structural key of library-built objectives.
        batch: Batch size this objective requires (batched objectives), else ``None``.
        labels: One label per image of a batched objective (e.g. channel numbers).
        key: Identity for the compile cache; defaults to ``(name, id(fn))`` for a custom ``fn``.
    """

    def __init__(
        self,
        fn: Fn,
        needs: Iterable[Need] = (),
        name: str = "objective",
        *,
        batch: int | None = None,
        labels: Sequence[str] | None = None,
        key: Any = None,
    ) -> None:
        self.fn = fn
        self.needs: tuple[Need, ...] = tuple(dict.fromkeys(needs))
        self.name = name
        self.batch = batch
        self.labels = None if labels is None else tuple(labels)
        self.key = (name, id(fn)) if key is None else key

    def __call__(self, taps: Taps) -> Tensor:
        return self.fn(taps)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def _combine(self, other: Objective, op: str, fn: Fn) -> Objective:
        if self.batch is not None and other.batch is not None and self.batch != other.batch:
            raise OptionError(
                f"cannot combine batched objectives of batch {self.batch} ({self.name}) and "
                f"{other.batch} ({other.name}); their batch sizes must match"
            )
        return Objective(
            fn,
            self.needs + other.needs,
            f"({self.name} {op} {other.name})",
            batch=self.batch if self.batch is not None else other.batch,
            labels=self.labels or other.labels,
            key=(op, self.key, other.key),
        )

    def __add__(self, other: Objective | float) -> Objective:
        other = as_objective(other)
        return self._combine(other, "+", lambda t: self.fn(t) + other.fn(t))

    __radd__ = __add__

    def __sub__(self, other: Objective | float) -> Objective:
        other = as_objective(other)
        return self._combine(other, "-", lambda t: self.fn(t) - other.fn(t))

    def __rsub__(self, other: float) -> Objective:
        return as_objective(other) - self

    def __mul__(self, other: Objective | float) -> Objective:
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            w = float(other)
            return Objective(
                lambda t: w * self.fn(t),
                self.needs,
                f"{_fmt(w)}*{self.name}",
                batch=self.batch,
                labels=self.labels,
                key=("*", w, self.key),
            )
        other = as_objective(other)
        return self._combine(other, "*", lambda t: self.fn(t) * other.fn(t))

    __rmul__ = __mul__

    def __truediv__(self, other: float) -> Objective:
        if not isinstance(other, numbers.Real) or isinstance(other, bool) or other == 0:
            raise OptionError(f"an objective can only be divided by a non-zero number, got {other!r}")
        return self * (1.0 / float(other))

    def __neg__(self) -> Objective:
        return self * -1.0


def as_objective(value: Objective | float) -> Objective:
    """``value`` itself, or a constant objective for a number.

    Raises:
        OptionError: anything else, echoing it.
    """
    if isinstance(value, Objective):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        c = float(value)
        return Objective(lambda t: c, (), _fmt(c), key=("const", c))
    raise OptionError(
        f"cannot combine an objective with {value!r} ({type(value).__name__}); use an Objective or a number"
    )


def _check_index(name: str, value: Any) -> int:
    if not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, bool) or value < 0:
        raise OptionError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def channel(layer: str | int, k: int) -> Objective:
    """Mean activation of channel ``k`` of ``layer`` over all positions (every image of the batch)."""
    k = _check_index("channel", k)

    def fn(t: Taps) -> Tensor:
        b = int(t.image.shape[0])
        return t.channel_means(layer, np.full(b, k))

    return Objective(fn, [Need(layer, "channel")], f"{layer}:{k}", key=("channel", layer, k))


def channels(layer: str | int, ks: Sequence[int]) -> Objective:
    """Batched channel objective: image ``b`` maximizes the mean of channel ``ks[b]`` of ``layer``."""
    ks = [_check_index("channel", k) for k in ks]
    if not ks:
        raise OptionError("channels(layer, ks) needs at least one channel index")
    arr = np.asarray(ks, np.int64)

    def fn(t: Taps) -> Tensor:
        return t.channel_means(layer, arr)

    from convscope.render.channels import format_indices

    return Objective(
        fn,
        [Need(layer, "channel")],
        f"{layer}:[{format_indices(ks)}]",
        batch=len(ks),
        labels=[str(k) for k in ks],
        key=("channels", layer, tuple(ks)),
    )


def neuron(layer: str | int, k: int, y: int | None = None, x: int | None = None) -> Objective:
    """Activation of channel ``k`` of ``layer`` at one position (the center when ``y``/``x`` are None)."""
    k = _check_index("channel", k)

    def fn(t: Taps) -> Tensor:
        from keras import ops

        out = t.output(layer)
        if len(out.shape) != 4:
            raise OptionError(f"neuron() needs a 2-D feature map; layer {layer!r} outputs {tuple(out.shape)}")
        if getattr(t.layer(layer), "data_format", "channels_last") == "channels_first":
            out = ops.transpose(out, (0, 2, 3, 1))
        h, w, c = (int(d) for d in out.shape[1:])
        yy, xx = (h // 2 if y is None else y), (w // 2 if x is None else x)
        if not (0 <= yy < h and 0 <= xx < w and 0 <= k < c):
            raise OptionError(
                f"neuron ({yy}, {xx}, channel {k}) is outside layer {layer!r}'s map of {h}x{w}x{c}"
            )
        return out[:, yy, xx, k]

    return Objective(fn, [Need(layer, "output")], f"{layer}:{k}@{y},{x}", key=("neuron", layer, k, y, x))


def layer_mean(layer: str | int) -> Objective:
    """Mean of all of ``layer``'s activations (lucid's "DeepDream" objective uses the mean square)."""

    def fn(t: Taps) -> Tensor:
        from keras import ops

        out = t.output(layer)
        return ops.mean(out, axis=tuple(range(1, len(out.shape))))

    return Objective(fn, [Need(layer, "output")], f"{layer}:mean", key=("layer_mean", layer))


def class_logit(k: int, layer: str | int | None = None) -> Objective:
    """Pre-softmax score of class ``k``.

    The output layer is found without changing the model: a final Dense with softmax/sigmoid is bypassed
    by applying its kernel and bias to its captured input; a final Softmax/Activation layer gives its
    input; a linear output is used as is. ``layer`` picks another layer.
    """
    k = _check_index("class", k)

    def fn(t: Taps) -> Tensor:
        z = t.logits(layer)
        n = int(z.shape[-1])
        if k >= n:
            raise OptionError(f"class {k} is out of range: the model has {n} classes (valid: 0..{n - 1})")
        return z[:, k]

    return Objective(fn, [Need(layer, "logits")], f"logit:{k}", key=("logit", k, layer))


def total_variation() -> Objective:
    """Per image, the mean absolute difference between neighbouring pixels of the [0, 1] image."""

    def fn(t: Taps) -> Tensor:
        from keras import ops

        x = t.image
        dy = ops.mean(ops.abs(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
        dx = ops.mean(ops.abs(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
        return dy + dx

    return Objective(fn, (), "tv", key=("tv",))


def l2(center: float = 0.5) -> Objective:
    """Per image, the mean squared distance of the [0, 1] image from ``center`` (mid gray)."""

    def fn(t: Taps) -> Tensor:
        from keras import ops

        return ops.mean(ops.square(t.image - center), axis=(1, 2, 3))

    return Objective(fn, (), f"l2({_fmt(center)})" if center != 0.5 else "l2", key=("l2", float(center)))
