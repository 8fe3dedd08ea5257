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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from convscope import backend
from convscope.attribution.targets import OutputInfo, class_output
from convscope.errors import AttributionError, ConvscopeError
from convscope.models.capture import recording
from convscope.models.spec import data_format
from convscope.models.tokens import TokenGrid, token_grid
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
    """The layer that applies an output's softmax (or sigmoid): bypassed to explain logits.

    Attributes:
        path: Its path.
        layer: The layer object.
        kind: ``"activation"`` (a Dense/Conv with ``activation=softmax``) or ``"layer"`` (a ``Softmax`` or
            ``Activation('softmax')`` layer).
    """

    path: str
    layer: Any
    kind: str


#: Output squashing functions explained through their input (the logits).
_SQUASH = ("softmax", "sigmoid")


def _is_squash(fn: Any) -> bool:
    return getattr(fn, "__name__", "") in _SQUASH


def _softmax_of(node: LayerNode) -> OutputSoftmax | None:
    if node.class_name == "Softmax" or (
        node.class_name == "Activation" and _is_squash(node.layer.activation)
    ):
        return OutputSoftmax(node.path, node.layer, "layer")
    if _is_squash(getattr(node.layer, "activation", None)):
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
        outputs: The model's outputs (flattened order): names and per-sample shapes.
        squashes: Per output, the layer applying its softmax/sigmoid, or ``None``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    name: str
    tree: tuple[LayerNode, ...]
    shapes: dict[str, tuple[int, ...]]
    calls: dict[str, int]
    order: tuple[str, ...]
    outputs: tuple[OutputInfo, ...]
    squashes: tuple[OutputSoftmax | None, ...]
    data_format: str

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Per-sample shape of the class output (the only output of a single-output model)."""
        return self.outputs[self.class_index].shape

    @property
    def class_index(self) -> int:
        """Index of the output ``top1`` explains (the first ``(N, K)`` one of a multi-output model)."""
        try:
            return class_output(self.outputs)
        except AttributionError:
            return 0

    @property
    def softmax(self) -> OutputSoftmax | None:
        """The squashing layer of the class output, or ``None``."""
        return self.squashes[self.class_index]

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

    def _pixel_classes(self, shape: tuple[int, ...]) -> int:
        """Classes per pixel of a ``(H, W, K)`` output (``0`` for other shapes)."""
        if len(shape) != 3:
            return 0
        return shape[0] if self.data_format == "channels_first" else shape[-1]

    def spatial_paths(self) -> list[str]:
        """Every called layer (containers included) with a 2D spatial output, in model order."""
        return [n.path for n in self.tree if self.spatial_size(n.path) is not None]

    def token_grid(self, path: str, given: tuple[int, int] | None = None) -> TokenGrid | None:
        """The ``h x w`` grid of a token layer (per-sample ``(T, C)``), or ``None`` (see :mod:`convscope.models.tokens`).

        Raises:
            OptionError: ``given`` does not fit the layer's token count.
        """
        shape = self.shapes.get(path)
        if shape is None or len(shape) != 2 or shape[0] < 2:
            return None
        return token_grid(shape[0], [size for _, size in self._grids_before(path)], given)

    def grid_layer(self, path: str, grid: TokenGrid) -> str:
        """The spatial layer whose positions a token grid's tokens are (the patch embedding), or ``""``."""
        for p, size in self._grids_before(path):
            if size == (grid.h, grid.w):
                return p
        return ""

    def _grids_before(self, path: str) -> list[tuple[str, tuple[int, int]]]:
        """``(path, (h, w))`` of the spatial leaf layers that ran before ``path``, latest first."""
        end = self.order.index(path) if path in self.order else len(self.order)
        found = [(p, size) for p in self.order[:end] if (size := self.spatial_size(p)) is not None]
        return found[::-1]

    def _auto_token_layer(self) -> LayerNode | None:
        """The token layer to explain in a model with token layers (ViT-style), or ``None``.

        The patch tokens of the last block's output often do not reach a class-token head at all, so the
        layer chosen is the last token layer that runs before the last attention layer completes (the input
        of the last attention block, as pytorch-grad-cam advises for ViTs); without attention, the last one.
        """
        by_path = {n.path: n for n in self.tree}
        tokens = [i for i, p in enumerate(self.order) if self._safe_grid(p) is not None]
        if not tokens:
            return None
        blocks = [n.path for n in self.tree if "Attention" in n.class_name]  # containers or leaves
        attention = [
            i for i, p in enumerate(self.order) if any(p == b or p.startswith(b + "/") for b in blocks)
        ]
        if attention and any(i < attention[-1] for i in tokens):
            tokens = [i for i in tokens if i < attention[-1]]
        return by_path[self.order[tokens[-1]]]

    def _safe_grid(self, path: str) -> TokenGrid | None:
        try:
            return self.token_grid(path)
        except ConvscopeError:
            return None

    def _describe_spatial(self) -> str:
        paths = self.spatial_paths()
        shown = ", ".join(paths[-12:])
        return f"... {shown} ({len(paths)} in all)" if len(paths) > 12 else shown

    def _is_class_map(self, path: str, position: int) -> bool:
        """A spatial layer whose channels are the classes of an output (a class vector, or the classes per
        pixel of a segmentation output), followed by weight-free layers only."""
        counts = {o.shape[0] if len(o.shape) == 1 else self._pixel_classes(o.shape) for o in self.outputs}
        if self.channels(path) not in counts:
            return False
        by_path = {n.path: n for n in self.tree}
        return not any(by_path[p].layer.weights for p in self.order[position + 1 :])

    def auto_fallbacks(self, chosen: str, limit: int = 6) -> list[LayerNode]:
        """Earlier feature layers to try when the automatic layer does not reach the explained output (a
        head branch of another output): the spatial leaf layers before ``chosen``, latest first, without
        pass-through layers."""
        by_path = {n.path: n for n in self.tree}
        end = self.order.index(chosen) if chosen in self.order else len(self.order)
        found = [
            by_path[p]
            for p in self.order[:end]
            if (size := self.spatial_size(p)) is not None
            and size[0] * size[1] > 1
            and not any(word in by_path[p].class_name for word in _PASSTHROUGH)
        ]
        return found[::-1][:limit]

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
        tokens = self._auto_token_layer()
        if tokens is not None:
            return tokens
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

    def target_layer(self, selector: Selector | None, tokens: tuple[int, int] | None = None) -> LayerNode:
        """Resolve the layer to explain: ``None`` for :meth:`auto_layer`, else a selector naming one layer.

        A token layer ``(N, T, C)`` is accepted when its tokens form a grid (found, or ``tokens=(h, w)``).

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
        if self.spatial_size(node.path) is None and self.token_grid(node.path, tokens) is None:
            shape = self.shapes[node.path]
            hint = (
                f"; its {shape[0]} tokens form no grid I can find: give one with --tokens HxW (tokens=(h, w))"
                if len(shape) == 2
                else ""
            )
            raise AttributionError(
                f"layer {node.path!r} ({node.class_name}) has output shape (N, "
                f"{', '.join(map(str, shape))}), not a 2D spatial map (N, H, W, C){hint}; "
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
    keys: list[str] = []

    def body(call: Any, inputs: Any) -> Any:
        record: list[tuple[int, Any]] = []
        with recording([n.layer for n in tree], record), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            output = call(inputs)
        positions[:] = [p for p, _ in record]  # trace-time side effects
        keys[:] = output_keys(output)
        return tuple(keras.tree.flatten(value)[0] for _, value in record), tuple(keras.tree.flatten(output))

    b = backend.get()
    # JAX dispatches eager ops one by one (each compiled on first use): one jitted pass is ~10x faster.
    run = b.compile_run(model, body, compile=backend.current() == "jax")
    firsts, flat_out = run(keras.ops.convert_to_tensor(x1))
    values = [np.asarray(b.to_numpy(o)) for o in flat_out]
    infos = _output_infos(model, keys, values)
    shapes: dict[str, tuple[int, ...]] = {}
    calls: Counter[str] = Counter()
    order: list[str] = []
    squashes: list[OutputSoftmax | None] = [None] * len(values)
    for position, first in zip(positions, firsts):
        node = tree[position]
        calls[node.path] += 1
        if calls[node.path] > 1:
            continue
        shapes[node.path] = tuple(int(d) for d in first.shape[1:])
        if node.is_container:
            continue
        order.append(node.path)
        for j, output in enumerate(values):
            if (
                squashes[j] is None
                and shapes[node.path] == output.shape[1:]
                and np.array_equal(np.asarray(b.to_numpy(first)), output, equal_nan=True)
            ):
                squashes[j] = _softmax_of(node)
    infos = tuple(
        replace(info, squash=_squash_name(sq)) if sq is not None else info
        for info, sq in zip(infos, squashes)
    )
    return ModelFacts(
        name=model.name,
        tree=tuple(tree),
        shapes=shapes,
        calls=dict(calls),
        order=tuple(order),
        outputs=infos,
        squashes=tuple(squashes),
        data_format=data_format(model),
    )


def _squash_name(squash: OutputSoftmax) -> str:
    layer = squash.layer
    if squash.kind == "layer" and type(layer).__name__ == "Softmax":
        return "softmax"
    return str(getattr(getattr(layer, "activation", None), "__name__", ""))


def output_keys(output: Any) -> list[str]:
    """The keys of a dict output in flattened order (``keras.tree.flatten`` sorts them), else ``[]``."""
    return [str(k) for k in sorted(output)] if isinstance(output, dict) else []


def _output_infos(model: Any, keys: list[str], values: list[np.ndarray]) -> tuple[OutputInfo, ...]:
    layer_names = [str(n) for n in (getattr(model, "output_names", None) or [])]
    if len(layer_names) != len(values):
        layer_names = (
            [getattr(model.layers[-1], "name", "output")] if len(values) == 1 and model.layers else []
        )
    infos = []
    for j, value in enumerate(values):
        alias = layer_names[j] if j < len(layer_names) else f"output_{j}"
        name = keys[j] if len(keys) == len(values) else alias
        aliases = tuple(dict.fromkeys(a for a in (alias, f"output_{j}", str(j)) if a != name))
        infos.append(OutputInfo(name, aliases, tuple(int(d) for d in value.shape[1:])))
    return tuple(infos)


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
            [(o.name, o.shape) for o in facts.outputs],
            [s and s.path for s in facts.squashes],
        )
    return per_model[key]


__all__ = ["ModelFacts", "OutputSoftmax", "analyze"]
