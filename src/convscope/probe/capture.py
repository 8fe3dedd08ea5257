"""Capture layer outputs while the whole model runs.

Keras 3 has no forward hooks. A layer's ``__call__`` ends in ``self.call(...)``; for the duration of one
forward pass we place a recording wrapper in the layer instance's ``__dict__`` (shadowing the class
method), and remove it in ``finally``. Nothing else about the layer changes and nothing remains after
the pass. This is the one route that works for every model kind — Sequential, Functional, layers inside
nested sub-models, subclassed models, and a layer called several times (each call is recorded).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_MISSING = object()


@contextmanager
def recording(layers: Sequence[Any], record: list[tuple[int, Any]]) -> Iterator[None]:
    """Record ``(position in layers, output)`` for every call of each layer while the block runs.

    Args:
        layers: The layers to watch (Keras layer objects).
        record: A list the outputs are appended to, in call order.
    """
    patched: list[tuple[Any, Any]] = []
    try:
        for position, layer in enumerate(layers):
            state = vars(layer)
            previous = state.get("call", _MISSING)
            original = layer.call

            def wrapper(*args: Any, __original: Any = original, __pos: int = position, **kwargs: Any) -> Any:
                out = __original(*args, **kwargs)
                record.append((__pos, out))
                return out

            state["call"] = wrapper
            patched.append((layer, previous))
        yield
    finally:
        for layer, previous in reversed(patched):
            state = vars(layer)
            if previous is _MISSING:
                state.pop("call", None)
            else:
                state["call"] = previous
