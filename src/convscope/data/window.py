"""From stored or physical values to the picture in [0, 1] that preprocessing scales: a window, or a span.

Every image convscope reads becomes, before ``--range``/``--mean``/``--std`` apply, a picture whose values
lie in [0, 1]: ``x / 255`` for 8-bit pixels, ``x / 65535`` for 16-bit ones, and for medical data either a
window (``LEVEL,WIDTH``, as radiology viewers show it) or a span of values taken as black..white. This module
is the one place that mapping is computed.

The window is the DICOM VOI LUT function (PS3.3 C.11.2.1.2): ``LINEAR`` (the viewers' default),
``LINEAR_EXACT`` and ``SIGMOID``, with the output range [0, 1] instead of the display's bit range.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from convscope.data.pairs import parse_pair
from convscope.errors import OptionError

logger = logging.getLogger(__name__)

WindowFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
WINDOW_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_ACCEPTED = "expected LEVEL,WIDTH with two finite numbers and WIDTH > 0, e.g. 40,400 (CT soft tissue)"


@dataclass(frozen=True)
class Window:
    """A VOI window: values around ``level`` within ``width`` spread over black..white.

    Attributes:
        level: The window centre (DICOM Window Center), in the values' units (Hounsfield units for CT).
        width: The window width (DICOM Window Width), > 0.
        function: ``"LINEAR"`` (DICOM's default; for ``width < 1``, where it is undefined, the exact
            linear form is used), ``"LINEAR_EXACT"`` or ``"SIGMOID"``.

    Raises:
        OptionError: A non-finite level or width, a width <= 0, or an unknown function.
    """

    level: float
    width: float
    function: WindowFunction = "LINEAR"

    def __post_init__(self) -> None:
        level, width = float(self.level), float(self.width)
        if not (math.isfinite(level) and math.isfinite(width)):
            raise OptionError(f"window {self.level:g},{self.width:g} is not finite; {_ACCEPTED}")
        if width <= 0:
            raise OptionError(
                f"window width {self.width:g} is not positive (window {level:g},{width:g}); {_ACCEPTED}"
            )
        if self.function not in WINDOW_FUNCTIONS:
            raise OptionError(
                f"window function {self.function!r} is not valid; expected one of {', '.join(WINDOW_FUNCTIONS)}"
            )
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "width", width)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map ``values`` (any shape, any numeric dtype) to float64 in [0, 1].

        ``LINEAR``: 0 at or below ``level - 0.5 - (width - 1) / 2``, 1 above ``level - 0.5 + (width - 1) / 2``,
        else ``((x - (level - 0.5)) / (width - 1) + 0.5)``. ``LINEAR_EXACT``: ``(x - level) / width + 0.5``
        clipped. ``SIGMOID``: ``1 / (1 + exp(-4 (x - level) / width))``.
        """
        x = np.asarray(values, dtype=np.float64)
        c, w = self.level, self.width
        if self.function == "SIGMOID":
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        if self.function == "LINEAR" and w >= 1:
            low, high = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
            if w == 1:  # a step: DICOM's function with a zero-width ramp
                return np.where(x > high, 1.0, 0.0)
            y = np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)
            return np.where(x <= low, 0.0, np.where(x > high, 1.0, y))
        return np.clip((x - c) / w + 0.5, 0.0, 1.0)

    def describe(self) -> str:
        """E.g. ``"window 40,400 (LINEAR)"``."""
        return f"window {self.level:g},{self.width:g} ({self.function})"


def parse_window(text: str) -> Window:
    """Parse ``--window LEVEL,WIDTH``, e.g. ``"40,400"`` or ``"-600,1500"``.

    Raises:
        OptionError: Malformed text, a non-finite number, or a width <= 0 (the message echoes the text).
    """
    level, width = parse_pair(text, "window", _ACCEPTED)
    if width <= 0:
        raise OptionError(f"window {text!r} has a width of {width:g}, which is not positive; {_ACCEPTED}")
    return Window(level, width)


def span_picture(values: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Map ``values`` linearly so that ``span[0]`` is 0 and ``span[1]`` is 1 (clipped; float64).

    NaN becomes 0 (logged); a span with ``hi <= lo`` (a constant image) gives all zeros.
    """
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(span[0]), float(span[1])
    out = np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(x.shape)
    return out


def to_picture(
    values: np.ndarray, span: tuple[float, float], window: Window | None = None, *, label: str = "image"
) -> np.ndarray:
    """The picture in [0, 1] (float32) of ``values``: through ``window`` if given, else ``span``.

    Args:
        values: Stored or physical values, any shape.
        span: ``(lo, hi)``: the values taken as black and white when no window is given (the format's
            full scale, a DICOM's or NIfTI's min..max, a NIfTI's ``cal_min``/``cal_max``).
        window: A VOI window (``--window``, or the file's own).
        label: How to name the data in the log.

    Returns:
        float32, the shape of ``values``; NaN values become 0 (counted in a warning).
    """
    out = window.apply(values) if window is not None else span_picture(values, span)
    nan = np.isnan(out)
    if nan.any():
        logger.warning("%s: %d NaN value(s) shown as 0 (black)", label, int(nan.sum()))
        out = np.where(nan, 0.0, out)
    return out.astype(np.float32)


def finite_span(values: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of the finite values (``(0, 0)`` when there are none)."""
    x = np.asarray(values)
    if x.dtype.kind in "iub":
        return (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    finite = x[np.isfinite(x)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def dtype_span(dtype: np.dtype) -> tuple[float, float] | None:
    """The full scale of an integer dtype (``(0, 65535)`` for uint16); ``None`` for floats."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return (0.0, 1.0)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return (float(info.min), float(info.max))
    return None
