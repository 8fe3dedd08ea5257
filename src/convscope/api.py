"""The Python entry points: ``activations`` and friends.

Example:
    >>> import convscope
    >>> acts = convscope.activations("mnist-cnn", "digit.png")            # every conv layer
    >>> acts["conv_1"].shape
    (1, 24, 24, 64)
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope.errors import InputError
from convscope.probe.extractor import Extractor
from convscope.probe.select import Selector

log = logging.getLogger(__name__)

_EXTRACTORS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Extractor]] = weakref.WeakKeyDictionary()


def get_extractor(
    model: Any,
    layers: Sequence[Selector] | Selector | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    include_output: bool = False,
    batch_size: int = 32,
) -> Extractor:
    """Return the cached extractor for (model, layer set), building and compiling it on first use."""
    key = (tuple(layers) if isinstance(layers, (list, tuple)) else layers, include_output, batch_size)
    try:
        per_model = _EXTRACTORS.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        per_model = {}
    if key not in per_model:
        per_model[key] = Extractor(
            model, layers, input_shape=input_shape, include_output=include_output, batch_size=batch_size
        )
    return per_model[key]


@dataclass(frozen=True, eq=False)
class MultiInputs:
    """Inputs of a multi-input model: one array per model input (taken as already preprocessed)."""

    x: list[np.ndarray]
    names: tuple[str, ...]
    display: tuple[None, ...]
    sources: tuple[str, ...]
    preprocess: str


def model_spec(model: Any, input_shape: tuple[int, ...] | None = None) -> Any:
    """The :class:`~convscope.data.InputSpec` of a single-input model (or of ``input_shape``)."""
    from convscope.data import InputSpec
    from convscope.models.spec import data_format, input_shapes

    shapes = input_shapes(model)
    if input_shape is not None:
        shape = tuple(input_shape)
    elif shapes:
        if len(shapes) > 1:
            raise InputError(
                f"model {model.name!r} has {len(shapes)} inputs; pass a list of {len(shapes)} arrays "
                "(images are only converted for single-input models)"
            )
        shape = shapes[0]
    else:
        raise InputError(
            f"the input shape of model {model.name!r} is unknown (subclassed or unbuilt model); "
            "pass input_shape=(H, W, C) (CLI: --input-shape H,W,C)"
        )
    return InputSpec(shape=shape, data_format=data_format(model), name=model.name)


def load_inputs_for(model: Any, inputs: Any, *, preprocess: Any = None, input_shape: tuple[int, ...] | None = None,
                    by_size: bool = False) -> Any:
    """Read/convert ``inputs`` (paths, folders, arrays) into a :class:`~convscope.data.Inputs` for ``model``.

    With ``by_size``, a list of them instead: one batch per input size (for a model that leaves sizes free).
    """
    from convscope.data import Preprocess, load_input_groups, load_inputs

    if model_inputs_count(model) > 1:
        if not (isinstance(inputs, (list, tuple)) and all(isinstance(a, np.ndarray) for a in inputs)):
            raise InputError(
                f"model {model.name!r} has {model_inputs_count(model)} inputs; pass a list of that many "
                f"arrays (N, ...), one per input, got {type(inputs).__name__}"
            )
        n = len(inputs[0]) if inputs else 0
        multi = MultiInputs(x=[np.asarray(a) for a in inputs], names=tuple(f"sample{i}" for i in range(n)),
                            display=(None,) * n, sources=("array",) * n, preprocess="arrays taken as-is")
        return [multi] if by_size else multi
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    spec = model_spec(model, input_shape)
    if by_size:
        return load_input_groups(items, spec, preprocess or Preprocess())
    return load_inputs(items, spec, preprocess or Preprocess())


def model_inputs_count(model: Any) -> int:
    """How many input tensors ``model`` takes (1 when unknown)."""
    from convscope.models.spec import input_shapes

    shapes = input_shapes(model)
    return len(shapes) if shapes else 1


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
        model: A ``keras.Model``, a ``.keras``/``.h5`` path, or a zoo name such as ``"mnist-cnn"``.
        inputs: Image paths, folders, ``.npy``/``.npz`` paths, or arrays (already-preprocessed model
            input, ``(N, ...)`` or one sample); a list of arrays for a multi-input model.
        layers: Layer selectors (path, index, glob, class); ``None`` = every conv layer.
        input_shape: One sample's shape, for unbuilt or subclassed models (taken from ``inputs`` when it
            is an array: then it must be a batch ``(N, ...)``).
        preprocess: A :class:`~convscope.data.Preprocess` for image files (default: pixels to [0, 1]).
        batch_size: Rows per forward pass (bounds memory).
        safe_mode: Keras safe mode when loading a file.
        custom_objects: Custom classes for loading a file: {"Name": Class}, or the .py file defining them.

    Returns:
        ``{layer path: array (N, ...)}``, exactly as the model computes them, inputs in order.
    """
    from convscope.models.load import load_model

    from convscope.models.spec import input_shapes

    keras_model = load_model(model, safe_mode=safe_mode, custom_objects=custom_objects)
    if input_shape is None and isinstance(inputs, np.ndarray) and inputs.ndim >= 2 and not input_shapes(keras_model):
        input_shape = tuple(inputs.shape[1:])  # subclassed/unbuilt model: an array is a batch (N, ...)
    data = load_inputs_for(keras_model, inputs, preprocess=preprocess, input_shape=input_shape)
    extractor = get_extractor(keras_model, layers, input_shape=input_shape, batch_size=batch_size)
    return extractor(data.x)


def inspect(model: Any, *, input_shape: tuple[int, ...] | None = None, safe_mode: bool = True) -> Any:
    """The layer table of a model (path, class, shape, params, receptive field)."""
    from convscope.models.inspect import inspect_model
    from convscope.models.load import load_model

    return inspect_model(load_model(model, safe_mode=safe_mode), input_shape=input_shape, unknown_sizes=True)


__all__ = ["activations", "get_extractor", "inspect", "load_inputs_for", "model_spec"]
