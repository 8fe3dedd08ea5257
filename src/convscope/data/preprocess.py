"""The preprocessing options, all visible in one frozen dataclass, the ``LO,HI`` range parser and the one
check of value_range / mean / std (:func:`check_scaling`, also used by feature visualization)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from convscope.data.pairs import parse_pair
from convscope.data.readopts import ReadOptions
from convscope.data.spec import InputSpec
from convscope.errors import OptionError

ResizeMode = Literal["stretch", "fit", "none"]
RESIZE_MODES: tuple[str, ...] = ("stretch", "fit", "none")
CHANNEL_MODES: tuple[str, ...] = ("auto",)
DEFAULT_RANGE: tuple[float, float] = (0.0, 1.0)


def _num(value: float) -> str:
    return f"{value:g}"


def _nums(values: Sequence[float]) -> str:
    return "(" + ", ".join(_num(v) for v in values) + ")"


def parse_range(text: str) -> tuple[float, float]:
    """Parse a value range written ``LO,HI``, e.g. ``"0,1"`` or ``"-1,1"``.

    Args:
        text: Two finite numbers separated by one comma, ``LO < HI``; spaces are ignored.

    Returns:
        ``(lo, hi)`` as floats.

    Raises:
        OptionError: If the text is malformed, a number is not finite, or ``LO >= HI``.
    """
    accepted = "expected LO,HI with two numbers and LO < HI, e.g. 0,1 or -1,1 or 0,255"
    lo, hi = parse_pair(text, "value range", accepted)
    if lo >= hi:
        raise OptionError(f"value range {text!r} has LO >= HI; {accepted}")
    return (lo, hi)


def _float_tuple(name: str, values: Any) -> tuple[float, ...]:
    """One number or a sequence of numbers -> a non-empty tuple of finite floats."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError(name)
        out = (float(values),) if isinstance(values, numbers.Real) else tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise OptionError(
            f"{name} {values!r} is not a sequence of numbers (or one number), e.g. (0.485, 0.456, 0.406)"
        ) from None
    if not out or not all(math.isfinite(v) for v in out):
        raise OptionError(f"{name} {values!r} must hold one finite number per channel (or a single number)")
    return out


class Scaling(NamedTuple):
    """Checked scaling options: ``value_range``, and ``mean``/``std`` (both ``None`` or both set)."""

    value_range: tuple[float, float]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


def check_scaling(value_range: Any = None, mean: Any = None, std: Any = None) -> Scaling:
    """Check how pixels are scaled: ``lo + (hi - lo) * x`` (``value_range``) or ``(x - mean) / std``.

    ``x`` is the picture in [0, 1] (``x/255`` for 8-bit pixels). The one check behind
    :class:`Preprocess` and :class:`convscope.featvis.ValueMap`, with one message format (each message
    echoes the value and says what is accepted).

    Args:
        value_range: ``(lo, hi)``, two finite numbers with ``lo < hi``; ``None``: not given, ``(0, 1)``.
        mean: One number or one per channel (finite); given together with ``std``.
        std: One number or one per channel (finite, > 0), as many as ``mean``.

    Returns:
        The options as float tuples; ``value_range`` is ``(0, 1)`` when not given.

    Raises:
        OptionError: A malformed range; ``mean`` without ``std`` or the reverse; a given ``value_range``
            together with ``mean``/``std``; non-finite, empty or mismatched ``mean``/``std``; a ``std <= 0``.
    """
    rng = DEFAULT_RANGE
    if value_range is not None:
        try:
            rng = _float_tuple("value_range", value_range)  # type: ignore[assignment]
        except OptionError:
            rng = ()  # type: ignore[assignment]
        if len(rng) != 2 or rng[0] >= rng[1]:
            raise OptionError(
                f"value_range {value_range!r} must be (lo, hi) with lo < hi (two numbers, both "
                "finite), e.g. (0, 1)"
            )
    if (mean is None) != (std is None):
        raise OptionError(f"mean={mean!r} and std={std!r}: give both together (one per channel) or neither")
    if mean is None:
        return Scaling(rng, None, None)
    if value_range is not None:
        raise OptionError(
            f"value_range {_nums(rng)} and mean/std cannot be combined; mean/std scales the [0, 1] "
            "picture (x/255) itself (use one or the other)"
        )
    m, s = _float_tuple("mean", mean), _float_tuple("std", std)
    if len(m) != len(s):
        raise OptionError(f"mean {_nums(m)} and std {_nums(s)} must have the same length")
    if min(s) <= 0:
        raise OptionError(f"std {_nums(s)} must be > 0 (positive) in every channel")
    return Scaling(rng, m, s)


@dataclass(frozen=True)
class Preprocess:
    """How image files become model input. Arrays (``.npy``/``.npz``/numpy) are never preprocessed.

    The steps run in this order: read (EXIF orientation applied) -> the picture in [0, 1] -> channels ->
    resize -> invert -> scale to floats -> channel axis moved (channels_first).

    The picture in [0, 1] is ``x / 255`` for 8-bit pixels (kept as 8-bit pixels until scaling, so 8-bit
    images resize exactly as Pillow does), ``x / 65535`` for 16-bit ones (PNG, TIFF: the full range is kept,
    computed in float), and for TIFF stacks, DICOM and NIfTI a window or span (see ``read`` and
    :mod:`convscope.data.stack`). ``value_range`` and ``mean``/``std`` then scale that picture, whatever the
    bit depth: ``--range 0,1`` gives 16-bit value 65535 as 1.0 and 1 as 1/65535.

    Attributes:
        value_range: ``(lo, hi)``; black (pixel value 0; 0 of the picture) becomes ``lo`` and white (255 for
            8-bit, 65535 for 16-bit; 1 of the picture) becomes ``hi``, linearly.
        mean: Per-channel means for ``(x/255 - mean)/std`` (the torchvision convention). Given together
            with ``std``; excludes a non-default ``value_range``. One number applies to every channel.
        std: Per-channel standard deviations (all > 0); see ``mean``.
        resize: ``"stretch"``: bilinear (Pillow ``BILINEAR`` on 8-bit pixels) to exactly H x W, ignoring
            the aspect ratio. ``"fit"``: keep the aspect ratio, scale bilinearly until the image just fits
            in H x W, centre it and pad with pixel value 0 (black) -- padding is added after ``invert``,
            so it is always 0 before scaling (``lo`` of ``value_range``). ``"none"``: no resizing; the
            image must already be H x W. When the model accepts any height/width (``None``), every mode
            keeps the image's own size along that axis.
        invert: Replace each pixel ``x`` by ``255 - x`` (for dark digits photographed on light paper).
        channels: ``"auto"``: gray -> RGB replicates the gray value; RGB -> gray uses ITU-R 601-2 luma
            (``L = 0.299 R + 0.587 G + 0.114 B``, computed by Pillow as ``convert("L")`` does for 8-bit
            pixels, in float otherwise); alpha is dropped (not composited); palette images are expanded to
            RGB first.
        read: :class:`~convscope.data.readopts.ReadOptions`: the window (``--window``) and slices
            (``--slice``) of TIFF stacks, DICOM files and series and NIfTI volumes.

    Raises:
        OptionError: On any malformed or conflicting option (the message names the value).
    """

    value_range: tuple[float, float] = DEFAULT_RANGE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: ResizeMode = "stretch"
    invert: bool = False
    channels: Literal["auto"] = "auto"
    read: ReadOptions = field(default_factory=ReadOptions)

    def __post_init__(self) -> None:
        rng = check_scaling(self.value_range).value_range
        # (0, 1) is the field's default, so here it means "not given" (it is the basis mean/std scale from)
        rng, mean, std = check_scaling(None if rng == DEFAULT_RANGE else rng, self.mean, self.std)
        object.__setattr__(self, "value_range", rng)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        if self.resize not in RESIZE_MODES:
            raise OptionError(
                f"resize {self.resize!r} is not valid; expected one of {', '.join(RESIZE_MODES)}"
            )
        if not isinstance(self.invert, bool):
            raise OptionError(f"invert {self.invert!r} must be True or False")
        if self.channels not in CHANNEL_MODES:
            raise OptionError(
                f"channels {self.channels!r} is not valid; expected one of {', '.join(CHANNEL_MODES)}"
            )
        if not isinstance(self.read, ReadOptions):
            raise OptionError(f"read {self.read!r} must be a ReadOptions (window, slice), e.g. ReadOptions()")

    @property
    def uses_mean_std(self) -> bool:
        """True when scaling is ``(x/255 - mean)/std`` rather than ``value_range``."""
        return self.mean is not None

    def describe(self, spec: InputSpec | None = None) -> str:
        """One line stating what is done to image files, for logs and picture captions.

        Args:
            spec: The target input; adds the target size, channel count and layout when given.

        Returns:
            Sizes are width x height, e.g.
            ``"stretch (bilinear) to 28x28, 1 channel (gray), inverted (255-x), 0..255 -> [0, 1]"``.
        """
        size = ""
        if spec is not None and spec.rank == 2:
            w = "any" if spec.width is None else str(spec.width)
            h = "any" if spec.height is None else str(spec.height)
            size = f" to {w}x{h}" if self.resize != "none" else f" (size must be {w}x{h})"
        resize = {
            "stretch": f"stretch (bilinear){size}",
            "fit": f"fit (keep aspect, bilinear, pad black){size}",
            "none": f"no resize{size}",
        }[self.resize]
        steps = [resize]
        if spec is not None and spec.channels is not None:
            kind = {1: " (gray)", 3: " (RGB)"}.get(spec.channels, "")
            steps.append(f"{spec.channels} channel{'s' if spec.channels != 1 else ''}{kind}")
        else:
            steps.append("channels as read (alpha dropped)")
        if self.invert:
            steps.append("inverted (255-x)")
        if self.mean is not None and self.std is not None:
            steps.append(f"(x/255 - mean)/std, mean={_nums(self.mean)}, std={_nums(self.std)}")
        else:
            lo, hi = self.value_range
            steps.append(f"0..255 -> [{_num(lo)}, {_num(hi)}]")
        if spec is not None and spec.data_format == "channels_first":
            steps.append("channels_first")
        if self.read.describe():
            steps.append(self.read.describe())
        return ", ".join(steps)
