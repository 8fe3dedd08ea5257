"""Evaluate an objective on given images (no optimization): what would this image score?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convscope import backend
from convscope.errors import InputError, OptionError
from convscope.featvis.geometry import ValueMap, resolve_geometry
from convscope.featvis.objectives import Objective
from convscope.featvis.parse import parse_objective
from convscope.featvis.taps import TapPlan, run_taps
from convscope.models.spec import data_format, ensure_built


def objective_values(
    model: Any,
    objective: Objective | str,
    images: np.ndarray,
    *,
    value_range: Sequence[float] | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    route: str | None = None,
    compile: bool | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Each image's objective value, computed exactly as :func:`~convscope.featvis.maximize` does.

    Args:
        model: The Keras model (not modified).
        objective: An objective or a string such as ``"conv_1:7 + 0.5*conv_0:3"``.
        images: float ``(B, H, W, C)`` in [0, 1]; mapped to the model's range like ``maximize`` does.
        value_range: ``(lo, hi)`` the model expects (default (0, 1)); or ``mean`` and ``std``.
        mean: See ``value_range``.
        std: See ``value_range``.
        route: Channel route (see :mod:`convscope.featvis.fastconv`); ``None`` = backend default.
        compile: Compile the evaluation; ``None`` = only under JAX, whose eager mode compiles every
            operation separately (a one-off evaluation is faster eager on TensorFlow and torch).
        input_shape: Only needed to build an unbuilt model.

    Returns:
        float32 ``(B,)``.

    Raises:
        InputError: ``images`` is not ``(B, H, W, C)`` with the model's channel count.
    """
    model = ensure_built(model, input_shape)
    if isinstance(objective, str):
        objective = parse_objective(objective, model)
    elif not isinstance(objective, Objective):
        raise OptionError(f"objective must be an Objective or a string like 'conv_1:7', got {objective!r}")
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise InputError(f"images must be (B, H, W, C) in [0, 1], got shape {x.shape}")
    sample = tuple(x.shape[1:])  # (H, W, C): a subclassed model's geometry, in the model's own layout
    if data_format(model) == "channels_first":
        sample = (sample[2], sample[0], sample[1])
    geo = resolve_geometry(model, None, x.shape[0], sample)  # for the channel count and layout
    if x.shape[-1] != geo.c:
        raise InputError(f"images have {x.shape[-1]} channels; model {model.name!r} takes {geo.c}")
    vmap = ValueMap.build(value_range, mean, std)
    plan = TapPlan.build(model, objective.needs, route=route)
    be = backend.get()

    def body(call: Any, image: Any) -> Any:
        from keras import ops

        image = ops.convert_to_tensor(image)
        xm = vmap.apply(image)
        if geo.channels_first:
            xm = ops.transpose(xm, (0, 3, 1, 2))
        return objective(run_taps(plan, call, xm, image)) + ops.zeros((x.shape[0],))

    if compile is None:
        compile = backend.current() == "jax"
    run = be.compile_run(model, body, compile=bool(compile))
    return np.array(be.to_numpy(run(x)), np.float32)
