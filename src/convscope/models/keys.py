"""Activation keys: the one name of one captured tensor, ``path@call[output]``.

A key names what one layer call returned, from the layer's path in :func:`convscope.models.tree.layer_tree`:

* ``path``: a layer called once in the forward pass, with one output tensor;
* ``path@i``: call ``i`` (0-based) of a layer called more than once in one forward pass;
* ``path[j]``: output ``j`` of a layer returning several tensors; both together: ``path@i[j]``.

So the call is written only when a layer runs more than once, the output only when there are several.
:meth:`ActivationKey.format` (``str(key)``) writes a key, :meth:`ActivationKey.parse` reads one and
:meth:`ActivationKey.of` / :func:`call_keys` pick the form from the call and output counts.

Parsing rule: a trailing ``[<digits>]`` is the output index; then a trailing ``@<digits>`` is the call;
the rest is the path, whatever it contains (``/``, ``@``, ``[`` ...). ``parse(format(k)) == k`` therefore
holds for every key whose path does not itself end in ``@<digits>`` or ``[<digits>]``: such a path (a
layer named ``conv@1`` or ``out[0]``) reads the same as a suffix, and parse takes it as the suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from convscope.errors import InputError

__all__ = ["ActivationKey", "call_keys"]

_OUTPUT = re.compile(r"\[(\d+)\]\Z")
_CALL = re.compile(r"@(\d+)\Z")


@dataclass(frozen=True)
class ActivationKey:
    """One captured tensor: a layer path, which call, which output.

    Attributes:
        path: The layer's ``outer/inner`` path.
        call: The call index (0-based), or ``None`` when the layer is called once (not written).
        output: The output index (0-based), or ``None`` when the layer has one output (not written).
    """

    path: str
    call: int | None = None
    output: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InputError(f"an activation key needs a non-empty layer path, got {self.path!r}")
        for name in ("call", "output"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InputError(f"activation key {name} must be None or an integer >= 0, got {value!r}")

    @classmethod
    def of(
        cls, path: str, call: int = 0, n_calls: int = 1, output: int = 0, n_outputs: int = 1
    ) -> ActivationKey:
        """The key of output ``output`` of call ``call`` of ``path``, given how many calls and outputs there are.

        The call is written only when ``n_calls > 1``, the output only when ``n_outputs > 1``.
        """
        return cls(path, call if n_calls > 1 else None, output if n_outputs > 1 else None)

    @classmethod
    def parse(cls, text: str) -> ActivationKey:
        """Read a key written by :meth:`format` (see the module docstring for the rule).

        Raises:
            InputError: ``text`` is empty.
        """
        path, call, output = str(text), None, None
        found = _OUTPUT.search(path)
        if found and found.start() > 0:
            path, output = path[: found.start()], int(found.group(1))
        found = _CALL.search(path)
        if found and found.start() > 0:
            path, call = path[: found.start()], int(found.group(1))
        if not path:
            raise InputError(
                f"activation key {text!r} has no layer path; expected path, path@CALL or path[OUTPUT]"
            )
        return cls(path, call, output)

    def format(self) -> str:
        """``path``, ``path@call``, ``path[output]`` or ``path@call[output]``."""
        return (
            self.path
            + (f"@{self.call}" if self.call is not None else "")
            + (f"[{self.output}]" if self.output is not None else "")
        )

    def __str__(self) -> str:
        return self.format()

    @property
    def call_index(self) -> int:
        """The call index, 0 when the layer is called once."""
        return self.call or 0

    @property
    def output_index(self) -> int:
        """The output index, 0 when the layer has one output."""
        return self.output or 0


def call_keys(calls: Iterable[tuple[str, int]]) -> dict[tuple[str, int], ActivationKey]:
    """The key of the (first) output of each ``(layer path, call index)``: ``path`` alone for a layer called
    once, ``path@i`` for a layer called more than once (its call count is its highest index + 1).

    Args:
        calls: ``(path, call)`` pairs, e.g. the rows of :class:`convscope.models.inspect.ModelInfo`.

    Returns:
        ``{(path, call): ActivationKey}`` in the order the pairs came.
    """
    pairs = list(calls)
    counts: dict[str, int] = {}
    for path, call in pairs:
        counts[path] = max(counts.get(path, 0), call + 1)
    return {(path, call): ActivationKey.of(path, call, counts[path]) for path, call in pairs}
