"""JAX backend: compile the probe with ``jax.jit`` over ``model.stateless_call``.

The weights are passed as arguments of the jitted function (not closed over as constants), so the
compiled program is small, compiles fast, and always sees the model's current weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_run(model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True) -> Callable[[Any], Any]:
    """Return ``run(inputs)`` evaluating ``body`` with ``model`` in inference mode (see package doc)."""
    import jax

    def pure(trainable: list[Any], non_trainable: list[Any], inputs: Any) -> Any:
        def call(x: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return outputs

        return body(call, inputs)

    fn = jax.jit(pure) if compile else pure

    def run(inputs: Any) -> Any:
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        return fn(trainable, non_trainable, inputs)

    return run


def to_numpy(tensor: Any) -> Any:
    """A numpy view of a CPU jax array's buffer (no copy; read-only)."""
    import numpy as np

    return np.asarray(tensor)
