"""Receptive fields from inspect_model against an empirical reference.

The reference is independent of the arithmetic: the models have all-ones kernels, no bias and linear
activations, so an output value is positive exactly when a positive input pixel lies in its receptive
field. Feeding one image per input pixel (a batch of one-hot images) shows which pixels reach a given
output position; their bounding box must be the predicted field (clipped to the image at the border).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import pytest

from convscope.models.arith import ReceptiveField
from convscope.models.inspect import inspect_model

ONES = {"kernel_initializer": "ones", "use_bias": False}


def _one_hot_batch(spatial: Sequence[int]) -> np.ndarray:
    count = int(np.prod(spatial))
    batch = np.zeros((count, *spatial, 1), dtype="float32")
    batch.reshape(count, count)[np.arange(count), np.arange(count)] = 1.0
    return batch


def empirical_bounds(
    model: keras.Model, spatial: Sequence[int], position: Sequence[int]
) -> list[tuple[int, int]]:
    """``(first, last)`` input index per axis of the pixels that reach output ``position`` (channel 0)."""
    batch = _one_hot_batch(spatial)
    out = keras.ops.convert_to_numpy(model(batch, training=False))
    pixels = np.flatnonzero(out[(slice(None), *position, 0)] > 1e-6)
    coords = np.stack(np.unravel_index(pixels, tuple(spatial)), axis=1)
    return [(int(coords[:, a].min()), int(coords[:, a].max())) for a in range(len(spatial))]


def predicted_bounds(
    rf: ReceptiveField, spatial: Sequence[int], position: Sequence[int]
) -> list[tuple[int, int]]:
    bounds = rf.bounds(position)
    return [(max(0, int(np.ceil(lo))), min(n - 1, int(np.floor(hi)))) for (lo, hi), n in zip(bounds, spatial)]


def last_field(model: keras.Model) -> tuple[ReceptiveField, tuple[int, ...]]:
    info = inspect_model(model)
    row = info.layers[-1]
    assert row.rf_size is not None and row.output_shape is not None and row.rf_exact, row
    out_spatial = tuple(d for d in row.output_shape[1:-1] if d is not None)
    return ReceptiveField(row.rf_size, row.rf_jump, row.rf_start), out_spatial  # type: ignore[arg-type]


def check_model(model: keras.Model, spatial: Sequence[int]) -> ReceptiveField:
    rf, out_spatial = last_field(model)
    corner = (0,) * len(spatial)
    assert empirical_bounds(model, spatial, corner) == predicted_bounds(rf, spatial, corner)
    centre = tuple(n // 2 for n in out_spatial)
    got = empirical_bounds(model, spatial, centre)
    assert got == predicted_bounds(rf, spatial, centre)
    unclipped = rf.bounds(centre)
    if all(lo >= 0 and hi <= n - 1 for (lo, hi), n in zip(unclipped, spatial)):  # field fully inside
        for axis, (lo, hi) in enumerate(got):
            assert hi - lo + 1 == rf.size[axis]
            assert (lo + hi) / 2 == rf.start[axis] + centre[axis] * rf.jump[axis]
    return rf


def seq(shape: tuple[int, ...], *layers: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input(shape), *layers])


CASES: dict[str, tuple[Callable[[], keras.Model], tuple[int, ...]]] = {
    "conv3-valid": (lambda: seq((11, 11, 1), keras.layers.Conv2D(1, 3, **ONES)), (11, 11)),
    "conv4-same-stride2-even": (
        lambda: seq((12, 12, 1), keras.layers.Conv2D(1, 4, 2, "same", **ONES)),
        (12, 12),
    ),
    "conv4-same-stride2-odd": (
        lambda: seq((13, 13, 1), keras.layers.Conv2D(1, 4, 2, "same", **ONES)),
        (13, 13),
    ),
    "conv3-same-stride3": (lambda: seq((14, 14, 1), keras.layers.Conv2D(1, 3, 3, "same", **ONES)), (14, 14)),
    "conv3-dilated2": (
        lambda: seq((13, 13, 1), keras.layers.Conv2D(1, 3, dilation_rate=2, **ONES)),
        (13, 13),
    ),
    "conv3-dilated2-same": (
        lambda: seq((13, 13, 1), keras.layers.Conv2D(1, 3, padding="same", dilation_rate=2, **ONES)),
        (13, 13),
    ),
    "asymmetric": (
        lambda: seq((15, 12, 1), keras.layers.Conv2D(1, (3, 5), (2, 1), "same", **ONES)),
        (15, 12),
    ),
    "maxpool2": (lambda: seq((10, 10, 1), keras.layers.MaxPooling2D(2)), (10, 10)),
    "avgpool3-same-stride2": (
        lambda: seq((11, 11, 1), keras.layers.AveragePooling2D(3, 2, "same")),
        (11, 11),
    ),
    "chain-3": (
        lambda: seq(
            (23, 23, 1),
            keras.layers.Conv2D(1, 3, 2, "same", **ONES),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(1, 3, dilation_rate=2, **ONES),
        ),
        (23, 23),
    ),
    "chain-pad-crop-relu": (
        lambda: seq(
            (16, 16, 1),
            keras.layers.ZeroPadding2D(((2, 0), (1, 1))),
            keras.layers.Conv2D(1, 5, 2, **ONES),
            keras.layers.ReLU(),
            keras.layers.Cropping2D(1),
            keras.layers.Conv2D(1, 2, **ONES),
        ),
        (16, 16),
    ),
    "separable-depthwise": (
        lambda: seq(
            (14, 14, 1),
            keras.layers.DepthwiseConv2D(3, 2, "same", depthwise_initializer="ones", use_bias=False),
            keras.layers.SeparableConv2D(
                1, 3, depthwise_initializer="ones", pointwise_initializer="ones", use_bias=False
            ),
        ),
        (14, 14),
    ),
    "transpose-stride1": (
        lambda: seq(
            (9, 9, 1), keras.layers.Conv2DTranspose(1, 3, **ONES), keras.layers.Conv2D(1, 3, 2, **ONES)
        ),
        (9, 9),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_field_matches_influence(name: str) -> None:
    make, spatial = CASES[name]
    check_model(make(), spatial)


def test_three_layer_chain_values() -> None:
    rf = check_model(CASES["chain-3"][0](), (23, 23))
    # conv s2 same: r3 j2; pool2: r = 3 + 1*2 = 5, j4; conv k3 d2 (k_eff 5): r = 5 + 4*4 = 21, j 4
    assert rf.size == (21, 21) and rf.jump == (4, 4)


def test_conv1d_causal_and_dilated() -> None:
    model = seq(
        (20, 1),
        keras.layers.Conv1D(1, 3, padding="causal", dilation_rate=2, **ONES),
        keras.layers.Conv1D(1, 2, strides=2, **ONES),
    )
    rf = check_model(model, (20,))
    assert rf.size == (6,)


def _residual(shape: tuple[int, int, int]) -> keras.Model:
    inp = keras.Input(shape)
    a = keras.layers.Conv2D(1, 3, padding="same", **ONES)(inp)
    a = keras.layers.Conv2D(1, 3, padding="same", **ONES)(a)
    shortcut = keras.layers.Conv2D(1, 1, **ONES)(inp)
    x = keras.layers.Add()([a, shortcut])
    x = keras.layers.Conv2D(1, 3, strides=2, **ONES)(x)
    branch = keras.layers.MaxPooling2D(3, 1, "same")(x)
    x = keras.layers.Concatenate()([x, branch])
    x = keras.layers.Conv2D(1, 1, **ONES)(x)
    return keras.Model(inp, x)


def test_residual_branch() -> None:
    rf = check_model(_residual((15, 15, 1)), (15, 15))
    # residual block: 5; stride-2 conv: 7, j 2; max-pool branch adds 2*2 -> 11
    assert rf.size == (11, 11) and rf.jump == (2, 2)


class _SubclassedResidual(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = keras.layers.Conv2D(1, 3, padding="same", **ONES)
        self.c2 = keras.layers.Conv2D(1, 3, padding="same", **ONES)
        self.short = keras.layers.Conv2D(1, 1, **ONES)
        self.add = keras.layers.Add()
        self.down = keras.layers.Conv2D(1, 3, strides=2, **ONES)

    def call(self, x: object) -> object:
        return self.down(self.add([self.c2(self.c1(x)), self.short(x)]))


def test_subclassed_fields_traced_from_tensors() -> None:
    model = _SubclassedResidual()
    info = inspect_model(model, input_shape=(15, 15, 1))
    row = info.layers[-1]  # self.down, the last layer assigned
    assert row.class_name == "Conv2D" and row.strides == (2, 2) and row.rf_exact
    rf = ReceptiveField(row.rf_size, row.rf_jump, row.rf_start)  # type: ignore[arg-type]
    got = empirical_bounds(model, (15, 15), (3, 3))
    assert got == predicted_bounds(rf, (15, 15), (3, 3))
    assert row.rf_size == (7, 7)


def test_nested_model_gets_outer_field() -> None:
    inner = seq((7, 7, 1), keras.layers.Conv2D(1, 3, **ONES))
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(1, 3, 2, **ONES)(inp)
    x = inner(x)
    model = keras.Model(inp, keras.layers.Conv2D(1, 2, **ONES)(x))
    rf = check_model(model, (16, 16))
    info = inspect_model(model)
    inner_row = next(r for r in info.layers if r.depth == 1)
    assert inner_row.rf_size == (7, 7) and inner_row.rf_jump == (2, 2)
    assert rf.size == (9, 9)


def test_transposed_conv_with_stride_is_flagged_but_contains_influence() -> None:
    model = seq((6, 6, 1), keras.layers.Conv2DTranspose(1, 3, 2, "same", **ONES))
    row = inspect_model(model).layers[-1]
    assert not row.rf_exact and row.rf_jump == (0.5, 0.5)
    rf = ReceptiveField(row.rf_size, row.rf_jump, row.rf_start)  # type: ignore[arg-type]
    for position in [(0, 0), (5, 5), (6, 7)]:
        got = empirical_bounds(model, (6, 6), position)
        lo_hi = predicted_bounds(rf, (6, 6), position)
        for (glo, ghi), (plo, phi) in zip(got, lo_hi):
            assert plo - 1 <= glo and ghi <= phi + 1  # the estimate is within half a pixel step
