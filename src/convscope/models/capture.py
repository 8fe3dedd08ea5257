"""Capture layer outputs while the whole model runs.

Keras 3 has no forward hooks. A layer's ``__call__`` ends in ``self.call(...)`` (``self.quantized_call``
for a quantized layer); for the duration of one forward pass we place a recording wrapper in the layer
instance's ``__dict__`` (shadowing the class method), and remove it in ``finally``, putting back any
instance attribute that was there before. Nothing else about the layer changes and nothing remains after
the pass. This is the one route that works for every model kind — Sequential, Functional, layers inside
nested sub-models, subclassed models, and a layer called several times (each call is recorded).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True, eq=False)
class LayerCall:
    """One call recorded by ``recording(..., with_inputs=True)``.

    Attributes:
        position: The layer's position in the watched ``layers``.
        index: 0 for the layer's first call in the block, 1 for the second, ...
        parent: ``(position, index)`` of the watched call this one ran inside, ``None`` if none.
        args: The positional arguments the call received.
        kwargs: Its keyword arguments.
        output: What it returned.
    """

    position: int
    index: int
    parent: tuple[int, int] | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any


def _call_attribute(layer: Any) -> str:
    """The method ``Layer.__call__`` dispatches to."""
    return "quantized_call" if getattr(layer, "quantization_mode", None) is not None else "call"


@contextmanager
def recording(
    layers: Sequence[Any],
    record: list[tuple[int, Any]] | list[LayerCall],
    *,
    with_inputs: bool = False,
) -> Iterator[None]:
    """Record every call of each layer while the block runs, in order of completion.

    Args:
        layers: The layers to watch (Keras layer objects).
        record: A list to append to: ``(position in layers, output)`` per call, or a :class:`LayerCall`
            per call when ``with_inputs`` is true.
        with_inputs: Also record each call's arguments and how the calls nest.
    """
    counts: Counter[int] = Counter()
    stack: list[tuple[int, int]] = []

    def watch(original: Callable[..., Any], position: int) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = (position, counts[position])
            counts[position] += 1
            parent = stack[-1] if stack else None
            stack.append(key)
            try:
                out = original(*args, **kwargs)
            finally:
                stack.pop()
            entry = LayerCall(position, key[1], parent, args, kwargs, out) if with_inputs else (position, out)
            record.append(entry)  # type: ignore[arg-type]
            return out

        return wrapper

    patched: list[tuple[Any, str, Any]] = []
    try:
        for position, layer in enumerate(layers):
            attribute = _call_attribute(layer)
            state = vars(layer)
            previous = state.get(attribute, _MISSING)
            state[attribute] = watch(getattr(layer, attribute), position)
            patched.append((layer, attribute, previous))
        yield
    finally:
        for layer, attribute, previous in reversed(patched):
            state = vars(layer)
            if previous is _MISSING:
                state.pop(attribute, None)
            else:
                state[attribute] = previous
