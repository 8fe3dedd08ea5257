"""The compiled passes behind every attribution method, built once per (model, settings) and cached.

* :class:`LayerGradients` — one forward + backward pass: a layer's activation ``A`` and ``dS/dA`` (or
  ``dS/dA`` summed over the spatial positions, reduced inside the pass).
* :class:`InputGradients` — ``dS/dx`` for a batch of inputs.
* :class:`Forward` — forward only: target scores (optionally softmaxed) and optionally a layer's activation.

``S`` is the per-image target score (:func:`convscope.attribution.targets.score`); gradients are of
``sum_i S_i``, which gives every image its own gradient because images do not interact in inference mode.
Each pass is compiled by the backend module (``tf.function`` / ``jax.jit``; torch runs eagerly) and the
user's model is only patched during tracing (see :mod:`convscope.attribution.patch`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from convscope import backend
from convscope.attribution.facts import OutputSoftmax
from convscope.attribution.patch import logits_view, perturbed, recorded
from convscope.attribution.targets import TargetPlan, score

#: The output squashing layers to bypass during a pass (empty: none).
Squashes = tuple[OutputSoftmax, ...]

_ENGINES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


def cached(model: Any, key: tuple[Any, ...], factory: Callable[[], Any]) -> Any:
    """The engine stored for ``(model, key)``, built by ``factory()`` on first use."""
    try:
        per_model = _ENGINES.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return factory()
    if key not in per_model:
        per_model[key] = factory()
    return per_model[key]


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # Sequential models declare a one-element list input; a bare array is fine — hush Keras.
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        yield


def _tensor(a: np.ndarray) -> Any:
    import keras

    return keras.ops.convert_to_tensor(np.ascontiguousarray(a, dtype=np.float32))


def _single(output: Any) -> Any:
    import keras

    return keras.tree.flatten(output)[0]


def _flat(output: Any) -> list[Any]:
    import keras

    return list(keras.tree.flatten(output))


def _grads(b: Any, grad: Any, like: np.ndarray) -> np.ndarray:
    return np.zeros_like(like) if grad is None else np.asarray(b.to_numpy(grad), dtype=np.float32)


class LayerGradients:
    """Compiled ``(x, sel) -> (A, dS/dA, scores, classes)`` at one layer.

    Args:
        model: The Keras model (patched only while traced).
        layer: The layer whose (first-call) activation is differentiated.
        squashes: The output softmax/sigmoid layers to bypass (logits).
        plan: The target plan (its mode, output and callable; ``sel`` is passed per batch).
        names: The model's output names (for a callable target).
        compile: Compile the pass where the backend allows.
    """

    def __init__(
        self,
        model: Any,
        layer: Any,
        squashes: Squashes,
        plan: TargetPlan,
        names: tuple[str, ...],
        *,
        compile: bool = True,
    ) -> None:
        from keras import ops

        def objective(call: Any, wrt: list[Any], x: Any, sel: Any) -> tuple[Any, Any]:
            record: list[Any] = []
            with perturbed(layer, wrt[0], record), logits_view(squashes), _quiet():
                outs = _flat(call(x))
            scores, classes = score(outs, names, sel, plan)
            # "+ 0 * sum(delta)" keeps delta connected on every backend: a non-differentiable path then
            # yields zero gradients (checked by the caller) instead of None or a torch error.
            return ops.sum(scores) + 0.0 * ops.sum(wrt[0]), (_single(record[0]), scores, classes)

        self._backend = backend.get()
        self._run = self._backend.value_and_grad(model, objective, compile=compile)

    def __call__(
        self, x: np.ndarray, sel: np.ndarray, delta_shape: tuple[int, ...]
    ) -> tuple[np.ndarray, ...]:
        """Run one batch.

        The offset ``delta`` added to the activation is shaped ``(n, *delta_shape)``: the activation's
        per-sample shape gives ``dS/dA`` itself; size 1 on an axis broadcasts ``delta`` along it, so its
        gradient is ``dS/dA`` summed over that axis — reduced inside the compiled pass (Grad-CAM only needs
        the sum over positions, and the full gradient then never leaves the backend).

        Args:
            x: ``(n, ...)`` model input.
            sel: ``(n, K)`` one-hot target rows (zero row = top-1).
            delta_shape: Per-sample shape of ``delta``: the layer's activation shape, or that shape with
                size 1 on the axes to sum the gradient over.

        Returns:
            ``A (n, *act_shape)``, ``dS/dA`` summed to ``(n, *delta_shape)``, ``scores (n,)``, ``classes (n,)``.
        """
        b = self._backend
        delta = np.zeros((len(x), *delta_shape), np.float32)
        _, (act, scores, classes), grads = self._run([_tensor(delta)], _tensor(x), _tensor(sel))
        return (
            np.asarray(b.to_numpy(act), np.float32),
            _grads(b, grads[0], delta),
            np.asarray(b.to_numpy(scores), np.float32),
            np.asarray(b.to_numpy(classes), np.int64),
        )


class InputGradients:
    """Compiled ``(x, sel) -> (dS/dx, scores, classes)``; arguments as :class:`LayerGradients`."""

    def __init__(
        self,
        model: Any,
        squashes: Squashes,
        plan: TargetPlan,
        names: tuple[str, ...],
        *,
        compile: bool = True,
    ) -> None:
        from keras import ops

        def objective(call: Any, wrt: list[Any], sel: Any) -> tuple[Any, Any]:
            with logits_view(squashes), _quiet():
                outs = _flat(call(wrt[0]))
            scores, classes = score(outs, names, sel, plan)
            return ops.sum(scores) + 0.0 * ops.sum(wrt[0]), (scores, classes)

        self._backend = backend.get()
        self._run = self._backend.value_and_grad(model, objective, compile=compile)

    def __call__(self, x: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, ...]:
        """``dS/dx (n, ...)``, ``scores (n,)``, ``classes (n,)`` for one batch."""
        b = self._backend
        x = np.ascontiguousarray(x, dtype=np.float32)
        _, (scores, classes), grads = self._run([_tensor(x)], _tensor(sel))
        return (
            _grads(b, grads[0], x),
            np.asarray(b.to_numpy(scores), np.float32),
            np.asarray(b.to_numpy(classes), np.int64),
        )


class Forward:
    """Compiled forward pass ``(x, sel) -> (A or None, scores, classes)``.

    Args:
        model: The Keras model.
        layer: Layer whose first-call activation is returned too, or ``None``.
        squashes: The output softmax/sigmoid layers to bypass (logits).
        plan: The target plan.
        names: The model's output names.
        apply_softmax: Softmax the explained (logit) output before scoring.
        compile: Compile where the backend allows.
    """

    def __init__(
        self,
        model: Any,
        layer: Any | None,
        squashes: Squashes,
        plan: TargetPlan,
        names: tuple[str, ...],
        *,
        apply_softmax: bool = False,
        compile: bool = True,
    ) -> None:
        from keras import ops

        def body(call: Any, inputs: Any) -> Any:
            x, sel = inputs
            record: list[Any] = []
            with logits_view(squashes), _quiet():
                if layer is None:
                    outs = _flat(call(x))
                else:
                    with recorded(layer, record):
                        outs = _flat(call(x))
            if apply_softmax:
                outs[plan.output] = ops.softmax(outs[plan.output], axis=-1)
            scores, classes = score(outs, names, sel, plan)
            return (_single(record[0]) if record else ops.zeros((1,))), scores, classes

        self._backend = backend.get()
        self._layer = layer
        self._run = self._backend.compile_run(model, body, compile=compile)

    def __call__(self, x: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``A`` (or ``None``), ``scores (n,)``, ``classes (n,)`` for one batch."""
        b = self._backend
        act, scores, classes = self._run((_tensor(x), _tensor(sel)))
        a = np.asarray(b.to_numpy(act), np.float32) if self._layer is not None else None
        return a, np.asarray(b.to_numpy(scores), np.float32), np.asarray(b.to_numpy(classes), np.int64)


class Outputs:
    """Compiled forward pass ``x -> outputs[index]`` (the model's own output, squashing layers included)."""

    def __init__(self, model: Any, index: int, *, compile: bool = True) -> None:
        def body(call: Any, x: Any) -> Any:
            with _quiet():
                return _flat(call(x))[index]

        self._backend = backend.get()
        self._run = self._backend.compile_run(model, body, compile=compile)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``outputs[index]`` of one batch as float32."""
        return np.asarray(self._backend.to_numpy(self._run(_tensor(x))), np.float32)
