"""Run a model once on zeros and record every layer call: what each layer received and returned.

This is the measuring half of :mod:`convscope.models.inspect`. :func:`resolve_input_shapes` works out
the model's input shapes (declared, remembered from a build, or given by the caller); :func:`record_calls`
runs the model on a batch of one zero input while :func:`convscope.models.capture.recording` watches every
layer (nested ones included), so it works the same for every model kind and lists a layer called several
times once per call. The wrappers live in the layer instances' ``__dict__`` only during that call; the
model is only built (by one unrecorded call) when it was unbuilt and the caller gave ``input_shape``.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convscope.errors import InputError
from convscope.models.arith import Shape
from convscope.models.capture import LayerCall, recording
from convscope.models.tree import LayerNode, layer_tree

logger = logging.getLogger(__name__)

CallKey = tuple[str, int]

__all__ = [
    "CallKey",
    "CallRecord",
    "Recording",
    "record_calls",
    "record_output_shapes",
    "resolve_input_shapes",
]


# --------------------------------------------------------------------------------------------------
# Input shapes
# --------------------------------------------------------------------------------------------------


def _is_shape(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        v is None or isinstance(v, numbers.Integral) for v in value
    )


def _as_shape(value: Sequence[Any]) -> Shape:
    return tuple(None if v is None else int(v) for v in value)


def _declared_input_shapes(model: Any) -> tuple[Shape, ...] | None:
    try:
        inputs = model.inputs  # raises on an unbuilt Sequential, missing on subclassed models
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return tuple((None, *_as_shape(t.shape)[1:]) for t in inputs)
    if getattr(model, "built", False):  # a subclassed model built by a call remembers its input shape
        with contextlib.suppress(Exception):
            shape = (model.get_build_config() or {}).get("input_shape")
            if shape is not None and _is_shape(shape):
                return ((None, *_as_shape(shape)[1:]),)
            if isinstance(shape, (list, tuple)) and shape and all(_is_shape(s) for s in shape):
                return tuple((None, *_as_shape(s)[1:]) for s in shape)
    return None


def _given_input_shapes(input_shape: Any, declared: tuple[Shape, ...] | None) -> tuple[Shape, ...] | None:
    if input_shape is None:
        return None
    if _is_shape(input_shape):
        shapes = [input_shape]
    elif _is_shape_list(input_shape):
        shapes = list(input_shape)
    else:
        raise InputError(
            f"input_shape must be a shape such as (28, 28, 1) or a list of shapes; got {input_shape!r}"
        )
    if declared is not None and len(shapes) != len(declared):
        raise InputError(
            f"the model has {len(declared)} input(s) but input_shape gives {len(shapes)}: {input_shape!r}"
        )
    result = []
    for i, given in enumerate(shapes):
        given = _as_shape(given)
        rank = len(declared[i]) if declared is not None else None
        if rank is not None and len(given) == rank:
            result.append((None, *given[1:]))
        elif rank is None and given and given[0] is None:
            result.append(given)
        elif rank is None or len(given) == rank - 1:
            result.append((None, *given))
        else:
            raise InputError(
                f"input_shape {tuple(given)} does not fit the model input {declared[i]} "  # type: ignore[index]
                "(give one sample's shape, without the batch dimension)"
            )
    return tuple(result)


def _is_shape_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(_is_shape(v) for v in value)


def resolve_input_shapes(
    model: Any, input_shape: Any = None, *, unknown_sizes: bool = False
) -> tuple[Shape, ...]:
    """Work out the full (batch-first, batch ``None``) shape of each model input.

    Args:
        model: A Keras model.
        input_shape: One sample's shape, e.g. ``(28, 28, 1)`` (a leading batch dimension is accepted
            when the model's input rank says so), or a list of them for a multi-input model. Needed when
            the model declares no inputs (unbuilt, or subclassed), or has unknown sizes (``None``) and
            ``unknown_sizes`` is false.
        unknown_sizes: Accept sizes the model leaves free (``Input((None, None, 3))``): they stay ``None``.

    Returns:
        One shape per model input, batch dimension ``None``, every other dimension known (unless
        ``unknown_sizes``).

    Raises:
        InputError: The shape cannot be determined, or ``input_shape`` contradicts the model.
    """
    declared = _declared_input_shapes(model)
    given = _given_input_shapes(input_shape, declared)
    name = getattr(model, "name", type(model).__name__)
    if declared is None and given is None:
        raise InputError(
            f"cannot tell the input shape of model {name!r}: it is unbuilt or subclassed and declares no "
            "inputs; give one sample's shape: --input-shape H,W,C (Python: input_shape=(H, W, C))"
        )
    shapes = declared if given is None else given
    if declared is not None and given is not None:
        merged = []
        for dec, giv in zip(declared, given):
            if len(dec) != len(giv) or any(
                d is not None and g is not None and d != g for d, g in zip(dec, giv)
            ):
                raise InputError(f"input_shape {giv[1:]} contradicts the model's input shape {dec[1:]}")
            merged.append(tuple(d if d is not None else g for d, g in zip(dec, giv)))
        shapes = tuple(merged)
    assert shapes is not None
    for shape in shapes:
        if any(d is None for d in shape[1:]) and not unknown_sizes:
            raise InputError(
                f"model {name!r} has an input of shape {shape} with unknown sizes; give every size: "
                "--input-shape H,W,C (Python: input_shape=(224, 224, 3))"
            )
    return shapes


# --------------------------------------------------------------------------------------------------
# Recording each layer call
# --------------------------------------------------------------------------------------------------


def _tensors(structure: Any) -> tuple[Any, ...]:
    import keras

    return tuple(t for t in keras.tree.flatten(structure) if keras.ops.is_tensor(t))


def _tensor_shape(tensor: Any) -> Shape:
    dims = tuple(None if d is None else int(d) for d in tensor.shape)
    return (None, *dims[1:]) if dims else dims


@dataclass(frozen=True, eq=False)
class CallRecord:
    """One call of one layer during the recorded forward pass.

    Attributes:
        path: The layer's path (see :func:`convscope.models.tree.layer_tree`).
        index: 0 for the layer's first call, 1 for the second, ...
        parent: ``(path, index)`` of the enclosing recorded call, ``None`` for a call made by the model.
        inputs: The tensors the call received (flattened positional and keyword arguments).
        outputs: The tensors it returned (flattened).
    """

    path: str
    index: int
    parent: CallKey | None
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    known_input_shapes: tuple[Shape, ...] | None = None
    known_output_shapes: tuple[Shape, ...] | None = None

    @property
    def key(self) -> CallKey:
        """``(path, index)``."""
        return (self.path, self.index)

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        """Shapes of :attr:`inputs`, batch dimension ``None`` (and sizes that follow a free input size)."""
        if self.known_input_shapes is not None:
            return self.known_input_shapes
        return tuple(_tensor_shape(t) for t in self.inputs)

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        """Shapes of :attr:`outputs`, batch dimension ``None`` (and sizes that follow a free input size)."""
        if self.known_output_shapes is not None:
            return self.known_output_shapes
        return tuple(_tensor_shape(t) for t in self.outputs)


@dataclass(frozen=True, eq=False)
class Recording:
    """The result of :func:`record_calls`.

    Attributes:
        input_shapes: The model input shapes used (batch ``None``).
        inputs: The zero tensors fed to the model (batch of one).
        calls: Every recorded layer call, in order of completion.
    """

    input_shapes: tuple[Shape, ...]
    inputs: tuple[Any, ...]
    calls: tuple[CallRecord, ...]

    def output_shapes(self) -> dict[str, list[Shape | tuple[Shape, ...]]]:
        """``{path: [shape of call 0, shape of call 1, ...]}`` (a tuple of shapes per multi-output call)."""
        result: dict[str, list[Shape | tuple[Shape, ...]]] = defaultdict(list)
        for call in sorted(self.calls, key=lambda c: c.index):
            shapes = call.output_shapes
            result[call.path].append(shapes[0] if len(shapes) == 1 else shapes)
        return dict(result)


def _call_records(nodes: Sequence[LayerNode], calls: Sequence[LayerCall]) -> tuple[CallRecord, ...]:
    return tuple(
        CallRecord(
            path=nodes[c.position].path,
            index=c.index,
            parent=None if c.parent is None else (nodes[c.parent[0]].path, c.parent[1]),
            inputs=_tensors((c.args, c.kwargs)),
            outputs=_tensors(c.output),
        )
        for c in calls
    )


def _zeros(shapes: Sequence[Shape], model: Any) -> tuple[Any, ...]:
    import keras

    try:
        dtypes = [t.dtype for t in model.inputs]
    except (AttributeError, ValueError, TypeError):
        dtypes = []
    if len(dtypes) != len(shapes):
        dtypes = ["float32"] * len(shapes)
    return tuple(keras.ops.zeros((1, *shape[1:]), dtype=dtype) for shape, dtype in zip(shapes, dtypes))


def _run(model: Any, inputs: tuple[Any, ...]) -> None:
    try:
        model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
    except Exception as err:  # any failure here means the input does not fit
        shapes = [tuple(_tensor_shape(t)) for t in inputs]
        raise InputError(
            f"running model {getattr(model, 'name', '?')!r} on zeros of shape {shapes} failed: {err}"
        ) from err


def _record_once(model: Any, shapes: Sequence[Shape], nodes: Sequence[LayerNode]) -> Recording:
    inputs = _zeros(shapes, model)
    if not getattr(model, "built", True) or not all(getattr(n.layer, "built", True) for n in nodes):
        logger.debug("building %r by one unrecorded call on %s", getattr(model, "name", model), shapes)
        _run(model, inputs)
    calls: list[LayerCall] = []
    with recording([node.layer for node in nodes], calls, with_inputs=True):
        _run(model, inputs)
    return Recording(tuple(shapes), inputs, _call_records(nodes, calls))


PROBE_SIZES = (128, 256)
"""Stand-ins for sizes a model leaves free: a dimension that differs between the two runs follows the
free size (shown as ``None``); one that does not (channels, anything after global pooling) is known.
Far apart, so that even after seven halvings the two runs still differ."""


def _merge_dims(a: Shape, b: Shape) -> Shape:
    if len(a) != len(b):
        return tuple(None for _ in a)
    return tuple(x if x == y else None for x, y in zip(a, b))


def _merged(shapes: tuple[Shape, ...], first: Recording, second: Recording) -> Recording:
    """``first`` with every size that differs in ``second`` replaced by ``None``."""
    others = {c.key: c for c in second.calls}
    calls = []
    for call in first.calls:
        other = others.get(call.key)
        ins, outs = call.input_shapes, call.output_shapes
        if other is None or len(other.input_shapes) != len(ins) or len(other.output_shapes) != len(outs):
            ins = tuple(tuple(None if i else d for i, d in enumerate(s)) for s in ins)
            outs = tuple(tuple(None if i else d for i, d in enumerate(s)) for s in outs)
        else:
            ins = tuple(_merge_dims(x, y) for x, y in zip(ins, other.input_shapes))
            outs = tuple(_merge_dims(x, y) for x, y in zip(outs, other.output_shapes))
        calls.append(CallRecord(call.path, call.index, call.parent, call.inputs, call.outputs, ins, outs))
    return Recording(shapes, first.inputs, tuple(calls))


def record_calls(
    model: Any,
    input_shape: Any = None,
    nodes: Sequence[LayerNode] | None = None,
    *,
    unknown_sizes: bool = False,
) -> Recording:
    """Run ``model`` once on zeros (batch of one) and record every layer call.

    If the model (or one of its layers) is unbuilt, it is first called once without recording, which
    builds it; that only happens when the caller gave ``input_shape`` (see :func:`resolve_input_shapes`).
    A model that leaves input sizes free (``unknown_sizes``) runs twice, with each free size set to one
    of :data:`PROBE_SIZES`; sizes that follow it are recorded as ``None``.

    Args:
        model: A Keras model of any kind.
        input_shape: See :func:`resolve_input_shapes`.
        nodes: The model's :func:`~convscope.models.tree.layer_tree`, if already computed.
        unknown_sizes: Accept free input sizes instead of asking for ``input_shape``.

    Returns:
        The recording; it holds the intermediate tensors, so drop it when done.

    Raises:
        InputError: No usable input shape, or the model fails on it.
    """
    shapes = resolve_input_shapes(model, input_shape, unknown_sizes=unknown_sizes)
    nodes = layer_tree(model) if nodes is None else nodes
    if not any(d is None for s in shapes for d in s[1:]):
        return _record_once(model, shapes, nodes)
    runs = []
    for size in PROBE_SIZES:
        filled = [(None, *(size if d is None else d for d in s[1:])) for s in shapes]
        try:
            runs.append(_record_once(model, filled, nodes))
        except InputError as err:
            raise InputError(
                f"model {getattr(model, 'name', '?')!r} leaves input sizes free {[s[1:] for s in shapes]} and does "
                f"not run at {size} for them ({err}); give them: --input-shape H,W,C (Python: input_shape=(H, W, C))"
            ) from err
    return _merged(shapes, runs[0], runs[1])


def record_output_shapes(model: Any, input_shape: Any = None) -> dict[str, list[Shape | tuple[Shape, ...]]]:
    """Output shape of every layer call: ``{path: [shape of call 0, shape of call 1, ...]}``.

    Works for every model kind, subclassed included (the model is run once on zeros). Batch dimension
    is ``None``; a call returning several tensors gives a tuple of shapes.
    """
    return record_calls(model, input_shape).output_shapes()
