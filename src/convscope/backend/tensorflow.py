"""TensorFlow backend: compile the probe with ``tf.function``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_run(model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True) -> Callable[[Any], Any]:
    """Return ``run(inputs)`` evaluating ``body`` with ``model`` in inference mode.

    Args:
        model: The Keras model (read, never modified).
        body: ``body(call, inputs)``; ``call(inputs)`` runs the model with ``training=False``.
        compile: Wrap in ``tf.function`` (traced once per input signature; batch sizes share a trace
            thanks to ``reduce_retracing``).
    """
    import tensorflow as tf

    def call(inputs: Any) -> Any:
        return model(inputs, training=False)

    def run(inputs: Any) -> Any:
        return body(call, inputs)

    if not compile:
        return run
    return tf.function(run, reduce_retracing=True, autograph=False)


def to_numpy(tensor: Any) -> Any:
    """A numpy view of an eager tensor's buffer (no copy; may be read-only)."""
    import numpy as np

    return np.asarray(tensor)


def value_and_grad(model: Any, fn: Callable[..., Any], *, compile: bool = True) -> Callable[..., Any]:
    """``run(wrt, *others) -> (value, aux, grads)`` with a ``GradientTape`` (see package doc)."""
    import tensorflow as tf

    def call(inputs: Any) -> Any:
        return model(inputs, training=False)

    def run(wrt: list[Any], *others: Any) -> Any:
        wrt = [tf.convert_to_tensor(w) for w in wrt]
        with tf.GradientTape() as tape:
            for w in wrt:
                tape.watch(w)
            value, aux = fn(call, wrt, *others)
        grads = tape.gradient(value, wrt, unconnected_gradients=tf.UnconnectedGradients.NONE)
        return value, aux, grads

    if not compile:
        return run
    return tf.function(run, reduce_retracing=True, autograph=False)
