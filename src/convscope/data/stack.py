"""Stacks and volumes (TIFF stacks, DICOM files and series, NIfTI volumes) as the values read from a file.

A :class:`Stack` holds a file's values ``(D, H, W, C)`` as stored (after a DICOM's rescale slope/intercept,
in physical units such as Hounsfield units; after a NIfTI's ``scl_slope``/``scl_inter``), and how they
become the picture in [0, 1] that preprocessing scales (``--range``/``--mean``/``--std``):

* a window (``--window LEVEL,WIDTH``, else the DICOM's own Window Center/Width), DICOM's VOI LUT function;
* else the file's span taken as black..white: the dtype's full scale for integer TIFF pages (0..65535 for
  16-bit); for DICOM the min..max of the file's physical values (a series: of all its slices), as viewers
  show a file without a window; a NIfTI's ``cal_min``..``cal_max`` when set, else the finite min..max of the
  whole volume (one mapping for all its slices); 8-bit pages without a window stay 8-bit pixels, exactly
  like an 8-bit PNG;
* ``MONOCHROME1`` DICOM (higher values darker) is inverted after windowing, as viewers show it.

:mod:`convscope.data.volumes` turns a stack into model samples (2D slices, or one volume for a Conv3D
model); :mod:`convscope.data.medical` reads the files.
"""

from __future__ import annotations

import importlib
import logging
import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from convscope.data.spec import format_shape
from convscope.data.window import Window, to_picture
from convscope.errors import InputError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'convscope[medical]'"


@dataclass(frozen=True, eq=False)
class Stack:
    """The values of one multi-image file and how they are shown.

    Attributes:
        values: ``(D, H, W, C)`` numbers: C = 1 (gray) or 3 (RGB), or a NIfTI's 4th axis; D = pages, frames,
            series position, or a NIfTI's first axis (i, j, k are D, H, W as stored, not reoriented).
        span: ``(lo, hi)``: the values shown black..white when no window applies.
        kind: ``"TIFF"``, ``"DICOM"``, ``"DICOM series"`` or ``"NIfTI"`` (for messages).
        slice_axis: The acquisition axis a 2D model's slices are taken along by default: 0 (pages, frames,
            series order) or 2 (a NIfTI's k axis).
        window: The file's own window (a DICOM's Window Center/Width), used when ``--window`` is not given.
        invert: Show higher values darker (DICOM ``MONOCHROME1``).
        notes: What was done while reading, for the preprocessing description.
    """

    values: np.ndarray
    span: tuple[float, float]
    kind: str
    slice_axis: int = 0
    window: Window | None = None
    invert: bool = False
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.values.ndim != 4 or 0 in self.values.shape:
            raise InputError(
                f"{self.kind} values have shape {format_shape(self.values.shape)}; expected (D, H, W, C)"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """``(D, H, W, C)``."""
        return tuple(int(d) for d in self.values.shape)

    def picture(self, values: np.ndarray, window: Window | None, label: str) -> np.ndarray:
        """The picture in [0, 1] of some of this stack's values (a slice or all of them).

        8-bit values without a window or inversion stay uint8 (the 8-bit path of every image); anything
        else becomes float32 in [0, 1] through ``window`` (else the file's own) or :attr:`span`.
        """
        window = window or self.window
        if values.dtype == np.uint8 and window is None and not self.invert and self.span == (0.0, 255.0):
            return values
        out = to_picture(values, self.span, window, label=label)
        return 1.0 - out if self.invert else out

    def describe(self, window: Window | None = None) -> str:
        """E.g. ``"DICOM 1x128x128x1, window 40,400 (LINEAR)"``; how the values were shown."""
        shown = window or self.window
        how = shown.describe() if shown else f"{self.span[0]:g}..{self.span[1]:g} -> black..white"
        parts = [f"{self.kind} {'x'.join(map(str, self.shape))}", how, *self.notes]
        if self.invert:
            parts.append("MONOCHROME1 inverted")
        return ", ".join(parts)


def require(module: str, what: str) -> ModuleType:
    """Import an optional reader (``tifffile``, ``pydicom``, ``nibabel``) or say how to install it.

    Raises:
        InputError: The package is missing: ``reading WHAT needs MODULE: pip install 'convscope[medical]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"reading {what} needs the {module} package: {INSTALL_HINT}") from None


def check_size(
    label: str, shape: tuple[int, ...], *, plane: tuple[int, int], max_pixels: int, max_voxels: int
) -> None:
    """Refuse a file whose declared size is over the caps, before anything is decoded.

    Args:
        label: The file, for the message.
        shape: The declared shape of everything that would be read (e.g. ``(frames, rows, cols, samples)``).
        plane: ``(H, W)`` of one 2D image of it.
        max_pixels: The most pixels of one 2D image.
        max_voxels: The most values of the whole file.

    Raises:
        InputError: Naming the declared size and the cap.
    """
    h, w = plane
    if h * w > max_pixels:
        raise InputError(
            f"{label} declares {w}x{h} = {h * w:,} pixels per image, over the limit of {max_pixels:,} "
            "pixels (max_pixels); nothing was decoded"
        )
    total = math.prod(int(d) for d in shape)
    if total > max_voxels:
        raise InputError(
            f"{label} declares shape {format_shape(tuple(shape))} = {total:,} values, over the limit of "
            f"{max_voxels:,} (ReadOptions.max_voxels); nothing was decoded: crop it or raise the limit"
        )


def from_image(picture: np.ndarray, kind: str) -> Stack:
    """A one-image stack from a picture :func:`~convscope.data.read.read_image` returned."""
    values = picture[None, :, :, None] if picture.ndim == 2 else picture[None]
    span = (0.0, 255.0) if picture.dtype == np.uint8 else (0.0, 1.0)
    return Stack(values, span, kind)
