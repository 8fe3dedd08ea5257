"""Channels of a ``Conv2D`` computed from the layer's input, so objectives can skip (most of) the layer.

Image ``b`` of a batched channel objective needs output channel ``k_b`` of the layer, and only that.
Three ways to get it from the tapped layer input, all with the layer's own kernel, bias, strides,
padding, dilation and activation (what ``Conv2D.call`` does):

* ``"slice"``: one depthwise convolution with the batch folded into the channel axis, each image with
  its own kernel column — ``1/C_out`` of the layer's work. Fastest on TensorFlow (oneDNN).
* ``"taps"``: one batched matrix product ``(B, H*W, Cin) @ (B, Cin, kh*kw)`` gives every kernel tap's
  response at every position, then the ``kh*kw`` shifted tap maps are summed — also ``1/C_out`` of the
  work, and fastest on JAX (XLA runs the folded depthwise convolution slowly) and torch.
* ``"conv"``: the full convolution, then each image's channel picked out (a reference).

All keep the pre-activation at hand, which allows lucid's redirected ReLU gradient (:func:`redirected`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from convscope.errors import OptionError

Tensor = Any
#: Activations applied element by element (safe to apply to one selected channel).
ELEMENTWISE: Final = frozenset(
    {
        "linear",
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "celu",
        "gelu",
        "silu",
        "swish",
        "sigmoid",
        "tanh",
        "softplus",
        "softsign",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "exponential",
        "mish",
        "log_sigmoid",
        "hard_tanh",
        "tanh_shrink",
        "squareplus",
        "sparse_plus",
    }
)
ROUTES: Final = ("slice", "taps", "conv")
#: The fastest route per backend (measured on CPU, MNIST CNN conv_1, batch of 64).
DEFAULT_ROUTE: Final = {"tensorflow": "slice", "jax": "taps", "torch": "taps"}


def act_name(layer: Any) -> str:
    """The name of the layer's ``activation`` function ("" if it has none)."""
    return getattr(getattr(layer, "activation", None), "__name__", "")


def can_compute(layer: Any) -> bool:
    """True for a plain ``Conv2D`` (no groups, not quantized, elementwise activation)."""
    return (
        type(layer).__name__ == "Conv2D"
        and getattr(layer, "groups", 1) == 1
        and getattr(layer, "quantization_mode", None) is None
        and act_name(layer) in ELEMENTWISE
    )


def check_channels(ks: np.ndarray, n: int, layer: str) -> None:
    """Raise :class:`OptionError` if any of ``ks`` is not a channel of a layer with ``n`` channels."""
    bad = [int(k) for k in np.unique(ks) if not 0 <= k < n]
    if bad:
        raise OptionError(
            f"channel {bad[0]} is out of range for layer {layer!r} with {n} channels (valid: 0..{n - 1})"
        )


def channel_maps(
    x: Tensor,
    params: tuple[Tensor, Tensor | None],
    ks: np.ndarray,
    layer: Any,
    *,
    route: str = "slice",
    redirect: bool = False,
) -> Tensor:
    """Output channel ``ks[b]`` of Conv2D ``layer`` for image ``b``, from the layer input ``x``.

    Args:
        x: ``(B, H, W, Cin)`` layer input (``(B, Cin, H, W)`` for a channels-first layer).
        params: ``(kernel (kh, kw, Cin, Cout), bias (Cout,) or None)``, read during the layer's call.
        ks: int ``(B,)``: the channel of each image.
        layer: The Conv2D (for strides, padding, dilation, data format and activation).
        route: ``"slice"``, ``"taps"`` or ``"conv"`` (see the module docstring).
        redirect: Use :func:`redirected` when the activation is a ReLU.

    Returns:
        ``(B, Ho, Wo)`` activated channel maps.
    """
    from keras import ops

    kernel, bias = params
    kh, kw, cin, cout = (int(d) for d in kernel.shape)
    check_channels(ks, cout, layer.name)
    if layer.data_format == "channels_first":
        x = ops.transpose(x, (0, 2, 3, 1))
    index = ops.convert_to_tensor(ks.astype(np.int32))
    conv_args = {
        "strides": layer.strides,
        "padding": layer.padding,
        "dilation_rate": layer.dilation_rate,
        "data_format": "channels_last",
    }
    if route == "slice" and len(set(layer.strides)) > 1:
        import keras

        if keras.backend.backend() == "tensorflow":  # TF's CPU depthwise conv needs equal strides: tap sums
            route = "taps"
    if route == "slice":
        b, h, w, _ = (int(d) for d in x.shape)
        k = ops.take(kernel, index, axis=3)  # (kh, kw, Cin, B)
        k = ops.reshape(ops.transpose(k, (0, 1, 3, 2)), (kh, kw, b * cin, 1))
        folded = ops.reshape(ops.transpose(x, (1, 2, 0, 3)), (1, h, w, b * cin))
        y = ops.depthwise_conv(folded, k, **conv_args)
        ho, wo = int(y.shape[1]), int(y.shape[2])
        z = ops.transpose(ops.sum(ops.reshape(y, (ho, wo, b, cin)), axis=-1), (2, 0, 1))
    elif route == "taps":
        z = _tap_sum(x, ops.take(kernel, index, axis=3), layer)
    elif route == "conv":
        onehot = ops.convert_to_tensor(np.eye(cout, dtype=np.float32)[ks])
        z = ops.sum(ops.conv(x, kernel, **conv_args) * onehot[:, None, None, :], axis=-1)
    else:
        raise OptionError(f"unknown channel route {route!r}; valid: {', '.join(ROUTES)}")
    if bias is not None:
        z = z + ops.take(bias, index)[:, None, None]
    if redirect and act_name(layer) in ("relu", "relu6"):
        return redirected(z, layer.activation)
    return layer.activation(z)


def _same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding of one axis: ``(before, after)``, the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _tap_sum(x: Tensor, kernels: Tensor, layer: Any) -> Tensor:
    """Per-image convolution by one batched matmul over kernel taps, then a sum of shifted tap maps.

    Args:
        x: ``(B, H, W, Cin)``.
        kernels: ``(kh, kw, Cin, B)``: image ``b``'s kernel in column ``b``.
        layer: The Conv2D (strides, padding, dilation).

    Returns:
        ``(B, Ho, Wo)`` pre-activation.
    """
    from keras import ops

    kh, kw, cin, _ = (int(d) for d in kernels.shape)
    b, h, w, _ = (int(d) for d in x.shape)
    (sy, sx), (dy, dx) = layer.strides, layer.dilation_rate
    k = ops.transpose(ops.reshape(kernels, (kh * kw, cin, b)), (2, 1, 0))  # (B, Cin, taps)
    u = ops.reshape(ops.matmul(ops.reshape(x, (b, h * w, cin)), k), (b, h, w, kh * kw))
    if layer.padding == "same":
        u = ops.pad(u, ((0, 0), _same_pads(h, kh, sy, dy), _same_pads(w, kw, sx, dx), (0, 0)))
        h, w = int(u.shape[1]), int(u.shape[2])
    ho, wo = (h - (kh - 1) * dy - 1) // sy + 1, (w - (kw - 1) * dx - 1) // sx + 1
    z = None
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dy, j * dx
            part = u[:, y0 : y0 + (ho - 1) * sy + 1 : sy, x0 : x0 + (wo - 1) * sx + 1 : sx, i * kw + j]
            z = part if z is None else z + part
    return z


def redirected(z: Tensor, act: Callable[[Tensor], Tensor]) -> Tensor:
    """``act(z)`` (a ReLU), whose gradient passes straight through for images where the ReLU is all off.

    lucid's "redirected ReLU gradient": when a channel is negative everywhere in an image its true
    gradient is zero and the optimization could never start. The value stays ``act(z)``; only for such
    images the gradient is taken as that of ``z``.

    Args:
        z: ``(B, ...)`` pre-activation.
        act: The activation.
    """
    from keras import ops

    y = act(z)
    axes = tuple(range(1, len(z.shape)))
    dead = ops.stop_gradient(ops.max(z, axis=axes, keepdims=True) <= 0)
    return ops.where(dead, z + ops.stop_gradient(y - z), y)
