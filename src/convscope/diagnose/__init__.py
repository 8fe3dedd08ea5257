"""Dataset-level diagnoses of a model: how much each channel matters (``ablate``), and more.

Importing this package is light (numpy only); Keras loads when a diagnosis runs.

Example:
    >>> from convscope.diagnose import ablate, load_ablation
    >>> result = ablate("mnist-cnn", "mnist", layer="conv_1", out="ablate-out")
    >>> result.top_channels(3)                      # channels whose removal hurts digit 3 most
    >>> again = load_ablation("ablate-out")
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ablate": "convscope.diagnose.ablation",
    "AblationResult": "convscope.diagnose.ablate_result",
    "load_ablation": "convscope.diagnose.ablate_result",
    "AblationAccumulator": "convscope.diagnose.ablate_stats",
}

__all__ = ["AblationAccumulator", "AblationResult", "ablate", "load_ablation"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope.diagnose' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
