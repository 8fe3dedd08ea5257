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

The work is split in three modules: :mod:`convscope.models.record` (input shapes and the recorded
call), :mod:`convscope.models.fields` (the receptive-field walk) and this one (the rows and the table).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from convscope.errors import LayerNotFound, nearest
from convscope.models.arith import ReceptiveField, Shape, is_known_layer, layer_geometry, param_count
from convscope.models.fields import FieldWalker
from convscope.models.record import (
    CallRecord,
    Recording,
    record_calls,
    record_output_shapes,
    resolve_input_shapes,
)
from convscope.models.tree import LayerNode, layer_tree
from convscope.render.display import dims, html_card, one_line, short

logger = logging.getLogger(__name__)

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

    def __repr__(self) -> str:
        shape = "-" if self.output_shape is None else dims(self.output_shape)
        rf = "" if self.rf_size is None else f"rf={dims(self.rf_size)}{'' if self.rf_exact else '~'}"
        call = f"call={self.call}" if self.call else ""
        return one_line(
            "LayerInfo",
            f"path={short(self.path)!r}",
            call,
            f"class={short(self.class_name, 32)}",
            f"output={shape}",
            f"params={self.params:,}",
            rf,
        )


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

    def __repr__(self) -> str:
        inputs = ", ".join(dims(shape) for shape in self.input_shapes[:2])
        more = f" +{len(self.input_shapes) - 2}" if len(self.input_shapes) > 2 else ""
        return one_line(
            "ModelInfo",
            f"name={short(self.name)!r}",
            f"kind={self.kind}",
            f"input={inputs}{more}",
            f"layers={len(self.layers)}",
            f"params={self.total_params:,}",
        )

    def _repr_html_(self) -> str:
        """The model's facts over the layer table as ``convscope inspect`` prints it (escaped text)."""
        rows = [
            ("model", self.name),
            ("kind", self.kind),
            ("input", ", ".join(dims(shape) for shape in self.input_shapes)),
            ("layer calls", len(self.layers)),
            ("params", f"{self.total_params:,} (trainable {self.trainable_params:,})"),
        ]
        rows += [("note", note) for note in self.notes]
        return html_card(f"ModelInfo {self.name}", rows, pre=("layer table", format_table(self)))


def _params(layer: Any, config: dict[str, Any], call: CallRecord | None) -> int:
    if getattr(layer, "built", False):
        with contextlib.suppress(Exception):
            return int(layer.count_params())
    if call is not None and call.inputs:
        counted = param_count(type(layer).__name__, config, call.input_shapes[0])
        if counted is not None:
            return counted
    return 0


def _rows(nodes: Sequence[LayerNode], recording: Recording, walker: FieldWalker) -> list[LayerInfo]:
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


def _kind(model: Any, walker: FieldWalker) -> str:
    import keras

    if isinstance(model, keras.Sequential):
        return "sequential"
    return "functional" if walker.graph(model) is not None else "subclassed"


def inspect_model(model: Any, input_shape: Any = None, *, unknown_sizes: bool = False) -> ModelInfo:
    """Build the layer table of ``model``: shapes, parameters, geometry and receptive fields.

    The model is run once on zeros (batch of one); nothing about it is changed, except that an unbuilt
    model given ``input_shape`` gets built by that call.

    Args:
        model: A Keras 3 model: Sequential, Functional, with nested models, or subclassed.
        input_shape: One sample's shape, e.g. ``(32, 32, 3)``; required when the model declares no
            inputs (unbuilt Sequential, subclassed), or has unknown input sizes and ``unknown_sizes`` is
            false.
        unknown_sizes: Accept input sizes the model leaves free (``Input((None, None, 3))``): sizes that
            follow them are ``None`` in the table; parameters, kernels, strides and receptive-field sizes
            and jumps do not need them (field starts after ``same`` padding with stride > 1 do: those
            are estimates, ``rf_exact=False``).

    Returns:
        The table as a frozen :class:`ModelInfo`.

    Raises:
        InputError: The input shape is missing or does not fit the model.
    """
    nodes = layer_tree(model)
    recording = record_calls(model, input_shape, nodes, unknown_sizes=unknown_sizes)
    walker = FieldWalker(nodes, recording)
    kind = _kind(model, walker)
    notes: list[str] = []
    if kind == "subclassed":
        notes.append(
            "subclassed model: receptive fields follow the tensors passed between layers "
            "(rf_exact=False where they had to be guessed from call order)"
        )
        logger.debug("model %r is subclassed: %s", model.name, notes[-1])
    if any(d is None for s in recording.input_shapes for d in s[1:]):
        notes.append(
            "input sizes are free (None): sizes that follow them are None; receptive-field sizes and jumps do "
            "not depend on them (a ~ marks a field whose start does)"
        )
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


def format_axes(values: Sequence[Number] | None) -> str:
    """Per-axis values as the layer table shows them everywhere (``inspect``, the report, the explorer).

    ``(3, 3)`` -> ``"3x3"``, ``(1.5, 1.0)`` -> ``"1.5x1"`` (floats in their shortest form), ``None`` -> ``"-"``.
    """
    if values is None:
        return "-"
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


_fmt_axes = format_axes


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
                _fmt_axes(row.rf_start),
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
