"""Extractors built once per (model, layer set) and reused, and the model's own predictions through them."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope.models.predictions import Prediction
from convscope.models.resolve import ResolvedModel
from convscope.probe.extractor import Extractor
from convscope.probe.select import Selector

_EXTRACTORS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Extractor]] = weakref.WeakKeyDictionary()


def get_extractor(
    model: Any,
    layers: Sequence[Selector] | Selector | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    include_output: bool = False,
    batch_size: int = 32,
) -> Extractor:
    """Return the cached extractor for (model, layer set), building and compiling it on first use.

    Args:
        model: A ``keras.Model`` or a :class:`~convscope.models.resolve.ResolvedModel`.
        layers: Layer selectors (``None``: every conv layer).
        input_shape: One sample's shape, for an unbuilt model.
        include_output: Also return the model's output under ``Extractor.OUTPUT_KEY``.
        batch_size: Rows per forward pass.
    """
    if isinstance(model, ResolvedModel):
        model = model.model
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


def model_output(model: Any, x: Any, *, batch_size: int = 32) -> np.ndarray:
    """The model's own output for ``x`` ``(N, ...)``, in batches, through the cached compiled extractor."""
    extractor = get_extractor(model, [-1], include_output=True, batch_size=batch_size)
    return np.asarray(extractor(x)[Extractor.OUTPUT_KEY])


def predict(resolved: ResolvedModel, x: Any, k: int = 5, *, batch_size: int = 32) -> list[Prediction]:
    """Top-``k`` classes of every input, named and scored as every surface shows them.

    Args:
        resolved: The resolved model (its class names name the classes).
        x: Model input ``(N, ...)`` (already preprocessed, e.g. ``resolved.load_inputs(...).x``).
        k: Classes per input.

    Returns:
        One :class:`~convscope.models.predictions.Prediction` per input.
    """
    return resolved.predictions(model_output(resolved, x, batch_size=batch_size), k)


__all__ = ["get_extractor", "model_output", "predict"]
