"""Measurements over data that say why a CNN fails: dataset shift, representation similarity, channel importance.

Built on the streaming scan (memory independent of the dataset size), each statistic exact and mergeable:

* :func:`compare`: per channel and layer, how one model's activations differ between two datasets
  (train vs held-out, clean vs corrupted, site A vs site B), ranked, with each channel's top images;
* :func:`similarity`: the layer x layer linear CKA matrix of one model with itself, two checkpoints or
  two models, over a dataset in minibatches (unbiased HSIC);
* :func:`ablate`: the causal effect of removing each channel of a layer on every class logit and on
  accuracy, computed from the layer onward with the channels folded into the batch.

Example:
    >>> from convscope.diagnose import compare, similarity
    >>> shift = compare("mnist-cnn", "clean.npy", "noisy.npy", out="shift-out")
    >>> cka = similarity("seed0.keras", "mnist", model_b="seed1.keras", out="cka-out")
    >>> cka.matrix                                    # (layers of A, layers of B)
    >>> importance = ablate("mnist-cnn", "mnist", layer="conv_1", out="ablate-out")
    >>> importance.top_channels(3)                    # channels whose removal hurts digit 3 most

Importing this package is light (numpy only); Keras loads when a measurement runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "compare": "convscope.diagnose.compare_run",
    "CompareResult": "convscope.diagnose.compare_result",
    "load_compare": "convscope.diagnose.compare_result",
    "LayerShift": "convscope.diagnose.shift",
    "similarity": "convscope.diagnose.similarity_run",
    "SimilarityResult": "convscope.diagnose.similarity_result",
    "load_similarity": "convscope.diagnose.similarity_result",
    "HsicAccumulator": "convscope.diagnose.cka",
    "linear_cka": "convscope.diagnose.cka",
    "ablate": "convscope.diagnose.ablation",
    "AblationResult": "convscope.diagnose.ablate_result",
    "load_ablation": "convscope.diagnose.ablate_result",
    "AblationAccumulator": "convscope.diagnose.ablate_stats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope.diagnose' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
