"""Objectives written as text, e.g. ``"conv_1:7"``, ``"conv_1:7 + 0.5*conv_0:3"``, ``"logit:3 - 0.1*tv"``.

Grammar (whitespace is free; ``*`` and ``/`` bind tighter than ``+`` and ``-``)::

    expr   := ["-"] term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := NUMBER | atom
    atom   := LAYER ":" K            mean of channel K of LAYER         (channel)
            | LAYER ":" K "@" Y "," X   channel K at row Y, column X   (neuron)
            | LAYER ":mean"          mean of all of LAYER's activations (layer_mean)
            | "logit:" K             pre-softmax score of class K        (class_logit)
            | "tv" | "l2"            regularizers of the image (usually subtracted)

``LAYER`` is a layer path or unique name (``conv_1``, ``backbone/block3_conv2``).
"""

from __future__ import annotations

import re
from typing import Any, Final

from convscope.errors import LayerNotFound, OptionError
from convscope.featvis import objectives as obj
from convscope.featvis.objectives import Objective

GRAMMAR: Final = (
    "LAYER:K (channel), LAYER:K@Y,X (neuron), LAYER:mean, logit:K, tv, l2, numbers, joined by + - * /"
)
_TOKEN: Final = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w:#])"
    r"|(?P<atom>[A-Za-z_][\w./#-]*(?::\w+(?:@\d+,\d+)?)?)"
    r"|(?P<op>[-+*/])"
)
_ATOM: Final = re.compile(r"^(?P<layer>[^:]+):(?P<what>\w+)(?:@(?P<y>\d+),(?P<x>\d+))?$")


def _is_index(text: str) -> bool:
    """ASCII digits short enough to be an index (no int() of thousands of digits, no '²')."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = re.match(r"\S+", text[pos:])
            token = bad.group(0) if bad else text[pos]
            raise OptionError(
                f"unexpected {token!r} at position {pos} in objective {text!r}; expected {GRAMMAR}"
            )
        if m.lastgroup != "ws":
            out.append((str(m.lastgroup), m.group(0), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, model: Any) -> None:
        self.text, self.model = text, model
        self.toks = _tokens(text)
        self.i = 0
        self.nodes = None
        if model is not None:
            from convscope.models.tree import layer_tree

            self.nodes = layer_tree(model)

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, what: str) -> OptionError:
        tok = self.peek()
        where = f"{tok[1]!r} at position {tok[2]}" if tok else "the end"
        return OptionError(f"{what}: unexpected {where} in objective {self.text!r}; expected {GRAMMAR}")

    def expr(self) -> Objective | float:
        tok = self.peek()
        negate = tok is not None and tok[1] == "-"
        if negate or (tok is not None and tok[1] == "+"):
            self.i += 1
        value = self.term()
        value = -value if negate else value
        while (tok := self.peek()) is not None and tok[1] in "+-":
            self.i += 1
            rhs = self.term()
            value = value + rhs if tok[1] == "+" else value - rhs
        return value

    def term(self) -> Objective | float:
        value = self.factor()
        while (tok := self.peek()) is not None and tok[1] in "*/":
            self.i += 1
            rhs = self.factor()
            if tok[1] == "/":
                if isinstance(rhs, Objective) or rhs == 0:
                    raise OptionError(f"can only divide by a non-zero number in objective {self.text!r}")
                value = value / rhs
            else:
                value = value * rhs
        return value

    def factor(self) -> Objective | float:
        tok = self.peek()
        if tok is None or tok[0] not in ("num", "atom"):
            raise self.fail("expected a number or a term")
        self.i += 1
        return float(tok[1]) if tok[0] == "num" else self.atom(tok[1])

    def atom(self, text: str) -> Objective:
        low = text.lower()
        if low in ("tv", "l2"):
            return obj.total_variation() if low == "tv" else obj.l2()
        m = _ATOM.match(text)
        if not m:
            raise OptionError(
                f"term {text!r} in objective {self.text!r} needs a channel: write "
                f"{text}:K, {text}:K@Y,X or {text}:mean (or logit:K, tv, l2)"
            )
        layer, what = m.group("layer"), m.group("what")
        if layer.lower() in ("logit", "logits"):
            if not _is_index(what) or m.group("y") is not None:
                raise OptionError(
                    f"bad class in {text[:80]!r} (objective {self.text[:80]!r}); write logit:K, K >= 0"
                )
            return obj.class_logit(int(what))
        self.check_layer(layer, text)
        if what.lower() == "mean" and m.group("y") is None:
            return obj.layer_mean(layer)
        if not _is_index(what) or not all(_is_index(g) for g in m.group("y", "x") if g is not None):
            raise OptionError(
                f"bad channel {what!r} in {text!r} (objective {self.text!r}); write "
                f"{layer}:K with K a channel number, or {layer}:mean"
            )
        if m.group("y") is not None:
            return obj.neuron(layer, int(what), int(m.group("y")), int(m.group("x")))
        return obj.channel(layer, int(what))

    def check_layer(self, layer: str, token: str) -> None:
        if self.nodes is None:
            return
        from convscope.featvis.taps import find_layer

        try:
            find_layer(self.nodes, layer, self.model.name)
        except LayerNotFound as err:
            valid = str(err).split("valid layer paths: ", 1)[-1]
            raise LayerNotFound(
                f"unknown layer {layer!r} in term {token!r} of objective {self.text!r}; "
                f"valid layer paths: {valid}"
            ) from None


def parse_objective(text: str, model: Any = None) -> Objective:
    """Parse an objective string (see the module docstring).

    Args:
        text: E.g. ``"conv_1:7 + 0.5*conv_0:3"``.
        model: If given, every layer name is checked against it now (otherwise when optimizing).

    Raises:
        OptionError: a malformed expression; the message names the bad token and its position.
        LayerNotFound: an unknown layer (with ``model``); the message lists the valid layer paths.
    """
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"an objective must be a non-empty string, got {text!r}; expected {GRAMMAR}")
    p = _Parser(text, model)
    value = p.expr()
    if p.peek() is not None:
        raise p.fail("expected + or - between terms")
    if not isinstance(value, Objective):
        raise OptionError(f"objective {text!r} is a constant; name at least one layer term ({GRAMMAR})")
    return value
