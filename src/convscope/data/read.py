"""Reading image files into 8-bit numpy arrays, safely.

Only regular files are ever opened (a FIFO would block forever, a device could stream without end; a
symlink loop is named as such), and the size is checked before any pixel is decoded.
:func:`image_problem` says why a file cannot be read without raising, for callers that skip such files
(a dataset scan).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from convscope.errors import InputError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 50_000_000
_READABLE = "PNG/JPEG/BMP/GIF/TIFF/WebP"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error)
# Modes kept as they are; everything else is converted (see _to_uint8).
_KEEP = ("L", "LA", "RGB", "RGBA")
_TO_RGBA = ("PA", "La", "RGBa")


def is_image_path(path: str | Path) -> bool:
    """True if the file name ends in an accepted image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a readable regular file (``"is a symlink loop"``, ...), or ``None`` if it is one.

    Never opens the path: ``os.stat`` only (following symlinks).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symlink loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return (
                "is a broken symlink (its target does not exist)"
                if os.path.islink(path)
                else "does not exist"
            )
        return f"cannot be read: {err.strerror or err}"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        return f"is {kind}, not a regular file"
    return None


def check_file(path: str | Path, what: str = "file") -> None:
    """Raise :class:`InputError` in one line unless ``path`` is a regular file (see :func:`file_problem`)."""
    problem = file_problem(path)
    if problem == "does not exist":
        raise InputError(f"no such file or folder: {path}")
    if problem == "is a folder":
        raise InputError(f"{path} is a folder; expected one {what}")
    if problem is not None:
        raise InputError(f"{path} {problem}; convscope reads only regular files")


def _open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without ever blocking (a FIFO swapped in meanwhile is refused)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path} is not a regular file; convscope reads only regular files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
        with _open_regular(path) as fp:
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


_REPR = re.compile(r"<[^<>]*?\bname=(['\"])(.*?)\1[^<>]*>")  # <_io.BufferedReader name='x.png'>
_OBJECT = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
_SIGNATURES = (
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x93NUMPY", "a numpy .npy array (pass it as an array input)"),
    (b"%PDF", "a PDF document"),
)


def _what_it_is(path: Path) -> str:
    """What a file Pillow cannot identify holds, in words (from its first bytes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return "its content is not an image"
    if not head:
        return "the file is empty (0 bytes)"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return f"it is {name}, not an image"
    try:
        head.decode("utf-8")
        return "it holds text, not an image"
    except UnicodeDecodeError:
        return "its content is not a known image format"


def _reason(path: Path, err: BaseException) -> str:
    """The cause of a decoding error in words: no Python reprs, the file named once (in the message)."""
    if isinstance(err, UnidentifiedImageError):
        return _what_it_is(path)
    text = str(err).strip()
    if "truncated" in text.lower() or isinstance(err, EOFError):
        return "the file is truncated (its image data ends early)"
    text = _OBJECT.sub("", _REPR.sub(lambda m: Path(m.group(2)).name, text)).strip()
    return text or type(err).__name__


def _unreadable(path: Path, err: BaseException) -> InputError:
    return InputError(f"{path} is not a readable image ({_READABLE}): {_reason(path, err)}")


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
        raise _unreadable(path, err) from None


def _scale_to_uint8(arr: np.ndarray, path: Path, mode: str) -> np.ndarray:
    """Scale a 16/32-bit integer or float image to 0..255.

    Integers within 0..65535 are 16-bit data: ``round(v / 257)``. Anything else (floats, negative or
    wider integers) is min-max scaled over the finite values, with a note in the log.
    """
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    if arr.dtype.kind in "iu" and values.size and values.min() >= 0 and values.max() <= 65535:
        return np.round(values / 257.0).astype(np.uint8)
    lo = float(values[finite].min()) if finite.any() else 0.0
    hi = float(values[finite].max()) if finite.any() else 0.0
    logger.info("%s: mode %s values %g..%g min-max scaled to 0..255", path, mode, lo, hi)
    scaled = (values - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(values)
    return np.round(np.where(finite, scaled, 0.0)).astype(np.uint8)


def _to_uint8(im: Image.Image, path: Path) -> np.ndarray:
    """Convert a decoded Pillow image to uint8 ``(H, W)`` (gray) or ``(H, W, C)`` with C in 2 (LA), 3, 4."""
    mode = im.mode
    if mode in ("1",):
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in _TO_RGBA:
        im = im.convert("RGBA")
    elif mode.startswith("I") or mode == "F":
        return _scale_to_uint8(np.asarray(im), path, mode)
    elif mode not in _KEEP:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def image_to_array(im: Image.Image) -> np.ndarray:
    """Convert an in-memory PIL image like :func:`read_image` converts a file (EXIF orientation applied).

    Args:
        im: Any PIL image (it is not modified).

    Returns:
        uint8 ``(H, W)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)``.

    Raises:
        InputError: If the image cannot be decoded.
    """
    label = Path(getattr(im, "filename", "") or "<image>")
    try:
        return _to_uint8(ImageOps.exif_transpose(im), label)
    except _DECODE_ERRORS as err:
        raise _unreadable(label, err) from None


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read one image file into an 8-bit array.

    The size is checked from the header before any pixel is decoded, so a huge (or maliciously crafted)
    file is refused cheaply. EXIF orientation is applied; 16-bit images are scaled to 8 bits
    (``round(v / 257)``); palette images are expanded; ``1``-bit images become 0/255 gray; CMYK and other
    colour spaces become RGB. Only the first frame of an animated GIF/WebP/TIFF is read.

    Args:
        path: An image file (PNG, JPEG, BMP, GIF, TIFF or WebP; the content decides, not the extension).
        max_pixels: Refuse images with more than this many pixels (width x height).

    Returns:
        uint8 array ``(H, W)`` for gray, ``(H, W, 2)`` gray+alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA.

    Raises:
        InputError: If the path is missing, a folder or not a regular file (FIFO, device, symlink loop),
            the file is not a readable image (corrupt, truncated, unknown format), or it has more than
            ``max_pixels`` pixels.
    """
    path = Path(path)
    check_file(path, f"image file ({_READABLE})")  # never open a FIFO, device or symlink loop
    try:
        fp = _open_regular(path)  # closed by the `with` below; open errors reported apart
    except OSError as err:
        raise InputError(f"{path} cannot be opened: {err.strerror or err}") from None
    with fp:
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
            im.load()
            arr = _to_uint8(ImageOps.exif_transpose(im), path)
        except (*_DECODE_ERRORS, Image.DecompressionBombError) as err:
            raise _unreadable(path, err) from None
    logger.debug("read %s: mode %s -> uint8 %s", path, im.mode, arr.shape)
    return arr
