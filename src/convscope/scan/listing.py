"""Listing and checking the entries of a folder to scan, lazily: the part of :mod:`convscope.scan.folder`
that runs once, when the folder is opened.

The folder is walked one directory at a time (:func:`os.walk` uses ``os.scandir``: nothing is stat-ed or
opened while listing), each directory's names in natural order, and the entries are checked in rounds of
:data:`CHECK_CHUNK` names by :data:`CHECK_THREADS` threads while the walk goes on, so memory holds the names
and a round of pending checks, whatever the folder holds. Each image file is opened once here, to know it
can be read (:func:`convscope.data.read.image_problem`), so the rows, the skipped files and ``--strict`` are
settled before the first batch; a stack is opened to count its rows from its header.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from convscope.data import InputSpec, Preprocess
from convscope.data.medical import is_dicom_series, is_stack_path, stack_shape
from convscope.data.read import image_problem, is_image_path
from convscope.errors import InputError

CHECK_THREADS = max(4, min(16, os.cpu_count() or 1))  # threads checking a folder's files when it is opened
CHECK_CHUNK = 4096  # names checked per round (the pending checks, not the folder, bound the memory)


def _natural(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text.lower()) if p)


def _named_like_input(name: str) -> bool:
    return is_image_path(name) or is_stack_path(name)


def _rows_of(path: Path, spec: InputSpec, prep: Preprocess) -> int:
    """How many rows a stack gives for ``spec`` (from its header); raises InputError if unreadable."""
    shape, axis = stack_shape(path)
    if spec.rank == 3 and shape[0] == 1 and spec.spatial[0] != 1:
        raise InputError(f"{path} is a single 2D image; the model takes volumes (D, H, W, C)")
    if spec.rank == 3 or shape[0] * shape[1] * shape[2] == 0:
        return 1
    chosen = prep.read.slice
    if chosen is not None and chosen.index is not None:
        return 1
    return shape[axis if chosen is None else chosen.axis]


def _problem(path: Path, spec: InputSpec, prep: Preprocess) -> tuple[int, int, str | None]:
    """``(rows, bytes, None)`` for a readable entry, ``(0, 0, reason)`` otherwise."""
    if path.is_dir() or is_stack_path(path):
        try:
            return _rows_of(path, spec, prep), path.stat().st_size, None
        except InputError as err:
            return 0, 0, str(err).replace(f"{path} ", "", 1)
        except OSError as err:  # gone since it was listed
            return 0, 0, f"cannot be read: {err.strerror or err}"
    if spec.rank == 3:
        return 0, 0, "is a 2D image; the model takes volumes (D, H, W, C)"
    problem = image_problem(path)
    if problem:
        return 0, 0, problem
    try:
        return 1, path.stat().st_size, None
    except OSError as err:
        return 0, 0, f"cannot be read: {err.strerror or err}"


def checked(
    candidates: Iterable[str], root: Path, spec: InputSpec, prep: Preprocess
) -> tuple[list[str], list[int], list[int], list[tuple[str, str]]]:
    """The readable ``candidates`` (in order) with their rows and sizes, and ``(name, reason)`` of the rest.

    Checked :data:`CHECK_CHUNK` names at a time, so the pending checks stay few whatever the folder holds.
    """
    names: list[str] = []
    counts: list[int] = []
    sizes: list[int] = []
    bad: list[tuple[str, str]] = []
    with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="convscope-check") as pool:
        it = iter(candidates)
        while chunk := list(itertools.islice(it, CHECK_CHUNK)):
            for name, (n, size, reason) in zip(
                chunk, pool.map(lambda name: _problem(root / name, spec, prep), chunk)
            ):
                if reason is None:
                    names.append(name)
                    counts.append(n)
                    sizes.append(size)
                else:
                    bad.append((name, reason))
    return names, counts, sizes, bad


def walk(path: Path, skipped: list[tuple[str, str]]) -> Iterator[str]:
    """Entries under ``path`` named like inputs, relative to it, in natural order folder by folder.

    Lazy: one directory is listed at a time (``os.walk`` uses ``os.scandir``; no file is stat-ed or
    opened here). Hidden entries are ignored; symlinked folders are not followed (no loops); a folder
    named like an image is added to ``skipped`` and not entered; a sub-folder that is a DICOM series is
    one entry.
    """
    top = str(path)

    def on_error(err: OSError) -> None:
        name = Path(err.filename or path)
        rel = name.relative_to(path) if name.is_relative_to(path) else name
        skipped.append((str(rel), f"cannot be listed: {err.strerror or err}"))

    for folder, dirs, files in os.walk(top, onerror=on_error):
        rel = os.path.relpath(folder, top)
        prefix = "" if rel == os.curdir else rel + os.sep
        visible = [d for d in dirs if not d.startswith(".")]
        for d in [d for d in visible if _named_like_input(d)]:
            skipped.append((prefix + d, "is a folder named like an image file"))
        series = [d for d in visible if not _named_like_input(d) and is_dicom_series(Path(folder) / d)]
        dirs[:] = sorted((d for d in visible if not _named_like_input(d) and d not in series), key=_natural)
        names = [n for n in files if not n.startswith(".") and _named_like_input(n)]
        yield from (prefix + n for n in sorted(names + series, key=_natural))
