"""Torch backend: eager execution under ``torch.no_grad()``.

``torch.compile`` is not used: on CPU its compile time (tens of seconds) dwarfs the forward pass of the
models convscope probes, and graph breaks at the capture points would undo most of its gain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_run(
    model: Any, body: Callable[[Callable[[Any], Any], Any], Any], *, compile: bool = True
) -> Callable[[Any], Any]:
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


def value_and_grad(model: Any, fn: Callable[..., Any], *, compile: bool = True) -> Callable[..., Any]:
    """``run(wrt, *others) -> (value, aux, grads)`` with ``torch.autograd.grad`` (see package doc).

    Only the ``wrt`` tensors require gradients; the model's weights are left untouched (their
    ``requires_grad`` flags are switched off for the pass and restored in ``finally``) so no gradient
    is accumulated into the user's model.
    """
    import torch

    def call(inputs: Any) -> Any:
        return model(inputs, training=False)

    def run(wrt: list[Any], *others: Any) -> Any:
        leaves = [torch.as_tensor(w).detach().clone().requires_grad_(True) for w in wrt]
        params = [v.value for v in model.variables if isinstance(v.value, torch.nn.Parameter)]
        flags = [p.requires_grad for p in params]
        try:
            for p in params:
                p.requires_grad_(False)
            with torch.enable_grad():
                value, aux = fn(call, leaves, *others)
                grads = torch.autograd.grad(value, leaves, allow_unused=True)
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)
        zeroed = [torch.zeros_like(w) if g is None else g for w, g in zip(leaves, grads)]
        aux = torch.utils._pytree.tree_map(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, aux)
        return value.detach(), aux, zeroed

    return run
