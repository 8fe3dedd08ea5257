"""Temporary, traced-pass-only changes to layer instances, always undone in ``finally``.

Like :mod:`convscope.models.capture`, a replacement is placed in the layer instance's ``__dict__`` (shadowing
the class attribute, or replacing the instance attribute) for the duration of one forward pass, which may
be a ``tf.function`` / ``jax.jit`` trace; the previous state is put back afterwards. The layer's weights,
name and class are never touched.

* :func:`perturbed` makes a layer return ``out + delta`` on its first call and records ``out``: the gradient
  of any score with respect to ``delta`` (a zeros tensor passed as a differentiation variable) is the
  gradient with respect to the layer's activation, uniformly on every backend.
* :func:`recorded` only records the first call's output (forward-only passes).
* :func:`logits_view` removes an output softmax (see :class:`~convscope.attribution.facts.OutputSoftmax`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

_MISSING = object()


def call_attribute(layer: Any) -> str:
    """The method ``Layer.__call__`` dispatches to (``quantized_call`` for a quantized layer)."""
    return "quantized_call" if getattr(layer, "quantization_mode", None) is not None else "call"


@contextmanager
def replaced(layer: Any, attribute: str, value: Any) -> Iterator[None]:
    """Set ``layer.__dict__[attribute] = value`` for the block; restore the previous state in ``finally``."""
    state = vars(layer)
    previous = state.get(attribute, _MISSING)
    state[attribute] = value
    try:
        yield
    finally:
        if previous is _MISSING:
            state.pop(attribute, None)
        else:
            state[attribute] = previous


def _first_call(layer: Any, record: list[Any], delta: Any | None) -> Callable[..., Any]:
    original = getattr(layer, call_attribute(layer))

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if record:  # a shared layer called again: leave later calls alone
            return out
        record.append(out)
        if delta is None:
            return out
        import keras

        # under mixed precision the layer computes in float16 while delta is float32: add in the output's dtype
        return out + (
            delta
            if keras.backend.standardize_dtype(delta.dtype) == keras.backend.standardize_dtype(out.dtype)
            else keras.ops.cast(delta, out.dtype)
        )

    return wrapper


@contextmanager
def perturbed(layer: Any, delta: Any, record: list[Any]) -> Iterator[None]:
    """Make ``layer``'s first call return ``out + delta`` and append ``out`` to ``record``.

    Args:
        layer: A Keras layer (or nested model) with a single tensor output.
        delta: Zeros of the output's shape (or broadcastable to it), the variable to differentiate with
            respect to.
        record: Receives the layer's output (the activation ``A``).
    """
    with replaced(layer, call_attribute(layer), _first_call(layer, record, delta)):
        yield


@contextmanager
def recorded(layer: Any, record: list[Any]) -> Iterator[None]:
    """Append the output of ``layer``'s first call to ``record``; the output itself is unchanged."""
    with replaced(layer, call_attribute(layer), _first_call(layer, record, None)):
        yield


def _identity_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def identity(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return inputs

    return identity


@contextmanager
def logits_view(squashes: Any) -> Iterator[None]:
    """Run the block with the given output softmax/sigmoid layers removed (no-op for an empty tuple).

    Args:
        squashes: :class:`~convscope.attribution.facts.OutputSoftmax` items (``None`` = one): each either
            a layer whose ``activation`` is softmax/sigmoid (Dense/Conv; swapped for ``linear``), or a
            ``Softmax`` / ``Activation`` layer (its call returns its input).
    """
    items = [] if squashes is None else [squashes] if not isinstance(squashes, (tuple, list)) else squashes
    with ExitStack() as stack:
        for softmax in dict.fromkeys(s for s in items if s is not None):
            import keras

            layer = softmax.layer
            if softmax.kind == "activation":
                stack.enter_context(replaced(layer, "activation", keras.activations.linear))
            else:
                attribute = call_attribute(layer)
                stack.enter_context(replaced(layer, attribute, _identity_call(getattr(layer, attribute))))
        yield
