"""Resizing a picture or a map with Pillow: the one place convscope calls ``Image.resize``.

Pillow resamples 8-bit pictures and 32-bit float maps exactly as it would on its own images; this module only
picks the Pillow mode that fits the array and gives the array back in the same layout:

* uint8 ``(H, W)`` and ``(H, W, 1)``: mode ``L`` (the channel axis is kept when it was there);
* uint8 ``(H, W, 3)``: mode ``RGB``;
* float ``(H, W)``: mode ``F`` (32-bit float; float64 input is cast to float32 first);
* any other channel count (uint8) and float ``(H, W, C)``: each channel on its own (``L`` or ``F``), so an
  alpha channel is resized like the others, not premultiplied.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from convscope.errors import RenderError

__all__ = ["RESAMPLE_MODES", "Resample", "resize"]

Resample = Literal["nearest", "bilinear", "bicubic", "box", "hamming", "lanczos"]
RESAMPLE_MODES: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


def _plane(plane: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width, height), method))


def resize(image: np.ndarray, size: tuple[int, int], resample: Resample = "bilinear") -> np.ndarray:
    """Resize ``image`` to ``size = (height, width)`` with Pillow.

    Args:
        image: uint8 ``(H, W)`` / ``(H, W, C)``, or float ``(H, W)`` / ``(H, W, C)`` (computed in float32).
        size: ``(height, width)`` of the result, both >= 1.
        resample: Pillow filter: ``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"box"``, ``"hamming"`` or
            ``"lanczos"``.

    Returns:
        ``(height, width)`` or ``(height, width, C)``, the layout of ``image``; uint8 for uint8 input,
        float32 for float input. It may be read-only (a view of Pillow's buffer): copy it before writing.

    Raises:
        RenderError: An unknown ``resample``, a size below 1, or an array that is not uint8 or float
            ``(H, W)`` / ``(H, W, C)``.
    """
    method = RESAMPLE_MODES.get(resample) if isinstance(resample, str) else None
    if method is None:
        raise RenderError(f"resample {resample!r} is not valid; expected one of {', '.join(RESAMPLE_MODES)}")
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise RenderError(f"resize size must be (height, width) >= 1, got {tuple(size)!r}")
    arr = np.asarray(image)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype != np.uint8:
        raise RenderError(f"resize takes uint8 or float pictures, got {arr.dtype} {arr.shape}")
    if arr.ndim == 2:
        return _plane(arr, width, height, method)
    if arr.ndim != 3 or arr.shape[2] < 1:
        raise RenderError(f"resize takes (H, W) or (H, W, C) arrays, got shape {arr.shape}")
    if arr.dtype == np.uint8 and arr.shape[2] == 3:
        return _plane(arr, width, height, method)
    if arr.shape[2] == 1:
        return _plane(arr[:, :, 0], width, height, method)[:, :, None]
    return np.stack([_plane(arr[:, :, c], width, height, method) for c in range(arr.shape[2])], axis=2)
