"""A folder (or one file) of images and stacks as a scan source, read a chunk at a time.

Image files are one row each. Stacks (TIFF pages, DICOM frames, a DICOM series folder, NIfTI volumes) are
one row per 2D slice for an image model (or the one slice ``--slice AXIS:INDEX`` picks), or one row per
volume for a volume model (Conv3D); the rows are counted from the headers when the folder is opened, and a
stack is decoded once per chunk that needs it (the last one is kept).

Every candidate is checked when the folder is opened (images: :func:`convscope.data.read.image_problem`;
stacks: their headers; the folder is listed lazily and checked in parallel, see
:mod:`convscope.scan.listing`), and what cannot be read is skipped and listed with its reason in
:attr:`FolderSource.skipped`; ``strict=True`` (CLI ``--strict``) turns any such entry into an error.

A chunk's image files are decoded and preprocessed by a few threads (:mod:`convscope.scan.decode`), in
row order, exactly as :func:`convscope.data.read_image` and :func:`convscope.data.prepare_image` do for
every other command. ``draft=True`` (CLI ``--fast-decode``) decodes JPEGs at a reduced size (DCT scaling)
where the model's input is a fixed ``stretch`` resize they stay at least as large as
(:func:`convscope.data.draft_size`): faster, within a few 8-bit levels of the full decode, but no longer
the same numbers as ``predict()`` or ``activations()`` give for those files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data import IMAGE_EXTENSIONS, InputSpec, Preprocess, draft_size, prepare_image
from convscope.data.medical import STACK_EXTENSIONS, is_dicom_series, is_stack_path, read_stack
from convscope.data.read import DEFAULT_MAX_PIXELS, is_image_path, read_picture
from convscope.data.volumes import stack_samples
from convscope.errors import InputError
from convscope.scan.decode import DECODE_THREADS, map_in_order
from convscope.scan.listing import checked, walk

log = logging.getLogger(__name__)

ACCEPTED_FILES = " ".join(dict.fromkeys(IMAGE_EXTENSIONS + STACK_EXTENSIONS))


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
        draft: ``(width, height)`` JPEG files may be decoded down to (reduced-size DCT decoding, see
            :func:`convscope.data.draft_size`), or ``None``: every file decoded in full.
        workers: Threads decoding the images of one :meth:`read` (``<= 1``: in the calling thread);
            ``None``: :data:`~convscope.scan.decode.DECODE_THREADS` of the process reading (a Ray worker
            sizes its own).
    """

    spec: InputSpec
    root: str
    files: tuple[str, ...]
    prep: Preprocess
    labels: tuple[str, ...] | None = None
    fingerprint: dict[str, Any] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    rows: tuple[tuple[int, int], ...] | None = None
    draft: tuple[int, int] | None = None
    workers: int | None = None
    _last: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_last": {}}  # a decoded stack is not shipped to Ray workers

    @property
    def name(self) -> str:
        return self.root

    @property
    def size(self) -> int:
        return len(self.files) if self.rows is None else len(self.rows)

    def _file(self, index: int) -> tuple[int, int]:
        return (index, 0) if self.rows is None else self.rows[index]

    def _is_stack(self, index: int) -> bool:
        """Row ``index`` comes from a stack or a DICOM series (decoded once, in order), not an image file."""
        name = self.files[self._file(index)[0]]
        return is_stack_path(name) or not is_image_path(name)  # a series is a folder: no image extension

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        f, k = self._file(index)
        path = Path(self.root) / self.files[f]
        if self._is_stack(index):
            last = self._last.get("stack")
            if last is None or last[0] != f:
                stack = read_stack(path, max_pixels=DEFAULT_MAX_PIXELS, max_voxels=self.prep.read.max_voxels)
                last = (f, stack_samples(stack, self.spec, self.prep, str(path)))
                self._last["stack"] = last
            sample = last[1][k]
            return sample.x, sample.display
        picture = read_picture(path, self.prep.read.window, draft=self.draft)
        prepared = prepare_image(picture, self.spec, self.prep, label=str(path))
        return prepared.x, prepared.display

    def _x(self, index: int) -> np.ndarray:
        return self._sample(index)[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Model input float32 ``(stop - start, *spec.shape)`` for rows ``start..stop``.

        Image files are decoded by :attr:`workers` threads; the result (and the first error) is the
        sequential read's.
        """
        rows = range(start, stop)
        workers = DECODE_THREADS if self.workers is None else self.workers
        samples = map_in_order(self._x, rows, workers, inline=self._is_stack)
        return np.stack(samples).astype(np.float32, copy=False)

    def display(self, index: int) -> np.ndarray | None:
        """uint8 ``(H, W, 3)``: what the model sees of row ``index``; ``None`` for a volume."""
        return self._sample(index)[1]

    def describe(self) -> str:
        what = (
            f"{self.size} images"
            if self.rows is None
            else f"{self.size} samples from {len(self.files)} files"
        )
        return f"{self.root} ({what}; {self.preprocessing()})"

    def preprocessing(self) -> str:
        """What is done to each file, for the manifest: the preprocessing, and the reduced-size decoding."""
        text = self.prep.describe(self.spec)
        if self.draft is not None:
            w, h = self.draft
            text += f", JPEG decoded at 1/2, 1/4 or 1/8 size where that stays >= {w}x{h}"
        return text


def open_folder(
    path: Path, spec: InputSpec, prep: Preprocess, strict: bool = False, draft: bool = False
) -> FolderSource:
    """A folder of images/stacks, a DICOM series folder, or one image or stack file, as a source.

    The folder is walked with :func:`os.walk` (``os.scandir``: no ``stat`` per file), each directory's
    names sorted, and the entries are checked in rounds of :data:`CHECK_CHUNK` by :data:`CHECK_THREADS`
    threads while the walk goes on (each file is opened once, to know it can be read; see the module).

    Args:
        draft: Decode JPEG files at a reduced size where that is exact enough (see
            :func:`convscope.data.draft_size`); ``False`` (default): always in full.

    Raises:
        InputError: The model input is not a fixed 2D image or 3D volume input, a single file that cannot
            be read, nothing readable in a folder, or (``strict``) any unreadable entry.
    """
    t0 = time.perf_counter()
    fixed = all(d is not None for d in spec.spatial)
    if spec.rank not in (2, 3) or not fixed:
        raise InputError(
            f"model input {spec.name!r} has shape {spec.shape}; scanning image files needs a fixed 2D image "
            "input (H, W, C) or a fixed volume input (D, H, W, C): pass input_shape (CLI: --input-shape "
            "H,W,C) or use .npy arrays"
        )
    if path.is_file() or is_dicom_series(path):
        root = path.parent
        names, counts, sizes, skipped = checked([path.name], root, spec, prep)
        if skipped:
            raise InputError(f"DATA {path} {skipped[0][1]}")
    else:
        root = path
        walk_skipped: list[tuple[str, str]] = []  # filled while the walk is consumed
        names, counts, sizes, skipped = checked(walk(path, walk_skipped), path, spec, prep)
        skipped = walk_skipped + skipped
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
    log.info(
        "%s: %d files listed and checked in %.1f s (%d skipped)",
        path,
        len(names),
        time.perf_counter() - t0,
        len(skipped),
    )
    for name, reason in skipped[:10]:
        log.warning("skipped %s: %s", Path(root) / name, reason)
    if len(skipped) > 10:
        log.warning(
            "skipped %d more unreadable files (all are listed in the scan's manifest)", len(skipped) - 10
        )
    single = all(n == 1 for n in counts)
    rows = None if single else [(f, k) for f, n in enumerate(counts) for k in range(n)]
    tops = [sys.intern(f.split(os.sep, 1)[0]) if os.sep in f else "" for f in names]
    labels = None
    if any(tops):
        labels = tuple(tops) if rows is None else tuple(tops[f] for f, _ in rows)
    digest = hashlib.sha256()
    for f, size in zip(names, sizes):
        digest.update(f"{f}\t{size}\n".encode())
    return FolderSource(
        spec,
        str(root),
        tuple(names),
        prep,
        labels,
        {"kind": "folder", "files": len(names), "sha256": digest.hexdigest()},
        tuple(skipped),
        None if rows is None else tuple(rows),
        draft_size(spec, prep) if draft else None,
    )
