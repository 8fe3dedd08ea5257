"""Small argument checks shared by the renderers."""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from convscope.errors import OptionError


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """True for Python and numpy integers, False for bools and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 1.

    Raises:
        OptionError: otherwise, naming the option and echoing the value.
    """
    if not is_int(value) or int(value) < 1:
        raise OptionError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
