"""The layer table: output shape, parameters, geometry and receptive field of every layer.

:func:`inspect_model` runs the model once on a batch of one zero input while recording what every layer
(nested ones included) returns, so it works the same for Sequential, Functional, nested and subclassed
models, and lists a layer called several times once per call. Receptive fields follow the model's graph:
the chain of a Sequential, the ``inbound_nodes`` of a Functional ``get_config()``, recursion into nested
models; for subclassed models (no graph) the graph is traced from the tensors the layers pass to each
other, falling back to call order (flagged ``rf_exact=False``) where a tensor was made by plain code.

The user's model is never modified: the recording patches each layer's ``call`` through the instance
``__dict__`` and restores it in ``finally``; the model is only built (by that one call) when it was
unbuilt and the caller gave ``input_shape``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import numbers
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from convscope.errors import InputError, LayerNotFound, nearest
from convscope.models.arith import (
    ReceptiveField,
    Shape,
    is_known_layer,
    layer_geometry,
    param_count,
    propagate_field,
)
from convscope.models.tree import LayerNode, layer_tree

logger = logging.getLogger(__name__)

CallKey = tuple[str, int]
Number = int | float

__all__ = [
    "CallRecord",
    "LayerInfo",
    "ModelInfo",
    "Recording",
    "format_table",
    "inspect_model",
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


def resolve_input_shapes(model: Any, input_shape: Any = None) -> tuple[Shape, ...]:
    """Work out the full (batch-first, batch ``None``) shape of each model input.

    Args:
        model: A Keras model.
        input_shape: One sample's shape, e.g. ``(28, 28, 1)`` (a leading batch dimension is accepted
            when the model's input rank says so), or a list of them for a multi-input model. Needed when
            the model declares no inputs (unbuilt, or subclassed) or has unknown sizes (``None``).

    Returns:
        One shape per model input, batch dimension ``None``, every other dimension known.

    Raises:
        InputError: The shape cannot be determined, or ``input_shape`` contradicts the model.
    """
    declared = _declared_input_shapes(model)
    given = _given_input_shapes(input_shape, declared)
    name = getattr(model, "name", type(model).__name__)
    if declared is None and given is None:
        raise InputError(
            f"cannot tell the input shape of model {name!r}: it is unbuilt or subclassed and declares no "
            "inputs. Pass input_shape=(height, width, channels) (one sample, without the batch dimension)."
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
        if any(d is None for d in shape[1:]):
            raise InputError(
                f"model {name!r} has an input of shape {shape} with unknown sizes; pass input_shape with "
                "every size given, e.g. input_shape=(224, 224, 3)"
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

    @property
    def key(self) -> CallKey:
        """``(path, index)``."""
        return (self.path, self.index)

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        """Shapes of :attr:`inputs`, batch dimension ``None``."""
        return tuple(_tensor_shape(t) for t in self.inputs)

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        """Shapes of :attr:`outputs`, batch dimension ``None``."""
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


def _call_attribute(layer: Any) -> str:
    return "quantized_call" if getattr(layer, "quantization_mode", None) is not None else "call"


@contextlib.contextmanager
def _patched_calls(nodes: Sequence[LayerNode], calls: list[CallRecord]) -> Iterator[None]:
    """Wrap every layer's ``call`` to append a :class:`CallRecord`; undo it all on exit."""
    counts: Counter[str] = Counter()
    stack: list[CallKey] = []
    saved: list[tuple[Any, str, bool, Any]] = []

    def make_wrapper(original: Any, path: str) -> Any:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (path, counts[path])
            counts[path] += 1
            parent = stack[-1] if stack else None
            stack.append(key)
            try:
                outputs = original(*args, **kwargs)
            finally:
                stack.pop()
            calls.append(CallRecord(path, key[1], parent, _tensors((args, kwargs)), _tensors(outputs)))
            return outputs

        return wrapper

    try:
        for node in nodes:
            attribute = _call_attribute(node.layer)
            instance_dict = vars(node.layer)
            had = attribute in instance_dict
            saved.append((node.layer, attribute, had, instance_dict.get(attribute)))
            instance_dict[attribute] = make_wrapper(getattr(node.layer, attribute), node.path)
        yield
    finally:
        for layer, attribute, had, previous in reversed(saved):
            if had:
                vars(layer)[attribute] = previous
            else:
                vars(layer).pop(attribute, None)


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


def record_calls(model: Any, input_shape: Any = None, nodes: Sequence[LayerNode] | None = None) -> Recording:
    """Run ``model`` once on zeros (batch of one) and record every layer call.

    If the model (or one of its layers) is unbuilt, it is first called once without recording, which
    builds it; that only happens when the caller gave ``input_shape`` (see :func:`resolve_input_shapes`).

    Args:
        model: A Keras model of any kind.
        input_shape: See :func:`resolve_input_shapes`.
        nodes: The model's :func:`~convscope.models.tree.layer_tree`, if already computed.

    Returns:
        The recording; it holds the intermediate tensors, so drop it when done.

    Raises:
        InputError: No usable input shape, or the model fails on it.
    """
    shapes = resolve_input_shapes(model, input_shape)
    nodes = layer_tree(model) if nodes is None else nodes
    inputs = _zeros(shapes, model)
    if not getattr(model, "built", True) or not all(getattr(n.layer, "built", True) for n in nodes):
        logger.debug("building %r by one unrecorded call on %s", getattr(model, "name", model), shapes)
        _run(model, inputs)
    calls: list[CallRecord] = []
    with _patched_calls(nodes, calls):
        _run(model, inputs)
    return Recording(shapes, inputs, tuple(calls))


def record_output_shapes(model: Any, input_shape: Any = None) -> dict[str, list[Shape | tuple[Shape, ...]]]:
    """Output shape of every layer call: ``{path: [shape of call 0, shape of call 1, ...]}``.

    Works for every model kind, subclassed included (the model is run once on zeros). Batch dimension
    is ``None``; a call returning several tensors gives a tuple of shapes.
    """
    return record_calls(model, input_shape).output_shapes()


# --------------------------------------------------------------------------------------------------
# Receptive fields along the graph
# --------------------------------------------------------------------------------------------------

History = tuple[str, int, int]


def _tensor_refs(obj: Any) -> list[History]:
    """``(layer name, node index, tensor index)`` of every tensor in an ``inbound_nodes`` entry."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            history = obj["config"]["keras_history"]
            return [(str(history[0]), int(history[1]), int(history[2]))]
        return [ref for value in obj.values() for ref in _tensor_refs(value)]
    if isinstance(obj, (list, tuple)):
        if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int) and isinstance(obj[2], int):
            return [(obj[0], obj[1], obj[2])]  # a bare history triple (input_layers, legacy nodes)
        return [ref for value in obj for ref in _tensor_refs(value)]
    return []


def _functional_config(layer: Any) -> dict[str, Any] | None:
    import keras

    if not isinstance(layer, keras.Model) or isinstance(layer, keras.Sequential):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = layer.get_config()
    except Exception:  # noqa: BLE001 - subclassed models may not serialize
        return None
    if isinstance(config, dict) and isinstance(config.get("layers"), list) and "input_layers" in config:
        return config
    return None


def _get_layer(model: Any, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        logger.debug("layer %r of the config of %s not found on the model", name, model.name)
        return None


def _pick(fields: list[ReceptiveField | None] | None, index: int) -> ReceptiveField | None:
    if not fields:
        return None
    return fields[min(index, len(fields) - 1)]


def _approx(fields: Sequence[ReceptiveField | None]) -> list[ReceptiveField | None]:
    return [f.approximate() if f is not None else None for f in fields]


class _FieldWalker:
    """Computes the receptive field of every layer call by walking the model's graph."""

    def __init__(self, nodes: Sequence[LayerNode], recording: Recording) -> None:
        self.nodes = {n.path: n for n in nodes}
        self.path_of = {id(n.layer): n.path for n in nodes}
        self.calls = {c.key: c for c in recording.calls}
        self.children: dict[CallKey | None, list[CallRecord]] = defaultdict(list)
        for call in recording.calls:
            self.children[call.parent].append(call)
        self.next_call: Counter[str] = Counter()
        self.fields: dict[CallKey, ReceptiveField | None] = {}
        self.configs: dict[int, dict[str, Any]] = {}
        self.graphs: dict[int, dict[str, Any] | None] = {}

    def graph(self, layer: Any) -> dict[str, Any] | None:
        if id(layer) not in self.graphs:
            self.graphs[id(layer)] = _functional_config(layer)
        return self.graphs[id(layer)]

    def config(self, layer: Any) -> dict[str, Any]:
        if id(layer) not in self.configs:
            try:
                self.configs[id(layer)] = dict(layer.get_config())
            except Exception:  # noqa: BLE001 - custom layers without get_config
                self.configs[id(layer)] = {}
        return self.configs[id(layer)]

    def container(
        self,
        layer: Any,
        key: CallKey | None,
        fields: list[ReceptiveField | None],
        tensors: Sequence[Any],
        outputs: Sequence[Any],
    ) -> list[ReceptiveField | None]:
        import keras

        if isinstance(layer, keras.Sequential):
            for child in layer.layers:
                if type(child).__name__ != "InputLayer":
                    fields = self.layer(child, fields[:1])
            return fields
        config = self.graph(layer)
        if config is not None:
            return self.functional(layer, config, fields)
        logger.debug(
            "%s has no graph: tracing receptive fields through the tensors its layers exchange",
            getattr(layer, "name", layer),
        )
        return self.traced(key, fields, tensors, outputs)

    def functional(
        self, model: Any, config: dict[str, Any], fields: list[ReceptiveField | None]
    ) -> list[ReceptiveField | None]:
        produced: dict[tuple[str, int], list[ReceptiveField | None]] = {}
        for i, (name, node, _) in enumerate(_tensor_refs(config["input_layers"])):
            produced[(name, node)] = [fields[i] if i < len(fields) else None]
        pending = [
            (entry["name"] if "name" in entry else entry["config"]["name"], index, _tensor_refs(node))
            for entry in config["layers"]
            if entry.get("class_name") != "InputLayer"
            for index, node in enumerate(entry.get("inbound_nodes", []))
        ]
        while pending:
            waiting = []
            for name, index, refs in pending:
                if all((ref[0], ref[1]) in produced for ref in refs):
                    inputs = [_pick(produced[(ref[0], ref[1])], ref[2]) for ref in refs]
                    produced[(name, index)] = self.layer(_get_layer(model, name), inputs)
                else:
                    waiting.append((name, index, refs))
            if len(waiting) == len(pending):
                logger.debug("unresolved graph nodes in %s: %s", model.name, [w[:2] for w in waiting])
                break
            pending = waiting
        return [
            _pick(produced.get((name, node)), t) for name, node, t in _tensor_refs(config["output_layers"])
        ]

    def traced(
        self,
        key: CallKey | None,
        fields: list[ReceptiveField | None],
        tensors: Sequence[Any],
        outputs: Sequence[Any],
    ) -> list[ReceptiveField | None]:
        produced = {id(t): f for t, f in zip(tensors, fields)}
        last = fields[0] if fields else None
        for call in self.children.get(key, []):
            inputs = [produced[id(t)] for t in call.inputs if id(t) in produced]
            if len(inputs) < len(call.inputs) or not call.inputs:
                logger.debug(
                    "%s: input not made by a recorded layer; assuming the previous call's output", call.path
                )
                inputs = _approx([*inputs, last])
            outs = self.layer(self.nodes[call.path].layer, inputs, call.index) or [None]
            for i, tensor in enumerate(call.outputs):
                produced[id(tensor)] = _pick(outs, i)
            last = outs[0]
        if not outputs:
            return [last]
        return [
            produced[id(t)] if id(t) in produced else (last.approximate() if last else None) for t in outputs
        ]

    def layer(
        self, layer: Any, fields: list[ReceptiveField | None], index: int | None = None
    ) -> list[ReceptiveField | None]:
        path = self.path_of.get(id(layer)) if layer is not None else None
        if path is None:  # an InputLayer or a layer outside the tree: identity
            return _approx(fields[:1]) if layer is None else fields[:1]
        index = self.next_call[path] if index is None else index
        self.next_call[path] = max(self.next_call[path], index + 1)
        call = self.calls.get((path, index))
        node = self.nodes[path]
        if node.is_container or self.graph(layer) is not None:
            tensors, outputs = (call.inputs, call.outputs) if call else ((), ())
            outs = self.container(layer, (path, index), fields, tensors, outputs)
        else:
            in_shape = call.input_shapes[0] if call and call.inputs else None
            out_shape = call.output_shapes[0] if call and call.outputs else None
            outs = [propagate_field(type(layer).__name__, self.config(layer), fields, in_shape, out_shape)]
        self.fields[(path, index)] = outs[0] if outs else None
        return outs


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


def _num(value: float) -> Number:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _nums(values: Sequence[float] | None) -> tuple[Number, ...] | None:
    return None if values is None else tuple(_num(v) for v in values)


@dataclass(frozen=True)
class LayerInfo:
    """One row of the layer table: one call of one layer.

    Attributes:
        path: ``outer/inner`` path of the layer.
        class_name: Layer class, e.g. ``"Conv2D"`` (``"class"`` in :meth:`to_dict`).
        depth: Nesting depth (0 for the model's own layers).
        call: 0 for the first call of the layer, 1 for the second, ...
        output_shape: Shape of the (first) output, batch ``None``; ``None`` if the layer never ran.
        output_shapes: Shapes of all outputs.
        params: Weights of the layer (of a nested model: all its weights), counted on the first call
            only so that the top-level rows sum to the model's total.
        trainable: The layer's ``trainable`` flag.
        kernel: Kernel or pool size per spatial axis (conv-like layers only).
        strides: Strides per spatial axis (conv-like layers only).
        padding: ``'valid'``, ``'same'`` or ``'causal'`` (conv-like layers only).
        dilation: Dilation rates (convolutions only).
        rf_size: Receptive-field extent per spatial axis in input pixels; ``None`` when the output is not
            spatial or every value sees the whole input (after Flatten, Dense, global pooling).
        rf_jump: Input pixels between neighbouring output positions.
        rf_start: Centre of output position 0's field in input pixel coordinates.
        rf_exact: False when the field is an estimate (see :class:`~convscope.models.arith.ReceptiveField`).
    """

    path: str
    class_name: str
    depth: int
    call: int
    output_shape: Shape | None
    output_shapes: tuple[Shape, ...]
    params: int
    trainable: bool
    kernel: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None
    padding: str | None = None
    dilation: tuple[int, ...] | None = None
    rf_size: tuple[Number, ...] | None = None
    rf_jump: tuple[Number, ...] | None = None
    rf_start: tuple[Number, ...] | None = None
    rf_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists; ``class_name`` is stored as ``class``)."""
        data = asdict(self)
        data = {"path": data.pop("path"), "class": data.pop("class_name"), **data}
        return {k: _jsonable(v) for k, v in data.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect_model` found.

    Attributes:
        name: The model's name.
        kind: ``'sequential'``, ``'functional'`` or ``'subclassed'``.
        input_shape: Shape of the (first) model input, batch ``None``.
        input_shapes: Shapes of all model inputs.
        layers: One row per layer call, depth-first (a nested model before its layers).
        total_params: All weights of the model (``model.count_params()``).
        trainable_params: Trainable weights.
    """

    name: str
    kind: str
    input_shape: Shape
    input_shapes: tuple[Shape, ...]
    layers: tuple[LayerInfo, ...]
    total_params: int
    trainable_params: int
    notes: tuple[str, ...] = field(default=())

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as JSON-able dicts (keys as in :class:`LayerInfo`, ``class`` for the class name)."""
        return [row.to_dict() for row in self.layers]

    def find(self, path: str, call: int = 0) -> LayerInfo:
        """The row of ``path`` (its ``call``-th call).

        Raises:
            LayerNotFound: No such layer or call; the message suggests near paths.
        """
        for row in self.layers:
            if row.path == path and row.call == call:
                return row
        paths = list(dict.fromkeys(r.path for r in self.layers))
        raise LayerNotFound(
            f"no layer call {path!r} #{call} in {self.name!r}; did you mean {nearest(path, paths)}?"
        )


def _params(layer: Any, config: dict[str, Any], call: CallRecord | None) -> int:
    if getattr(layer, "built", False):
        with contextlib.suppress(Exception):
            return int(layer.count_params())
    if call is not None and call.inputs:
        counted = param_count(type(layer).__name__, config, call.input_shapes[0])
        if counted is not None:
            return counted
    return 0


def _rows(nodes: Sequence[LayerNode], recording: Recording, walker: _FieldWalker) -> list[LayerInfo]:
    by_path: dict[str, list[CallRecord]] = defaultdict(list)
    for record in recording.calls:
        by_path[record.path].append(record)
    rows = []
    for node in nodes:
        config = walker.config(node.layer)
        class_name = type(node.layer).__name__
        geometry = layer_geometry(class_name, config)
        shown = geometry if geometry is not None and geometry.kind in ("conv", "transpose", "pool") else None
        calls: list[CallRecord | None] = [*sorted(by_path[node.path], key=lambda c: c.index)] or [None]
        for call in calls:
            index = call.index if call else 0
            rf = walker.fields.get((node.path, index))
            shapes = call.output_shapes if call else ()
            rows.append(
                LayerInfo(
                    path=node.path,
                    class_name=class_name,
                    depth=node.depth,
                    call=index,
                    output_shape=shapes[0] if shapes else None,
                    output_shapes=shapes,
                    params=_params(node.layer, config, call) if index == 0 else 0,
                    trainable=bool(getattr(node.layer, "trainable", True)),
                    kernel=shown.kernel if shown else None,
                    strides=shown.strides if shown else None,
                    padding=shown.padding if shown else None,
                    dilation=shown.dilation if shown and shown.kind != "pool" else None,
                    rf_size=_nums(rf.size) if rf else None,
                    rf_jump=_nums(rf.jump) if rf else None,
                    rf_start=_nums(rf.start) if rf else None,
                    rf_exact=rf.exact if rf else (node.is_container or is_known_layer(class_name)),
                )
            )
    return rows


def _kind(model: Any, walker: _FieldWalker) -> str:
    import keras

    if isinstance(model, keras.Sequential):
        return "sequential"
    return "functional" if walker.graph(model) is not None else "subclassed"


def inspect_model(model: Any, input_shape: Any = None) -> ModelInfo:
    """Build the layer table of ``model``: shapes, parameters, geometry and receptive fields.

    The model is run once on zeros (batch of one); nothing about it is changed, except that an unbuilt
    model given ``input_shape`` gets built by that call.

    Args:
        model: A Keras 3 model: Sequential, Functional, with nested models, or subclassed.
        input_shape: One sample's shape, e.g. ``(32, 32, 3)``; required when the model declares no
            inputs (unbuilt Sequential, subclassed) or has unknown input sizes.

    Returns:
        The table as a frozen :class:`ModelInfo`.

    Raises:
        InputError: The input shape is missing or does not fit the model.
    """
    nodes = layer_tree(model)
    recording = record_calls(model, input_shape, nodes)
    walker = _FieldWalker(nodes, recording)
    kind = _kind(model, walker)
    notes: list[str] = []
    if kind == "subclassed":
        notes.append(
            "subclassed model: receptive fields follow the tensors passed between layers "
            "(rf_exact=False where they had to be guessed from call order)"
        )
        logger.debug("model %r is subclassed: %s", model.name, notes[-1])
    roots = [ReceptiveField.identity(len(s) - 2) if len(s) >= 3 else None for s in recording.input_shapes]
    walker.container(model, None, roots, recording.inputs, ())
    rows = _rows(nodes, recording, walker)
    total = int(model.count_params()) if model.built else sum(r.params for r in rows if r.depth == 0)
    trainable = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
    return ModelInfo(
        name=model.name,
        kind=kind,
        input_shape=recording.input_shapes[0],
        input_shapes=recording.input_shapes,
        layers=tuple(rows),
        total_params=total,
        trainable_params=trainable,
        notes=tuple(notes),
    )


def _fmt_shape(shape: Shape | None) -> str:
    return "-" if shape is None else "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _fmt_axes(values: Sequence[Number] | None, sep: str = "x") -> str:
    return "-" if values is None else sep.join(str(v) for v in values)


def format_table(info: ModelInfo) -> str:
    """The layer table as aligned plain text (one line per layer call, totals at the end).

    A ``~`` after a receptive field marks an estimate (``rf_exact`` False); ``-`` means not applicable
    (for ``rf``: the output is not spatial or sees the whole input).
    """
    header = ("layer", "class", "output shape", "params", "kernel/stride/dil", "pad", "rf", "jump", "start")
    lines = [header]
    for row in info.layers:
        label = (
            "  " * row.depth + row.path.rsplit("/", 1)[-1] + (f" (call {row.call + 1})" if row.call else "")
        )
        geometry = (
            "-"
            if row.kernel is None
            else "/".join(
                _fmt_axes(v) for v in (row.kernel, row.strides, row.dilation or (1,) * len(row.kernel))
            )
        )
        mark = "" if row.rf_exact or row.rf_size is None else "~"
        lines.append(
            (
                label,
                row.class_name,
                _fmt_shape(row.output_shape),
                f"{row.params:,}",
                geometry,
                row.padding or "-",
                _fmt_axes(row.rf_size) + mark,
                _fmt_axes(row.rf_jump),
                _fmt_axes(row.rf_start, ","),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3}
    text = [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))
        ).rstrip()
        for line in lines
    ]
    rule = "-" * len(max(text, key=len))
    inputs = ", ".join(_fmt_shape(s) for s in info.input_shapes)
    footer = [
        (
            f"Total params: {info.total_params:,} (trainable {info.trainable_params:,}, "
            f"non-trainable {info.total_params - info.trainable_params:,})"
        ),
        f"Input: {inputs}   model: {info.name} ({info.kind})",
    ]
    return "\n".join([text[0], rule, *text[1:], rule, *footer, *info.notes])
