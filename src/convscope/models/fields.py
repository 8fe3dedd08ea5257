"""Receptive fields of every layer call, by walking the model's graph, and the grid of each activation.

The walk follows the chain of a Sequential, the ``inbound_nodes`` of a Functional ``get_config()``, and
recurses into nested models. A subclassed model has no graph: its graph is traced from the tensors its
layers passed to each other in the recorded forward pass (:func:`convscope.models.record.record_calls`),
falling back to call order (flagged ``rf_exact=False``) where a tensor was made by plain code.

The grid of an activation (where its positions sit on the input) is read from the resulting layer table by
:mod:`convscope.models.grids`.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from convscope.models.arith import ReceptiveField, propagate_field
from convscope.models.record import CallKey, CallRecord, Recording
from convscope.models.tree import LayerNode

logger = logging.getLogger(__name__)

__all__ = ["FieldWalker"]


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


class FieldWalker:
    """Computes the receptive field of every layer call by walking the model's graph.

    Call :meth:`container` on the model with one field per model input; afterwards :attr:`fields` maps
    each ``(path, call index)`` to the field of its (first) output, ``None`` where it is not spatial.
    """

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
