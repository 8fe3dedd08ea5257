"""Pure-python arithmetic of CNN layers: output sizes, parameter counts and receptive fields.

Nothing here imports Keras: every function works on a layer's class name and its ``get_config()`` dict
(plus shapes), so it is cheap, testable against Keras and usable on a config read from a file.

Conventions:
    * Sizes follow Keras 3 exactly (``compute_output_shape`` of the conv, pooling and transposed-conv
      layers); ``None`` (an unknown size) propagates as ``None``.
    * ``'same'`` padding follows the TensorFlow/XLA rule that Keras uses on the TensorFlow and JAX
      backends: total padding ``max((ceil(n/s) - 1)*s + k_eff - n, 0)``, the smaller half on the left.
    * Receptive fields use the classic recurrence (Araujo et al., "Computing receptive fields of
      convolutional neural networks", Distill 2019; Dang Ha The Hien, "A guide to receptive field
      arithmetic"), per spatial axis, in input-pixel units: ``size`` is the extent of the field of one
      output position, ``jump`` the distance between neighbouring output positions and ``start`` the
      *centre* of the field of output position 0 (fractional for even extents, negative when the
      field reaches into the padding).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convscope.errors import InputError

logger = logging.getLogger(__name__)

Shape = tuple[int | None, ...]

_CONV = re.compile(r"^(Conv|SeparableConv|DepthwiseConv)([123])D$")
_TRANSPOSE = re.compile(r"^Conv([123])DTranspose$")
_POOL = re.compile(r"^(MaxPooling|AveragePooling)([123])D$")
_PAD = re.compile(r"^(ZeroPadding|Cropping)([123])D$")
_UPSAMPLE = re.compile(r"^UpSampling([123])D$")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ZERO_PARAM_LAYERS = _names(
    "InputLayer Activation ReLU LeakyReLU ELU Softmax Dropout SpatialDropout1D SpatialDropout2D "
    "SpatialDropout3D GaussianDropout GaussianNoise AlphaDropout ActivityRegularization Masking Identity "
    "Flatten Reshape Permute RepeatVector Rescaling Resizing CenterCrop UnitNormalization Add Subtract "
    "Multiply Average Maximum Minimum Concatenate Dot MaxPooling1D MaxPooling2D MaxPooling3D "
    "AveragePooling1D AveragePooling2D AveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D "
    "GlobalMaxPooling3D GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D "
    "ZeroPadding1D ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D "
    "UpSampling2D UpSampling3D"
)
"""Layer classes that never hold weights."""

POINTWISE_LAYERS = _names(
    "Activation ReLU LeakyReLU PReLU ELU Softmax Dropout SpatialDropout1D SpatialDropout2D "
    "SpatialDropout3D GaussianDropout GaussianNoise AlphaDropout ActivityRegularization Masking Identity "
    "Rescaling BatchNormalization LayerNormalization RMSNormalization GroupNormalization "
    "UnitNormalization Normalization"
)
"""Layer classes whose output position ``i`` depends on input position ``i`` only (geometry unchanged)."""

MERGE_LAYERS = _names("Add Subtract Multiply Average Maximum Minimum Concatenate")
"""Element-wise merges: the output field is the union (hull) of the inputs' fields."""

GLOBAL_LAYERS = _names(
    "Flatten Reshape Permute RepeatVector Embedding Dot GlobalMaxPooling1D GlobalMaxPooling2D "
    "GlobalMaxPooling3D GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D"
)
"""Layer classes after which every output value may depend on the whole input (field ``None``)."""


# --------------------------------------------------------------------------------------------------
# Output sizes
# --------------------------------------------------------------------------------------------------


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_length(
    size: int | None, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> int | None:
    """Output length of a convolution along one axis (Keras 3 rule).

    Args:
        size: Input length (``None`` if unknown).
        kernel: Kernel length.
        stride: Stride.
        padding: ``'valid'``, ``'same'`` or ``'causal'``.
        dilation: Dilation rate.

    Returns:
        The output length, or ``None`` when ``size`` is ``None``.

    Raises:
        InputError: On an unknown padding, or when a ``'valid'`` input is shorter than the kernel.
    """
    if size is None:
        return None
    padding = padding.lower()
    if padding in ("same", "causal"):
        return (size - 1) // stride + 1
    if padding != "valid":
        raise InputError(f"padding must be 'valid', 'same' or 'causal'; got {padding!r}")
    k_eff = effective_kernel(kernel, dilation)
    if size < k_eff:
        raise InputError(
            f"input length {size} is shorter than the (dilated) kernel {k_eff} with 'valid' padding"
        )
    return (size - k_eff) // stride + 1


def pool_output_length(
    size: int | None, pool: int, stride: int | None = None, padding: str = "valid"
) -> int | None:
    """Output length of a max/average pooling along one axis (``stride`` defaults to ``pool``)."""
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise InputError(f"pooling padding must be 'valid' or 'same'; got {padding!r}")
    return conv_output_length(size, pool, pool if stride is None else stride, padding)


def conv_transpose_output_length(
    size: int | None,
    kernel: int,
    stride: int = 1,
    padding: str = "valid",
    output_padding: int | None = None,
    dilation: int = 1,
) -> int | None:
    """Output length of a transposed convolution along one axis (Keras 3 rule).

    Args:
        size: Input length (``None`` if unknown).
        kernel: Kernel length.
        stride: Stride (the upsampling factor).
        padding: ``'valid'`` or ``'same'``.
        output_padding: Extra length added at the end, or ``None`` for Keras' default.
        dilation: Dilation rate.

    Returns:
        The output length, or ``None`` when ``size`` is ``None``.
    """
    if size is None:
        return None
    padding = padding.lower()
    k_eff = effective_kernel(kernel, dilation)
    if padding == "valid":
        extra = max(k_eff, stride) - k_eff if output_padding is None else output_padding
        return (size - 1) * stride + k_eff + extra
    if padding == "same":
        if output_padding is None:
            return size * stride
        return (size - 1) * stride + k_eff % 2 + output_padding
    raise InputError(f"transposed-conv padding must be 'valid' or 'same'; got {padding!r}")


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """``(left, right)`` padding of ``'same'`` along one axis (TensorFlow/XLA rule, extra on the right)."""
    k_eff = effective_kernel(kernel, dilation)
    total = max((math.ceil(size / stride) - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def left_padding(size: int | None, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Zeros added before position 0 along one axis for ``'valid'``, ``'same'`` or ``'causal'``.

    With ``'same'`` and an unknown ``size`` the size is assumed to be a multiple of ``stride``.
    """
    padding = padding.lower()
    k_eff = effective_kernel(kernel, dilation)
    if padding == "causal":
        return k_eff - 1
    if padding != "same":
        return 0
    if size is None:
        return max(k_eff - stride, 0) // 2
    return same_padding(size, kernel, stride, dilation)[0]


# --------------------------------------------------------------------------------------------------
# Geometry read from a layer config
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """The spatial hyper-parameters of a conv-like layer, one entry per spatial axis.

    Attributes:
        kind: ``'conv'``, ``'transpose'``, ``'pool'``, ``'pad'``, ``'crop'`` or ``'upsample'``.
        kernel: Kernel / pool size (``1`` for pad, crop, upsample).
        strides: Strides (the factor for upsample).
        dilation: Dilation rates.
        padding: ``'valid'``, ``'same'`` or ``'causal'`` (``'valid'`` for pad, crop, upsample).
        channels_first: True for ``data_format='channels_first'``.
        output_padding: Transposed conv only: per-axis output padding or ``None``.
        edges: Pad / crop only: ``(before, after)`` per axis.
        interpolation: Upsample only: ``'nearest'``, ``'bilinear'``, ...
    """

    kind: str
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str
    channels_first: bool = False
    output_padding: tuple[int, ...] | None = None
    edges: tuple[tuple[int, int], ...] | None = None
    interpolation: str = "nearest"

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.kernel)

    def spatial(self, shape: Sequence[int | None] | None) -> tuple[int | None, ...] | None:
        """The spatial part of a full (batch-first) tensor shape, or ``None``."""
        if shape is None or len(shape) != self.ndim + 2:
            return None
        return tuple(shape[2:]) if self.channels_first else tuple(shape[1:-1])


def _tuple(value: Any, n: int, default: int = 1) -> tuple[int, ...]:
    if value is None:
        return (default,) * n
    if isinstance(value, int):
        return (value,) * n
    values = tuple(int(v) for v in value)
    return values if len(values) == n else (values[0],) * n


def _edges(value: Any, n: int) -> tuple[tuple[int, int], ...]:
    if isinstance(value, int):
        return ((value, value),) * n
    items = list(value)
    if n == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return ((int(items[0]), int(items[1])),)
    return tuple((v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in items)


def layer_geometry(class_name: str, config: Mapping[str, Any]) -> Geometry | None:
    """Read the spatial hyper-parameters of a conv, pooling, padding or upsampling layer.

    Args:
        class_name: The layer's class name, e.g. ``"Conv2D"``.
        config: The layer's ``get_config()`` dict.

    Returns:
        The geometry, or ``None`` for layers that are not conv-like.
    """
    channels_first = config.get("data_format") == "channels_first"
    if m := _CONV.match(class_name):
        n = int(m.group(2))
        return Geometry(
            "conv",
            _tuple(config.get("kernel_size"), n),
            _tuple(config.get("strides"), n),
            _tuple(config.get("dilation_rate"), n),
            str(config.get("padding", "valid")).lower(),
            channels_first,
        )
    if m := _TRANSPOSE.match(class_name):
        n = int(m.group(1))
        op = config.get("output_padding")
        return Geometry(
            "transpose",
            _tuple(config.get("kernel_size"), n),
            _tuple(config.get("strides"), n),
            _tuple(config.get("dilation_rate"), n),
            str(config.get("padding", "valid")).lower(),
            channels_first,
            output_padding=None if op is None else _tuple(op, n),
        )
    if m := _POOL.match(class_name):
        n = int(m.group(2))
        pool = _tuple(config.get("pool_size"), n, 2)
        strides = pool if config.get("strides") is None else _tuple(config.get("strides"), n)
        return Geometry(
            "pool", pool, strides, (1,) * n, str(config.get("padding", "valid")).lower(), channels_first
        )
    if m := _PAD.match(class_name):
        n = int(m.group(2))
        kind = "pad" if m.group(1) == "ZeroPadding" else "crop"
        edges = _edges(config.get("padding" if kind == "pad" else "cropping", 1), n)
        return Geometry(kind, (1,) * n, (1,) * n, (1,) * n, "valid", channels_first, edges=edges)
    if m := _UPSAMPLE.match(class_name):
        n = int(m.group(1))
        size = _tuple(config.get("size"), n, 2)
        interpolation = str(config.get("interpolation", "nearest"))
        return Geometry(
            "upsample", (1,) * n, size, (1,) * n, "valid", channels_first, interpolation=interpolation
        )
    return None


def output_spatial_shape(geometry: Geometry, spatial: Sequence[int | None]) -> tuple[int | None, ...]:
    """Spatial output shape of a conv-like layer from its geometry and spatial input shape."""
    g = geometry
    out: list[int | None] = []
    for i, n in enumerate(spatial):
        k, s, d = g.kernel[i], g.strides[i], g.dilation[i]
        if g.kind in ("conv", "pool"):
            out.append(conv_output_length(n, k, s, g.padding, d))
        elif g.kind == "transpose":
            op = None if g.output_padding is None else g.output_padding[i]
            out.append(conv_transpose_output_length(n, k, s, g.padding, op, d))
        elif n is None:
            out.append(None)
        elif g.kind == "upsample":
            out.append(n * s)
        else:
            before, after = g.edges[i] if g.edges else (0, 0)
            out.append(n + before + after if g.kind == "pad" else n - before - after)
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# Parameter counts
# --------------------------------------------------------------------------------------------------


def _product(sizes: Sequence[int | None]) -> int | None:
    known = [int(s) for s in sizes if s is not None]
    return math.prod(known) if len(known) == len(sizes) else None


def _axes_size(shape: Sequence[int | None], axis: Any) -> int | None:
    axes = [axis] if isinstance(axis, int) else list(axis)
    return _product([shape[a] for a in axes])


def param_count(class_name: str, config: Mapping[str, Any], input_shape: Sequence[int | None]) -> int | None:
    """Number of weights (trainable or not) a layer creates, as ``layer.count_params()`` reports it.

    Args:
        class_name: The layer's class name, e.g. ``"Conv2D"``.
        config: The layer's ``get_config()`` dict.
        input_shape: The layer's (first) input shape, batch dimension included.

    Returns:
        The count, or ``None`` when the class is not covered or a needed dimension is unknown.
    """
    if class_name in ZERO_PARAM_LAYERS:
        return 0
    channels = input_shape[1] if config.get("data_format") == "channels_first" else input_shape[-1]
    bias = 1 if config.get("use_bias", True) else 0
    try:
        if m := _CONV.match(class_name):
            if channels is None:
                return None
            k = math.prod(_tuple(config["kernel_size"], int(m.group(2))))
            if m.group(1) == "Conv":
                groups = int(config.get("groups", 1) or 1)
                return k * (channels // groups) * config["filters"] + bias * config["filters"]
            dm = int(config.get("depth_multiplier", 1))
            if m.group(1) == "DepthwiseConv":
                return k * channels * dm + bias * channels * dm
            return k * channels * dm + channels * dm * config["filters"] + bias * config["filters"]
        if m := _TRANSPOSE.match(class_name):
            if channels is None:
                return None
            k = math.prod(_tuple(config["kernel_size"], int(m.group(1))))
            return k * channels * config["filters"] + bias * config["filters"]
        if class_name == "Dense":
            units = int(config["units"])
            return None if channels is None else channels * units + bias * units
        if class_name == "Embedding":
            return int(config["input_dim"]) * int(config["output_dim"])
        if class_name == "BatchNormalization":
            size = _axes_size(input_shape, config.get("axis", -1))
            vectors = 2 + bool(config.get("center", True)) + bool(config.get("scale", True))
            return None if size is None else vectors * size
        if class_name == "LayerNormalization":
            size = _axes_size(input_shape, config.get("axis", -1))
            rms = bool(config.get("rms_scaling", False))
            vectors = bool(config.get("scale", True) or rms) + bool(config.get("center", True) and not rms)
            return None if size is None else vectors * size
        if class_name == "RMSNormalization":
            return _axes_size(input_shape, config.get("axis", -1))
        if class_name == "GroupNormalization":
            size = _axes_size(input_shape, config.get("axis", -1))
            vectors = bool(config.get("center", True)) + bool(config.get("scale", True))
            return None if size is None else vectors * size
        if class_name == "PReLU":
            shape = list(input_shape[1:])
            for axis in config.get("shared_axes") or []:
                shape[int(axis) - 1] = 1
            return _product(shape)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        logger.debug("cannot count parameters of %s from its config: %s", class_name, err)
    return None


# --------------------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one tensor, per spatial axis, in input pixels.

    Attributes:
        size: Extent of the field of one output position (its bounding box, holes from dilation
            included).
        jump: Distance in input pixels between neighbouring output positions (the product of strides).
        start: Centre of the field of output position 0; position ``i`` is centred at ``start + i*jump``.
        exact: False when an approximation was needed somewhere upstream (a layer of unknown geometry,
            a transposed conv or upsampling with stride > 1, a graph inferred from call order, ...).
    """

    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]
    exact: bool = True

    @classmethod
    def identity(cls, ndim: int) -> ReceptiveField:
        """The field of a model input: one pixel per position."""
        return cls((1,) * ndim, (1,) * ndim, (0,) * ndim)

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.size)

    def bounds(self, position: Sequence[int] | None = None) -> tuple[tuple[float, float], ...]:
        """``(first, last)`` input pixel covered along each axis by output ``position`` (default 0).

        The interval is not clipped to the image: with padding it can start below 0.
        """
        pos = position if position is not None else (0,) * self.ndim
        centres = [s + p * j for s, p, j in zip(self.start, pos, self.jump)]
        return tuple((c - (r - 1) / 2, c + (r - 1) / 2) for c, r in zip(centres, self.size))

    def approximate(self) -> ReceptiveField:
        """The same field flagged as approximate."""
        return ReceptiveField(self.size, self.jump, self.start, False)


def _through_geometry(
    rf: ReceptiveField,
    g: Geometry,
    in_spatial: Sequence[int | None] | None,
    out_spatial: Sequence[int | None] | None,
) -> ReceptiveField:
    size, jump, start = [], [], []
    exact = rf.exact
    for i in range(g.ndim):
        r, j, s0 = rf.size[i], rf.jump[i], rf.start[i]
        k, st, d = g.kernel[i], g.strides[i], g.dilation[i]
        n = in_spatial[i] if in_spatial else None
        k_eff = effective_kernel(k, d)
        if g.kind in ("conv", "pool"):
            if g.padding == "same" and n is None and st > 1:
                exact = False
            pad = left_padding(n, k, st, g.padding, d)
            size.append(r + (k_eff - 1) * j)
            jump.append(j * st)
            start.append(s0 + ((k_eff - 1) / 2 - pad) * j)
        elif g.kind == "transpose":
            n_out = out_spatial[i] if out_spatial else None
            if g.padding == "same":
                if n is None or n_out is None:
                    crop, exact = max(k_eff - st, 0) // 2, False
                else:
                    crop = max((n - 1) * st + k_eff - n_out, 0) // 2
            else:
                crop = 0
            exact = exact and st == 1
            size.append(r + ((k_eff - 1) // st) * j)
            jump.append(j / st)
            start.append(s0 + (crop - (k_eff - 1) / 2) / st * j)
        elif g.kind == "upsample":
            exact = exact and st == 1
            size.append(r + (j if g.interpolation != "nearest" and st > 1 else 0))
            jump.append(j / st)
            start.append(s0 + (0.5 / st - 0.5) * j)
        else:  # pad / crop
            before = g.edges[i][0] if g.edges else 0
            size.append(r)
            jump.append(j)
            start.append(s0 - before * j if g.kind == "pad" else s0 + before * j)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), exact)


#: Input pixels, per axis, a resampling kernel reaches beyond the nearest one (``keras.layers.Resizing``).
_RESIZE_REACH = {"nearest": 0, "bilinear": 1, "bicubic": 3, "lanczos3": 5, "lanczos5": 9, "area": 1}


def _through_resize(
    rf: ReceptiveField | None,
    config: Mapping[str, Any],
    input_shape: Sequence[int | None] | None,
    output_shape: Sequence[int | None] | None,
) -> ReceptiveField | None:
    """The field after ``Resizing`` to a fixed size (half-pixel centres, as ``keras.ops.image.resize``).

    Output position ``i`` samples input position ``(i + 0.5) * n_in / n_out - 0.5``: the jump scales by
    ``n_in / n_out`` and the field widens by the interpolation kernel's reach. Always marked approximate;
    ``None`` when the sizes are unknown or the layer crops or pads to an aspect ratio first.
    """
    if rf is None or input_shape is None or output_shape is None:
        return None
    if config.get("crop_to_aspect_ratio") or config.get("pad_to_aspect_ratio"):
        return None
    first = config.get("data_format") == "channels_first"
    in_sp = tuple(input_shape[2:] if first else input_shape[1:-1])
    out_sp = tuple(output_shape[2:] if first else output_shape[1:-1])
    if len(in_sp) != rf.ndim or len(out_sp) != rf.ndim or None in in_sp or None in out_sp:
        return None
    reach = _RESIZE_REACH.get(str(config.get("interpolation", "bilinear")), 1)
    size, jump, start = [], [], []
    for axis in range(rf.ndim):
        scale = int(in_sp[axis]) / int(out_sp[axis])  # type: ignore[arg-type]
        r, j, s0 = rf.size[axis], rf.jump[axis], rf.start[axis]
        wide = max(1.0, scale) if config.get("antialias") else 1.0  # an antialiased kernel widens with scale
        spread = reach * wide if scale != 1 else 0
        size.append(r + spread * j)
        jump.append(j * scale)
        start.append(s0 + (0.5 * scale - 0.5) * j)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), False)


def merge_fields(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    """Union of the fields of tensors merged element-wise (Add, Concatenate on channels, ...).

    Each axis takes the hull of the inputs' intervals for output position 0, so when the inputs'
    fields share a centre (the usual residual block) the size is simply the largest input size. Jumps
    should agree; if they do not the largest is kept and the field is marked approximate.
    """
    first = fields[0]
    if len(fields) == 1:
        return first
    size, jump, start = [], [], []
    exact = all(f.exact for f in fields)
    for axis in range(first.ndim):
        lows = [f.bounds()[axis][0] for f in fields]
        highs = [f.bounds()[axis][1] for f in fields]
        jumps = {f.jump[axis] for f in fields}
        exact = exact and len(jumps) == 1
        size.append(max(highs) - min(lows) + 1)
        jump.append(max(jumps))
        start.append((max(highs) + min(lows)) / 2)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), exact)


def is_known_layer(class_name: str) -> bool:
    """True if :func:`propagate_field` knows how ``class_name`` moves pixels (not a guess)."""
    return bool(
        class_name in GLOBAL_LAYERS
        or class_name in MERGE_LAYERS
        or class_name in POINTWISE_LAYERS
        or class_name in ("Dense", "Resizing")
        or layer_geometry(class_name, {}) is not None
    )


def _spatial_of(shape: Sequence[int | None] | None) -> tuple[int | None, ...] | None:
    return None if shape is None or len(shape) < 3 else tuple(shape[1:-1])


def propagate_field(
    class_name: str,
    config: Mapping[str, Any],
    inputs: Sequence[ReceptiveField | None],
    input_shape: Sequence[int | None] | None = None,
    output_shape: Sequence[int | None] | None = None,
) -> ReceptiveField | None:
    """Receptive field of a layer's output from the fields of its inputs.

    Rules: conv, pooling, padding, cropping, transposed conv and upsampling layers apply the
    recurrence (``input_shape`` is needed for exact ``'same'`` padding with stride > 1); element-wise
    layers (activations, normalizations, dropout, ``Dense`` on a rank > 2 tensor) pass the field
    through; merges (Add, Concatenate, ...) take the hull of their spatial inputs (:func:`merge_fields`,
    i.e. the largest size when the fields are centred alike; a non-spatial input such as a
    squeeze-and-excitation gate is ignored and the result marked approximate; a concatenation along a
    spatial axis keeps the first input's field, marked approximate); ``Flatten``, ``Reshape``,
    global pooling and the like give ``None`` (every output sees the whole input); ``Resizing`` scales
    the jump by ``n_in / n_out`` (approximate, see :func:`_through_resize`). An unknown layer
    whose spatial shape is unchanged passes the field through, marked approximate; otherwise ``None``.

    Args:
        class_name: The layer's class name.
        config: The layer's ``get_config()`` dict.
        inputs: The fields of the layer's input tensors (``None`` for a non-spatial tensor).
        input_shape: The layer's first input shape, batch dimension included, if known.
        output_shape: The layer's first output shape, batch dimension included, if known.

    Returns:
        The output field, or ``None`` when the output has no spatial layout or sees the whole input.
    """
    spatial = [f for f in inputs if f is not None]
    if not spatial:
        return None
    first = spatial[0]
    if class_name in GLOBAL_LAYERS:
        return None
    geometry = layer_geometry(class_name, config)
    if geometry is not None:
        if inputs[0] is None or geometry.ndim != inputs[0].ndim:
            return None
        return _through_geometry(
            inputs[0], geometry, geometry.spatial(input_shape), geometry.spatial(output_shape)
        )
    if class_name in MERGE_LAYERS:
        if class_name == "Concatenate" and input_shape is not None:
            axis = int(config.get("axis", -1)) % len(input_shape)
            if 0 < axis < len(input_shape) - 1:  # a spatial axis (or channels-first data): a guess
                return first.approximate()
        dims = {f.ndim for f in spatial}
        merged = merge_fields([f for f in spatial if f.ndim == first.ndim])
        complete = len(spatial) == len(inputs) and len(dims) == 1
        return merged if complete else merged.approximate()
    if class_name in POINTWISE_LAYERS or class_name == "Dense":
        if class_name == "Dense" and output_shape is not None and len(output_shape) < 3:
            return None
        return merge_fields(spatial) if len(spatial) > 1 else first
    if class_name == "Resizing":
        return _through_resize(first if inputs[0] is not None else None, config, input_shape, output_shape)
    in_sp, out_sp = _spatial_of(input_shape), _spatial_of(output_shape)
    if in_sp is not None and in_sp == out_sp and len(in_sp) == first.ndim:
        logger.debug("receptive field: %s has unknown geometry; assuming it is element-wise", class_name)
        return first.approximate()
    logger.debug("receptive field: %s has unknown geometry; treating its output as global", class_name)
    return None
