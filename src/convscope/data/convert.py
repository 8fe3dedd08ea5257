"""Turning one image (8-bit pixels, or a float picture in [0, 1]) into exactly what a model input expects."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from convscope.data.preprocess import Preprocess
from convscope.data.spec import InputSpec, format_shape
from convscope.errors import InputError, OptionError
from convscope.render.resize import resize

logger = logging.getLogger(__name__)

_SMALL = 8  # warn when an image side is below this many pixels and gets upscaled
RGB_TO_GRAY = "RGB->gray (ITU-R 601-2 luma)"
GRAY_TO_RGB = "gray->RGB (replicated)"
ALPHA_DROPPED = "alpha dropped"


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One image after preprocessing.

    Attributes:
        x: float32 model input of one sample, shape ``spec.shape`` (free sizes filled in).
        display: uint8 ``(H, W, 3)`` RGB picture of what the model sees (resized, inverted, padded), for
            overlays.
        notes: The channel conversions that were applied, e.g. ``("alpha dropped",)``.
    """

    x: np.ndarray
    display: np.ndarray
    notes: tuple[str, ...]

    def __repr__(self) -> str:
        x, shown = "x".join(map(str, self.x.shape)), "x".join(map(str, self.display.shape))
        return f"PreparedImage(x={x} {self.x.dtype}, display={shown}, notes={self.notes})"


def _check_image(img: np.ndarray, label: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or not (img.dtype == np.uint8 or img.dtype.kind == "f"):
        kind = f"{img.dtype} array" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputError(f"{label}: expected a uint8 image array or a float picture in [0, 1], got {kind}")
    if img.dtype.kind == "f":
        img = img.astype(np.float32, copy=False)
    if img.ndim == 2:
        return img[:, :, None]
    if img.ndim == 3 and 1 <= img.shape[2] <= 4 and img.shape[0] and img.shape[1]:
        return img
    raise InputError(f"{label}: image shape {img.shape} is not (H, W) or (H, W, C) with C in 1..4")


def _check_spec(spec: InputSpec, label: str) -> None:
    if spec.rank != 2:
        raise InputError(
            f"{label}: model input {spec.name!r} has shape {format_shape(spec.shape)}, which is not an image "
            "input (H, W, C) or (C, H, W); pass a .npy array of that shape instead"
        )
    if spec.channels not in (1, 3, None):
        raise InputError(
            f"{label}: model input {spec.name!r} has {spec.channels} channels; images convert only to "
            "1 (gray) or 3 (RGB) channels; pass a .npy array instead"
        )


def _convert_channels(img: np.ndarray, target: int | None, notes: list[str]) -> np.ndarray:
    """``(H, W, C)`` with C in 1..4 -> ``(H, W, target)`` (or 1/3 channels when ``target`` is None)."""
    if img.shape[2] in (2, 4):
        img = img[:, :, : img.shape[2] - 1]
        notes.append(ALPHA_DROPPED)
    if target == 1 and img.shape[2] == 3:
        notes.append(RGB_TO_GRAY)
        if img.dtype != np.uint8:  # the same luma, in float
            return (img @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
        gray = np.asarray(Image.fromarray(np.ascontiguousarray(img)).convert("L"))
        return gray[:, :, None]
    if target == 3 and img.shape[2] == 1:
        notes.append(GRAY_TO_RGB)
        return np.repeat(img, 3, axis=2)
    return img


def _invert(img: np.ndarray) -> np.ndarray:
    """``255 - x`` for 8-bit pixels, ``1 - x`` for a float picture."""
    return 255 - img if img.dtype == np.uint8 else 1.0 - img


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of ``(H, W, C)`` (uint8, or float in Pillow mode ``F``) with Pillow; same size: as is."""
    if img.shape[:2] == (height, width):
        return img
    return resize(img, (height, width), "bilinear")


def _geometry(img: np.ndarray, spec: InputSpec, prep: Preprocess, label: str) -> np.ndarray:
    """Resize (per ``prep.resize``) and invert ``(H, W, C)`` pixels (uint8 or a float picture)."""
    h, w = img.shape[:2]
    th, tw = spec.height or h, spec.width or w
    if (h, w) != (th, tw) and prep.resize == "none":
        raise InputError(
            f"{label} is {w}x{h} but model input {spec.name!r} takes {tw}x{th} (width x height) and resize "
            "is 'none'; use resize 'stretch' or 'fit', or resize the image yourself"
        )
    if min(h, w) < _SMALL and (th > h or tw > w):
        logger.warning("%s is only %dx%d pixels; upscaled to %dx%d", label, w, h, tw, th)
    if prep.resize != "fit":
        out = _resize(img, tw, th)
        return _invert(out) if prep.invert else out
    scale = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
    content = _resize(img, nw, nh)
    canvas = np.zeros((th, tw, img.shape[2]), img.dtype)
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas[top : top + nh, left : left + nw] = _invert(content) if prep.invert else content
    return canvas


def draft_size(spec: InputSpec, prep: Preprocess) -> tuple[int, int] | None:
    """``(width, height)`` an image file may be decoded down to (JPEG DCT scaling) before :func:`prepare_image`.

    Only a ``"stretch"`` resize to a fixed size qualifies: its result is that size whatever the decoded
    size, and a decode kept at least that large (see :func:`convscope.data.read.draft_scale`) leaves the
    bilinear resize a downsampling, so the input differs from the full decode's only by the finer
    low-pass filtering (a few 8-bit levels; bounded in the tests). ``"fit"`` places the content by
    rounding the decoded size, and ``"none"`` needs the stored size: both are always decoded in full.

    Returns:
        The model's ``(width, height)``, or ``None`` when the image must be decoded in full.
    """
    if prep.resize != "stretch" or spec.rank != 2 or spec.width is None or spec.height is None:
        return None
    return int(spec.width), int(spec.height)


def _scale(pixels: np.ndarray, prep: Preprocess) -> np.ndarray:
    """``(H, W, C)`` -> float32 by ``value_range`` or ``(x - mean)/std`` of the picture ``x`` in [0, 1]
    (``x = pixels / 255`` for uint8 pixels; a float picture as it is).

    8-bit pixels are looked up in a table of the 256 levels computed by the same float64 formula, so the
    result is identical to computing it on every pixel, at a fraction of the cost.
    """
    if pixels.dtype != np.uint8:
        return _scale_values(pixels.astype(np.float64), prep)
    table = _levels(prep, pixels.shape[2])
    out = np.empty(pixels.shape, np.float32)
    for c in range(pixels.shape[2]):
        np.take(table[c], pixels[:, :, c], out=out[:, :, c])
    return out


@functools.lru_cache(maxsize=16)
def _levels(prep: Preprocess, channels: int) -> np.ndarray:
    """float32 ``(channels, 256)``: what :func:`_scale` gives each 8-bit level in each channel."""
    levels = np.repeat(np.arange(256, dtype=np.float64)[None, :, None], channels, axis=2) / 255.0
    table = np.ascontiguousarray(_scale_values(levels, prep)[0].T)
    table.flags.writeable = False
    return table


def _scale_values(x: np.ndarray, prep: Preprocess) -> np.ndarray:
    """float64 picture ``(H, W, C)`` in [0, 1] -> float32 model values (the one scaling formula)."""
    out: np.ndarray
    if prep.mean is not None and prep.std is not None:
        channels = x.shape[2]
        if len(prep.mean) not in (1, channels):
            raise OptionError(
                f"mean/std have {len(prep.mean)} values but the model input has {channels} channel(s); "
                f"give {channels} values (one per channel) or 1"
            )
        out = (x - np.asarray(prep.mean)) / np.asarray(prep.std)
    else:
        lo, hi = prep.value_range
        out = lo + (hi - lo) * x
    return out.astype(np.float32)


def prepare_image(
    img: np.ndarray, spec: InputSpec, prep: Preprocess | None = None, *, label: str = "image"
) -> PreparedImage:
    """Preprocess one image and keep a display copy; :func:`to_model_input` returns only ``.x``.

    Args:
        img: uint8 ``(H, W)`` or ``(H, W, C)`` with C in 1..4, or a float picture in [0, 1] of those shapes
            (as :func:`read_image` returns).
        spec: The model input (2D image input with 1, 3 or any channels).
        prep: The preprocessing options (default :class:`Preprocess`).
        label: How to name the image in messages (e.g. its path).

    Returns:
        The model input, the display picture and the channel conversions applied.

    Raises:
        InputError: If the image or the spec cannot be used (see :func:`to_model_input`).
        OptionError: If ``mean``/``std`` have a length other than 1 or the channel count.
    """
    prep = prep or Preprocess()
    arr = _check_image(img, label)
    _check_spec(spec, label)
    notes: list[str] = []
    pixels = _geometry(_convert_channels(arr, spec.channels, notes), spec, prep, label)
    x = _scale(pixels, prep)
    if spec.data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(2, 0, 1))
    shown = to_uint8(pixels)
    display = shown if shown.shape[2] == 3 else np.repeat(shown, 3, axis=2)
    return PreparedImage(x=x, display=np.ascontiguousarray(display), notes=tuple(notes))


def to_uint8(picture: np.ndarray) -> np.ndarray:
    """A picture as 8-bit pixels: uint8 as it is, a float picture in [0, 1] as ``round(x * 255)``."""
    if picture.dtype == np.uint8:
        return picture
    return np.round(np.clip(np.nan_to_num(picture), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_model_input(
    img: np.ndarray, spec: InputSpec, prep: Preprocess | None = None, *, label: str = "image"
) -> np.ndarray:
    """Convert one image to the float32 input of ``spec``: channels, resize, invert, scale, layout.

    Args:
        img: uint8 ``(H, W)`` or ``(H, W, C)`` with C in 1..4 (2 = gray+alpha, 4 = RGBA), or a float
            picture in [0, 1] (a 16-bit image, a medical slice) of those shapes; 8-bit pixels are resized
            as 8-bit pixels, float pictures in float (Pillow mode ``F``).
        spec: The model input: ``(H, W, C)`` or ``(C, H, W)`` with C in (1, 3) or None.
        prep: The preprocessing options (default :class:`Preprocess`: stretch, [0, 1]).
        label: How to name the image in messages.

    Returns:
        float32 array of shape ``spec.shape``; sizes the model leaves free (``None``) take the image's
        own height/width, and a free channel count keeps the image's (1 or 3, alpha dropped).

    Raises:
        InputError: If ``img`` is neither a uint8 image array nor a float picture, the spec is not a 2D image input with 1 or 3
            channels, or ``resize="none"`` and the size differs from the model's.
        OptionError: If ``mean``/``std`` have a length other than 1 or the channel count.
    """
    return prepare_image(img, spec, prep, label=label).x
