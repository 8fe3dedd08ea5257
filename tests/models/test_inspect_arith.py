"""Output-size and parameter arithmetic of convscope.models.arith against Keras itself.

Every case compares the pure-python arithmetic with the Keras layer's ``compute_output_shape``; every
third case (a spread of kernels, strides, dilations, paddings, bias and groups settings) also calls the
layer on zeros, checking that this shape is what really comes out and that ``count_params`` agrees.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections.abc import Callable

import keras
import numpy as np
import pytest

from convscope.errors import ConvscopeError, InputError
from convscope.models import arith

SIZES = (7, 10, 13)


def _spatial(layer_shape: tuple, channels_first: bool = False) -> tuple:
    return tuple(layer_shape[2:]) if channels_first else tuple(layer_shape[1:-1])


def _check_against_keras(
    layer: keras.layers.Layer,
    input_shape: tuple,
    expected_spatial: tuple,
    expected_params: int | None,
    real_call: bool,
) -> None:
    keras_shape = tuple(layer.compute_output_shape(input_shape))
    assert _spatial(keras_shape) == expected_spatial, (layer.get_config(), input_shape)
    if not real_call:  # shape only: building weights is what costs time
        return
    out = layer(np.zeros(input_shape, dtype="float32"))
    assert tuple(out.shape) == keras_shape
    assert expected_params is not None and layer.count_params() == expected_params, layer.get_config()


# ---------------------------------------------------------------- convolutions


def _conv_cases() -> list[tuple]:
    cases = []
    for rank, k, s, d, padding, n in itertools.product(
        (1, 2), range(1, 6), range(1, 4), (1, 2), ("valid", "same", "causal"), SIZES
    ):
        if (s > 1 and d > 1) or (padding == "causal" and rank != 1):
            continue
        if padding == "valid" and n < d * (k - 1) + 1:
            continue
        cases.append((rank, k, s, d, padding, n))
    for k, s, d, padding, n in itertools.product((1, 2, 3), (1, 2), (1, 2), ("valid", "same"), (6, 9)):
        if not (s > 1 and d > 1):
            cases.append((3, k, s, d, padding, n))
    return cases


CONV_CASES = _conv_cases()


@pytest.mark.parametrize("rank,k,s,d,padding,n", CONV_CASES)
def test_conv_output_length_and_params(rank: int, k: int, s: int, d: int, padding: str, n: int) -> None:
    cls = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    use_bias = (k + s + n) % 2 == 0
    groups = 2 if k % 2 == 0 else 1
    layer = cls(4, k, strides=s, padding=padding, dilation_rate=d, use_bias=use_bias, groups=groups)
    input_shape = (1, *(n,) * rank, 2)
    expected = tuple(arith.conv_output_length(n, k, s, padding, d) for _ in range(rank))
    params = arith.param_count(type(layer).__name__, layer.get_config(), input_shape)
    _check_against_keras(
        layer, input_shape, expected, params, real_call=CONV_CASES.index((rank, k, s, d, padding, n)) % 3 == 0
    )


def test_conv_asymmetric_kernel_strides_and_channels_first() -> None:
    layer = keras.layers.Conv2D(3, (2, 5), strides=(3, 1), padding="same", data_format="channels_first")
    input_shape = (1, 4, 11, 9)
    g = arith.layer_geometry("Conv2D", layer.get_config())
    assert g is not None and g.channels_first
    spatial = g.spatial(input_shape)
    assert spatial == (11, 9)
    expected = arith.output_spatial_shape(g, spatial)
    assert tuple(layer.compute_output_shape(input_shape))[2:] == expected
    layer.build(input_shape)
    assert arith.param_count("Conv2D", layer.get_config(), input_shape) == layer.count_params()


def _separable_cases() -> list[tuple]:
    cases = []
    for k, s, d, padding, n, dm in itertools.product(
        range(1, 6), (1, 2, 3), (1, 2), ("valid", "same"), SIZES, (1, 2)
    ):
        if (s > 1 and d > 1) or (padding == "valid" and n < d * (k - 1) + 1) or (n != 10 and dm == 2):
            continue
        cases.append((k, s, d, padding, n, dm))
    return cases


SEPARABLE_CASES = _separable_cases()


@pytest.mark.parametrize("k,s,d,padding,n,dm", SEPARABLE_CASES)
@pytest.mark.parametrize("cls_name", ["SeparableConv2D", "DepthwiseConv2D"])
def test_separable_and_depthwise(
    cls_name: str, k: int, s: int, d: int, padding: str, n: int, dm: int
) -> None:
    use_bias = (k + n) % 2 == 1
    if cls_name == "SeparableConv2D":
        layer = keras.layers.SeparableConv2D(
            5, k, strides=s, padding=padding, dilation_rate=d, depth_multiplier=dm, use_bias=use_bias
        )
    else:
        layer = keras.layers.DepthwiseConv2D(
            k, strides=s, padding=padding, dilation_rate=d, depth_multiplier=dm, use_bias=use_bias
        )
    input_shape = (1, n, n + 1, 3)
    expected = (
        arith.conv_output_length(n, k, s, padding, d),
        arith.conv_output_length(n + 1, k, s, padding, d),
    )
    params = arith.param_count(cls_name, layer.get_config(), input_shape)
    real = SEPARABLE_CASES.index((k, s, d, padding, n, dm)) % 3 == 0
    _check_against_keras(layer, input_shape, expected, params, real_call=real)


def test_depthwise_conv1d_and_separable_conv1d() -> None:
    for layer in (
        keras.layers.DepthwiseConv1D(3, strides=2, depth_multiplier=3),
        keras.layers.SeparableConv1D(4, 5, padding="same", use_bias=False),
    ):
        input_shape = (1, 17, 2)
        out = layer(np.zeros(input_shape, dtype="float32"))
        g = arith.layer_geometry(type(layer).__name__, layer.get_config())
        assert g is not None
        assert arith.output_spatial_shape(g, (17,)) == tuple(out.shape[1:-1])
        assert (
            arith.param_count(type(layer).__name__, layer.get_config(), input_shape) == layer.count_params()
        )


# ---------------------------------------------------------------- transposed convolutions


def _transpose_cases() -> list[tuple]:
    cases = []
    for k, s, padding, n, op in itertools.product(
        range(1, 6), (1, 2, 3), ("valid", "same"), (4, 7), (None, 0, 1, 2)
    ):
        if op is not None and op >= s:  # Keras requires output_padding < stride
            continue
        cases.append((k, s, 1, padding, n, op))
    cases += [(k, 1, 2, padding, 6, None) for k in (2, 3) for padding in ("valid", "same")]
    return cases


TRANSPOSE_CASES = _transpose_cases()


@pytest.mark.parametrize("k,s,d,padding,n,op", TRANSPOSE_CASES)
def test_conv2d_transpose(k: int, s: int, d: int, padding: str, n: int, op: int | None) -> None:
    layer = keras.layers.Conv2DTranspose(
        3, k, strides=s, padding=padding, output_padding=op, dilation_rate=d, use_bias=k % 2 == 1
    )
    input_shape = (1, n, n, 2)
    length = arith.conv_transpose_output_length(n, k, s, padding, op, d)
    assert length is not None
    params = arith.param_count("Conv2DTranspose", layer.get_config(), input_shape)
    # TF cannot run a 'same' transposed conv whose output would not map back to the input length
    # (e.g. k=2, s=2, output_padding=0); Keras still reports that shape, so only compare the shape.
    # TF 2.21 on the CPU refuses dilated transposed convs ("dilation rates larger than 1"): shape only there.
    runnable = (padding == "valid" or -(-length // s) == n) and d == 1
    real = runnable and TRANSPOSE_CASES.index((k, s, d, padding, n, op)) % 3 == 0
    _check_against_keras(layer, input_shape, (length, length), params, real_call=real)


@pytest.mark.parametrize("cls", [keras.layers.Conv1DTranspose, keras.layers.Conv3DTranspose])
def test_conv1d_and_3d_transpose(cls: type) -> None:
    rank = 1 if cls is keras.layers.Conv1DTranspose else 3
    layer = cls(2, 3, strides=2, padding="same", output_padding=1)
    input_shape = (1, *(5,) * rank, 3)
    out = layer(np.zeros(input_shape, dtype="float32"))
    assert tuple(out.shape[1:-1]) == (arith.conv_transpose_output_length(5, 3, 2, "same", 1),) * rank
    assert arith.param_count(cls.__name__, layer.get_config(), input_shape) == layer.count_params()


# ---------------------------------------------------------------- pooling


POOL_CASES = [
    (cls, p, s, padding, n)
    for cls, p, s, padding, n in itertools.product(
        ("MaxPooling2D", "AveragePooling2D"), range(1, 6), (None, 1, 2, 3), ("valid", "same"), SIZES
    )
    if not (padding == "valid" and n < p)
]


@pytest.mark.parametrize("cls_name,p,s,padding,n", POOL_CASES)
def test_pooling(cls_name: str, p: int, s: int | None, padding: str, n: int) -> None:
    layer = getattr(keras.layers, cls_name)(p, strides=s, padding=padding)
    input_shape = (1, n, n + 2, 2)
    expected = (arith.pool_output_length(n, p, s, padding), arith.pool_output_length(n + 2, p, s, padding))
    g = arith.layer_geometry(cls_name, layer.get_config())
    assert g is not None and arith.output_spatial_shape(g, (n, n + 2)) == expected
    real = POOL_CASES.index((cls_name, p, s, padding, n)) % 3 == 0
    _check_against_keras(
        layer,
        input_shape,
        expected,
        arith.param_count(cls_name, layer.get_config(), input_shape),
        real_call=real,
    )


@pytest.mark.parametrize("cls_name", ["MaxPooling1D", "AveragePooling1D", "MaxPooling3D", "AveragePooling3D"])
def test_pooling_1d_3d(cls_name: str) -> None:
    rank = int(cls_name[-2])
    layer = getattr(keras.layers, cls_name)(3, strides=2, padding="same")
    input_shape = (1, *(7,) * rank, 2)
    out = layer(np.zeros(input_shape, dtype="float32"))
    g = arith.layer_geometry(cls_name, layer.get_config())
    assert g is not None and arith.output_spatial_shape(g, (7,) * rank) == tuple(out.shape[1:-1])


# ---------------------------------------------------------------- padding, cropping, upsampling


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.ZeroPadding1D((1, 2)),
        lambda: keras.layers.ZeroPadding2D(((1, 2), (0, 3))),
        lambda: keras.layers.ZeroPadding3D(1),
        lambda: keras.layers.Cropping1D((2, 1)),
        lambda: keras.layers.Cropping2D(((1, 0), (2, 2))),
        lambda: keras.layers.Cropping3D(1),
        lambda: keras.layers.UpSampling1D(3),
        lambda: keras.layers.UpSampling2D((2, 3)),
        lambda: keras.layers.UpSampling3D(2),
    ],
)
def test_pad_crop_upsample_shapes(make: Callable[[], keras.layers.Layer]) -> None:
    layer = make()
    name = type(layer).__name__
    rank = int(name[-2])
    input_shape = (1, *(8,) * rank, 2)
    g = arith.layer_geometry(name, layer.get_config())
    assert g is not None
    out = layer(np.zeros(input_shape, dtype="float32"))
    assert arith.output_spatial_shape(g, (8,) * rank) == tuple(out.shape[1:-1])
    assert arith.param_count(name, layer.get_config(), input_shape) == 0


# ---------------------------------------------------------------- other parameter counts


@pytest.mark.parametrize(
    "make,input_shape",
    [
        (lambda: keras.layers.Dense(7), (1, 5)),
        (lambda: keras.layers.Dense(7, use_bias=False), (1, 4, 4, 5)),
        (lambda: keras.layers.BatchNormalization(), (1, 6, 6, 8)),
        (lambda: keras.layers.BatchNormalization(center=False), (1, 6, 6, 8)),
        (lambda: keras.layers.BatchNormalization(axis=1, scale=False), (1, 3, 6, 6)),
        (lambda: keras.layers.LayerNormalization(), (1, 6, 8)),
        (lambda: keras.layers.LayerNormalization(axis=[1, 2], center=False), (1, 6, 8)),
        (lambda: keras.layers.RMSNormalization(), (1, 6, 8)),
        (lambda: keras.layers.GroupNormalization(groups=4), (1, 6, 6, 8)),
        (lambda: keras.layers.Embedding(50, 6), (1, 9)),
        (lambda: keras.layers.PReLU(shared_axes=[1, 2]), (1, 5, 5, 3)),
        (lambda: keras.layers.PReLU(), (1, 5, 5, 3)),
        (lambda: keras.layers.Conv2D(6, 3, groups=3, use_bias=False), (1, 8, 8, 9)),
        (lambda: keras.layers.Conv1D(8, 4, groups=4), (1, 8, 8)),
        (lambda: keras.layers.Conv3D(4, (1, 2, 3), groups=2), (1, 5, 5, 5, 6)),
    ],
)
def test_param_count_matches_keras(make: Callable[[], keras.layers.Layer], input_shape: tuple) -> None:
    layer = make()
    layer.build(input_shape)
    assert arith.param_count(type(layer).__name__, layer.get_config(), input_shape) == layer.count_params()


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.ReLU(),
        lambda: keras.layers.Activation("relu"),
        lambda: keras.layers.Dropout(0.3),
        lambda: keras.layers.Flatten(),
        lambda: keras.layers.Reshape((-1,)),
        lambda: keras.layers.GlobalAveragePooling2D(),
        lambda: keras.layers.GlobalMaxPooling2D(),
        lambda: keras.layers.MaxPooling2D(),
        lambda: keras.layers.AveragePooling2D(2),
        lambda: keras.layers.SpatialDropout2D(0.1),
    ],
)
def test_simple_layers_have_no_params(make: Callable[[], keras.layers.Layer]) -> None:
    layer = make()
    layer.build((1, 8, 8, 3))
    assert layer.count_params() == 0
    assert arith.param_count(type(layer).__name__, layer.get_config(), (1, 8, 8, 3)) == 0


def test_merge_layers_have_no_params() -> None:
    for cls in (keras.layers.Add, keras.layers.Concatenate, keras.layers.Multiply, keras.layers.Average):
        layer = cls()
        layer([np.zeros((1, 4, 4, 2), "float32")] * 2)
        assert layer.count_params() == 0 == arith.param_count(cls.__name__, layer.get_config(), (1, 4, 4, 2))


def test_unknown_layer_and_unknown_sizes() -> None:
    assert arith.param_count("MyFancyLayer", {}, (1, 4)) is None
    assert arith.param_count("Conv2D", {"kernel_size": (3, 3), "filters": 2}, (1, 8, 8, None)) is None
    assert arith.conv_output_length(None, 3, 2, "same") is None
    assert arith.conv_transpose_output_length(None, 3, 2) is None


# ---------------------------------------------------------------- direct checks of the rules


def test_same_padding_follows_tensorflow_rule() -> None:
    # TF: total = max((ceil(n/s)-1)*s + k - n, 0), left = total // 2
    assert arith.same_padding(7, 3, 2) == (1, 1)
    assert arith.same_padding(8, 3, 2) == (0, 1)
    assert arith.same_padding(10, 4, 1) == (1, 2)
    assert arith.same_padding(5, 3, 1, dilation=2) == (2, 2)
    assert arith.left_padding(9, 3, 1, "causal", 2) == 4
    assert arith.left_padding(9, 5, 1, "valid") == 0


def test_bad_arguments_raise_convscope_errors() -> None:
    with pytest.raises(InputError, match="shorter"):
        arith.conv_output_length(2, 5)
    with pytest.raises(ConvscopeError, match="padding"):
        arith.conv_output_length(8, 3, padding="full")
    with pytest.raises(ConvscopeError, match="padding"):
        arith.pool_output_length(8, 2, padding="causal")
    with pytest.raises(ConvscopeError, match="padding"):
        arith.conv_transpose_output_length(8, 3, padding="causal")


def test_rf_recurrence_single_layers() -> None:
    rf = arith.ReceptiveField.identity(2)
    conv = {"kernel_size": (3, 3), "strides": (2, 2), "padding": "valid", "dilation_rate": (1, 1)}
    out = arith.propagate_field("Conv2D", conv, [rf], (None, 9, 9, 1))
    assert out == arith.ReceptiveField((3, 3), (2, 2), (1, 1))
    dilated = {"kernel_size": 3, "strides": 1, "padding": "same", "dilation_rate": 2}
    out2 = arith.propagate_field("Conv2D", dilated, [out], (None, 4, 4, 1))
    # r = 3 + (5-1)*2 = 11, start = 1 + (2 - 2)*2 = 1
    assert out2 is not None and out2.size == (11, 11) and out2.jump == (2, 2) and out2.start == (1, 1)
    assert arith.propagate_field("Flatten", {}, [out2]) is None
    assert arith.propagate_field("ReLU", {}, [out2]) == out2
    assert arith.propagate_field("Conv2D", conv, [None]) is None


def test_rf_merge_takes_hull_and_flags_gates() -> None:
    a = arith.ReceptiveField((3, 3), (1, 1), (1, 1))
    b = arith.ReceptiveField((7, 7), (1, 1), (1, 1))
    assert arith.propagate_field("Add", {}, [a, b]) == b
    gated = arith.propagate_field("Multiply", {}, [b, None])
    assert gated is not None and gated.size == (7, 7) and not gated.exact
    shifted = arith.ReceptiveField((3, 3), (1, 1), (4, 4))
    hull = arith.merge_fields([a, shifted])
    assert hull.size == (6, 6) and hull.start == (2.5, 2.5)


def test_unknown_layer_rf_is_flagged() -> None:
    rf = arith.ReceptiveField.identity(2)
    same = arith.propagate_field("Weird", {}, [rf], (None, 8, 8, 3), (None, 8, 8, 3))
    assert same is not None and not same.exact
    assert arith.propagate_field("Weird", {}, [rf], (None, 8, 8, 3), (None, 4, 4, 3)) is None
    assert not arith.is_known_layer("Weird") and arith.is_known_layer("Conv2D")
    assert math.isclose(arith.effective_kernel(3, 3), 7)


def test_arith_does_not_import_keras() -> None:
    code = "import sys, convscope.models.arith; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
