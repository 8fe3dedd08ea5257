"""convscope: see inside any Keras 3 CNN.

Importing this package is light: TensorFlow/Keras load only when a function that needs them is called.

Example:
    >>> import convscope
    >>> acts = convscope.activations("model.keras", "digit.png")   # {layer path: (N, ...) array}
    >>> grid = convscope.render_activation(acts["conv_1"][0], layer="conv_1")
    >>> grid.save("conv_1.png")
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

try:
    __version__ = _metadata.version("convscope")  # one place: the package metadata (pyproject.toml)
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree never installed
    __version__ = "0+unknown"

_LAZY = {
    "activations": "convscope.api",
    "get_extractor": "convscope.api",
    "inspect": "convscope.api",
    "predict": "convscope.api",
    "resolve": "convscope.api",
    "ResolvedModel": "convscope.models.resolve",
    "load_model": "convscope.models.load",
    "inspect_model": "convscope.models.inspect",
    "Extractor": "convscope.probe.extractor",
    "render_activation": "convscope.render",
    "overlay": "convscope.render",
    "FeatureGrid": "convscope.render",
}
_SUBPACKAGES = (
    "errors",
    "render",
    "data",
    "models",
    "probe",
    "backend",
    "store",
    "present",
    "scan",
    "attribution",
    "featvis",
)

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"convscope.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
