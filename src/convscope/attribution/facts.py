"""What attribution needs to know about a model, from one eager probe pass on one sample.

:func:`analyze` runs the model once (batch of one, inference mode, every layer recorded) and keeps: the
per-sample output shape of every layer, the order the leaf layers ran in, the model's output shape and
the layer applying the output softmax, if any. The result is cached per (model, sample shape). From it,
:meth:`ModelFacts.target_layer` resolves the layer to explain — a user selector, or automatically the
last spatial layer that feeds the classifier head.
"""

from __future__ import annotations

import logging
import warnings
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope import backend
from convscope.errors import AttributionError
from convscope.models.capture import recording
from convscope.models.spec import data_format
from convscope.models.tree import LayerNode, layer_tree
from convscope.probe.select import Selector, select_layers

log = logging.getLogger(__name__)

#: Layers skipped when choosing the target layer automatically: they only resample, regularize or pad the
#: features of the layer before them (Grad-CAM explains the last *feature* layer, e.g. the last conv).
_PASSTHROUGH = (
    "MaxPooling",
    "AveragePooling",
    "Dropout",
    "GaussianNoise",
    "ActivityRegularization",
    "ZeroPadding",
    "Cropping",
    "Identity",
)

_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], ModelFacts]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class OutputSoftmax:
    """The layer that applies the model's output softmax.

    Attributes:
        path: Its path.
        layer: The layer object.
        kind: ``"activation"`` (a Dense/Conv with ``activation=softmax``) or ``"layer"`` (a ``Softmax`` or
            ``Activation('softmax')`` layer).
    """

    path: str
    layer: Any
    kind: str


def _is_softmax(fn: Any) -> bool:
    return getattr(fn, "__name__", "") == "softmax"


def _softmax_of(node: LayerNode) -> OutputSoftmax | None:
    if node.class_name == "Softmax" or (
        node.class_name == "Activation" and _is_softmax(node.layer.activation)
    ):
        return OutputSoftmax(node.path, node.layer, "layer")
    if _is_softmax(getattr(node.layer, "activation", None)):
        return OutputSoftmax(node.path, node.layer, "activation")
    return None


@dataclass(frozen=True, eq=False)
class ModelFacts:
    """Shapes and structure of a model as seen by one forward pass.

    Attributes:
        name: The model's name.
        tree: The layer tree.
        shapes: ``{path: per-sample shape}`` of the first output of each layer's first call.
        calls: ``{path: number of calls}`` in one forward pass.
        order: Paths of the leaf layers (not containers) in the order their calls completed.
        output_shape: Per-sample shape of the model's output.
        softmax: The layer applying the output softmax, or ``None``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    name: str
    tree: tuple[LayerNode, ...]
    shapes: dict[str, tuple[int, ...]]
    calls: dict[str, int]
    order: tuple[str, ...]
    output_shape: tuple[int, ...]
    softmax: OutputSoftmax | None
    data_format: str

    @property
    def n_classes(self) -> int | None:
        """Length of a ``(N, K)`` output, else ``None``."""
        return self.output_shape[0] if len(self.output_shape) == 1 else None

    def spatial_size(self, path: str) -> tuple[int, int] | None:
        """``(h, w)`` of a layer with a 2D spatial output (per-sample rank 3), else ``None``."""
        shape = self.shapes.get(path)
        if shape is None or len(shape) != 3:
            return None
        return (shape[1], shape[2]) if self.data_format == "channels_first" else (shape[0], shape[1])

    def channels(self, path: str) -> int:
        """Channel count of a spatial layer."""
        shape = self.shapes[path]
        return shape[0] if self.data_format == "channels_first" else shape[-1]

    def spatial_paths(self) -> list[str]:
        """Every called layer (containers included) with a 2D spatial output, in model order."""
        return [n.path for n in self.tree if self.spatial_size(n.path) is not None]

    def _describe_spatial(self) -> str:
        paths = self.spatial_paths()
        shown = ", ".join(paths[-12:])
        return f"... {shown} ({len(paths)} in all)" if len(paths) > 12 else shown

    def _is_class_map(self, path: str, position: int) -> bool:
        """A spatial layer whose channels are the classes, followed by weight-free layers only."""
        if self.n_classes is None or self.channels(path) != self.n_classes:
            return False
        by_path = {n.path: n for n in self.tree}
        return not any(by_path[p].layer.weights for p in self.order[position + 1 :])

    def auto_layer(self) -> LayerNode:
        """The last leaf layer with a spatial output that feeds the classifier head.

        Walking back from the last spatial leaf layer, pooling / dropout / padding layers are skipped (they
        only resample the features before them), and so is a class map: a spatial layer with as many
        channels as there are classes that only weight-free layers follow (a 1x1 "logits" conv of an
        all-convolutional or MobileNetV3-style head). Maps of size 1x1 are never chosen.

        Raises:
            AttributionError: The model has no layer with a spatial 2D output.
        """
        by_path = {n.path: n for n in self.tree}
        candidates = [
            (i, p)
            for i, p in enumerate(self.order)
            if (size := self.spatial_size(p)) is not None and size[0] * size[1] > 1
        ]
        if not candidates:
            raise AttributionError(
                f"model {self.name!r} has no layer with a 2D spatial output (N, H, W, C) larger than 1x1; "
                "CAM methods need one — use method='saliency', 'smoothgrad' or 'integrated_gradients'"
            )
        for position, path in reversed(candidates):
            node = by_path[path]
            if any(word in node.class_name for word in _PASSTHROUGH) or self._is_class_map(path, position):
                log.debug("auto layer: skipping %s (%s)", path, node.class_name)
                continue
            return node
        log.warning("auto layer: every spatial layer looks like a class map; using %s", candidates[-1][1])
        return by_path[candidates[-1][1]]

    def target_layer(self, selector: Selector | None) -> LayerNode:
        """Resolve the layer to explain: ``None`` for :meth:`auto_layer`, else a selector naming one layer.

        Raises:
            LayerNotFound: The selector matches no layer.
            AttributionError: It matches several layers, a layer that never runs, or a layer whose output
                is not a 2D spatial map (the message lists the spatial layers).
        """
        node = self.auto_layer() if selector is None else None
        if node is None:
            nodes = select_layers(list(self.tree), selector, model_name=self.name)
            if len(nodes) != 1:
                raise AttributionError(
                    f"layer selector {selector!r} matches {len(nodes)} layers "
                    f"({', '.join(n.path for n in nodes[:8])}); name exactly one"
                )
            node = nodes[0]
        if node.path not in self.shapes:
            raise AttributionError(
                f"layer {node.path!r} is never called when model {self.name!r} runs; "
                f"layers with spatial outputs: {self._describe_spatial()}"
            )
        if self.spatial_size(node.path) is None:
            raise AttributionError(
                f"layer {node.path!r} ({node.class_name}) has output shape (N, "
                f"{', '.join(map(str, self.shapes[node.path]))}), not a 2D spatial map (N, H, W, C); "
                f"layers with spatial outputs: {self._describe_spatial() or 'none'}"
            )
        if self.calls.get(node.path, 1) > 1:
            log.warning(
                "layer %s is called %d times per forward pass; explaining its first call",
                node.path,
                self.calls[node.path],
            )
        return node


def _probe(model: Any, x1: np.ndarray) -> ModelFacts:
    import keras

    tree = layer_tree(model)
    positions: list[int] = []

    def body(call: Any, inputs: Any) -> Any:
        record: list[tuple[int, Any]] = []
        with recording([n.layer for n in tree], record), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            output = call(inputs)
        positions[:] = [p for p, _ in record]  # trace-time side effect
        return tuple(keras.tree.flatten(value)[0] for _, value in record), tuple(keras.tree.flatten(output))

    b = backend.get()
    # JAX dispatches eager ops one by one (each compiled on first use): one jitted pass is ~10x faster.
    run = b.compile_run(model, body, compile=backend.current() == "jax")
    firsts, flat_out = run(keras.ops.convert_to_tensor(x1))
    if len(flat_out) != 1:
        raise AttributionError(
            f"model {model.name!r} has {len(flat_out)} outputs; attribution needs a "
            "single-output model (or a sub-model with one output)"
        )
    output = np.asarray(b.to_numpy(flat_out[0]))
    shapes: dict[str, tuple[int, ...]] = {}
    calls: Counter[str] = Counter()
    order: list[str] = []
    softmax: OutputSoftmax | None = None
    for position, first in zip(positions, firsts):
        node = tree[position]
        calls[node.path] += 1
        if calls[node.path] > 1:
            continue
        shapes[node.path] = tuple(int(d) for d in first.shape[1:])
        if node.is_container:
            continue
        order.append(node.path)
        if (
            softmax is None
            and shapes[node.path] == output.shape[1:]
            and np.array_equal(np.asarray(b.to_numpy(first)), output, equal_nan=True)
        ):
            softmax = _softmax_of(node)
    return ModelFacts(
        name=model.name,
        tree=tuple(tree),
        shapes=shapes,
        calls=dict(calls),
        order=tuple(order),
        output_shape=tuple(int(d) for d in output.shape[1:]),
        softmax=softmax,
        data_format=data_format(model),
    )


def analyze(model: Any, x: np.ndarray) -> ModelFacts:
    """The :class:`ModelFacts` of ``model`` for samples shaped like ``x[0]`` (probed once, then cached)."""
    key = tuple(int(d) for d in x.shape[1:])
    try:
        per_model = _CACHE.setdefault(model, {})
    except TypeError:
        per_model = {}
    if key not in per_model:
        per_model[key] = _probe(model, np.ascontiguousarray(x[:1]))
        facts = per_model[key]
        log.debug(
            "probed %s for input %s: %d layers, output %s, softmax %s",
            facts.name,
            key,
            len(facts.shapes),
            facts.output_shape,
            facts.softmax and facts.softmax.path,
        )
    return per_model[key]


__all__ = ["ModelFacts", "OutputSoftmax", "analyze"]
