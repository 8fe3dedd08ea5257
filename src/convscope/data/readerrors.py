"""Why an image file cannot be read, in words: no Python reprs, the file named once."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import UnidentifiedImageError

from convscope.errors import InputError

READABLE = "PNG/JPEG/BMP/GIF/TIFF/WebP"

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


def unreadable(path: Path, err: BaseException) -> InputError:
    return InputError(f"{path} is not a readable image ({READABLE}): {_reason(path, err)}")
