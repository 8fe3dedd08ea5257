"""How stacks and volumes are read: the one frozen options object behind ``--window`` and ``--slice``.

:class:`ReadOptions` travels inside :class:`~convscope.data.Preprocess` (its ``read`` field), so every
surface that has a resolved model (``maps``, ``cam``, ``scan``, ``serve``, ``report``, the API) reads
TIFF stacks, DICOM files and series and NIfTI volumes the same way.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from convscope.data.window import Window, parse_window
from convscope.errors import OptionError

#: The most values (voxels x channels) read from one stack or volume: 512 x 512 x 512.
DEFAULT_MAX_VOXELS = 512**3
_SLICE_ACCEPTED = (
    "expected AXIS (every slice along that axis, as a batch) or AXIS:INDEX (one slice), with AXIS 0, 1 or 2 "
    "of the array as stored (0 = pages/frames/series order; NIfTI: i, j, k), e.g. 2:40 or 0"
)


@dataclass(frozen=True)
class SliceSpec:
    """Which 2D slices of a volume a 2D model sees.

    Attributes:
        axis: The axis of the stored array the slices are taken along: 0, 1 or 2.
        index: One slice (negative counts from the end), or ``None`` for every slice as a batch.

    Raises:
        OptionError: An axis other than 0, 1, 2 or an index that is not an integer.
    """

    axis: int
    index: int | None = None

    def __post_init__(self) -> None:
        try:
            axis = operator.index(self.axis)
            index = None if self.index is None else operator.index(self.index)
        except TypeError:
            raise OptionError(
                f"slice {self.axis!r}:{self.index!r} is not integers; {_SLICE_ACCEPTED}"
            ) from None
        if isinstance(self.axis, bool) or axis not in (0, 1, 2):
            raise OptionError(f"slice axis {self.axis!r} is not 0, 1 or 2; {_SLICE_ACCEPTED}")
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "index", index)

    def describe(self) -> str:
        """E.g. ``"slice 2:40"`` or ``"every slice along axis 0"``."""
        return (
            f"every slice along axis {self.axis}" if self.index is None else f"slice {self.axis}:{self.index}"
        )


def parse_slice(text: str) -> SliceSpec:
    """Parse ``--slice AXIS`` or ``--slice AXIS:INDEX`` (``AXIS:all`` = ``AXIS``).

    Raises:
        OptionError: Malformed text, an axis other than 0, 1, 2, or an index that is not an integer.
    """
    parts = str(text).strip().split(":")
    if len(parts) not in (1, 2) or not parts[0].strip():
        raise OptionError(f"slice {text!r} is malformed; {_SLICE_ACCEPTED}")
    try:
        axis = int(parts[0])
        index = None if len(parts) == 1 or parts[1].strip().lower() == "all" else int(parts[1])
    except ValueError:
        raise OptionError(
            f"slice {text!r} is not AXIS or AXIS:INDEX with integers; {_SLICE_ACCEPTED}"
        ) from None
    return SliceSpec(axis, index)


@dataclass(frozen=True)
class ReadOptions:
    """How multi-image files (TIFF stacks, DICOM, NIfTI) are read; plain images use only ``window``.

    Attributes:
        window: ``--window LEVEL,WIDTH``: the values shown black..white (DICOM LINEAR VOI function), in the
            values' own units (after a DICOM's rescale slope/intercept; raw values for PNG/TIFF/NIfTI).
            ``None``: a DICOM's own window if it has one, else the format's span (see the module
            :mod:`convscope.data.stack`).
        slice: ``--slice``: which 2D slices a 2D model takes from a volume (default: every slice along the
            file's acquisition axis). A volume model (Conv3D) takes the whole volume and refuses a slice.
        max_voxels: Refuse a stack or volume with more values than this (checked from the header, before
            anything is decoded).

    Raises:
        OptionError: A ``window`` that is not a :class:`Window`, a ``slice`` that is not a
            :class:`SliceSpec`, or ``max_voxels < 1``.
    """

    window: Window | None = None
    slice: SliceSpec | None = None
    max_voxels: int = DEFAULT_MAX_VOXELS

    def __post_init__(self) -> None:
        if self.window is not None and not isinstance(self.window, Window):
            raise OptionError(f"window {self.window!r} must be a Window(level, width), e.g. Window(40, 400)")
        if self.slice is not None and not isinstance(self.slice, SliceSpec):
            raise OptionError(f"slice {self.slice!r} must be a SliceSpec(axis, index), e.g. SliceSpec(2, 40)")
        if isinstance(self.max_voxels, bool) or not isinstance(self.max_voxels, int) or self.max_voxels < 1:
            raise OptionError(f"max_voxels {self.max_voxels!r} must be an integer >= 1")

    @classmethod
    def parse(cls, window: str | None = None, slice: str | None = None) -> ReadOptions:
        """The options ``--window`` and ``--slice`` give (either may be ``None``)."""
        return cls(
            window=None if window is None else parse_window(window),
            slice=None if slice is None else parse_slice(slice),
        )

    def describe(self) -> str:
        """E.g. ``"window 40,400 (LINEAR), slice 2:40"``; ``""`` when nothing is set."""
        parts = [self.window.describe()] if self.window else []
        if self.slice:
            parts.append(self.slice.describe())
        return ", ".join(parts)
