"""The Python front door: ``activations``, ``predict``, ``inspect`` and friends.

Everything here is a thin call into the pipeline through one :class:`~convscope.models.resolve.ResolvedModel`
(nothing inside the package imports this module). Every function takes a model in any form: a
``keras.Model``, a ``.keras``/``.h5`` path, a zoo name, or an already resolved model (resolve once with
:func:`resolve` and pass that object around to skip loading again).

Example:
    >>> import convscope
    >>> acts = convscope.activations("mnist-cnn", "digit.png")            # every conv layer
    >>> acts["conv_1"].shape
    (1, 24, 24, 64)
    >>> convscope.predict("efficientnet-lite0", "coffee.jpg")[0].headline()
    'predicted 967 espresso (85.1%)'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope.models.predictions import Prediction
from convscope.models.resolve import MultiInputs, ResolvedModel, resolve_model
from convscope.probe.cache import get_extractor
from convscope.probe.cache import predict as _predict
from convscope.probe.select import Selector

log = logging.getLogger(__name__)


def resolve(
    model: Any,
    *,
    preprocess: Any = None,
    labels: Sequence[str] | str | None = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    custom_objects: Any = None,
) -> ResolvedModel:
    """Resolve a model once (see :func:`~convscope.models.resolve.resolve_model`)."""
    return resolve_model(
        model,
        preprocess=preprocess,
        labels=labels,
        input_shape=input_shape,
        safe_mode=safe_mode,
        custom_objects=custom_objects,
    )


def _resolve_for(
    model: Any,
    inputs: Any,
    input_shape: tuple[int, ...] | None,
    preprocess: Any,
    safe_mode: bool,
    custom_objects: Any,
) -> tuple[ResolvedModel, tuple[int, ...] | None]:
    from convscope.models.spec import input_shapes

    resolved = resolve_model(model, preprocess=preprocess, safe_mode=safe_mode, custom_objects=custom_objects)
    if (
        input_shape is None
        and isinstance(inputs, np.ndarray)
        and inputs.ndim >= 2
        and not input_shapes(resolved.model)
    ):
        input_shape = tuple(inputs.shape[1:])  # subclassed/unbuilt model: an array is a batch (N, ...)
    if input_shape is not None:
        resolved = resolve_model(resolved, input_shape=input_shape)
    return resolved, input_shape


def activations(
    model: Any,
    inputs: Any,
    layers: Sequence[Selector] | Selector | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    preprocess: Any = None,
    batch_size: int = 32,
    safe_mode: bool = True,
    custom_objects: dict[str, Any] | str | None = None,
) -> dict[str, np.ndarray]:
    """Activations of the selected layers for every input, from one forward pass per batch.

    Args:
        model: A ``keras.Model``, a ``.keras``/``.h5`` path, a zoo name such as ``"mnist-cnn"``, or a
            :class:`~convscope.models.resolve.ResolvedModel`.
        inputs: Image paths, folders, ``.npy``/``.npz`` paths, or arrays (already-preprocessed model
            input, ``(N, ...)`` or one sample); a list of arrays for a multi-input model.
        layers: Layer selectors (path, index, glob, class); ``None`` = every conv layer.
        input_shape: One sample's shape, for unbuilt or subclassed models (taken from ``inputs`` when it
            is an array: then it must be a batch ``(N, ...)``).
        preprocess: A :class:`~convscope.data.Preprocess` for image files (default: the zoo model's own,
            else pixels to [0, 1]).
        batch_size: Rows per forward pass (bounds memory).
        safe_mode: Keras safe mode when loading a file.
        custom_objects: Custom classes for loading a file: {"Name": Class}, or the .py file defining them.

    Returns:
        ``{layer key: array (N, ...)}``, exactly as the model computes them, inputs in order.
    """
    resolved, input_shape = _resolve_for(model, inputs, input_shape, preprocess, safe_mode, custom_objects)
    data = resolved.load_inputs(inputs, input_shape=input_shape)
    extractor = get_extractor(resolved, layers, input_shape=input_shape, batch_size=batch_size)
    return extractor(data.x)


def predict(
    model: Any,
    inputs: Any,
    k: int = 5,
    *,
    input_shape: tuple[int, ...] | None = None,
    preprocess: Any = None,
    batch_size: int = 32,
    safe_mode: bool = True,
) -> list[Prediction]:
    """The top-``k`` classes of each input, named and scored exactly as every convscope view shows them.

    Returns:
        One :class:`~convscope.models.predictions.Prediction` per input (``.headline()``,
        ``.best.index``, ``.best.name``, ``.best.value``).
    """
    resolved, input_shape = _resolve_for(model, inputs, input_shape, preprocess, safe_mode, None)
    data = resolved.load_inputs(inputs, input_shape=input_shape)
    return _predict(resolved, data.x, k, batch_size=batch_size)


def inspect(model: Any, *, input_shape: tuple[int, ...] | None = None, safe_mode: bool = True) -> Any:
    """The layer table of a model (path, class, shape, params, receptive field)."""
    from convscope.models.inspect import inspect_model

    resolved = resolve_model(model, input_shape=input_shape, safe_mode=safe_mode)
    return inspect_model(resolved.model, input_shape=input_shape, unknown_sizes=True)


def load_inputs_for(
    model: Any, inputs: Any, *, preprocess: Any = None, input_shape: tuple[int, ...] | None = None
) -> Any:
    """Read/convert ``inputs`` into a batch for ``model``, with the model's own preprocessing by default."""
    return resolve_model(model, preprocess=preprocess).load_inputs(inputs, input_shape=input_shape)


def model_spec(model: Any, input_shape: tuple[int, ...] | None = None) -> Any:
    """The :class:`~convscope.data.InputSpec` of a single-input model (or of ``input_shape``)."""
    return resolve_model(model).spec(input_shape)


__all__ = [
    "MultiInputs",
    "activations",
    "get_extractor",
    "inspect",
    "load_inputs_for",
    "model_spec",
    "predict",
    "resolve",
]
