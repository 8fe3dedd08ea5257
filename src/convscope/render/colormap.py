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

from functools import lru_cache
from typing import Final

import numpy as np

from convscope.errors import OptionError, nearest

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
ALIASES: Final = {"grey": "gray", "greys": "gray", "coolwarm": "diverging", "rdbu": "diverging",
                  "rdbu_r": "diverging", "bwr": "diverging"}


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


@lru_cache(maxsize=None)
def get_lut(name: str) -> np.ndarray:
    """Return the read-only ``(256, 3)`` uint8 lookup table of colormap ``name``."""
    key = resolve_cmap(name)
    if key == "gray":
        table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    else:
        table = _interpolate(_anchors({"viridis": _VIRIDIS, "magma": _MAGMA, "diverging": _DIVERGING}[key]))
    table.flags.writeable = False
    return table


@lru_cache(maxsize=None)
def _lut32(name: str) -> np.ndarray:
    """The LUT packed as one uint32 per entry (RGBA bytes, A unused): a 1-D ``take`` is ~5x faster."""
    rgba = np.zeros((256, 4), np.uint8)
    rgba[:, :3] = get_lut(name)
    packed = rgba.view(np.uint32).ravel()
    packed.flags.writeable = False
    return packed


def apply_colormap(values01: np.ndarray, name: str = "gray") -> np.ndarray:
    """Colorize values in [0, 1] with a colormap; NaN, +Inf and -Inf get their reserved colors.

    Values outside [0, 1] are clipped. The result may be a strided view into an RGBA buffer (this
    avoids a copy on the rendering hot path); call ``np.ascontiguousarray`` if you need a compact array.

    Args:
        values01: float array of shape ``(...)``.
        name: A colormap name or alias (see :data:`COLORMAPS`, :data:`ALIASES`).

    Returns:
        uint8 array of shape ``(..., 3)``.

    Raises:
        OptionError: unknown colormap name.
    """
    values01 = np.asarray(values01)
    lut = _lut32(resolve_cmap(name))
    flat = values01.reshape(-1)
    scaled = np.multiply(flat, 255.0, dtype=np.float32)
    scaled += 0.5
    finite = bool(np.isfinite(scaled.sum())) if flat.size else True
    if not finite:
        bad = ~np.isfinite(flat)
        scaled[bad] = 0.0
    np.clip(scaled, 0.0, 255.0, out=scaled)
    rgba = lut.take(scaled.astype(np.uint8)).view(np.uint8).reshape(flat.size, 4)
    if not finite:
        paint_nonfinite(rgba, bad, flat[bad])
    return rgba.reshape(*values01.shape, 4)[..., :3]


def paint_nonfinite(rgb: np.ndarray, bad: np.ndarray, values: np.ndarray) -> None:
    """Overwrite the pixels flagged in ``bad`` with the NaN / +Inf / -Inf colors, in place.

    Args:
        rgb: uint8 ``(..., 3)`` or ``(..., 4)`` pixels.
        bad: bool mask of shape ``rgb.shape[:-1]``.
        values: the original values at ``bad`` (1-D, in mask order), used to tell NaN from +/-Inf.
    """
    colors = np.empty((values.size, rgb.shape[-1]), np.uint8)
    colors[:] = 0
    colors[:, :3] = NAN_COLOR
    colors[values == np.inf, :3] = POSINF_COLOR
    colors[values == -np.inf, :3] = NEGINF_COLOR
    rgb[bad] = colors
