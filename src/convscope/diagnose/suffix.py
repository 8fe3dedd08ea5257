"""The model from a layer L onward, run on many copies of L's output with one channel replaced in each.

:func:`build_ablator` chooses the fastest exact route the model allows, and says which ran
(:attr:`Ablator.route`):

* ``"delta"`` (:mod:`convscope.diagnose.delta`): a Sequential suffix that starts with per-channel layers
  (pooling, dropout, elementwise activations, ...) and then a ``Dense`` (after ``Flatten``): replacing channel
  ``c`` changes only channel ``c`` up to the Dense, so its pre-activation moves by the channel's own slice of
  the kernel times the change; only the layers after the Dense run on the ``C x b`` folded rows.
* ``"graph"``: the layers after L (Sequential), or the functional graph from L's output tensor to the model
  outputs (``keras.Function``); the ``C x b`` ablated copies of L's output are folded into the batch.
* ``"patch"``: any other model (subclassed, nested layer, a graph that needs more than L's output): the whole
  model runs on the inputs tiled ``C`` times while L's output is multiplied by a mask and filled with the
  replacement (a call wrapper placed for the traced pass and removed in ``finally``, as the probe does).

Every route returns class *logits*: an output softmax/sigmoid is bypassed
(:func:`convscope.attribution.patch.logits_view`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from convscope import backend
from convscope.attribution.facts import ModelFacts
from convscope.attribution.patch import call_attribute, logits_view, replaced
from convscope.errors import AttributionError

log = logging.getLogger(__name__)

ROUTES = ("delta", "graph", "patch")
_ABLATORS: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


class Ablator:
    """Run the model from layer L onward on ablated copies of L's output.

    Args:
        model: The Keras model (never modified).
        facts: Its :class:`~convscope.attribution.facts.ModelFacts`.
        path: Layer L's path.
        route: How the suffix runs (see module doc).
        suffix: ``f(a) -> model outputs`` for the graph route (``None`` otherwise).
    """

    def __init__(
        self, model: Any, facts: ModelFacts, path: str, route: str, suffix: Callable[[Any], Any] | None
    ) -> None:
        self.model = model
        self.facts = facts
        self.path = path
        self.route = route
        self.channels_first = facts.data_format == "channels_first"
        self.channels = facts.channels(path)
        self.shape = tuple(int(d) for d in facts.shapes[path])
        self.output_index = facts.class_index
        self._suffix = suffix
        self._backend = backend.get()
        body = self._graph_body if route == "graph" else self._patch_body
        self._run = self._backend.compile_run(model, body)
        self._layer = next(n.layer for n in facts.tree if n.path == path)

    # -- traced bodies ---------------------------------------------------------------------------------
    def _class_output(self, outputs: Any) -> Any:
        import keras

        return keras.tree.flatten(outputs)[self.output_index]

    def _graph_body(self, call: Any, inputs: Any) -> Any:
        import keras

        assert self._suffix is not None
        a, keep, fill = inputs  # (b, ...), (n, 1, 1, C) bool, (n, 1, 1, C)
        folded = keras.ops.where(keep[:, None], a[None], keras.ops.cast(fill, a.dtype)[:, None])
        shape = keras.ops.shape(a)
        return self._class_output(self._suffix(keras.ops.reshape(folded, (-1, *shape[1:]))))

    def _patch_body(self, call: Any, inputs: Any) -> Any:
        import keras

        x, mask, fill = inputs
        done: list[bool] = []
        original = getattr(self._layer, call_attribute(self._layer))

        def patched(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            if done:  # a layer called again keeps its later calls
                return out
            done.append(True)
            return keras.ops.where(mask, out, keras.ops.cast(fill, out.dtype))

        with replaced(self._layer, call_attribute(self._layer), patched):
            return self._class_output(call(x))

    # -- public ----------------------------------------------------------------------------------------
    def fold_cost(self, a_row: int, x_row: int) -> int:
        """Elements held per folded row (one image with one channel replaced): bounds the chunk size."""
        return x_row + 2 * a_row if self.route == "patch" else 2 * a_row

    def _axis_shape(self, n: int) -> tuple[int, ...]:
        return (n, self.channels, 1, 1) if self.channels_first else (n, 1, 1, self.channels)

    needs_prefix = True  # L's output comes from the probe's extractor

    def prepare(self, a: Any) -> Any:
        """L's output of a batch as a backend tensor (converted once, used by every chunk of channels)."""
        import keras

        return keras.ops.convert_to_tensor(np.asarray(a)) if self.route == "graph" else a

    def logits(
        self, x: np.ndarray, a: np.ndarray, channels: np.ndarray, values: np.ndarray, with_base: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Logits of the unchanged images ``(b, K)`` and with ``channels[j]`` replaced, ``(n, b, K)``.

        With ``with_base`` the unchanged images ride along as one more folded block (else ``None`` is
        returned for them): ask for them once per batch, with its first chunk of channels.

        Args:
            x: The model inputs ``(b, ...)``.
            a: L's output ``(b, *shape)`` as the layer gives it.
            channels: int ``(n,)`` channels to remove, one per folded block.
            values: ``(C,)`` the value each channel is replaced by (0, or its dataset mean).
        """
        extra = int(with_base)
        n, b = len(channels) + extra, len(x)
        keep = np.ones(self._axis_shape(n), bool)  # False where the channel is replaced
        fill = np.zeros(self._axis_shape(n), np.float32)
        rows = np.arange(extra, n)
        keep.reshape(n, -1)[rows, channels] = False
        fill.reshape(n, -1)[rows, channels] = values[channels]
        with logits_view(self.facts.softmax):
            if self.route == "graph":
                out = self._run((a, keep, fill))
            else:
                mask = keep
                tiled = np.tile(x, (n,) + (1,) * (x.ndim - 1))
                out = self._run((tiled, np.repeat(mask, b, axis=0), np.repeat(fill, b, axis=0)))
        both = np.asarray(self._backend.to_numpy(out), np.float32).reshape(n, b, -1)
        return (both[0], both[1:]) if with_base else (None, both)


def graph_suffix(model: Any, path: str) -> Callable[[Any], Any] | None:
    """``f(a) -> model outputs`` running the model from top-level layer ``path``'s output, or ``None``."""
    import keras

    if "/" in path:
        return None
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        if path not in names:
            return None
        rest = model.layers[names.index(path) + 1 :]

        def chain(a: Any) -> Any:
            for layer in rest:
                a = layer(a, training=False)
            return a

        return chain
    if not isinstance(getattr(model, "_nodes_by_depth", None), dict):  # a subclassed model has no graph
        return None
    try:
        fn = keras.Function(inputs=[model.get_layer(path).output], outputs=model.outputs)
    except (ValueError, AttributeError) as exc:  # the graph needs more than L's output (a skip), ...
        log.info("no graph suffix from %s (%s); using full-model passes", path, str(exc).splitlines()[0])
        return None
    return lambda a: fn([a])


def build_ablator(model: Any, facts: ModelFacts, path: str, route: str | None = None) -> Any:
    """The fastest exact ablator for layer ``path`` (or the given ``route``), built and compiled once per
    (model, layer, route) and reused (like the probe's extractors).

    Raises:
        AttributionError: The class output is not a class vector ``(N, K)``, or ``route`` is not possible.
    """
    if len(facts.output_shape) != 1:
        raise AttributionError(
            f"ablate needs a class-vector output (N, K); model {facts.name!r} outputs "
            f"{[(o.name, o.shape) for o in facts.outputs]}"
        )
    try:
        per_model = _ABLATORS.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        per_model = {}
    key = (path, route, facts.shapes.get(path))
    if key not in per_model:
        per_model[key] = _build(model, facts, path, route)
    return per_model[key]


def _build(model: Any, facts: ModelFacts, path: str, route: str | None) -> Any:
    from convscope.diagnose.delta import delta_ablator

    if route in (None, "delta"):
        fast = delta_ablator(model, facts, path)
        if fast is not None:
            return fast
        if route == "delta":
            raise AttributionError(f"the delta route does not apply to layer {path!r}; use graph or patch")
    suffix = graph_suffix(model, path) if route in (None, "graph") else None
    if suffix is None and route == "graph":
        raise AttributionError(f"layer {path!r} has no graph suffix (a subclassed or nested layer)")
    chosen = "graph" if suffix is not None else "patch"
    log.info("ablating %s by the %s route", path, chosen)
    return Ablator(model, facts, path, chosen, suffix)


__all__ = ["ROUTES", "Ablator", "build_ablator", "graph_suffix"]
