"""The extractor: one forward pass, many layers, every model kind, compiled and reused.

Build it once per (model, layer set) and call it as often as needed::

    ext = Extractor(model, ["conv_0", "conv_1"])
    acts = ext(x)                       # {"conv_0": (N, 26, 26, 32), "conv_1": (N, 24, 24, 64)}
    for rows, batch in ext.iter_batches(x, batch_size=16):   # bounded memory
        ...

Output keys are layer paths. A layer called more than once in one forward pass reports each call as
``path@0``, ``path@1``, ...; a layer returning several tensors reports ``path[0]``, ``path[1]``, ...
(:class:`convscope.models.keys.ActivationKey` writes and reads them).

With ``include_output`` the model's own output comes too: its first declared output under
:attr:`Extractor.OUTPUT_KEY`, and for a model with several outputs (a dict or a list) every head under
``__output__/<name>`` as well (:meth:`Extractor.head_key`), in the order the model declares them.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from convscope import backend
from convscope.errors import InputError
from convscope.models.capture import recording
from convscope.models.keys import ActivationKey
from convscope.models.spec import ensure_built, input_shapes
from convscope.models.tree import LayerNode, layer_tree
from convscope.probe.select import Selector, select_layers

log = logging.getLogger(__name__)

Inputs = Any  # an array (N, ...), or a list/dict of arrays for a multi-input model


def _batch_size_of(x: Inputs) -> int:
    import keras

    leaves = keras.tree.flatten(x)
    if not leaves:
        raise InputError("no input arrays were given")
    sizes = {int(np.shape(a)[0]) for a in leaves}
    if len(sizes) != 1:
        raise InputError(f"the model's inputs have different batch sizes {sorted(sizes)}; they must match")
    return sizes.pop()


class Extractor:
    """Capture the outputs of selected layers in one (compiled) forward pass.

    Args:
        model: A Keras model of any kind. It is never modified: no compile, no rename; the capture
            wrappers exist only during a forward pass and are removed in ``finally``.
        layers: Selectors (see :mod:`convscope.probe.select`); ``None`` means every conv layer.
        input_shape: One sample's shape, needed only to build an unbuilt model.
        compile: Compile the forward pass (``tf.function`` / ``jax.jit``) — on by default.
        include_output: Also return the model's own output under :attr:`OUTPUT_KEY`.
        batch_size: Default batch size for :meth:`iter_batches` and :meth:`__call__`.
    """

    OUTPUT_KEY = "__output__"

    @classmethod
    def head_key(cls, name: str) -> str:
        """The key of the model output (head) ``name`` of a multi-output model: ``__output__/<name>``."""
        return f"{cls.OUTPUT_KEY}/{name}"

    @classmethod
    def is_output(cls, key: str) -> bool:
        """True for :attr:`OUTPUT_KEY` and the head keys: the model's outputs, not layer activations."""
        return key == cls.OUTPUT_KEY or key.startswith(cls.OUTPUT_KEY + "/")

    @classmethod
    def heads(cls, acts: dict[str, Any]) -> dict[str, Any]:
        """``{head name: output}`` from a result of :meth:`run_batch`: every head of a multi-output model,
        else ``{"output": ...}`` (empty without ``include_output``)."""
        prefix = cls.OUTPUT_KEY + "/"
        named = {key[len(prefix) :]: value for key, value in acts.items() if key.startswith(prefix)}
        if named:
            return named
        return {"output": acts[cls.OUTPUT_KEY]} if cls.OUTPUT_KEY in acts else {}

    def __init__(
        self,
        model: Any,
        layers: Sequence[Selector] | Selector | None = None,
        *,
        input_shape: tuple[int, ...] | None = None,
        compile: bool = True,
        include_output: bool = False,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        model = ensure_built(model, input_shape)
        self.model = model
        self.tree: list[LayerNode] = layer_tree(model)
        self.nodes: list[LayerNode] = select_layers(self.tree, layers, model_name=model.name)
        self.include_output = include_output
        self.batch_size = batch_size
        self.input_shapes = input_shapes(model)
        self._labels: list[tuple[int, int, int, int]] = []
        self.output_names: list[str] = []  # set while tracing (see _declared_outputs)
        self._backend = backend.get()
        self._run = self._backend.compile_run(model, self._body, compile=compile)
        self.keys: list[str] | None = None

    # -- the traced body -------------------------------------------------------------------------------
    def _body(self, call: Any, inputs: Inputs) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        import keras

        record: list[tuple[int, Any]] = []
        with recording([n.layer for n in self.nodes], record), warnings.catch_warnings():
            # Sequential models declare a one-element list input; a bare array is fine — hush Keras.
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            output = call(inputs)
        calls: Counter[int] = Counter()
        labels: list[tuple[int, int, int, int]] = []
        tensors: list[Any] = []
        for position, value in record:
            k = calls[position]
            calls[position] += 1
            flat = keras.tree.flatten(value)
            for j, tensor in enumerate(flat):
                labels.append((position, k, j, len(flat)))
                tensors.append(tensor)
        self._labels = labels  # a Python side effect: runs at trace time, identical on every trace
        self._calls = dict(calls)
        outs: tuple[Any, ...] = ()
        if self.include_output:
            self.output_names, outs = self._declared_outputs(output)
        return tuple(tensors), outs

    def _declared_outputs(self, output: Any) -> tuple[list[str], tuple[Any, ...]]:
        """The model's outputs in the order it declares them (a dict's own order, not sorted), named."""
        import keras

        if isinstance(output, dict) and not any(isinstance(v, (dict, list, tuple)) for v in output.values()):
            return [str(k) for k in output], tuple(output.values())
        flat = tuple(keras.tree.flatten(output))
        names = list(getattr(self.model, "output_names", None) or [])
        if len(names) != len(flat) or len(set(names)) != len(names):
            names = [str(i) for i in range(len(flat))]
        return [str(n) for n in names], flat

    def _make_keys(self) -> list[str]:
        keys = []
        for position, k, j, n in self._labels:
            keys.append(
                ActivationKey.of(self.nodes[position].path, k, self._calls.get(position, 1), j, n).format()
            )
        missing = [self.nodes[p].path for p in range(len(self.nodes)) if p not in self._calls]
        if missing:
            log.warning("layers never called during the forward pass (no activation): %s", ", ".join(missing))
        return keys

    # -- running ---------------------------------------------------------------------------------------
    def _prepare(self, x: Inputs) -> Inputs:
        import keras

        def convert(a: Any) -> Any:
            a = np.asarray(a)
            if a.dtype.kind in "iub" or a.dtype == np.float64:
                a = a.astype(np.float32)
            return keras.ops.convert_to_tensor(a)

        if isinstance(x, (list, tuple)) and len(x) == 1:
            x = x[0]
        return keras.tree.map_structure(convert, x)

    def run_batch(self, x: Inputs) -> dict[str, np.ndarray]:
        """Run one batch (no splitting) and return ``{key: array (n, ...)}`` as numpy arrays.

        The arrays are views of the backend's output buffers, not copies (on TensorFlow and JAX they
        are read-only): copy one before writing into it.
        """
        to_numpy = self._backend.to_numpy
        captured, outputs = self._run(self._prepare(x))
        if self.keys is None:
            self.keys = self._make_keys()
            order = sorted(range(len(self.keys)), key=lambda i: (self._labels[i][0], self._labels[i][1], i))
            self._ordered_keys = [self.keys[i] for i in order]
        by_key = dict(zip(self.keys, captured))
        # report in model order (then call order), whatever order the layers ran in
        result = {key: to_numpy(by_key[key]) for key in self._ordered_keys}
        if self.include_output:
            result[self.OUTPUT_KEY] = to_numpy(outputs[0])
            if len(outputs) > 1:
                for name, value in zip(self.output_names, outputs):
                    result[self.head_key(name)] = to_numpy(value)
        return result

    def iter_batches(
        self, x: Inputs, batch_size: int | None = None
    ) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
        """Yield ``(rows, activations)`` batch by batch; memory is bounded by one batch of activations.

        Args:
            x: Model input, ``(N, ...)`` or a list/dict of such arrays for multi-input models.
            batch_size: Rows per forward pass (default: the extractor's).
        """
        import keras

        size = batch_size or self.batch_size
        n = _batch_size_of(x)
        for start in range(0, n, size):
            rows = slice(start, min(start + size, n))
            yield rows, self.run_batch(keras.tree.map_structure(lambda a, rows=rows: a[rows], x))

    def __call__(self, x: Inputs, batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Activations for all rows of ``x``: ``{key: array (N, ...)}`` exactly as the model computes them.

        When ``x`` fits in one batch the arrays are the backend's buffers themselves (no copy; possibly
        read-only, see :meth:`run_batch`); otherwise batches are gathered into new arrays.
        """
        n = _batch_size_of(x)
        if n <= (batch_size or self.batch_size):
            return self.run_batch(x)
        result: dict[str, np.ndarray] = {}
        for rows, batch in self.iter_batches(x, batch_size):
            for key, value in batch.items():
                if key not in result:
                    result[key] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
                result[key][rows] = value
        return result
