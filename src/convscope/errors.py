"""The convscope exception tree.

Every error the library raises on bad input derives from :class:`ConvscopeError`, so callers (the CLI,
the web server) can catch one type, print its message in one line and carry on. Messages echo the bad
value and say what would be accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConvscopeError(Exception):
    """Base class of every error convscope raises on purpose."""


class ModelLoadError(ConvscopeError):
    """A model file is missing, unreadable, corrupt, unsafe or not a Keras model."""


class UnsafeModelError(ModelLoadError):
    """The model needs ``safe_mode=False`` (e.g. it contains a Lambda layer)."""


class LayerNotFound(ConvscopeError, KeyError):
    """A layer selector matched nothing."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InputError(ConvscopeError, ValueError):
    """An input image/array/folder is missing, malformed or does not fit the model."""


class RenderError(ConvscopeError, ValueError):
    """An activation cannot be drawn with the requested options."""


class OptionError(ConvscopeError, ValueError):
    """An option value is malformed (e.g. ``--range``, ``--channels``, ``--norm``)."""


def nearest(value: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """Return up to ``n`` of ``choices`` closest to ``value`` (for "did you mean" messages)."""
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=n, cutoff=0.3)
    if len(close) < n:
        low = value.lower()
        close += [c for c in choices if low and low in c.lower() and c not in close][: n - len(close)]
    return close or choices[:n]


class AttributionError(ConvscopeError, ValueError):
    """An attribution (Grad-CAM, saliency, ...) cannot be computed as asked: a non-spatial or
    non-differentiable target layer, a class index out of range, a model without spatial layers."""


class FieldsUnavailable(ConvscopeError):
    """A model's layer table, and so its receptive-field grids, cannot be computed (the cause is chained)."""
