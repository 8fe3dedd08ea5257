"""convscope: see inside any Keras 3 CNN.

Importing this package is light: TensorFlow/Keras load only when a function that needs them is called.

Example:
    >>> import convscope
    >>> acts = convscope.activations("model.keras", "digit.png")   # {layer path: (N, ...) array}
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "activations": "convscope.api",
    "get_extractor": "convscope.api",
    "inspect": "convscope.api",
    "render": "convscope.api",
    "load_model": "convscope.models.load",
    "inspect_model": "convscope.models.inspect",
    "Extractor": "convscope.probe.extractor",
    "errors": "convscope.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    mod = importlib.import_module(module)
    return mod if name == "errors" else getattr(mod, name)


def __dir__() -> list[str]:
    return __all__
