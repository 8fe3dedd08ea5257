"""A folder (or one file) of images and stacks as a scan source, read a chunk at a time.

Image files are one row each. Stacks (TIFF pages, DICOM frames, a DICOM series folder, NIfTI volumes) are
one row per 2D slice for an image model (or the one slice ``--slice AXIS:INDEX`` picks), or one row per
volume for a volume model (Conv3D); the rows are counted from the headers when the folder is opened, and a
stack is decoded once per chunk that needs it (the last one is kept).

Every candidate is checked when the folder is opened (images: :func:`convscope.data.read.image_problem`;
stacks: their headers), and what cannot be read is skipped and listed with its reason in
:attr:`FolderSource.skipped`; ``strict=True`` (CLI ``--strict``) turns any such entry into an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data import IMAGE_EXTENSIONS, InputSpec, Preprocess, prepare_image
from convscope.data.medical import STACK_EXTENSIONS, is_dicom_series, is_stack_path, read_stack, stack_shape
from convscope.data.read import DEFAULT_MAX_PIXELS, image_problem, is_image_path, read_picture
from convscope.data.volumes import stack_samples
from convscope.errors import InputError

log = logging.getLogger(__name__)

CHECK_THREADS = min(4, os.cpu_count() or 1)  # threads checking a folder's files when it is opened
ACCEPTED_FILES = " ".join(dict.fromkeys(IMAGE_EXTENSIONS + STACK_EXTENSIONS))


def _natural(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text.lower()) if p)


def _named_like_input(name: str) -> bool:
    return is_image_path(name) or is_stack_path(name)


@dataclass(eq=False)
class FolderSource:
    """Image and stack files under a folder, read and preprocessed a chunk at a time.

    Attributes:
        spec: The model input (fixed sizes).
        root: The folder.
        files: Paths relative to ``root`` (a DICOM series is its folder), in natural order, folder by folder.
        prep: Preprocessing of each image (its ``read`` options: window and slice of stacks).
        labels: First-level sub-folder of each row (``None`` when every file sits in ``root``).
        fingerprint: Hash of the relative paths and file sizes.
        skipped: ``(path relative to root, reason)`` of every entry named like an input that is not read.
        rows: ``(file index, sample index)`` of each row when stacks give several rows; ``None``: one row
            per file.
    """

    spec: InputSpec
    root: str
    files: tuple[str, ...]
    prep: Preprocess
    labels: tuple[str, ...] | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    rows: tuple[tuple[int, int], ...] | None = None
    _last: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": {}}  # a decoded stack is not shipped to Ray workers

    @property
    def name(self) -> str:
        return self.root

    @property
    def size(self) -> int:
        return len(self.files) if self.rows is None else len(self.rows)

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        f, k = (index, 0) if self.rows is None else self.rows[index]
        path = Path(self.root) / self.files[f]
        if path.is_dir() or is_stack_path(path):
            last = self._last.get("stack")
            if last is None or last[0] != f:
                stack = read_stack(path, max_pixels=DEFAULT_MAX_PIXELS, max_voxels=self.prep.read.max_voxels)
                last = (f, stack_samples(stack, self.spec, self.prep, str(path)))
                self._last["stack"] = last
            sample = last[1][k]
            return sample.x, sample.display
        picture = read_picture(path, self.prep.read.window)
        prepared = prepare_image(picture, self.spec, self.prep, label=str(path))
        return prepared.x, prepared.display

    def read(self, start: int, stop: int) -> np.ndarray:
        """Model input float32 ``(stop - start, *spec.shape)`` for rows ``start..stop``."""
        return np.stack([self._sample(i)[0] for i in range(start, stop)]).astype(np.float32, copy=False)

    def display(self, index: int) -> np.ndarray | None:
        """uint8 ``(H, W, 3)``: what the model sees of row ``index``; ``None`` for a volume."""
        return self._sample(index)[1]

    def describe(self) -> str:
        what = (
            f"{self.size} images"
            if self.rows is None
            else f"{self.size} samples from {len(self.files)} files"
        )
        return f"{self.root} ({what}; {self.prep.describe(self.spec)})"


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


def open_folder(path: Path, spec: InputSpec, prep: Preprocess, strict: bool = False) -> FolderSource:
    """A folder of images/stacks, a DICOM series folder, or one image or stack file, as a source.

    Raises:
        InputError: The model input is not a fixed 2D image or 3D volume input, a single file that cannot
            be read, nothing readable in a folder, or (``strict``) any unreadable entry.
    """
    fixed = all(d is not None for d in spec.spatial)
    if spec.rank not in (2, 3) or not fixed:
        raise InputError(
            f"model input {spec.name!r} has shape {spec.shape}; scanning image files needs a fixed 2D image "
            "input (H, W, C) or a fixed volume input (D, H, W, C): pass input_shape (CLI: --input-shape "
            "H,W,C) or use .npy arrays"
        )
    if path.is_file() or is_dicom_series(path):
        root, names = path.parent, [path.name]
        counts, skipped = _check([path.name], root, spec, prep)
        if skipped:
            raise InputError(f"DATA {path} {skipped[0][1]}")
    else:
        root = path
        names, counts, skipped = _list(path, spec, prep)
    if strict and skipped:
        first, reason = skipped[0]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise InputError(
            f"DATA folder {path}: {first} {reason}{more}; --strict refuses unreadable files "
            "(without it they are skipped and listed in the scan's summary)"
        )
    if not names:
        why = f"; {len(skipped)} skipped, e.g. {skipped[0][0]} {skipped[0][1]}" if skipped else ""
        raise InputError(
            f"DATA folder {path} has no images (searched recursively; accepted: {ACCEPTED_FILES}){why}"
        )
    for name, reason in skipped[:10]:
        log.warning("skipped %s: %s", Path(root) / name, reason)
    if len(skipped) > 10:
        log.warning(
            "skipped %d more unreadable files (all are listed in the scan's manifest)", len(skipped) - 10
        )
    rows = [(f, k) for f, n in enumerate(counts) for k in range(n)]
    tops = [Path(f).parts[0] if len(Path(f).parts) > 1 else "" for f in names]
    labels = tuple(tops[f] for f, _ in rows) if any(tops) else None
    digest = hashlib.sha256()
    for f in names:
        digest.update(f"{f}\t{(root / f).stat().st_size}\n".encode())
    return FolderSource(
        spec,
        str(root),
        tuple(names),
        prep,
        labels,
        {"kind": "folder", "files": len(names), "sha256": digest.hexdigest()},
        tuple(skipped),
        None if all(n == 1 for n in counts) else tuple(rows),
    )


def _problem(path: Path, spec: InputSpec, prep: Preprocess) -> tuple[int, str | None]:
    """``(rows, None)`` for a readable entry, ``(0, reason)`` otherwise."""
    if path.is_dir() or is_stack_path(path):
        try:
            return _rows_of(path, spec, prep), None
        except InputError as err:
            return 0, str(err).replace(f"{path} ", "", 1)
    if spec.rank == 3:
        return 0, "is a 2D image; the model takes volumes (D, H, W, C)"
    problem = image_problem(path)
    return (0, problem) if problem else (1, None)


def _check(
    names: list[str], root: Path, spec: InputSpec, prep: Preprocess
) -> tuple[list[int], list[tuple[str, str]]]:
    with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="convscope-check") as pool:
        results = list(pool.map(lambda name: _problem(root / name, spec, prep), names))
    return [n for n, _ in results], [(name, r) for name, (_, r) in zip(names, results) if r is not None]


def _list(
    path: Path, spec: InputSpec, prep: Preprocess
) -> tuple[list[str], list[int], list[tuple[str, str]]]:
    """Readable entries under ``path`` with their row counts, and ``(name, reason)`` of the rest.

    Hidden entries are ignored; symlinked folders are not followed (no loops); a folder named like an
    image is listed as skipped and not entered; a sub-folder that is a DICOM series is one entry.
    """
    skipped: list[tuple[str, str]] = []

    def on_error(err: OSError) -> None:
        name = Path(err.filename or path)
        rel = name.relative_to(path) if name.is_relative_to(path) else name
        skipped.append((str(rel), f"cannot be listed: {err.strerror or err}"))

    candidates: list[str] = []
    for folder, dirs, files in os.walk(path, onerror=on_error):
        rel = Path(folder).relative_to(path)
        visible = [d for d in dirs if not d.startswith(".")]
        for d in [d for d in visible if _named_like_input(d)]:
            skipped.append((str(rel / d), "is a folder named like an image file"))
        series = [d for d in visible if not _named_like_input(d) and is_dicom_series(Path(folder) / d)]
        dirs[:] = sorted((d for d in visible if not _named_like_input(d) and d not in series), key=_natural)
        names = [n for n in files if not n.startswith(".") and _named_like_input(n)]
        candidates += [str(rel / n) for n in sorted(names + series, key=_natural)]
    counts, bad = _check(candidates, path, spec, prep)
    reasons = dict(bad)
    good = [(name, n) for name, n in zip(candidates, counts) if name not in reasons]
    return [g for g, _ in good], [n for _, n in good], skipped + bad
