"""Helpers for the data tests: write real image files, and independent references to compare against."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def save(path: Path, arr: np.ndarray, **kwargs: Any) -> Path:
    """Write ``arr`` (uint8 (H, W) / (H, W, 3) / (H, W, 4), or uint16 (H, W)) with Pillow; return the path."""
    Image.fromarray(arr).save(path, **kwargs)
    return path


def smooth(h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    """A smooth uint8 image (survives JPEG well), gray (H, W) or (H, W, c)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    chans = []
    for _ in range(c or 1):
        a, b, p = rng.uniform(0.05, 0.3, 3)
        chans.append(127.5 + 127.5 * np.sin(a * yy + b * xx + p * 6))
    arr = np.round(np.stack(chans, axis=-1)).astype(np.uint8)
    return arr[:, :, 0] if c is None else arr


def pil_bilinear(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Reference stretch: Pillow BILINEAR resize of a uint8 (H, W) or (H, W, 3) array."""
    return np.asarray(Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_png(path: Path, width: int, height: int, bit_depth: int, color_type: int, rows: object) -> Path:
    """Write a PNG by hand: ``rows`` yields the raw bytes of each row (without the filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\0" + row) for row in rows) + comp.flush()  # type: ignore[attr-defined]
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def huge_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG: tiny on disk, ``width * height`` bytes once decoded by Pillow."""
    row = bytes((width + 7) // 8)
    return write_png(path, width, height, 1, 0, (row for _ in range(height)))


def png16_rgb(path: Path, arr: np.ndarray) -> Path:
    """Write a 16-bit RGB PNG (which Pillow cannot write) from uint16 (H, W, 3)."""
    h, w, _ = arr.shape
    big = arr.astype(">u2")
    return write_png(path, w, h, 16, 2, (big[i].tobytes() for i in range(h)))
