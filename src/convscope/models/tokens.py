"""Token layers as image grids: the one home of "which tokens of ``(N, T, C)`` form an ``h x w`` grid".

A ViT-style model embeds ``h x w`` patches with a Conv2D, flattens them to ``(N, h*w, C)`` tokens and often
puts ``k`` extra tokens in front (a class token, distillation or register tokens), giving ``T = k + h*w``.
:func:`token_grid` finds ``(h, w, k)`` for a token count ``T``: from a size the user gives (``--tokens HxW``),
else from the spatial layers of the model (the patch embedding's grid), else from ``T`` or ``T - 1`` being a
perfect square. :meth:`TokenGrid.to_grid` turns ``(N, T, C)`` into ``(N, h, w, C)`` with the extra tokens
set aside.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from convscope.errors import OptionError

__all__ = ["MAX_EXTRA_TOKENS", "TokenGrid", "parse_tokens", "token_grid"]

#: At most this many leading non-patch tokens (class + distillation + register tokens) are recognized.
MAX_EXTRA_TOKENS = 8

_SPEC = re.compile(r"^\s*(\d{1,7})\s*[xX*,]\s*(\d{1,7})\s*$")


@dataclass(frozen=True)
class TokenGrid:
    """The patch tokens of a ``(N, T, C)`` layer laid out as an ``h x w`` grid.

    Attributes:
        h: Grid rows.
        w: Grid columns.
        extra: Leading tokens that are not patches (class token = 1), set aside; ``T = extra + h * w``.
        source: How it was found: ``"given"``, ``"model"`` (a spatial layer of that size) or ``"square"``.
    """

    h: int
    w: int
    extra: int
    source: str = "model"

    @property
    def n_tokens(self) -> int:
        """``T``, the token count this grid reads."""
        return self.extra + self.h * self.w

    def to_grid(self, tokens: np.ndarray) -> np.ndarray:
        """``(N, T, C) -> (N, h, w, C)``: the patch tokens in row-major order, extra tokens dropped."""
        arr = np.asarray(tokens)
        return arr[:, self.extra :, :].reshape(arr.shape[0], self.h, self.w, arr.shape[-1])

    def __str__(self) -> str:
        return f"{self.h}x{self.w}" + (f" (+{self.extra} extra)" if self.extra else "")


def parse_tokens(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"HxW"`` (or ``(h, w)``) -> ``(h, w)``; ``None`` stays ``None``.

    Raises:
        OptionError: Not two positive integers written ``HxW``.
    """
    if spec is None:
        return None
    if isinstance(spec, tuple):
        h, w = spec
    else:
        match = _SPEC.match(str(spec))
        if not match:
            raise OptionError(f"--tokens {spec!r} is not a grid size; write it HxW, e.g. --tokens 14x14")
        h, w = int(match.group(1)), int(match.group(2))
    if isinstance(h, bool) or isinstance(w, bool) or int(h) < 1 or int(w) < 1:
        raise OptionError(f"--tokens {spec!r} needs two positive sizes HxW, e.g. --tokens 14x14")
    return int(h), int(w)


def _square(n: int) -> int | None:
    root = math.isqrt(n)
    return root if n > 0 and root * root == n else None


def token_grid(
    n_tokens: int, model_grids: Iterable[tuple[int, int]] = (), given: tuple[int, int] | None = None
) -> TokenGrid | None:
    """The grid of a layer with ``n_tokens`` tokens, or ``None`` when no rule applies.

    Args:
        n_tokens: ``T`` of the ``(N, T, C)`` layer.
        model_grids: ``(h, w)`` of the model's spatial layers, latest first (the patch embedding is usually
            the last spatial layer before the tokens).
        given: ``(h, w)`` the user gave (``--tokens``); it must fit ``T`` with at most
            :data:`MAX_EXTRA_TOKENS` extra tokens.

    Raises:
        OptionError: ``given`` does not fit ``n_tokens`` (the message names both and what would fit).
    """
    t = int(n_tokens)
    if given is not None:
        h, w = given
        extra = t - h * w
        if not 0 <= extra <= MAX_EXTRA_TOKENS:
            fits = [f"{s}x{s}" for k in range(MAX_EXTRA_TOKENS + 1) if (s := _square(t - k)) and t - k > 0]
            raise OptionError(
                f"--tokens {h}x{w} ({h * w} patches) does not fit the layer's {t} tokens (it allows 0.."
                f"{MAX_EXTRA_TOKENS} leading extra tokens); sizes that fit: {', '.join(fits[:3]) or f'H*W <= {t}'}"
            )
        return TokenGrid(h, w, extra, "given")
    for h, w in model_grids:  # (T, heads) outputs of attention projections are tokens, not grids
        if h * w > 1 and t not in (h, w) and 0 <= t - h * w <= MAX_EXTRA_TOKENS:
            return TokenGrid(int(h), int(w), t - h * w, "model")
    for extra in (0, 1):
        side = _square(t - extra)
        if side is not None and side > 1:
            return TokenGrid(side, side, extra, "square")
    return None
