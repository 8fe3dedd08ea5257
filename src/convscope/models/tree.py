"""The layer tree: every layer of a model, nested ones included, with a stable path.

Paths join layer names with ``/`` from the outermost model down, e.g. ``backbone/block3_conv2``.
Children of a :class:`keras.Model` are its ``.layers``; children of any other layer are the layers it
holds as attributes (or in lists/tuples/dicts of attributes), in assignment order. Input layers are left
out: they are never called when the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, eq=False)
class LayerNode:
    """One layer of the tree.

    Attributes:
        path: ``outer/inner`` path, unique within the model.
        layer: The Keras layer object itself (never modified by convscope).
        depth: 0 for the model's direct layers, 1 for layers inside a nested model, and so on.
        index: Position in the depth-first listing (0-based), usable as a selector.
        parent: Path of the containing layer, or ``None`` at the top.
        children: Paths of direct sub-layers (empty for a leaf layer).
    """

    path: str
    layer: Any
    depth: int
    index: int
    parent: str | None
    children: tuple[str, ...] = field(default=())

    @property
    def class_name(self) -> str:
        """The layer's class name, e.g. ``"Conv2D"``."""
        return type(self.layer).__name__

    @property
    def is_container(self) -> bool:
        """True if the layer holds other layers (a nested model or a composite layer)."""
        return bool(self.children)


def _is_input_layer(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"


def _direct_children(layer: Any) -> list[Any]:
    import keras

    if isinstance(layer, keras.Model):
        return [child for child in layer.layers if not _is_input_layer(child)]
    found: list[Any] = []
    for value in vars(layer).values():
        items = (
            value.values()
            if isinstance(value, dict)
            else value
            if isinstance(value, (list, tuple))
            else [value]
        )
        for item in items:
            if isinstance(item, keras.layers.Layer) and item is not layer and not _is_input_layer(item):
                found.append(item)
    return found


def layer_tree(model: Any) -> list[LayerNode]:
    """List every layer of ``model`` depth-first (a container comes before its children).

    Args:
        model: A Keras model (Sequential, Functional or subclassed) or any layer holding sub-layers.

    Returns:
        The nodes in depth-first order; ``node.index`` is the position in this list.
    """
    nodes: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(layer: Any, prefix: str, depth: int, parent: str | None) -> str | None:
        if id(layer) in seen:  # a layer reachable twice (shared) is listed once, where first met
            return None
        seen.add(id(layer))
        path = f"{prefix}{layer.name}"
        taken = {n["path"] for n in nodes}
        if path in taken:  # same name twice among siblings: make the path unique
            k = 1
            while f"{path}#{k}" in taken:
                k += 1
            path = f"{path}#{k}"
        entry: dict[str, Any] = {
            "path": path,
            "layer": layer,
            "depth": depth,
            "parent": parent,
            "children": [],
        }
        nodes.append(entry)
        for child in _direct_children(layer):
            child_path = visit(child, f"{path}/", depth + 1, path)
            if child_path is not None:
                entry["children"].append(child_path)
        return path

    for top in _direct_children(model):
        visit(top, "", 0, None)
    return [
        LayerNode(n["path"], n["layer"], n["depth"], i, n["parent"], tuple(n["children"]))
        for i, n in enumerate(nodes)
    ]
