"""Short, unique, filesystem-safe ids for inputs (``digit7``, ``batch.npy[3]``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{dev}{i}" for dev in ("COM", "LPT") for i in range(1, 10))}
MAX_LEN = 120


def safe_name(text: str) -> str:
    """Make ``text`` usable as a file name on Linux, macOS and Windows.

    Runs of characters other than ASCII letters, digits, ``. _ - [ ]`` become one ``_``; leading dots
    and dashes are removed (no hidden files, nothing that looks like an option); Windows device names
    get a ``_`` prefix; the result is at most :data:`MAX_LEN` characters and never empty.

    Args:
        text: Any label, e.g. a file stem.

    Returns:
        The safe name (``"input"`` if nothing usable is left).
    """
    name = _UNSAFE.sub("_", text).lstrip(".-")[:MAX_LEN].rstrip(". ")
    if not name:
        return "input"
    if name.split(".")[0].upper() in _RESERVED:
        name = "_" + name
    return name


def key_filename(key: str) -> str:
    """The file-name form of an activation key: ``backbone/conv@1`` -> ``backbone.conv@1``.

    Every writer (maps, cam, filters, maximize, scan, callback) names a layer's files with it. Characters
    other than letters, digits and ``. _ @ - [ ]`` become ``.``.
    """
    return "".join(c if c.isalnum() or c in "._@-[]" else "." for c in key.replace("/", "."))


def unique_names(names: Iterable[str]) -> tuple[str, ...]:
    """De-duplicate names, keeping order: the first ``a`` stays ``a``, later ones become ``a_2``, ``a_3``...

    A suffix never takes a name that appears elsewhere in the input.

    Args:
        names: Names, already safe (see :func:`safe_name`).

    Returns:
        Unique names, one per input name, in the same order.
    """
    names = list(names)
    reserved = set(names)
    used: set[str] = set()
    out: list[str] = []
    for name in names:
        new = name
        if new in used:
            k = 2
            while f"{name}_{k}" in used or f"{name}_{k}" in reserved:
                k += 1
            new = f"{name}_{k}"
        used.add(new)
        out.append(new)
    return tuple(out)
