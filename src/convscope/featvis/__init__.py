"""Feature visualization (activation maximization), split as the algorithm is.

* :mod:`~convscope.featvis.param`: what is optimized (pixels, or a decorrelated 1/f Fourier spectrum)
  and how it becomes an image in [0, 1] and then the model's input range.
* :mod:`~convscope.featvis.transforms`: random jitter / scale / rotation each step (robustness).
* :mod:`~convscope.featvis.objectives`: what is maximized, composable with ``+ - *``; strings such as
  ``"conv_1:7 + 0.5*conv_0:3"`` via :func:`parse_objective`.
* :mod:`~convscope.featvis.optimize`: Adam with gradients from :mod:`convscope.backend`, compiled once.

Example::

    from convscope.featvis import maximize, maximize_channels
    res = maximize_channels(model, "conv_1", "64", steps=128)   # 64 channels, one batched optimization
    res.to_grid().save("conv_1.png")
    res = maximize(model, "logit:3 - 0.05*tv")

Works on TensorFlow, JAX and torch (``keras.ops`` throughout); the model is never modified.
"""

from __future__ import annotations

from convscope.featvis.evaluate import objective_values
from convscope.featvis.geometry import ValueMap
from convscope.featvis.objectives import (
    Objective,
    as_objective,
    channel,
    channels,
    class_logit,
    l2,
    layer_mean,
    neuron,
    total_variation,
)
from convscope.featvis.optimize import clear_cache, maximize, maximize_channels
from convscope.featvis.param import FourierParam, Param, PixelParam, color_sqrt
from convscope.featvis.parse import parse_objective
from convscope.featvis.result import MaxResult
from convscope.featvis.transforms import (
    Compose,
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    affine_sample,
    standard_transforms,
)

__all__ = [
    "Compose",
    "FourierParam",
    "Jitter",
    "MaxResult",
    "Objective",
    "Pad",
    "Param",
    "PixelParam",
    "RandomRotate",
    "RandomScale",
    "ValueMap",
    "affine_sample",
    "as_objective",
    "channel",
    "channels",
    "class_logit",
    "clear_cache",
    "color_sqrt",
    "l2",
    "layer_mean",
    "maximize",
    "maximize_channels",
    "neuron",
    "objective_values",
    "parse_objective",
    "standard_transforms",
    "total_variation",
]
