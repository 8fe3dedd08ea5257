"""Reading image files into numpy arrays (8-bit as uint8, deeper as float in [0, 1]), safely.

Only regular files are ever opened (a FIFO would block forever, a device could stream without end; a
symlink loop is named as such), and the size is checked before any pixel is decoded.
:func:`image_problem` says why a file cannot be read without raising, for callers that skip such files
(a dataset scan).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps

from convscope.data.files import check_file, file_problem, open_regular
from convscope.data.readerrors import READABLE, unreadable
from convscope.data.window import Window, finite_span, to_picture
from convscope.errors import InputError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 50_000_000
_READABLE = READABLE
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
# Modes kept as they are; everything else is converted (see _decoded).
_KEEP = ("L", "LA", "RGB", "RGBA")
_TO_RGBA = ("PA", "La", "RGBa")


def is_image_path(path: str | Path) -> bool:
    """True if the file name ends in an accepted image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def image_problem(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Why ``path`` cannot be read as an image, or ``None`` when it can (without keeping any pixels).

    Checks, in order: a regular file (not a FIFO, socket, device, folder, broken symlink or symlink loop),
    not empty, an image format Pillow identifies from the header, at most ``max_pixels`` pixels, and the
    whole file intact (PNG: every chunk checksum; JPEG: decoded at 1/8 scale; other formats: decoded).

    Returns:
        A short reason such as ``"is empty (0 bytes)"`` or ``"is truncated or corrupt: ..."``, or ``None``.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        return problem
    if os.stat(path).st_size == 0:
        return "is empty (0 bytes)"
    try:
        with open_regular(path) as fp:
            try:
                im = Image.open(fp)
            except Image.DecompressionBombError:
                return f"has over {max_pixels:,} pixels (max_pixels)"
            except _DECODE_ERRORS:
                return f"is not a readable image ({_READABLE})"
            width, height = im.size
            if width * height > max_pixels:
                return f"is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
            try:
                if im.format == "PNG":
                    im.verify()
                else:
                    if im.format == "JPEG":
                        im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                    im.load()
            except (*_DECODE_ERRORS, Image.DecompressionBombError) as err:
                return f"is truncated or corrupt: {err}"
    except (InputError, OSError) as err:
        return f"cannot be read: {getattr(err, 'strerror', None) or err}"
    return None


def _open_without_bomb_check(path: Path, fp: BinaryIO) -> ImageFile.ImageFile | None:
    """Identify ``fp`` like :func:`PIL.Image.open` does, minus Pillow's own pixel limit.

    Used only after Pillow refused the file as a decompression bomb, so that convscope's ``max_pixels``
    (the one limit the user sees) decides, and the refusal can name the image's size.
    """
    Image.init()
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            result = accept(prefix) if accept else True
            if result and not isinstance(result, str):
                fp.seek(0)
                return factory(fp, str(path))
        except (SyntaxError, IndexError, TypeError, struct.error, OSError):
            continue
    return None


def _identify(path: Path, fp: BinaryIO) -> ImageFile.ImageFile:
    """Open ``fp`` lazily (header only); the pixels are decoded later, by ``load()``."""
    try:
        return Image.open(fp)
    except Image.DecompressionBombError as err:
        im = _open_without_bomb_check(path, fp)
        if im is None:
            raise InputError(f"{path} is too large to read: {err}") from None
        return im
    except _DECODE_ERRORS as err:  # UnidentifiedImageError is an OSError
        raise unreadable(path, err) from None


def _deep_values(arr: np.ndarray, path: Path, mode: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Values and span (black, white) of a 16/32-bit integer or float image (Pillow modes ``I*``, ``F``).

    Integers within 0..65535 are 16-bit data: span ``(0, 65535)``, every level kept. Anything else (floats,
    negative or wider integers) spans its finite min..max, with a note in the log.
    """
    values = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int64)
    if values.dtype.kind == "i" and values.size and values.min() >= 0 and values.max() <= 65535:
        return values.astype(np.uint16), (0.0, 65535.0)
    span = finite_span(values)
    logger.info("%s: mode %s values %g..%g taken as black..white", path, mode, *span)
    return values, span


def _warn_if_deep_colour_png(fp: BinaryIO, path: Path) -> None:
    """Log a warning for a 16-bit colour (or gray+alpha) PNG: Pillow decodes it to 8 bits per channel."""
    head = fp.read(26)
    fp.seek(0)
    if len(head) == 26 and head.startswith(b"\x89PNG\r\n\x1a\n") and head[24] == 16 and head[25] in (2, 4, 6):
        logger.warning(
            "%s is a 16-bit colour PNG: it is read at 8 bits per channel (Pillow decodes it no deeper); "
            "save it as a 16-bit TIFF or a 16-bit gray PNG to keep the full range",
            path,
        )


def _decoded(im: Image.Image, path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """A decoded Pillow image as ``(values, span)``: uint8 ``(H, W)``/``(H, W, C)`` with span ``None``
    (8-bit: 0..255), or deeper gray values with the span taken as black..white (see :func:`_deep_values`)."""
    mode = im.mode
    if mode in ("1",):
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in _TO_RGBA:
        im = im.convert("RGBA")
    elif mode.startswith("I") or mode == "F":
        return _deep_values(np.asarray(im), path, mode)
    elif mode not in _KEEP:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy(), None


def _to_picture(im: Image.Image, path: Path) -> np.ndarray:
    """uint8 for 8-bit images; float32 in [0, 1] for deeper ones (their full range kept)."""
    values, span = _decoded(im, path)
    return values if span is None else to_picture(values, span, label=str(path))


def image_to_array(im: Image.Image) -> np.ndarray:
    """Convert an in-memory PIL image like :func:`read_image` converts a file (EXIF orientation applied).

    Args:
        im: Any PIL image (it is not modified).

    Returns:
        uint8 ``(H, W)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)``; float32 ``(H, W)`` in [0, 1] for a
        16-bit or float image (see :func:`read_image`).

    Raises:
        InputError: If the image cannot be decoded.
    """
    label = Path(getattr(im, "filename", "") or "<image>")
    try:
        return _to_picture(ImageOps.exif_transpose(im), label)
    except _DECODE_ERRORS as err:
        raise unreadable(label, err) from None


#: EXIF orientations that swap width and height (transposed or rotated by 90 degrees).
_SWAPS_SIDES = (5, 6, 7, 8)


def draft_scale(size: tuple[int, int], least: tuple[int, int]) -> int:
    """The JPEG reduced-size decoding scale (1, 2, 4 or 8) that keeps ``size`` at least ``least``.

    Both are ``(width, height)``. libjpeg decodes at 1/scale of the stored size (rounded up) by scaling the
    DCT; the largest scale whose result is still at least ``least`` on both sides is chosen, so the image is
    never decoded smaller than the size it is resized to next (that resize still only downsamples).

    Returns:
        1 when no reduction keeps the image at least ``least`` (the image is then decoded in full).
    """
    ratio = min(size[0] // max(1, least[0]), size[1] // max(1, least[1]))
    return next((s for s in (8, 4, 2) if ratio >= s), 1)


def _draft(im: ImageFile.ImageFile, least: tuple[int, int]) -> None:
    """Ask Pillow to decode a JPEG at a reduced size that stays at least ``least`` once EXIF-oriented."""
    if im.format != "JPEG":
        return
    width, height = least
    if im.getexif().get(0x0112) in _SWAPS_SIDES:  # the stored image is turned by 90 degrees
        width, height = height, width
    if draft_scale(im.size, (width, height)) > 1:  # scale 1: the full decode, untouched
        im.draft(im.mode, (width, height))


def _decode(
    path: Path, max_pixels: int, draft: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Check, open and decode one image file: ``(values, span)`` as :func:`_decoded` gives them.

    ``draft``: ``(width, height)`` the picture is resized to next; a JPEG is then decoded at the smallest
    reduced size (1/2, 1/4 or 1/8) that stays at least that large (see :func:`draft_scale`).
    """
    check_file(path, f"image file ({_READABLE})")  # never open a FIFO, device or symlink loop
    try:
        fp = open_regular(path)  # closed by the `with` below; open errors reported apart
    except OSError as err:
        raise InputError(f"{path} cannot be opened: {err.strerror or err}") from None
    with fp:
        _warn_if_deep_colour_png(fp, path)
        im = _identify(path, fp)
        width, height = im.size
        if width * height > max_pixels:
            raise InputError(
                f"{path} is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,} pixels (max_pixels); downscale it first or raise the limit"
            )
        frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            logger.info("%s has %d frames; reading the first", path, frames)
        try:
            if draft is not None:
                _draft(im, draft)
            im.load()
            values, span = _decoded(ImageOps.exif_transpose(im), path)
        except (*_DECODE_ERRORS, Image.DecompressionBombError) as err:
            raise unreadable(path, err) from None
    logger.debug("read %s: mode %s -> %s %s", path, im.mode, values.dtype, values.shape)
    return values, span


def read_image_values(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Read one image file's values as stored, with the span taken as black..white.

    For a window (``--window``) over a plain image: 8-bit pixels span ``(0, 255)``, 16-bit ``(0, 65535)``,
    float or signed images their finite min..max.

    Returns:
        ``(values, span)``: uint8 ``(H, W[, C])``, or uint16 / int64 / float32 ``(H, W)``; ``(lo, hi)``.

    Raises:
        InputError: As :func:`read_image`.
    """
    values, span = _decode(Path(path), max_pixels, draft)
    return values, (0.0, 255.0) if span is None else span


def read_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: tuple[int, int] | None = None
) -> np.ndarray:
    """Read one image file: 8-bit images as uint8, deeper ones as float32 in [0, 1] with every level kept.

    The size is checked from the header before any pixel is decoded, so a huge (or maliciously crafted)
    file is refused cheaply. EXIF orientation is applied; 16-bit gray images (PNG, TIFF) become
    ``v / 65535`` in float32 (no 8-bit truncation: values differing in the low byte stay different);
    float and signed images span their finite min..max; palette images are expanded; ``1``-bit images
    become 0/255 gray; CMYK and other colour spaces become RGB. A 16-bit colour PNG is read at 8 bits per
    channel (Pillow decodes it no deeper), with a warning in the log. Only the first frame of an animated
    GIF/WebP is read (TIFF stacks: :func:`convscope.data.stack.read_stack`).

    Args:
        path: An image file (PNG, JPEG, BMP, GIF, TIFF or WebP; the content decides, not the extension).
        max_pixels: Refuse images with more than this many pixels (width x height).
        draft: ``(width, height)`` the picture will be resized to: a JPEG is decoded at a reduced size
            (1/2, 1/4 or 1/8, by DCT scaling) that stays at least this large (:func:`draft_scale`);
            other formats, and JPEGs no reduction keeps this large, are decoded in full. ``None``: in full.

    Returns:
        uint8 array ``(H, W)`` for gray, ``(H, W, 2)`` gray+alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA;
        float32 ``(H, W)`` in [0, 1] for a 16-bit or float gray image.

    Raises:
        InputError: If the path is missing, a folder or not a regular file (FIFO, device, symlink loop),
            the file is not a readable image (corrupt, truncated, unknown format), or it has more than
            ``max_pixels`` pixels.
    """
    path = Path(path)
    values, span = _decode(path, max_pixels, draft)
    return values if span is None else to_picture(values, span, label=str(path))


def read_picture(
    path: str | Path,
    window: Window | None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | None = None,
) -> np.ndarray:
    """:func:`read_image`, or with ``window`` (``--window``) the picture of the stored values through it.

    Returns:
        uint8 or float32 in [0, 1] as :func:`read_image`; with a window always float32 in [0, 1].
    """
    if window is None:
        return read_image(path, max_pixels=max_pixels, draft=draft)
    values, span = read_image_values(path, max_pixels=max_pixels, draft=draft)
    return to_picture(values, span, window, label=str(path))
