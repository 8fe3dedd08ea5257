"""What one model input expects: the shape of a single sample and where its channel axis is."""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import Any, Literal

from convscope.errors import InputError, OptionError

DataFormat = Literal["channels_last", "channels_first"]
DATA_FORMATS: tuple[str, ...] = ("channels_last", "channels_first")


def format_shape(shape: tuple[object, ...], batch: str | None = None) -> str:
    """Format a shape for messages, e.g. ``(N, 28, 28, 1)``; unknown sizes print as ``None``.

    Args:
        shape: The dimensions (``None`` for "any size").
        batch: A label for a leading batch axis (e.g. ``"N"``), or ``None`` for no batch axis.

    Returns:
        The shape written like a Python tuple.
    """
    parts = ([batch] if batch else []) + ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


@dataclass(frozen=True)
class InputSpec:
    """The input a model expects, for one sample (no batch axis).

    Attributes:
        shape: One sample's shape, e.g. ``(28, 28, 1)`` (channels_last) or ``(3, 224, 224)``
            (channels_first). ``None`` marks a size the model accepts freely (fully convolutional).
            Images need a 2D spatial input ``(H, W, C)``/``(C, H, W)``; arrays may also be 1D ``(L, C)``
            or 3D ``(D, H, W, C)``.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        name: The model input's name (for messages).

    Raises:
        OptionError: If ``data_format`` is not one of the two accepted values.
        InputError: If the shape has fewer than 2 or more than 4 axes, or a size that is not a positive
            integer or ``None``.
    """

    shape: tuple[int | None, ...]
    data_format: DataFormat = "channels_last"
    name: str = "input"

    def __post_init__(self) -> None:
        if self.data_format not in DATA_FORMATS:
            raise OptionError(
                f"data_format {self.data_format!r} is not valid; expected one of {', '.join(DATA_FORMATS)}"
            )
        shape = tuple(self.shape)
        if not 2 <= len(shape) <= 4:
            raise InputError(
                f"model input {self.name!r} has shape {format_shape(shape)}; convscope reads inputs of "
                "shape (L, C), (H, W, C) or (D, H, W, C) (channel axis first or last), without the batch axis"
            )
        object.__setattr__(self, "shape", tuple(self._size(d, shape) for d in shape))

    def _size(self, d: Any, shape: tuple[object, ...]) -> int | None:
        """One size as a Python int (numpy integers accepted) or None; anything else is refused."""
        if d is None:
            return None
        try:
            value = 0 if isinstance(d, bool) else operator.index(d)
        except TypeError:
            value = 0
        if value < 1:
            raise InputError(
                f"model input {self.name!r} has shape {format_shape(shape)}; every size must be a "
                "positive integer or None"
            )
        return value

    @classmethod
    def from_batch_shape(
        cls,
        batch_shape: tuple[int | None, ...],
        data_format: DataFormat = "channels_last",
        name: str = "input",
    ) -> InputSpec:
        """Build a spec from a Keras-style shape that includes the batch axis, e.g. ``(None, 28, 28, 1)``.

        Args:
            batch_shape: ``(batch, *sample_shape)``; the batch size is ignored.
            data_format: Where the channel axis is.
            name: The model input's name.

        Returns:
            The spec of one sample.
        """
        return cls(tuple(batch_shape)[1:], data_format, name)

    @property
    def rank(self) -> int:
        """Number of spatial axes: 1 for ``(L, C)``, 2 for images ``(H, W, C)``, 3 for ``(D, H, W, C)``."""
        return len(self.shape) - 1

    @property
    def channels(self) -> int | None:
        """Size of the channel axis, or ``None`` when the model accepts any."""
        return self.shape[-1] if self.data_format == "channels_last" else self.shape[0]

    @property
    def spatial(self) -> tuple[int | None, ...]:
        """The spatial sizes in order, e.g. ``(H, W)``; length :attr:`rank`."""
        return self.shape[:-1] if self.data_format == "channels_last" else self.shape[1:]

    @property
    def height(self) -> int | None:
        """Image height ``H`` (the second-to-last spatial axis); ``None`` if unknown or the input is 1D."""
        return self.spatial[-2] if self.rank >= 2 else None

    @property
    def width(self) -> int | None:
        """Image width ``W`` (the last spatial axis); ``None`` if unknown or the input is 1D."""
        return self.spatial[-1] if self.rank >= 2 else None

    @property
    def is_image(self) -> bool:
        """True when image files can be fed: a 2D input with 1, 3 or a free (``None``) channel count."""
        return self.rank == 2 and self.channels in (1, 3, None)

    def sample_shape(
        self, height: int | None, width: int | None, channels: int | None
    ) -> tuple[int | None, ...]:
        """The concrete shape of one image sample in this spec's layout.

        Args:
            height: Image height.
            width: Image width.
            channels: Channel count.

        Returns:
            ``(height, width, channels)`` or ``(channels, height, width)``.
        """
        if self.data_format == "channels_last":
            return (height, width, channels)
        return (channels, height, width)

    def with_size(self, height: int | None, width: int | None) -> InputSpec:
        """Return a copy whose image height and width are set (e.g. from a ``--size`` option).

        Args:
            height: New ``H`` (``None`` keeps the current value).
            width: New ``W`` (``None`` keeps the current value).

        Returns:
            A new spec; this one is unchanged.

        Raises:
            InputError: If the spec is not a 2D image input.
        """
        if self.rank != 2:
            raise InputError(
                f"model input {self.name!r} has shape {format_shape(self.shape)}; a height and width only "
                "apply to image inputs (H, W, C) or (C, H, W)"
            )
        h = self.height if height is None else height
        w = self.width if width is None else width
        return replace(self, shape=self.sample_shape(h, w, self.channels))
