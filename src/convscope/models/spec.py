"""What a model expects as input: shapes and data format, for every model kind."""

from __future__ import annotations

from typing import Any, Literal

from convscope.errors import InputError

DataFormat = Literal["channels_last", "channels_first"]


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


def data_format(model: Any) -> DataFormat:
    """``channels_first`` if the model's first layer with a ``data_format`` says so, else ``channels_last``."""
    from convscope.models.tree import layer_tree

    for node in layer_tree(model):
        fmt = getattr(node.layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return "channels_first" if fmt == "channels_first" else "channels_last"
    import keras

    return "channels_first" if keras.config.image_data_format() == "channels_first" else "channels_last"


def ensure_built(model: Any, input_shape: tuple[int, ...] | None) -> Any:
    """Return a model that can run: ``model`` itself, built from ``input_shape`` if it was unbuilt.

    Building creates the weights Keras would create on the model's first call; nothing else changes.
    One Keras 3 trap is handled without renaming anything: an unbuilt Sequential whose first layer is
    named ``input_layer`` (a Keras 2 tutorial habit) cannot build, because its automatic InputLayer takes
    the same name. Then a Functional view over the *same layer objects* (same weights, same names) is
    returned; the user's Sequential object is left as it was.

    Raises:
        InputError: The model is unbuilt and no input shape was given.
    """
    if model.built:
        return model
    if input_shape is None:
        raise InputError(
            f"model {model.name!r} is not built (it has never been called), so its input shape is unknown; "
            "pass input_shape=(H, W, C) (CLI: --input-shape H,W,C)"
        )
    import keras
    import numpy as np

    try:
        model(np.zeros((1, *input_shape), dtype="float32"), training=False)
    except ValueError as exc:
        if not (isinstance(model, keras.Sequential) and "is used 2 times" in str(exc)):
            raise
        inputs = keras.Input(tuple(input_shape), name="convscope_input")
        x = inputs
        for layer in model.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=model.name)
    return model
