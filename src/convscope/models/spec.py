"""What a model expects as input: shapes and data format, for every model kind."""

from __future__ import annotations

from typing import Any

from convscope.errors import InputError


def input_shapes(model: Any) -> list[tuple[int | None, ...]] | None:
    """Per-input sample shapes (no batch axis), or ``None`` if the model has no defined inputs.

    Uses ``model.inputs`` (defined for Functional models and built/loaded Sequential models), not
    ``model.input``, which raises on Sequential models in Keras 3.
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        return None
    return [tuple(None if d is None else int(d) for d in t.shape[1:]) for t in inputs]


def data_format(model: Any) -> str:
    """``channels_first`` if the model's first layer with a ``data_format`` says so, else ``channels_last``."""
    from convscope.models.tree import layer_tree

    for node in layer_tree(model):
        fmt = getattr(node.layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return fmt
    import keras

    return keras.config.image_data_format()


def ensure_built(model: Any, input_shape: tuple[int, ...] | None) -> None:
    """Make sure ``model`` can run; an unbuilt model is built from ``input_shape`` the way its first call would.

    Building creates the weights Keras would create on the model's first call; nothing else changes.

    Raises:
        InputError: The model is unbuilt and no input shape was given.
    """
    if model.built:
        return
    if input_shape is None:
        raise InputError(
            f"model {model.name!r} is not built (it has never been called), so its input shape is unknown; "
            "pass input_shape=(H, W, C) (CLI: --input-shape H,W,C)"
        )
    import numpy as np

    model(np.zeros((1, *input_shape), dtype="float32"), training=False)
