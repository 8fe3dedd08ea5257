"""JAX backend: compile the probe with ``jax.jit`` over ``model.stateless_call``.

The weights are passed as arguments of the jitted function (not closed over as constants), so the
compiled program is small, compiles fast, and always sees the model's current weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def inference_kwargs(model: Any) -> dict[str, Any]:
    """``{"training": False}`` if ``model.call`` accepts ``training``, else ``{}``.

    ``model(x, training=False)`` filters the argument itself, but ``stateless_call`` hands its keyword
    arguments straight to ``call``: a subclassed model whose ``call(self, x)`` has no ``training`` would
    raise ``TypeError``.
    """
    try:
        params = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):
        return {"training": False}
    accepts = any(p.name == "training" or p.kind is p.VAR_KEYWORD for p in params)
    return {"training": False} if accepts else {}


def compile_run(
    model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True
) -> Callable[[Any], Any]:
    """Return ``run(inputs)`` evaluating ``body`` with ``model`` in inference mode (see package doc)."""
    import jax

    kwargs = inference_kwargs(model)

    def pure(trainable: list[Any], non_trainable: list[Any], inputs: Any) -> Any:
        def call(x: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, x, **kwargs)
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


def value_and_grad(model: Any, fn: Callable[..., Any], *, compile: bool = True) -> Callable[..., Any]:
    """``run(wrt, *others) -> (value, aux, grads)`` with ``jax.value_and_grad`` (see package doc)."""
    import jax

    kwargs = inference_kwargs(model)

    def objective(wrt: list[Any], trainable: list[Any], non_trainable: list[Any], *others: Any) -> Any:
        def call(x: Any) -> Any:
            outputs, _ = model.stateless_call(trainable, non_trainable, x, **kwargs)
            return outputs

        return fn(call, wrt, *others)

    grad_fn = jax.value_and_grad(objective, argnums=0, has_aux=True)
    grad_fn = jax.jit(grad_fn) if compile else grad_fn

    def run(wrt: list[Any], *others: Any) -> Any:
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        (value, aux), grads = grad_fn(list(wrt), trainable, non_trainable, *others)
        return value, aux, grads

    return run
