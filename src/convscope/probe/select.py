"""Layer selection: by path, bare name, index, glob on paths, or class.

Selectors, tried in this order:

* an exact path, ``backbone/block3_conv2``;
* an integer (or digit string) index into the depth-first layer list (negative counts from the end);
* a bare layer name that is unique in the model, ``block3_conv2``;
* a glob on paths, ``block3_*`` or ``backbone/*conv*``;
* a class: ``class:Conv2D``, ``class:Conv*`` (glob on class names), or a bare class name present in the
  model such as ``Conv2D``.

``None`` selects every convolution layer (class name containing ``Conv``), the default.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from convscope.errors import LayerNotFound, nearest
from convscope.models.tree import LayerNode

Selector = str | int
_INDEX = re.compile(r"-?[0-9]+", re.ASCII)


def is_conv(node: LayerNode) -> bool:
    """True for convolution layers (Conv1D/2D/3D, Separable, Depthwise, Transpose), not containers."""
    return not node.is_container and "Conv" in node.class_name


def _match_one(selector: Selector, nodes: Sequence[LayerNode], model_name: str) -> list[LayerNode]:
    by_path = {n.path: n for n in nodes}
    if isinstance(selector, int) or (isinstance(selector, str) and _INDEX.fullmatch(selector)):
        index = int(selector) if isinstance(selector, int) or len(selector) <= 19 else None
        if index is not None and -len(nodes) <= index < len(nodes):
            return [nodes[index]]
        shown = index if index is not None and abs(index) < 10**18 else "with more than 18 digits"
        raise LayerNotFound(
            f"layer index {shown} is out of range for model {model_name!r}: "
            f"valid indices are 0..{len(nodes) - 1} (or -{len(nodes)}..-1)"
        )
    text = str(selector).strip()
    if text in by_path:
        return [by_path[text]]
    named = [n for n in nodes if n.path.rsplit("/", 1)[-1] == text]
    if len(named) == 1:
        return named
    if len(named) > 1:
        raise LayerNotFound(
            f"layer name {text!r} is ambiguous in model {model_name!r}; use a full path: "
            + ", ".join(n.path for n in named)
        )
    if text.startswith(("class:", "type:")):
        pattern = text.split(":", 1)[1]
        hits = [n for n in nodes if fnmatch.fnmatchcase(n.class_name, pattern)]
        if hits:
            return hits
        classes = sorted({n.class_name for n in nodes})
        raise LayerNotFound(
            f"no layer of class {pattern!r} in model {model_name!r}; classes present: {', '.join(classes)}"
        )
    if any(ch in text for ch in "*?["):
        hits = [n for n in nodes if fnmatch.fnmatchcase(n.path, text)]
        if hits:
            return hits
    hits = [n for n in nodes if n.class_name == text]
    if hits:
        return hits
    suggestions = nearest(text, [n.path for n in nodes])
    raise LayerNotFound(
        f"no layer {text!r} in model {model_name!r}; nearest valid paths: {', '.join(suggestions)} "
        "(list them all with `convscope inspect MODEL`)"
    )


def select_layers(
    nodes: Sequence[LayerNode], selectors: Sequence[Selector] | Selector | None, *, model_name: str = "model"
) -> list[LayerNode]:
    """Resolve selectors to layer nodes, in model order, without duplicates.

    Args:
        nodes: The model's layer tree (``layer_tree(model)``).
        selectors: One selector, a list of them, or ``None`` for every conv layer.
        model_name: Used in error messages.

    Returns:
        The selected nodes, ordered as in ``nodes``.

    Raises:
        LayerNotFound: A selector matches nothing; the message lists the nearest valid paths.
    """
    if selectors is None:
        chosen = [n for n in nodes if is_conv(n)]
        if not chosen:
            raise LayerNotFound(
                f"model {model_name!r} has no convolution layer; choose layers explicitly, e.g. "
                + ", ".join(n.path for n in list(nodes)[:5])
            )
        return chosen
    if isinstance(selectors, (str, int)):
        selectors = [selectors]
    picked: dict[int, LayerNode] = {}
    for selector in selectors:
        for node in _match_one(selector, nodes, model_name):
            picked[node.index] = node
    return [picked[i] for i in sorted(picked)]
