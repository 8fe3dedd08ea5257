"""A model resolved once: the one object every surface (API, CLI, explorer, report, scan, callback) takes.

A path, a zoo name or a ``keras.Model`` becomes a :class:`ResolvedModel` that carries the model, its
preprocessing (a zoo model's own, or what the user asked for), its class names, its input spec and, on
first use, its layer table. No surface re-derives any of these, so two views of one image show the same
numbers (the same top-1 class, probability and name in ``cam``, ``report``, ``serve``, ``scan`` and
``activations()``).

Example:
    >>> rm = resolve_model("efficientnet-lite0")          # zoo model: (x - 127) / 128, 1,000 ImageNet names
    >>> batch = rm.load_inputs(["coffee.jpg"])
    >>> rm.class_names[967]
    'espresso'
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data import Inputs, InputSpec, Preprocess, load_inputs
from convscope.data.readopts import ReadOptions
from convscope.errors import InputError
from convscope.models.predictions import ClassScore, Prediction, top_classes
from convscope.models.spec import DataFormat

log = logging.getLogger(__name__)

ModelLike = Any  # a keras.Model, a path (str / Path) or a zoo name, or a ResolvedModel

#: How many zoo models stay built in one process (building EfficientNet-Lite0 takes seconds).
ZOO_CACHE_SIZE = 2


@dataclass(frozen=True, eq=False)
class MultiInputs:
    """Inputs of a multi-input model: one array per model input (taken as already preprocessed)."""

    x: list[np.ndarray]
    names: tuple[str, ...]
    display: tuple[None, ...]
    sources: tuple[str, ...]
    preprocess: str

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, eq=False)
class ResolvedModel:
    """A model with everything the views need to agree on it.

    Build it with :func:`resolve_model`; every field is fixed once resolved (use :meth:`replace` to derive
    a variant, e.g. with other preprocessing).

    Attributes:
        model: The ``keras.Model`` (built; never compiled, renamed or modified by convscope).
        name: A short display name: the zoo name, the file name, or the model's own name.
        source: Where it came from, enough to load it again in another process: a zoo name, an absolute
            file path, or ``""`` for an in-memory model.
        zoo: The canonical zoo name, or ``None``.
        preprocess: How image files become this model's input (the zoo model's own unless overridden).
        class_names: Names by class id, or ``None`` when unknown.
        input_shape: One sample's shape as the model declares it (or as given for an unbuilt or
            subclassed model); ``None`` when unknown.
        safe_mode: Whether a file was loaded with Keras safe mode (kept for reloading elsewhere).
    """

    model: Any
    name: str
    source: str
    zoo: str | None
    preprocess: Preprocess
    class_names: tuple[str, ...] | None
    input_shape: tuple[int | None, ...] | None
    safe_mode: bool = True

    # -- derived, computed once -----------------------------------------------------------------------
    @functools.cached_property
    def info(self) -> Any:
        """The layer table (:class:`~convscope.models.inspect.ModelInfo`): shapes, params, receptive fields."""
        from convscope.models.inspect import inspect_model

        return inspect_model(self.model, input_shape=self._build_shape())

    @functools.cached_property
    def data_format(self) -> DataFormat:
        """``channels_last`` or ``channels_first``."""
        from convscope.models.spec import data_format

        return data_format(self.model)

    @property
    def inputs_count(self) -> int:
        """How many input tensors the model takes (1 when unknown)."""
        from convscope.models.spec import input_shapes

        shapes = input_shapes(self.model)
        return len(shapes) if shapes else 1

    def _build_shape(self) -> tuple[int, ...] | None:
        if self.input_shape is None or any(d is None for d in self.input_shape):
            return None
        return tuple(int(d) for d in self.input_shape)  # type: ignore[arg-type]

    def spec(self, input_shape: tuple[int, ...] | None = None) -> InputSpec:
        """The :class:`~convscope.data.InputSpec` of the (single) model input.

        Raises:
            InputError: The model has several inputs, or its input shape is unknown and none is given.
        """
        from convscope.models.spec import input_shapes

        shapes = input_shapes(self.model)
        if input_shape is not None:
            shape: tuple[int | None, ...] = tuple(input_shape)
        elif shapes and len(shapes) > 1:
            raise InputError(
                f"model {self.name!r} has {len(shapes)} inputs; pass a list of {len(shapes)} "
                "arrays (images are only converted for single-input models)"
            )
        elif shapes:
            shape = shapes[0]
        elif self.input_shape is not None:
            shape = self.input_shape
        else:
            raise InputError(
                f"the input shape of model {self.name!r} is unknown (a subclassed or unbuilt "
                "model); give it: --input-shape H,W,C (Python: input_shape=(H, W, C))"
            )
        return InputSpec(shape=shape, data_format=self.data_format, name=self.model.name)

    # -- inputs and outputs -----------------------------------------------------------------------------
    def load_inputs(self, inputs: Any, *, input_shape: tuple[int, ...] | None = None) -> Inputs | MultiInputs:
        """Read/convert ``inputs`` (image paths, folders, arrays) with this model's preprocessing.

        Args:
            inputs: Paths, folders, ``.npy``/``.npz`` files, PIL images or arrays (arrays are taken as
                already-preprocessed input); for a multi-input model a list of arrays, one per input.
            input_shape: One sample's shape, for a model whose input shape is unknown.

        Returns:
            :class:`~convscope.data.Inputs` (or :class:`MultiInputs` for a multi-input model).
        """
        if self.inputs_count > 1:
            if not (isinstance(inputs, (list, tuple)) and all(isinstance(a, np.ndarray) for a in inputs)):
                raise InputError(
                    f"model {self.name!r} has {self.inputs_count} inputs; pass a list of that many "
                    f"arrays (N, ...), one per input, got {type(inputs).__name__}"
                )
            n = len(inputs[0]) if inputs else 0
            return MultiInputs(
                x=[np.asarray(a) for a in inputs],
                names=tuple(f"sample{i}" for i in range(n)),
                display=(None,) * n,
                sources=("array",) * n,
                preprocess="arrays taken as-is",
            )
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return load_inputs(items, self.spec(input_shape), self.preprocess)

    def load_input_groups(self, inputs: Any, *, input_shape: tuple[int, ...] | None = None) -> list[Any]:
        """Like :meth:`load_inputs`, one batch per input size (for a model that leaves sizes free).

        Each group keeps ``positions``: where its inputs stood in the order given.
        """
        from convscope.data import load_input_groups

        if self.inputs_count > 1:
            return [self.load_inputs(inputs, input_shape=input_shape)]
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return list(load_input_groups(items, self.spec(input_shape), self.preprocess))

    def label(self, index: int) -> str:
        """``"967 espresso"`` (or ``"967"`` without a name)."""
        name = self.class_names[index] if self.class_names and 0 <= index < len(self.class_names) else None
        return ClassScore(index, name, 0.0).label()

    def predictions(self, outputs: np.ndarray, k: int = 5) -> list[Prediction]:
        """The top ``k`` classes of each row of the model's output ``(N, ...)``, named by this model."""
        return [top_classes(row, self.class_names, k) for row in np.asarray(outputs)]

    def replace(self, **changes: Any) -> ResolvedModel:
        """A copy with some fields changed (e.g. ``preprocess=...``); the layer table is recomputed lazily."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line: name, source, input, preprocessing, classes."""
        classes = f"{len(self.class_names)} named classes" if self.class_names else "no class names"
        shape = "unknown input shape" if self.input_shape is None else f"input {self.input_shape}"
        return f"{self.name} ({self.source or 'in memory'}): {shape}, {classes}; images: {self.preprocess.describe()}"

    def __repr__(self) -> str:
        classes = len(self.class_names) if self.class_names else 0
        return (
            f"ResolvedModel({self.name!r}, input_shape={self.input_shape}, classes={classes}, "
            f"layers={len(self.model.layers)})"
        )

    def _repr_html_(self) -> str:
        return f"<p><b>{html.escape(self.name)}</b>: {html.escape(self.describe())}</p>"


# -- resolution -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=ZOO_CACHE_SIZE)
def _zoo_model(canonical: str) -> Any:
    from convscope.models.zoo import build_zoo_model

    return build_zoo_model(canonical)


def read_class_names(labels: Sequence[str] | str | Path) -> tuple[str, ...]:
    """Class names from a sequence, a text file (one name per line) or a JSON list / ``{id: name}`` file.

    Raises:
        InputError: The file is missing, unreadable, empty or not a list of names.
    """
    if not isinstance(labels, (str, Path)):
        names = tuple(str(n) for n in labels)
        if not names:
            raise InputError("the class-name list is empty; give one name per class")
        return names
    path = Path(labels).expanduser()
    if not path.is_file():
        raise InputError(
            f"labels file {str(labels)!r} does not exist or is not a file; expected a text file "
            "with one class name per line, or a JSON list"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"labels file {path.name!r} cannot be read as UTF-8 text ({exc.__class__.__name__})"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"labels file {path.name!r} is not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from None
        if isinstance(data, dict):
            try:
                data = [data[k] for k in sorted(data, key=int)]
            except (TypeError, ValueError):
                raise InputError(
                    f"labels file {path.name!r}: a JSON object must map class ids (0, 1, ...) to names"
                ) from None
        if not isinstance(data, list):
            raise InputError(
                f"labels file {path.name!r} must hold a JSON list of names, got {type(data).__name__}"
            )
        names = tuple(str(n) for n in data)
    else:
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise InputError(f"labels file {path.name!r} holds no class names")
    return names


def _output_classes(model: Any) -> int | None:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[-1] is None:
        return None
    return int(outputs[0].shape[-1])


def resolve_model(
    model: ModelLike,
    *,
    preprocess: Preprocess | None = None,
    invert: bool | None = None,
    labels: Sequence[str] | str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    safe_mode: bool = True,
    custom_objects: Any = None,
    read: ReadOptions | None = None,
) -> ResolvedModel:
    """Resolve a model once: load it, and fix its preprocessing, class names and input shape.

    Args:
        model: A ``keras.Model``, a ``.keras``/``.h5`` path, a zoo name (``"mnist-cnn"``,
            ``"efficientnet-lite0"``), or a :class:`ResolvedModel` (returned as is, or with the overrides
            below applied).
        preprocess: How image files become input; default: the zoo model's own, else pixels to [0, 1].
        invert: Invert images (255 - x) before scaling; ``None`` keeps the preprocessing's own setting.
        labels: Class names (a sequence, or a text/JSON file); default: the zoo model's names.
        input_shape: One sample's shape, for an unbuilt or subclassed model (the model is then built).
        safe_mode: Keras safe mode for files (``False`` allows Lambda layers: only for files you trust).
        custom_objects: Custom classes for loading a file (see :func:`~convscope.models.load.load_model`).
        read: How stacks and volumes are read (``--window``, ``--slice``); ``None`` keeps the
            preprocessing's own.

    Returns:
        The :class:`ResolvedModel`. Zoo models are built once per process (the last
        :data:`ZOO_CACHE_SIZE` are kept) and shared.

    Raises:
        ModelLoadError: The model cannot be loaded (unknown zoo name, bad file, missing package).
        InputError: The labels cannot be read, or their count differs from the model's output classes.
    """
    from convscope.models import zoo as zoo_mod
    from convscope.models.load import load_model
    from convscope.models.spec import ensure_built, input_shapes

    if isinstance(model, ResolvedModel):
        base = model
        changes: dict[str, Any] = {}
        if preprocess is not None:
            changes["preprocess"] = preprocess
        if invert is not None:
            changes["preprocess"] = dataclasses.replace(
                changes.get("preprocess", base.preprocess), invert=invert
            )
        if read is not None:
            changes["preprocess"] = dataclasses.replace(changes.get("preprocess", base.preprocess), read=read)
        if labels is not None:
            changes["class_names"] = read_class_names(labels)
        if input_shape is not None and base.input_shape is None:
            built = ensure_built(base.model, tuple(input_shape))
            changes.update(model=built, input_shape=tuple(input_shape))
        return base.replace(**changes) if changes else base

    canonical = (
        zoo_mod.resolve_zoo_name(model) if isinstance(model, str) and not Path(model).exists() else None
    )
    if canonical is not None:
        keras_model = _zoo_model(canonical)
        name, source = canonical, canonical
        own_prep: Preprocess = zoo_mod.zoo_preprocess(canonical)
        own_names: tuple[str, ...] | None = zoo_mod.zoo_class_names(canonical) or None
    else:
        keras_model = load_model(model, safe_mode=safe_mode, custom_objects=custom_objects)
        if isinstance(model, (str, Path)):
            path = Path(model).expanduser().resolve()
            name, source = path.name, str(path)
        else:
            name, source = str(getattr(keras_model, "name", "model")), ""
        own_prep, own_names = Preprocess(), None
    if input_shape is not None:
        keras_model = ensure_built(keras_model, tuple(input_shape))
    shapes = input_shapes(keras_model)
    declared = (
        tuple(input_shape)
        if input_shape is not None
        else (shapes[0] if shapes and len(shapes) == 1 else None)
    )
    prep = preprocess if preprocess is not None else own_prep
    if invert is not None:
        prep = dataclasses.replace(prep, invert=invert)
    if read is not None:
        prep = dataclasses.replace(prep, read=read)
    names = read_class_names(labels) if labels is not None else own_names
    if names is not None and labels is not None:
        classes = _output_classes(keras_model)
        if classes is not None and classes != len(names):
            raise InputError(
                f"the labels give {len(names)} class names but model {name!r} outputs {classes} "
                f"classes; give exactly {classes} names, one per class id"
            )
    resolved = ResolvedModel(
        model=keras_model,
        name=name,
        source=source,
        zoo=canonical,
        preprocess=prep,
        class_names=names,
        input_shape=declared,
        safe_mode=safe_mode,
    )
    log.info("resolved %s", resolved.describe())
    return resolved


__all__ = ["MultiInputs", "ResolvedModel", "read_class_names", "resolve_model"]
