"""Backend interface: the few functions that differ between TensorFlow, JAX and torch.

Each backend module (``tensorflow.py``, ``jax.py``, ``torch.py``) provides the same function:

``compile_run(model, body, *, compile=True) -> Callable[[inputs], Any]``
    Wrap ``body(call, inputs)`` — where ``call(inputs)`` runs ``model`` in inference mode — into a
    function that is compiled where the backend allows (``tf.function``, ``jax.jit``) and returns
    backend tensors. Model weights are read at call time, never baked in, so a model that keeps
    training (e.g. under a callback) is probed with its current weights.

``value_and_grad(model, fn, *, compile=True) -> Callable[[list, *others], (value, aux, grads)]``
    ``fn(call, wrt, *others) -> (scalar, aux)`` is differentiated with respect to the list ``wrt``
    (``call(inputs)`` runs the model in inference mode); returns the scalar, ``aux`` (any tensors
    ``fn`` wants back, not differentiated) and the gradients, one per ``wrt`` entry. Compiled with
    ``tf.function`` / ``jax.jit`` where allowed; torch uses autograd eagerly.

``to_numpy(tensor) -> np.ndarray``
    The tensor as numpy without copying where the backend allows (the array may be read-only).

The module is chosen once, from ``keras.backend.backend()``.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def current() -> str:
    """Name of the active Keras backend (``"tensorflow"``, ``"jax"`` or ``"torch"``)."""
    import keras

    return keras.backend.backend()


def get() -> ModuleType:
    """Return the convscope backend module matching the active Keras backend."""
    name = current()
    if name not in {"tensorflow", "jax", "torch"}:
        from convscope.errors import ConvscopeError

        raise ConvscopeError(
            f"Keras backend {name!r} is not supported; use KERAS_BACKEND=tensorflow, jax or torch"
        )
    return importlib.import_module(f"convscope.backend.{name}")
