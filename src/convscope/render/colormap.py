"""Colormaps as 256-entry lookup tables, built from small embedded anchor tables (no matplotlib).

Every map is a ``(256, 3)`` uint8 table. ``viridis`` and ``magma`` are rebuilt from every 5th entry of
matplotlib's tables (52 anchors, linear interpolation; within 1/255 of matplotlib at all 256 entries).
``diverging`` is ColorBrewer RdBu reversed (blue - white - red, what matplotlib calls ``RdBu_r``) from
its 11 defining colors, interpolated the way matplotlib does. ``gray`` is the identity ramp.

Values that are not finite get colors reserved for them, chosen to stand out from all four maps:

* NaN  -> magenta ``(255, 0, 255)``
* +Inf -> orange  ``(255, 128, 0)``
* -Inf -> cyan    ``(0, 255, 255)``
"""

from __future__ import annotations

import sys
from functools import cache, lru_cache
from typing import Final

import numpy as np

from convscope.errors import OptionError, RenderError, nearest

NAN_COLOR: Final = (255, 0, 255)
POSINF_COLOR: Final = (255, 128, 0)
NEGINF_COLOR: Final = (0, 255, 255)

_VIRIDIS: Final = (
    "440154 46085c 471063 481769 481d6f 482475 472a7a 46307e 453781 433d84 414287 3f4889 3d4e8a 3a538b "
    "38598c 355e8d 33638d 31688e 2e6d8e 2c718e 2a768e 297b8e 27808e 25848e 23898e 218e8d 20928c 1f978b "
    "1e9c89 1fa188 21a585 24aa83 28ae80 2eb37c 35b779 3dbc74 46c06f 50c46a 5ac864 65cb5e 70cf57 7cd250 "
    "89d548 95d840 a2da37 b0dd2f bddf26 cae11f d8e219 e5e419 f1e51d fde725"
)
_MAGMA: Final = (
    "000004 02020b 050416 090720 0e0b2b 140e36 1a1042 21114e 29115a 311165 390f6e 420f75 4a1079 52137c "
    "5a167e 621980 6a1c81 721f81 792282 812581 892881 912b81 992d80 a1307e aa337d b2357b ba3878 c23b75 "
    "ca3e72 d2426f d9466b e04c67 e75263 ec5860 f1605d f4695c f7725c f97b5d fb8560 fc8e64 fd9869 fea16e "
    "feaa74 feb47b febd82 fec68a fecf92 fed89a fde2a3 fdebac fcf4b6 fcfdbf"
)
# ColorBrewer RdBu, reversed: dark blue -> white -> dark red.
_DIVERGING: Final = "053061 2166ac 4393c3 92c5de d1e5f0 f7f7f7 fddbc7 f4a582 d6604d b2182b 67001f"

COLORMAPS: Final = ("gray", "viridis", "magma", "diverging")
ALIASES: Final = {
    "grey": "gray",
    "greys": "gray",
    "coolwarm": "diverging",
    "rdbu": "diverging",
    "rdbu_r": "diverging",
    "bwr": "diverging",
}


def _anchors(hex_table: str) -> np.ndarray:
    """Parse ``"rrggbb rrggbb ..."`` into a float ``(n, 3)`` array of 0..255 values."""
    return np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in hex_table.split()], np.float64)


def _interpolate(anchors: np.ndarray) -> np.ndarray:
    """Spread ``n`` evenly spaced anchors over 256 entries by linear interpolation.

    Args:
        anchors: ``(n, 3)`` colors at positions ``linspace(0, 255, n)``.

    Returns:
        ``(256, 3)`` uint8 table.
    """
    where = np.linspace(0.0, 255.0, len(anchors))
    steps = np.arange(256, dtype=np.float64)
    table = np.stack([np.interp(steps, where, anchors[:, k]) for k in range(3)], axis=1)
    return np.clip(np.round(table), 0, 255).astype(np.uint8)


def resolve_cmap(name: str) -> str:
    """Return the canonical colormap name for ``name`` (case-insensitive, aliases allowed).

    Raises:
        OptionError: ``name`` is not a known colormap; the message lists the valid names.
    """
    if not isinstance(name, str):
        raise OptionError(f"cmap must be a string, got {name!r}; valid: {', '.join(COLORMAPS)}")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in COLORMAPS:
        valid = ", ".join(COLORMAPS) + f" (aliases: {', '.join(ALIASES)})"
        hint = nearest(key, [*COLORMAPS, *ALIASES], n=2)
        raise OptionError(f"unknown colormap {name!r}; valid: {valid}; did you mean {' or '.join(hint)}?")
    return key


@cache
def get_lut(name: str) -> np.ndarray:
    """Return the read-only ``(256, 3)`` uint8 lookup table of colormap ``name``."""
    key = resolve_cmap(name)
    if key == "gray":
        table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    else:
        table = _interpolate(_anchors({"viridis": _VIRIDIS, "magma": _MAGMA, "diverging": _DIVERGING}[key]))
    table.flags.writeable = False
    return table


@cache
def _lut_v3(name: str) -> np.ndarray:
    """The LUT as 256 opaque 3-byte items, so ``take`` copies whole pixels."""
    packed = np.ascontiguousarray(get_lut(name)).view("V3").reshape(256)
    packed.flags.writeable = False
    return packed


@lru_cache(maxsize=8)
def _lut_pairs(name: str) -> np.ndarray:
    """A 65536-entry LUT of pixel *pairs* (6-byte items, 384 KiB).

    It is indexed by two neighbouring uint8 indices read as one little-endian uint16. Looking up pairs
    halves the number of items ``take`` copies: ~4x faster than ``lut[indices]`` on a whole mosaic.
    """
    lut = get_lut(name)
    pairs = np.empty((256, 256, 6), np.uint8)  # [second, first]: uint16 value = first + 256 * second
    pairs[:, :, :3] = lut[None, :, :]
    pairs[:, :, 3:] = lut[:, None, :]
    packed = pairs.reshape(-1).view("V6")
    packed.flags.writeable = False
    return packed


def _lookup(name: str, indices: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = lut[indices]`` for C-contiguous ``indices`` ``S`` and ``out`` ``S + (3,)``."""
    flat, dst = indices.reshape(-1), out.reshape(-1)
    n = flat.size
    even = n - n % 2
    if even and sys.byteorder == "little":
        np.take(_lut_pairs(name), flat[:even].view(np.uint16), out=dst[: even * 3].view("V6"), mode="clip")
    else:
        even = 0
    if even < n:
        np.take(_lut_v3(name), flat[even:], out=dst[even * 3 :].view("V3"), mode="clip")


# Codes for non-finite values, as returned by :func:`to_indices`.
FINITE, NAN, POSINF, NEGINF = 0, 1, 2, 3
_SPECIAL = {NAN: NAN_COLOR, POSINF: POSINF_COLOR, NEGINF: NEGINF_COLOR}


def to_indices(values01: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Quantize values in [0, 1] to LUT indices (rounded, clipped to 0..255).

    Args:
        values01: float array of any shape ``S``.

    Returns:
        ``(indices, codes)``: uint8 indices of shape ``S`` (0 where the value is not finite), and uint8
        codes of shape ``S`` (:data:`FINITE`, :data:`NAN`, :data:`POSINF`, :data:`NEGINF`), or ``None``
        when every value is finite (the common case: detected with one cheap sum, no mask is built).
    """
    values01 = np.asarray(values01)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.multiply(values01, 255.0, dtype=np.float32)
        scaled += 0.5
        finite = not scaled.size or bool(np.isfinite(scaled.sum()))
    codes = None
    if not finite:
        bad = ~np.isfinite(values01)
        if bad.any():
            codes = np.zeros(values01.shape, np.uint8)
            codes[np.isnan(values01)] = NAN
            codes[values01 == np.inf] = POSINF
            codes[values01 == -np.inf] = NEGINF
            scaled[bad] = 0.0
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8), codes


def colorize(
    indices: np.ndarray, codes: np.ndarray | None, name: str, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Look ``indices`` up in colormap ``name``; pixels flagged in ``codes`` get the special colors.

    Args:
        indices: uint8 array of shape ``S``.
        codes: ``None`` or uint8 codes of shape ``S`` from :func:`to_indices`.
        name: Colormap name or alias.
        out: Optional uint8 array of shape ``S + (3,)`` to write into (fastest when C-contiguous).

    Returns:
        uint8 array of shape ``S + (3,)`` (``out`` if given).
    """
    key = resolve_cmap(name)
    if out is None:
        out = np.empty((*indices.shape, 3), np.uint8)
    if out.shape != (*indices.shape, 3) or out.dtype != np.uint8:
        raise RenderError(f"out must be uint8 of shape {(*indices.shape, 3)}, got {out.dtype} {out.shape}")
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    if out.flags.c_contiguous:
        _lookup(key, indices, out)
    else:  # e.g. a body area narrower than its picture: look up compactly, then copy
        tmp = np.empty(out.shape, np.uint8)
        _lookup(key, indices, tmp)
        out[...] = tmp
    if codes is not None:
        for code, color in _SPECIAL.items():
            out[codes == code] = color
    return out


def apply_colormap(values01: np.ndarray, name: str = "gray") -> np.ndarray:
    """Colorize values in [0, 1]; values outside are clipped, NaN / +Inf / -Inf get their special colors.

    Args:
        values01: float array of shape ``S``.
        name: A colormap name or alias (see :data:`COLORMAPS`, :data:`ALIASES`).

    Returns:
        uint8 array of shape ``S + (3,)``.

    Raises:
        OptionError: unknown colormap name.
    """
    resolve_cmap(name)
    indices, codes = to_indices(values01)
    return colorize(indices, codes, name)
