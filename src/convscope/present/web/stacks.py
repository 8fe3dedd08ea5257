"""Stacks and volumes in the explorer's gallery: one entry per file, one id per slice.

A TIFF stack, DICOM file or series, or NIfTI volume in the served folder is one gallery entry (``f3``) that
says how many 2D slices it has; slice ``k`` is addressed as ``f3~k`` by every endpoint (maps, channel,
cam, predict, thumbnail), so the page's slice slider only changes the id. Slices are counted from the
header when the folder is listed and decoded on first use (the decoded stack is kept in a byte-bounded
cache). Only 2D image models take slices here; ``--window`` and ``--slice AXIS`` apply as everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path

from convscope.data import InputSpec, PreparedImage, Preprocess
from convscope.data.medical import read_stack, stack_shape, stack_suffix
from convscope.data.readopts import SliceSpec
from convscope.data.stack import Stack
from convscope.data.volumes import slice_indices, stack_samples
from convscope.errors import InputError
from convscope.present.web.cache import LRUCache

log = logging.getLogger(__name__)

SEPARATOR = "~"


def split_id(image_id: str) -> tuple[str, int | None]:
    """``"f3~12"`` -> ``("f3", 12)``; an id without a slice -> ``(id, None)``; a malformed slice -> ``(id, -1)``."""
    base, sep, rest = image_id.partition(SEPARATOR)
    if not sep:
        return image_id, None
    return (base, int(rest)) if rest.isdigit() and len(rest) <= 9 else (base, -1)


def count_slices(path: Path, spec: InputSpec, prep: Preprocess) -> int:
    """How many 2D slices ``path`` gives the explorer (from its header).

    Raises:
        InputError: The model is not a 2D image model, or the file's header cannot be read.
    """
    if spec.rank != 2:
        raise InputError(f"{path.name}: the explorer shows volumes slice by slice for 2D image models only")
    shape, axis = stack_shape(path)
    chosen = prep.read.slice
    if chosen is not None and chosen.index is not None:
        return 1
    return shape[axis if chosen is None else chosen.axis]


class StackSlices:
    """Decoded stacks (byte-bounded cache) and their slices as prepared gallery pictures.

    Args:
        spec: The model's 2D image input.
        preprocess: How slices become model input (window, slice axis).
        max_pixels: The most pixels of one slice.
        cache_mb: Memory for decoded stacks.
    """

    def __init__(self, spec: InputSpec, preprocess: Preprocess, max_pixels: int, cache_mb: int = 256) -> None:
        self.spec = spec
        self.preprocess = preprocess
        self.max_pixels = max_pixels
        self._stacks: LRUCache[str, Stack] = LRUCache("stacks", cache_mb << 20, lambda s: s.values.nbytes)

    def _stack(self, path: Path) -> Stack:
        return self._stacks.get_or_compute(
            str(path),
            lambda: read_stack(path, max_pixels=self.max_pixels, max_voxels=self.preprocess.read.max_voxels),
        )

    def read_upload(self, data: bytes, name: str) -> tuple[Stack, int]:
        """Decode an uploaded stack (named by its extension) from a temporary file; ``(stack, slices)``.

        Raises:
            InputError: The model is not a 2D image model, or the bytes are not a readable stack (the
                message names the upload, never the temporary file).
        """
        if self.spec.rank != 2:
            raise InputError(f"{name!r}: the explorer shows volumes slice by slice for 2D image models only")
        fd, tmp = tempfile.mkstemp(prefix="convscope-upload-", suffix=stack_suffix(name) or "")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            stack = read_stack(tmp, max_pixels=self.max_pixels, max_voxels=self.preprocess.read.max_voxels)
        except InputError as err:
            raise InputError(str(err).replace(tmp, repr(name))) from None
        finally:
            os.unlink(tmp)
        return stack, len(slice_indices(stack, self.preprocess.read.slice, repr(name))[1])

    def prepared(self, source: Path | Stack, index: int | None, label: str) -> PreparedImage:
        """Slice ``index`` (``None``: the middle one) of a stack (a file, or an uploaded stack) for the model.

        Raises:
            InputError: The stack cannot be read, or ``index`` is out of range.
        """
        stack = source if isinstance(source, Stack) else self._stack(source)
        axis, indices = slice_indices(stack, self.preprocess.read.slice, label)
        if index is None:
            index = indices[len(indices) // 2]
        elif len(indices) > 1:
            if not 0 <= index < len(indices):
                raise InputError(f"{label} has {len(indices)} slices; no slice {index}")
        else:
            index = indices[0]
        read = dataclasses.replace(self.preprocess.read, slice=SliceSpec(axis, index))
        sample = stack_samples(stack, self.spec, dataclasses.replace(self.preprocess, read=read), label)[0]
        assert sample.display is not None  # a 2D slice always has its picture
        return PreparedImage(sample.x, sample.display, sample.notes)
