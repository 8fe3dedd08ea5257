"""``load_inputs``: images, folders, ``.npy``/``.npz`` files and arrays -> one batch for one model input."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from convscope.data.arrays import _coerce, array_display, read_array_file
from convscope.data.convert import prepare_image
from convscope.data.items import InputItem, expand
from convscope.data.medical import read_stack
from convscope.data.names import safe_name, unique_names
from convscope.data.preprocess import Preprocess
from convscope.data.read import (
    DEFAULT_MAX_PIXELS,
    image_to_array,
    read_picture,
)
from convscope.data.spec import InputSpec, format_shape
from convscope.data.volumes import stack_samples
from convscope.errors import InputError

logger = logging.getLogger(__name__)

ARRAYS_AS_IS = "arrays taken as-is (already preprocessed)"
DEEP_NOTE = "16-bit/float pixels kept in full (16-bit: v/65535)"


@dataclass(frozen=True, eq=False)
class Inputs:
    """A batch ready for one model input, with what is needed to label and picture each sample.

    Attributes:
        x: float32 ``(N, *spec.shape)`` (free sizes filled in); a new array, not shared with the caller.
        names: N unique, filesystem-safe ids, e.g. ``digit7``, ``batch.npy[3]``, ``array[0]``.
        display: Per sample, uint8 RGB ``(H, W, 3)`` at model resolution (what the model sees, for
            overlays), or ``None`` for arrays that are not image-like.
        sources: Per sample, where it came from, e.g. ``/data/digit7.png`` or ``/data/batch.npz:x[3]``.
        preprocess: One line saying what was done (see :meth:`Preprocess.describe`).
    """

    x: np.ndarray
    names: tuple[str, ...]
    display: tuple[np.ndarray | None, ...]
    sources: tuple[str, ...]
    preprocess: str
    positions: tuple[int, ...] | None = None
    """For one group of :func:`load_input_groups`: each sample's position among all the inputs."""

    def __post_init__(self) -> None:
        n = len(self.x)
        if not len(self.names) == len(self.display) == len(self.sources) == n:
            raise ValueError(
                f"Inputs: x has {n} samples but names/display/sources have "
                f"{len(self.names)}/{len(self.display)}/{len(self.sources)}"
            )

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        names = ", ".join(repr(n[:24]) for n in self.names[:3]) + (", ..." if len(self.names) > 3 else "")
        text = (
            f"Inputs(n={len(self.x)}, x={'x'.join(map(str, self.x.shape))} {self.x.dtype}, names=[{names}], "
            f"preprocess={self.preprocess[:60]!r})"
        )
        return " ".join(text.split())


def _check_same_shape(shapes: list[tuple[int, ...]], sources: list[str], spec: InputSpec) -> None:
    for shape, source in zip(shapes, sources, strict=True):
        if shape != shapes[0]:
            raise InputError(
                f"inputs differ in shape: {sources[0]} gives {format_shape(shapes[0])}, {source} gives "
                f"{format_shape(shape)}; model input {spec.name!r} {format_shape(spec.shape)} accepts any "
                "size, but one batch needs one size: give inputs of one size (Python: "
                "InputSpec.with_size, or load_input_groups for one batch per size)"
            )


@dataclass
class _Parts:
    """What :func:`_read_all` read: one array per item (``(n, ...)``) and one entry per sample."""

    xs: list[np.ndarray]
    part_sources: list[str]
    names: list[str]
    display: list[np.ndarray | None]
    sources: list[str]
    notes: list[str]
    kinds: set[str]

    def add(
        self, x: np.ndarray, source: str, names: list[str], sources: list[str], notes: Sequence[str] = ()
    ) -> None:
        """Add one item's samples ``x (n, ...)`` with their names and sources (display added apart)."""
        self.xs.append(x)
        self.part_sources.append(source)
        self.names.extend(names)
        self.sources.extend(sources)
        self.notes.extend(n for n in notes if n not in self.notes)

    def describe(self, prep: Preprocess, spec: InputSpec) -> str:
        parts = [prep.describe(spec)] if self.kinds & {"image", "pil", "stack"} else []
        if self.notes:
            parts.append("converted: " + ", ".join(self.notes))
        if "array" in self.kinds:
            parts.append(ARRAYS_AS_IS)
        return "; ".join(parts)


def load_inputs(
    items: Sequence[InputItem] | InputItem,
    spec: InputSpec,
    prep: Preprocess | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Inputs:
    """Read images, folders and arrays into one batch for ``spec``.

    Image files (``.png .jpg .jpeg .bmp .gif .tif .tiff .webp``, any case) and PIL images are read one at
    a time and preprocessed with ``prep``. A folder contributes its images (non-recursive, natural name
    order). ``.npy``/``.npz`` files and numpy arrays are taken as already-preprocessed model input (see
    :func:`~convscope.data.arrays.coerce_array`). When the model leaves height/width free, images keep
    their own size and all samples of the call must then share one size.

    Args:
        items: Paths (str/Path), numpy arrays or PIL images; a single one may be passed bare.
        spec: The model input to fill.
        prep: Preprocessing for images (default :class:`Preprocess`); arrays ignore it.
        max_pixels: Refuse image files with more pixels than this (checked before decoding).

    Returns:
        The batch ``x`` float32 ``(N, *spec.shape)`` with names, display pictures, sources and a
        description of the preprocessing.

    Raises:
        InputError: On a missing path, unknown extension, folder without images, unreadable or too large
            image, or an array that does not fit ``spec``.
    """
    prep = prep or Preprocess()
    parts = _read_all(items, spec, prep, max_pixels)
    _check_same_shape([x.shape[1:] for x in parts.xs], parts.part_sources, spec)
    inputs = Inputs(
        x=parts.xs[0] if len(parts.xs) == 1 else np.concatenate(parts.xs),
        names=unique_names(safe_name(n) for n in parts.names),
        display=tuple(parts.display),
        sources=tuple(parts.sources),
        preprocess=parts.describe(prep, spec),
    )
    logger.info("loaded %d input(s) %s for %r: %s", len(inputs), inputs.x.shape, spec.name, inputs.preprocess)
    return inputs


def load_input_groups(
    items: Sequence[InputItem] | InputItem,
    spec: InputSpec,
    prep: Preprocess | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Inputs]:
    """Like :func:`load_inputs`, but inputs of different sizes (a model that leaves sizes free) make one
    batch per size instead of an error.

    Returns:
        One :class:`Inputs` per distinct sample shape, in order of first appearance; names are unique
        across all groups and ``positions`` gives each sample's place among all the inputs.
    """
    prep = prep or Preprocess()
    parts = _read_all(items, spec, prep, max_pixels)
    names = unique_names(safe_name(n) for n in parts.names)
    groups: dict[tuple[int, ...], list[int]] = {}
    rows: list[np.ndarray] = []
    for x in parts.xs:
        for row in x:
            groups.setdefault(tuple(row.shape), []).append(len(rows))
            rows.append(row)
    description = parts.describe(prep, spec)
    result = [
        Inputs(
            x=np.stack([rows[i] for i in members]),
            names=tuple(names[i] for i in members),
            display=tuple(parts.display[i] for i in members),
            sources=tuple(parts.sources[i] for i in members),
            preprocess=description,
            positions=tuple(members),
        )
        for members in groups.values()
    ]
    if len(result) > 1:
        logger.info(
            "inputs of %d sizes, one batch each: %s",
            len(result),
            ", ".join(f"{len(g)} x {format_shape(g.x.shape[1:])}" for g in result),
        )
    return result


def _read_all(
    items: Sequence[InputItem] | InputItem, spec: InputSpec, prep: Preprocess, max_pixels: int
) -> _Parts:
    """Read every item (every path is checked before any image is decoded)."""
    if isinstance(items, (str, os.PathLike, np.ndarray, Image.Image)):
        items = [items]
    items = list(items)
    if not items:
        raise InputError("no inputs given; pass image files, folders, .npy/.npz files or numpy arrays")
    parts = _Parts([], [], [], [], [], [], set())
    for item in list(expand(items)):  # every path is checked before any image is decoded
        parts.kinds.add(item.kind)
        if item.kind == "array":
            arr, key = (item.obj, None) if item.path is None else read_array_file(item.path)
            source = item.source + (f":{key}" if key else "")
            batch, single = _coerce(arr, spec, source)  # type: ignore[arg-type]
            rows = [""] if single else [f"[{j}]" for j in range(len(batch))]
            parts.add(batch, source, [item.name + r for r in rows], [source + r for r in rows])
            parts.display.extend(array_display(sample, spec) for sample in batch)
        elif item.kind == "stack":
            stack = read_stack(item.path, max_pixels=max_pixels, max_voxels=prep.read.max_voxels)  # type: ignore[arg-type]
            samples = stack_samples(stack, spec, prep, item.source)
            parts.add(
                np.stack([s.x for s in samples]),
                item.source,
                [item.name + s.suffix for s in samples],
                [item.source + s.suffix for s in samples],
                [stack.describe(prep.read.window)] + [n for s in samples for n in s.notes],
            )
            parts.display.extend(s.display for s in samples)
        else:
            if item.path is not None:
                img = read_picture(item.path, prep.read.window, max_pixels=max_pixels)
            else:
                img = image_to_array(item.obj)  # type: ignore[arg-type]
            prepared = prepare_image(img, spec, prep, label=item.source)
            deep = [DEEP_NOTE] if img.dtype != np.uint8 and prep.read.window is None else []
            parts.add(prepared.x[None], item.source, [item.name], [item.source], [*prepared.notes, *deep])
            parts.display.append(prepared.display)
    return parts
