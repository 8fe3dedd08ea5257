"""Checks of ``maximize`` options, and progress reporting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from convscope.errors import OptionError

log = logging.getLogger("convscope.featvis.optimize")

#: ``progress(step, steps, per-image objective values)``, called after every step.
Progress = Callable[[int, int, np.ndarray], None]


def check_number(name: str, value: Any, *, positive: bool = False, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number ``>= 0`` (``> 0`` if ``positive``; whole if ``integer``).

    Raises:
        OptionError: otherwise, naming the option and echoing the value.
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value > 0 if positive else value >= 0)
    ok = ok and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer" if integer else "a number"
        raise OptionError(f"{name} must be {kind} {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def progress_reporter(progress: Progress | bool | None, steps: int) -> Progress | None:
    """The callback to call after each step: ``progress`` itself, a logger (``True``) or ``None``.

    Raises:
        OptionError: ``progress`` is neither callable, a bool nor ``None``.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        every = max(1, steps // 10)

        def report(step: int, total: int, values: np.ndarray) -> None:
            if step % every == 0 or step == total:
                log.info("step %d/%d: objective mean %.4g", step, total, float(np.mean(values)))

        return report
    if not callable(progress):
        raise OptionError(f"progress must be a callable(step, steps, values), True or None, got {progress!r}")
    return progress
