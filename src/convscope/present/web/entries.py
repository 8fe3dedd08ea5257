"""The gallery's entries (one image, or one stack with a slice per id) and its error types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convscope.data import PreparedImage
from convscope.data.stack import Stack
from convscope.errors import InputError


class ImageNotFound(InputError):
    """No image has the requested id (never loaded, or an upload that was dropped)."""


class UploadTooLarge(InputError):
    """An upload is over the byte limit."""


@dataclass(frozen=True, eq=False)
class ImageEntry:
    """One image of the gallery.

    Attributes:
        id: Short id used in URLs.
        name: Display name (file name or ``digit 3``).
        source: ``"sample"``, ``"folder"`` or ``"upload"``.
        label: True class when known (bundled samples), else ``None``.
        path: The file, for folder images (decoded lazily); a DICOM series is its folder.
        prepared: The model input and display picture, for samples and uploads.
        slices: How many 2D slices a stack (TIFF, DICOM, NIfTI) has; 0 for a plain image. Slice ``k`` is
            the id ``<id>~k``; the bare id shows the middle slice.
        stack: An uploaded stack, decoded (folder stacks are read from ``path`` when needed).
    """

    id: str
    name: str
    source: str
    label: int | None = None
    path: Path | None = None
    prepared: PreparedImage | None = field(default=None, repr=False)
    slices: int = 0
    stack: Stack | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the page (no path)."""
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "label": self.label,
            "slices": self.slices,
        }


def prepared_bytes(prepared: PreparedImage) -> int:
    return int(prepared.x.nbytes + prepared.display.nbytes)


def entry_bytes(entry: ImageEntry | None) -> int:
    if entry is None:
        return 0
    return (
        int(entry.stack.values.nbytes)
        if entry.stack is not None
        else prepared_bytes(entry.prepared)
        if entry.prepared
        else 0
    )


def inside_folder(path: Path, root: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except OSError:
        return False
