"""Finite numbers written ``A,B[,C,D]`` on a command line: the one parser of ``--range``, ``--window`` and
``--region``."""

from __future__ import annotations

import math

from convscope.errors import OptionError


def parse_pair(text: str, what: str, accepted: str) -> tuple[float, float]:
    """Parse ``"A,B"`` into two finite floats (spaces ignored).

    Args:
        text: The text as given.
        what: The option's name in messages, e.g. ``"value range"`` or ``"window"``.
        accepted: What would be accepted, appended to every message.

    Raises:
        OptionError: Not exactly two comma-separated numbers, or a number that is not finite.
    """
    parts = str(text).split(",")
    if len(parts) != 2:
        raise OptionError(f"{what} {text!r} is malformed; {accepted}")
    try:
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise OptionError(f"{what} {text!r} is not two numbers; {accepted}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise OptionError(f"{what} {text!r} is not finite; {accepted}")
    return a, b


def parse_ints(text: str, count: int, what: str, accepted: str) -> tuple[int, ...]:
    """Parse ``count`` comma-separated non-negative integers, e.g. ``"0,0,48,48"`` (spaces ignored).

    Raises:
        OptionError: Not exactly ``count`` integers, a negative one, or one longer than 9 digits.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != count or not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise OptionError(f"{what} {str(text)[:80]!r} is not {count} non-negative integers; {accepted}")
    return tuple(int(p) for p in parts)
