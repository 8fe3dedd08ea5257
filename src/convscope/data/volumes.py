"""A :class:`~convscope.data.stack.Stack` as model samples: 2D slices for an image model, one volume for a
volume model (Conv3D, input ``(D, H, W, C)``).

2D models: every slice along the file's acquisition axis (pages, frames, series order; a NIfTI's k axis)
is one sample, or what ``--slice AXIS[:INDEX]`` picks; each slice is then preprocessed exactly like an image
(:func:`~convscope.data.convert.prepare_image`). Volume models: the whole stack is one sample, resized
(bilinear, each axis on its own; ``resize="fit"`` stretches too) to the model's fixed sizes, inverted,
converted to the model's channels and scaled like an image; ``--slice`` is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from convscope.data.convert import prepare_image
from convscope.data.preprocess import Preprocess
from convscope.data.readopts import SliceSpec
from convscope.data.spec import InputSpec, format_shape
from convscope.data.stack import Stack
from convscope.errors import InputError, OptionError
from convscope.render.resize import resize

logger = logging.getLogger(__name__)

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True, eq=False)
class Sample:
    """One model sample from a stack.

    Attributes:
        x: float32, ``spec.shape`` (free sizes filled in).
        display: uint8 ``(H, W, 3)`` of a 2D slice as the model sees it, or ``None`` for a volume.
        suffix: What tells it apart from the file's other samples, e.g. ``"[3]"`` or ``"[2:40]"``;
            ``""`` when the file gives one sample.
        notes: Channel conversions applied.
    """

    x: np.ndarray
    display: np.ndarray | None
    suffix: str
    notes: tuple[str, ...] = ()


def slice_indices(stack: Stack, chosen: SliceSpec | None, label: str) -> tuple[int, list[int]]:
    """``(axis, indices)`` of the 2D slices a 2D model takes from ``stack``.

    Raises:
        InputError: The index is outside the stack along that axis (the message gives the valid range).
    """
    axis = stack.slice_axis if chosen is None else chosen.axis
    n = stack.shape[axis]
    if chosen is None or chosen.index is None:
        return axis, list(range(n))
    if not -n <= chosen.index < n:
        raise InputError(
            f"{label}: slice {axis}:{chosen.index} is out of range; it has {n} slice(s) along axis {axis} "
            f"(shape {format_shape(stack.shape[:3])}): give INDEX 0..{n - 1} (or -{n}..-1)"
        )
    return axis, [chosen.index % n]


def _plane(values: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice ``index`` of ``(D, H, W, C)`` along spatial ``axis`` -> ``(rows, cols, C)``."""
    return np.take(values, index, axis=axis)


def _check_channels(stack: Stack, spec: InputSpec, label: str) -> None:
    c = stack.shape[3]
    if c in (1, 3) or (spec.rank == 3 and spec.channels in (c, None)):
        return
    wants = "a volume (D, H, W, C)" if spec.rank == 3 else "2D images"
    raise InputError(
        f"{label} is a {stack.kind} of shape {format_shape(stack.shape)} with {c} values per voxel (e.g. a "
        f"time series); model input {spec.name!r} {format_shape(spec.shape)} takes {wants} with "
        f"{spec.channels or 'any'} channel(s): give a 3D volume, or a model with {c} input channels"
    )


def stack_samples(stack: Stack, spec: InputSpec, prep: Preprocess, label: str) -> list[Sample]:
    """The model samples of ``stack`` for ``spec``: slices (2D input) or the volume (3D input).

    Args:
        stack: What was read.
        spec: The model input: a 2D image input or a 3D volume input.
        prep: Preprocessing (its ``read`` gives ``window`` and ``slice``).
        label: The file, for messages.

    Returns:
        One :class:`Sample` per slice, or one for the volume.

    Raises:
        InputError: The model takes neither images nor volumes, the stack's values per voxel do not fit the
            model, a slice index is out of range, or ``resize="none"`` and the sizes differ.
        OptionError: ``--slice`` given for a volume model.
    """
    _check_channels(stack, spec, label)
    window = prep.read.window
    if spec.rank == 3:
        if prep.read.slice is not None:
            raise OptionError(
                f"--slice {prep.read.slice.axis}:{'all' if prep.read.slice.index is None else prep.read.slice.index} "
                f"picks 2D slices, but model input {spec.name!r} {format_shape(spec.shape)} takes whole "
                "volumes (D, H, W, C); leave --slice out"
            )
        if stack.shape[0] == 1 and spec.spatial[0] != 1:
            raise InputError(
                f"{label} is a single 2D image ({stack.kind} {'x'.join(map(str, stack.shape[1:3]))}); model input "
                f"{spec.name!r} {format_shape(spec.shape)} takes volumes (D, H, W, C) of several slices"
            )
        picture = stack.picture(stack.values, window, label)
        return [Sample(_volume_input(picture, spec, prep, label), None, "")]
    if spec.rank != 2:
        raise InputError(
            f"{label}: model input {spec.name!r} has shape {format_shape(spec.shape)}; a {stack.kind} feeds 2D "
            "image inputs (H, W, C) slice by slice, or 3D volume inputs (D, H, W, C)"
        )
    axis, indices = slice_indices(stack, prep.read.slice, label)
    single = len(indices) == 1 and stack.shape[axis] == 1
    samples = []
    for i in indices:
        where = f"[{i}]" if axis == stack.slice_axis else f"[{axis}:{i}]"
        picture = stack.picture(_plane(stack.values, axis, i), window, f"{label}{where}")
        prepared = prepare_image(picture, spec, prep, label=f"{label}{where}")
        samples.append(Sample(prepared.x, prepared.display, "" if single else where, prepared.notes))
    return samples


def resize_volume(volume: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Bilinear resize of float ``(D, H, W, C)`` to ``size = (D', H', W')``: in-plane, then along D.

    Each slice is resized in Pillow mode ``F`` (:func:`~convscope.render.resize.resize`); the depth axis is
    resampled by viewing ``(D, H' * W' * C)`` as one picture and resizing its height only.
    """
    d, h, w, c = volume.shape
    td, th, tw = size
    if (h, w) != (th, tw):
        volume = np.stack([resize(volume[k], (th, tw), "bilinear") for k in range(d)])
    if d != td:
        flat = volume.reshape(d, th * tw * c)
        volume = np.asarray(resize(flat, (td, th * tw * c), "bilinear")).reshape(td, th, tw, c)
    return np.ascontiguousarray(volume, dtype=np.float32)


def _volume_input(picture: np.ndarray, spec: InputSpec, prep: Preprocess, label: str) -> np.ndarray:
    """A volume's picture ``(D, H, W, C)`` in [0, 1] (or uint8) -> the model input of ``spec``."""
    vol = picture.astype(np.float32) / (255.0 if picture.dtype == np.uint8 else 1.0)
    target = tuple(t or s for t, s in zip(spec.spatial, vol.shape[:3], strict=True))
    if target != vol.shape[:3]:
        if prep.resize == "none":
            raise InputError(
                f"{label} is a volume of {format_shape(vol.shape[:3])} (D, H, W) but model input {spec.name!r} "
                f"takes {format_shape(target)} and resize is 'none'; use resize 'stretch' or resample it"
            )
        logger.info("%s: volume %s resized to %s (bilinear)", label, vol.shape[:3], target)
        vol = resize_volume(vol, target)  # type: ignore[arg-type]
    if prep.invert:
        vol = 1.0 - vol
    want, have = spec.channels, vol.shape[3]
    if want == 3 and have == 1:
        vol = np.repeat(vol, 3, axis=3)
    elif want == 1 and have == 3:
        vol = (vol @ _LUMA)[..., None]
    x = vol.astype(np.float64)
    if prep.mean is not None and prep.std is not None:
        if len(prep.mean) not in (1, x.shape[3]):
            raise OptionError(
                f"mean/std have {len(prep.mean)} values but the volume has {x.shape[3]} channel(s); give "
                f"{x.shape[3]} values (one per channel) or 1"
            )
        x = (x - np.asarray(prep.mean)) / np.asarray(prep.std)
    else:
        lo, hi = prep.value_range
        x = lo + (hi - lo) * x
    out = x.astype(np.float32)
    if spec.data_format == "channels_first":
        out = np.moveaxis(out, 3, 0)
    return np.ascontiguousarray(out)
