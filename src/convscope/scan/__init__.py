"""Dataset-wide scans: per-channel statistics, top-k images with receptive-field crops, layer health.

One streaming pass over a dataset (memory independent of its size), in this process or on a Ray
cluster, with exactly mergeable statistics (so both engines give the same numbers). Results are a
folder with a versioned manifest, readable back with :func:`load_scan`.

Example:
    >>> from convscope.scan import scan, load_scan
    >>> result = scan("mnist-cnn", "mnist", out="scan-out")        # every conv layer, 5,000 digits
    >>> print(result.summary_text())
    >>> again = load_scan("scan-out")
    >>> again["conv_1"].top_index.shape                             # (64 channels, 16 images)

Importing this package is light (numpy only); Keras loads when a scan runs, Ray only for ``engine="ray"``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "scan": "convscope.scan.run",
    "ScanResult": "convscope.scan.result",
    "LayerStats": "convscope.scan.layerstats",
    "load_scan": "convscope.scan.result",
    "LayerHealth": "convscope.scan.health",
    "layer_health": "convscope.scan.health",
    "LayerAccumulator": "convscope.scan.stats",
}

__all__ = ["LayerAccumulator", "LayerHealth", "LayerStats", "ScanResult", "layer_health", "load_scan", "scan"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope.scan' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
