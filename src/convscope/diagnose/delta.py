"""The ``delta`` route: ablate every channel of L while running only the model's head on the folded rows.

It applies to a Sequential suffix ``L -> S -> [Flatten] -> Dense M -> R`` where every layer of ``S`` acts on
each channel alone (pooling, dropout and noise at inference, elementwise activations, padding, cropping,
per-channel batch normalization). Replacing channel ``c`` of L's output ``a`` by a constant then changes
only channel ``c`` of ``s = S(a)``, to ``S(fill)[..., c]`` (the same for every image), so M's
pre-activation becomes, exactly (in exact arithmetic)::

    z_c = z + sum_p (S(fill)[p, c] - s[p, c]) * W[p, c, :]          W = M.kernel reshaped (P, C, O)

which costs ``P * O`` per image and channel instead of M's ``P * C * O``; only ``act(z_c)`` and the layers
``R`` after M run on the ``C x b`` folded rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from convscope import backend
from convscope.attribution.facts import ModelFacts
from convscope.attribution.patch import logits_view

log = logging.getLogger(__name__)

#: Layer classes that act on each channel alone at inference (channels last).
SEPARABLE = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling2D",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "ZeroPadding2D",
    "Cropping2D",
)
_ELEMENTWISE = ("relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "tanh", "sigmoid", "linear")


def _separable(layer: Any) -> bool:
    name = type(layer).__name__
    if name in SEPARABLE:
        return getattr(layer, "data_format", "channels_last") == "channels_last"
    if name == "Activation":
        return getattr(layer.activation, "__name__", "") in _ELEMENTWISE
    if name == "BatchNormalization":
        return layer.axis in (-1, len(layer.input.shape) - 1) if hasattr(layer, "input") else layer.axis == -1
    return False


def _plain_dense(layer: Any) -> bool:
    return (
        type(layer).__name__ == "Dense"
        and getattr(layer, "quantization_mode", None) is None
        and not getattr(layer, "lora_enabled", False)
    )


class DeltaAblator:
    """Ablations through a per-channel head ``S`` and the first Dense ``M`` (see module doc).

    Args:
        model: The Sequential model (never modified).
        facts: Its facts.
        path: Layer L's name.
        head: The per-channel layers ``S``.
        dense: The Dense ``M``.
        rest: The layers after ``M``.
    """

    route = "delta"

    def __init__(
        self, model: Any, facts: ModelFacts, path: str, head: list[Any], dense: Any, rest: list[Any]
    ) -> None:
        self.model, self.facts, self.path = model, facts, path
        self.channels = facts.channels(path)
        self.head, self.dense, self.rest = head, dense, rest
        names = [layer.name for layer in model.layers]
        self.prefix = list(model.layers[: names.index(path) + 1])
        self.shape = tuple(int(d) for d in facts.shapes[path])
        self._backend = backend.get()
        self._run = self._backend.compile_run(model, self._body)
        self._fill_cache: tuple[bytes, np.ndarray] | None = None

    needs_prefix = False  # the prefix runs inside the same compiled pass

    def prepare(self, a: Any) -> Any:
        """Nothing to prepare (the prefix runs inside the pass)."""
        return a

    # -- traced pieces ---------------------------------------------------------------------------------
    def _s(self, a: Any) -> Any:
        import keras

        for layer in self.head:
            a = layer(a, training=False)
        return keras.ops.reshape(a, (keras.ops.shape(a)[0], -1, self.channels))  # (b, P, C)

    def _z(self, s: Any) -> Any:
        import keras

        flat = keras.ops.reshape(s, (keras.ops.shape(s)[0], -1))
        z = keras.ops.matmul(flat, self.dense.kernel)
        return z + self.dense.bias if self.dense.use_bias else z

    def _tail(self, z: Any) -> Any:
        y = self.dense.activation(z)
        for layer in self.rest:
            y = layer(y, training=False)
        return y

    def _body(self, call: Any, inputs: Any) -> Any:
        import keras

        x, channels, fill = inputs  # (b, ...), (n,), (P, n)
        a = x
        for layer in self.prefix:
            a = layer(a, training=False)
        s = self._s(a)
        z = self._z(s)
        width = keras.ops.shape(z)[-1]
        kernel = keras.ops.reshape(self.dense.kernel, (-1, self.channels, width))
        change = keras.ops.transpose(fill[None] - keras.ops.take(s, channels, axis=2), (2, 0, 1))  # (n, b, P)
        rows = keras.ops.transpose(keras.ops.take(kernel, channels, axis=1), (1, 0, 2))  # (n, P, O)
        moved = z[None] + keras.ops.matmul(change, rows)  # (n, b, O)
        both = keras.ops.concatenate([z[None], moved], axis=0)  # the unchanged images first
        return self._tail(keras.ops.reshape(both, (-1, width)))

    # -- public ----------------------------------------------------------------------------------------
    def fold_cost(self, a_row: int, x_row: int) -> int:
        """Elements per folded row: the Dense's width and the widest layer after it."""
        widths = [int(np.prod(self.dense.output.shape[1:]))] + [
            int(np.prod(layer.output.shape[1:])) for layer in self.rest
        ]
        return 2 * max(widths)

    def _fill(self, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``S(fill)`` as ``(P, C)``: every channel of a constant map run through the head at once."""
        key = values.astype(np.float32).tobytes()
        if self._fill_cache is None or self._fill_cache[0] != key:
            plain = np.broadcast_to(values.astype(np.float32), (1, *shape)).copy()
            out = self._s(plain)
            self._fill_cache = (key, np.asarray(self._backend.to_numpy(out), np.float32)[0])
        return self._fill_cache[1]

    def logits(
        self, x: np.ndarray, a: Any, channels: np.ndarray, values: np.ndarray, with_base: bool = True
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Logits of the unchanged images ``(b, K)`` and with ``channels[j]`` replaced, ``(n, b, K)``.

        The unchanged images' logits come with every call (they cost one block of the head), whatever
        ``with_base`` says.

        Args:
            x: The model inputs ``(b, ...)``.
            a: Unused (the prefix runs in the same pass).
            channels: int ``(n,)`` channels to remove, one per folded block.
            values: ``(C,)`` the value each channel is replaced by.
        """
        fill = np.ascontiguousarray(self._fill(values, self.shape)[:, channels])
        with logits_view(self.facts.softmax):
            out = self._run((x, np.asarray(channels, np.int32), fill))
        both = np.asarray(self._backend.to_numpy(out), np.float32).reshape(len(channels) + 1, len(x), -1)
        return both[0], both[1:]


def delta_ablator(model: Any, facts: ModelFacts, path: str) -> DeltaAblator | None:
    """A :class:`DeltaAblator` when the model after ``path`` has the shape it needs, else ``None``."""
    import keras

    if not isinstance(model, keras.Sequential) or facts.data_format != "channels_last":
        return None
    names = [layer.name for layer in model.layers]
    if path not in names:
        return None
    rest = list(model.layers[names.index(path) + 1 :])
    head: list[Any] = []
    while rest and _separable(rest[0]):
        head.append(rest.pop(0))
    if rest and type(rest[0]).__name__ == "Flatten":
        head.append(rest.pop(0))
    elif head and len(head[-1].output.shape) != 2:
        return None
    if not rest or not _plain_dense(rest[0]) or len(rest[0].input.shape) != 2:
        return None
    log.debug("delta route: head %s, dense %s", [layer.name for layer in head], rest[0].name)
    return DeltaAblator(model, facts, path, head, rest[0], rest[1:])


__all__ = ["SEPARABLE", "DeltaAblator", "delta_ablator"]
