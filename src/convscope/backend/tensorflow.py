"""TensorFlow backend: compile the probe with ``tf.function``.

Keras accepts any layer or model name except one with ``/`` (``my model (v2)``, ``conv "a" <b>``), and
opens a TensorFlow name scope with it on every call. Eagerly that is free, but inside a ``tf.function``
trace TensorFlow accepts only ``[A-Za-z0-9_./-]`` in node names and refuses the rest. So while
convscope traces one of its functions, graph name scopes opened in that thread replace the characters
TensorFlow refuses by ``_`` (:func:`lenient_scopes`): only op names inside convscope's own graphs
change; the user's model and layers keep their names.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_REFUSED = re.compile(r"[^A-Za-z0-9_./-]")  # what TensorFlow accepts in a function's node names
_ROOT_START = re.compile(r"[A-Za-z0-9.]")


def scope_name(name: Any, *, root: bool) -> Any:
    """``name`` made acceptable as a TensorFlow graph scope name (anything else returned unchanged).

    Args:
        name: A scope name as Keras passes it (a layer or model name, possibly ending in ``/``).
        root: The scope opens at the graph's root, where the first character is restricted further.
    """
    if not isinstance(name, str) or not name:
        return name
    safe = _REFUSED.sub("_", name)
    if root and not _ROOT_START.match(safe):
        safe = "x" + safe
    return safe


_state = threading.local()
_lock = threading.Lock()
_installed: list[Any] = []  # [original Graph.name_scope, number of traces using the lenient one]


@contextmanager
def lenient_scopes() -> Iterator[None]:
    """While tracing in this thread, graph name scopes accept every Keras name (see module doc).

    ``Graph.name_scope`` is replaced for the duration (reference-counted across threads, restored by
    the last one out in ``finally``); the replacement changes names only for the thread inside this
    block and behaves exactly as the original everywhere else.
    """
    from tensorflow.python.framework import ops

    with _lock:
        if not _installed:
            original = ops.Graph.__dict__["name_scope"]

            def name_scope(graph: Any, name: Any) -> Any:
                if getattr(_state, "depth", 0):
                    name = scope_name(name, root=not graph._name_stack)
                return original(graph, name)

            ops.Graph.name_scope = functools.wraps(original)(name_scope)
            _installed[:] = [original, 0]
        _installed[1] += 1
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        with _lock:
            _installed[1] -= 1
            if not _installed[1]:
                ops.Graph.name_scope = _installed[0]
                _installed.clear()


def _traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` compiled with ``tf.function``, its graph made lenient about names at trace time."""
    import tensorflow as tf

    @functools.wraps(fn)
    def traced(*args: Any) -> Any:
        with lenient_scopes():
            return fn(*args)

    return tf.function(traced, reduce_retracing=True, autograph=False)


def compile_run(
    model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True
) -> Callable[[Any], Any]:
    """Return ``run(inputs)`` evaluating ``body`` with ``model`` in inference mode.

    Args:
        model: The Keras model (read, never modified).
        body: ``body(call, inputs)``; ``call(inputs)`` runs the model with ``training=False``.
        compile: Wrap in ``tf.function`` (traced once per input signature; batch sizes share a trace
            thanks to ``reduce_retracing``).
    """

    def call(inputs: Any) -> Any:
        return model(inputs, training=False)

    def run(inputs: Any) -> Any:
        return body(call, inputs)

    if not compile:
        return run
    return _traced(run)


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
    return _traced(run)
