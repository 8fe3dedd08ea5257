"""InputSpec: shape properties for both layouts and ranks, validation, and the helpers."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.data import InputSpec, format_shape
from convscope.errors import InputError, OptionError


@pytest.mark.parametrize(
    ("shape", "fmt", "rank", "hwc"),
    [
        ((28, 28, 1), "channels_last", 2, (28, 28, 1)),
        ((3, 224, 160), "channels_first", 2, (224, 160, 3)),
        ((None, None, 3), "channels_last", 2, (None, None, 3)),
        ((100, 2), "channels_last", 1, (None, None, 2)),
        ((2, 100), "channels_first", 1, (None, None, 2)),
        ((8, 16, 12, 1), "channels_last", 3, (16, 12, 1)),
        ((1, 8, 16, 12), "channels_first", 3, (16, 12, 1)),
    ],
)
def test_properties(
    shape: tuple[int | None, ...], fmt: str, rank: int, hwc: tuple[int | None, int | None, int | None]
) -> None:
    spec = InputSpec(shape, fmt)  # type: ignore[arg-type]
    assert spec.rank == rank
    assert (spec.height, spec.width, spec.channels) == hwc
    assert spec.is_image == (rank == 2)


def test_spatial_and_sample_shape() -> None:
    cf = InputSpec((3, 32, 48), "channels_first")
    assert cf.spatial == (32, 48)
    assert cf.sample_shape(10, 20, 3) == (3, 10, 20)
    assert InputSpec((32, 48, 3)).sample_shape(10, 20, 3) == (10, 20, 3)


def test_shape_list_becomes_tuple_and_spec_is_frozen() -> None:
    spec = InputSpec([28, 28, 1])  # type: ignore[arg-type]
    assert spec.shape == (28, 28, 1)
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]


def test_from_batch_shape_and_with_size() -> None:
    spec = InputSpec.from_batch_shape((None, None, None, 3), name="img")
    assert spec.shape == (None, None, 3) and spec.name == "img"
    sized = spec.with_size(224, 160)
    assert sized.shape == (224, 160, 3) and spec.shape == (None, None, 3)
    assert InputSpec((3, None, None), "channels_first").with_size(10, 20).shape == (3, 10, 20)
    assert InputSpec((28, 28, 1)).with_size(None, 32).shape == (28, 32, 1)


def test_with_size_refuses_non_images() -> None:
    with pytest.raises(InputError, match=r"\(100, 2\); a height and width only apply to image inputs"):
        InputSpec((100, 2)).with_size(1, 1)


def test_bad_data_format() -> None:
    pattern = r"data_format 'NHWC' is not valid; expected one of channels_last, channels_first"
    with pytest.raises(OptionError, match=pattern):
        InputSpec((28, 28, 1), "NHWC")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape", [(28,), (1, 2, 3, 4, 5), (28, 0, 1), (28, -1, 1), (28, 2.5, 1), (28, True, 1)]
)
def test_bad_shapes(shape: tuple[object, ...]) -> None:
    with pytest.raises(InputError, match="model input 'input' has shape"):
        InputSpec(shape)  # type: ignore[arg-type]


def test_numpy_integer_sizes_become_ints() -> None:
    spec = InputSpec((np.int64(28), np.int32(28), 1))  # type: ignore[arg-type]
    assert spec.shape == (28, 28, 1) and all(type(d) is int for d in spec.shape)


def test_format_shape() -> None:
    assert format_shape((28, 28, 1), "N") == "(N, 28, 28, 1)"
    assert format_shape((None, None, 3)) == "(None, None, 3)"
    assert format_shape((5,)) == "(5,)"
