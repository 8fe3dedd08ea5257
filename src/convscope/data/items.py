"""What each input is: an image file, a stack (TIFF, DICOM file or series, NIfTI), an array or a PIL image.

Every path is checked here (missing, symlink loop, FIFO, device: one line, never a hang) before anything is
decoded; a folder contributes its images and stacks, or is one DICOM series.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from convscope.data.arrays import ARRAY_EXTENSIONS
from convscope.data.medical import STACK_EXTENSIONS, is_dicom_series, is_stack_path, stack_suffix
from convscope.data.read import IMAGE_EXTENSIONS, check_file, is_image_path
from convscope.errors import InputError

InputItem = Union[str, "os.PathLike[str]", np.ndarray, Image.Image]


@dataclass(frozen=True)
class Item:
    kind: str  # "image" (a file), "stack" (TIFF/DICOM/NIfTI/series), "pil" (in-memory image) or "array"
    name: str
    source: str
    path: Path | None = None
    obj: object = None


def _natural_key(name: str) -> tuple[object, ...]:
    parts = re.split(r"(\d+)", name.lower())
    return (*((0, int(p)) if p.isdigit() else (1, p) for p in parts if p), name)


def folder_images(folder: Path) -> list[Path]:
    """The image and stack files (TIFF, DICOM, NIfTI) directly inside ``folder`` (no subfolders, no hidden
    files), in natural name order.

    Natural order compares digit runs as numbers and ignores case: ``img2.png`` before ``img10.png``.

    Raises:
        InputError: If the folder holds no image file (the message names it and the accepted extensions).
    """
    try:
        entries = list(folder.iterdir())
    except OSError as err:
        raise InputError(f"folder {folder} cannot be listed: {err}") from None
    files = [
        p
        for p in entries
        if not p.name.startswith(".") and (is_image_path(p) or is_stack_path(p)) and p.is_file()
    ]
    if not files:
        arrays = any(p.suffix.lower() in ARRAY_EXTENSIONS for p in entries)
        hint = "; .npy/.npz files are not read from folders, pass them directly" if arrays else ""
        accepted = " ".join(dict.fromkeys(IMAGE_EXTENSIONS + STACK_EXTENSIONS))
        raise InputError(f"folder {folder} has no images (accepted: {accepted}){hint}")
    return sorted(files, key=lambda p: _natural_key(p.name))


def file_item(path: Path) -> Item:
    """An image file, or a stack (TIFF, DICOM, NIfTI) named without its extension (``brain.nii.gz`` -> ``brain``)."""
    suffix = stack_suffix(path)
    if suffix is None:
        return Item("image", path.stem, str(path), path=path)
    return Item("stack", path.name[: len(path.name) - len(suffix)] or path.name, str(path), path=path)


def expand(items: Sequence[InputItem]) -> Iterator[Item]:
    arrays = sum(isinstance(it, np.ndarray) for it in items)
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            yield Item("array", "array" if arrays == 1 else f"array{i}", f"<array {i}>", obj=item)
        elif isinstance(item, Image.Image):
            yield Item("pil", f"image{i}", f"<image {i}>", obj=item)
        elif isinstance(item, (str, os.PathLike)):
            path = Path(item)
            if not path.is_dir():
                check_file(path, "input file")  # missing, symlink loop, FIFO, device: one line, never a hang
            if path.is_dir() and is_dicom_series(path):
                yield Item("stack", path.name, str(path), path=path)
            elif path.is_dir():
                for p in folder_images(path):
                    yield file_item(p)
            elif is_stack_path(path):
                yield file_item(path)
            elif is_image_path(path):
                yield Item("image", path.stem, str(path), path=path)
            elif path.suffix.lower() in ARRAY_EXTENSIONS:
                yield Item("array", path.name, str(path), path=path)
            else:
                accepted = " ".join(dict.fromkeys(IMAGE_EXTENSIONS + STACK_EXTENSIONS + ARRAY_EXTENSIONS))
                raise InputError(
                    f"{path}: unknown file type {path.suffix!r}; accepted: {accepted} or a folder"
                )
        else:
            raise InputError(
                f"input {i} is a {type(item).__name__}; expected a path (str or Path) to an image, folder, "
                ".npy or .npz file, a numpy array or a PIL image"
            )
