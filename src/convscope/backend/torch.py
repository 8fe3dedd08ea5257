"""Torch backend: eager execution under ``torch.no_grad()``.

``torch.compile`` is not used: on CPU its compile time (tens of seconds) dwarfs the forward pass of the
models convscope probes, and graph breaks at the capture points would undo most of its gain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_run(model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True) -> Callable[[Any], Any]:
    """Return ``run(inputs)`` evaluating ``body`` with ``model`` in inference mode (see package doc)."""
    import torch

    def call(inputs: Any) -> Any:
        return model(inputs, training=False)

    def run(inputs: Any) -> Any:
        with torch.no_grad():
            return body(call, inputs)

    return run


def to_numpy(tensor: Any) -> Any:
    """The tensor's CPU buffer as numpy (no copy on CPU)."""
    return tensor.detach().cpu().numpy()
