"""The images a model takes: size, channels, layout, value range; and how many channels a layer has."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from convscope.data.preprocess import check_scaling
from convscope.errors import InputError, OptionError
from convscope.models.spec import data_format, input_shapes

DEFAULT_SIZE: Final = 128  # image side for models that accept any size


@dataclass(frozen=True)
class Geometry:
    """A batch of images for one model.

    Attributes:
        batch: Images optimized together.
        h: Height.
        w: Width.
        c: Channels.
        channels_first: The model takes ``(B, C, H, W)`` (images are made channels-last and transposed).
        fixed: The model's spatial size is fixed (transforms must keep it).
    """

    batch: int
    h: int
    w: int
    c: int
    channels_first: bool = False
    fixed: bool = True

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(B, H, W, C)``."""
        return (self.batch, self.h, self.w, self.c)


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 4 for v in pair):
        raise OptionError(f"size must be an integer >= 4 or a pair (H, W) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def _called_shape(model: Any) -> tuple[int | None, ...] | None:
    """The sample shape a model without graph inputs (a subclassed model) was built or first called with."""
    shapes = getattr(model, "_build_shapes_dict", None)
    if isinstance(shapes, dict) and len(shapes) == 1:
        shape = next(iter(shapes.values()))
        if (
            isinstance(shape, (tuple, list))
            and len(shape) == 4
            and all(d is None or isinstance(d, (int, np.integer)) for d in shape)
        ):
            return tuple(None if d is None else int(d) for d in shape[1:])
    return None


def resolve_geometry(
    model: Any, size: int | tuple[int, int] | None, batch: int, input_shape: tuple[int, ...] | None = None
) -> Geometry:
    """Work out the image geometry from the model's input and the requested ``size``.

    A model without graph inputs (subclassed) takes its geometry from ``input_shape`` or else from the
    shape it was built or called with; its spatial size then counts as free (``size`` may change it).

    Raises:
        InputError: the model does not take exactly one image input ``(H, W, C)``.
        OptionError: ``size`` is malformed or differs from a fixed input size.
    """
    shapes, free = input_shapes(model), False
    if not shapes:
        called = tuple(input_shape) if input_shape is not None else _called_shape(model)
        shapes, free = ([called], True) if called is not None else (shapes, False)
    if not shapes:
        raise InputError(
            f"model {model.name!r} has no defined input shape (a subclassed model?); pass "
            "input_shape=(H, W, C) (CLI: --input-shape H,W,C)"
        )
    if len(shapes) != 1 or len(shapes[0]) != 3:
        raise InputError(
            f"feature visualization needs a model with one image input (H, W, C); model "
            f"{model.name!r} takes {shapes}"
        )
    first = data_format(model) == "channels_first"
    shape = shapes[0]
    c, h, w = (shape[0], shape[1], shape[2]) if first else (shape[2], shape[0], shape[1])
    if c is None:
        raise InputError(f"model {model.name!r} has an unknown number of input channels {shape}")
    want = None if size is None else _size_pair(size)
    if h is not None and w is not None and not free:
        if want is not None and want != (h, w):
            raise OptionError(
                f"size={size!r} does not fit model {model.name!r}, whose input is fixed at "
                f"{h}x{w}; leave size unset"
            )
        return Geometry(batch, int(h), int(w), int(c), first, True)
    hh, ww = want if want is not None else (h or DEFAULT_SIZE, w or DEFAULT_SIZE)
    return Geometry(batch, int(hh), int(ww), int(c), first, False)


def layer_channels(
    model: Any,
    layer: str | int,
    size: int | tuple[int, int] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> int:
    """Number of channels (last axis, or axis 1 for channels-first layers) of ``layer``'s output.

    Read from ``filters`` / ``units`` where the layer has them, otherwise measured by running the model
    on one zero image up to that layer.

    Raises:
        LayerNotFound: unknown layer (the message lists valid paths).
    """
    from convscope.featvis.taps import Need, TapPlan, find_layer, run_taps
    from convscope.models.tree import layer_tree

    node = find_layer(layer_tree(model), layer, model.name)
    for attr in ("filters", "units"):
        value = getattr(node.layer, attr, None)
        if isinstance(value, (int, np.integer)) and value > 0:
            return int(value)
    geo = resolve_geometry(model, size, 1, input_shape)
    x = np.zeros(geo.shape, np.float32)
    if geo.channels_first:
        x = np.transpose(x, (0, 3, 1, 2))
    plan = TapPlan.build(model, [Need(layer, "output")])
    out = run_taps(plan, lambda t: model(t, training=False), x, None).output(layer)
    cf = getattr(node.layer, "data_format", "channels_last") == "channels_first" and len(out.shape) > 2
    return int(out.shape[1] if cf else out.shape[-1])


@dataclass(frozen=True)
class ValueMap:
    """Maps an image in [0, 1] to the model's input values.

    Either ``lo + (hi - lo) * x`` (``value_range``) or ``(x - mean) / std`` per channel.

    Attributes:
        value_range: ``(lo, hi)``; used when ``mean`` is ``None``.
        mean: Per-channel (or one) mean subtracted from the [0, 1] image.
        std: Per-channel (or one) standard deviation divided by.
    """

    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def build(
        cls,
        value_range: Sequence[float] | None = None,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
    ) -> ValueMap:
        """Validate the options.

        Raises:
            OptionError: as :func:`convscope.data.preprocess.check_scaling` says (malformed range, ``mean``
                without ``std`` or the reverse, a non-positive std, ``value_range`` combined with
                ``mean``/``std``); the message echoes the values.
        """
        rng, m, s = check_scaling(value_range, mean, std)
        return cls(mean=m, std=s) if m is not None else cls(value_range=rng)

    def apply(self, x01: Any) -> Any:
        """Map ``(B, H, W, C)`` values in [0, 1] to the model's range (keras.ops)."""
        if self.mean is None:
            lo, hi = self.value_range
            return x01 if (lo, hi) == (0.0, 1.0) else x01 * (hi - lo) + lo
        from keras import ops

        mean = ops.convert_to_tensor(np.asarray(self.mean, np.float32))
        inv = ops.convert_to_tensor((1.0 / np.asarray(self.std, np.float64)).astype(np.float32))
        return (x01 - mean) * inv

    def describe(self) -> str:
        """Caption text, e.g. ``"input range [0, 1]"``."""
        if self.mean is None:
            return f"input range [{self.value_range[0]:g}, {self.value_range[1]:g}]"
        return f"input (x - {list(self.mean)}) / {list(self.std or ())}"
