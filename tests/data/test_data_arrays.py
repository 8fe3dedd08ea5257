"""Arrays as model input: .npy/.npz files and numpy arrays, shape rules, dtypes, NaN, display."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from convscope.data import InputSpec, array_display, coerce_array, load_inputs, read_array_file
from convscope.errors import InputError

GRAY28 = InputSpec((28, 28, 1))


def _npy(path: Path, arr: np.ndarray) -> Path:
    np.save(path, arr)
    return path


def test_npy_single_sample_gets_a_batch_axis(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    got = load_inputs([_npy(tmp_path / "one.npy", arr)], GRAY28)
    assert got.x.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(got.x[0], arr)
    assert got.names == ("one.npy",)
    assert got.sources == (str(tmp_path / "one.npy"),)


def test_npy_batch(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).random((5, 28, 28, 1))  # float64 -> float32
    got = load_inputs([_npy(tmp_path / "img.npy", arr)], GRAY28)
    assert got.x.dtype == np.float32 and got.x.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(got.x, arr, rtol=1e-6)
    assert got.names == tuple(f"img.npy[{i}]" for i in range(5))
    assert got.sources[3] == f"{tmp_path / 'img.npy'}[3]"
    assert got.preprocess == "arrays taken as-is (already preprocessed)"


@pytest.mark.parametrize(("shape", "n"), [((28, 28), 1), ((4, 28, 28), 4), ((1, 28, 28), 1)])
def test_missing_channel_axis_of_size_one(shape: tuple[int, ...], n: int) -> None:
    arr = np.random.default_rng(2).random(shape)
    x = coerce_array(arr, GRAY28)
    assert x.shape == (n, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], arr.reshape(n, 28, 28), rtol=1e-6)


def test_missing_channel_axis_channels_first() -> None:
    spec = InputSpec((1, 28, 28), "channels_first")
    assert coerce_array(np.zeros((28, 28)), spec).shape == (1, 1, 28, 28)
    assert coerce_array(np.zeros((3, 28, 28)), spec).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("shape", [(5, 30, 30, 1), (30, 30), (2, 5, 28, 28, 1), (784,)])
def test_wrong_shape_names_both_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError) as err:
        coerce_array(np.zeros(shape), GRAY28, label="bad.npy")
    msg = str(err.value)
    assert f"bad.npy has shape {shape}" in msg
    assert "(N, 28, 28, 1) or (28, 28, 1)" in msg


def test_wrong_channel_count_names_both(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_inputs([_npy(tmp_path / "rgb.npy", np.zeros((2, 28, 28, 3), np.float32))], GRAY28)
    msg = str(err.value)
    assert "has 3 channel(s) (shape (2, 28, 28, 3))" in msg
    assert "expects 1: (N, 28, 28, 1) or (28, 28, 1)" in msg


def test_channel_axis_in_the_wrong_place_gets_a_hint() -> None:
    pattern = r"shape \(3, 32, 32\), which looks channels_first.*move the channel axis"
    with pytest.raises(InputError, match=pattern):
        coerce_array(np.zeros((3, 32, 32)), InputSpec((32, 32, 3)))


def test_free_sizes_accept_any_size() -> None:
    assert coerce_array(np.zeros((2, 40, 50, 3)), InputSpec((None, None, 3))).shape == (2, 40, 50, 3)
    assert coerce_array(np.zeros((5, 64, 64)), InputSpec((None, None, 1))).shape == (5, 64, 64, 1)


def test_1d_and_3d_specs() -> None:
    assert coerce_array(np.zeros((7, 100, 2)), InputSpec((100, 2))).shape == (7, 100, 2)
    assert coerce_array(np.zeros((8, 16, 16, 1)), InputSpec((8, 16, 16, 1))).shape == (1, 8, 16, 16, 1)


def test_npz_single_array_any_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", whatever=np.ones((3, 28, 28, 1)))
    got = load_inputs([tmp_path / "d.npz"], GRAY28)
    assert got.x.shape == (3, 28, 28, 1)
    assert got.names == ("d.npz[0]", "d.npz[1]", "d.npz[2]")
    assert got.sources[0] == f"{tmp_path / 'd.npz'}:whatever[0]"


@pytest.mark.parametrize("key", ["x", "images", "inputs"])
def test_npz_known_key_among_many(tmp_path: Path, key: str) -> None:
    arrays = {"labels": np.arange(2), key: np.full((2, 28, 28), 0.5)}
    np.savez(tmp_path / "d.npz", **arrays)  # type: ignore[arg-type]
    _, found = read_array_file(tmp_path / "d.npz")
    assert found == key
    assert load_inputs([tmp_path / "d.npz"], GRAY28).x.shape == (2, 28, 28, 1)


def test_npz_key_order_x_first(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", images=np.zeros((1, 28, 28)), x=np.ones((1, 28, 28)))
    assert read_array_file(tmp_path / "d.npz")[1] == "x"


def test_npz_without_usable_key_lists_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", a=np.zeros(3), b=np.zeros(3))
    pattern = r"holds arrays \['a', 'b'\].*single array or one named x, images, inputs"
    with pytest.raises(InputError, match=pattern) as err:
        load_inputs([tmp_path / "d.npz"], GRAY28)
    assert "not a readable" not in str(err.value)


def test_pickled_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy is not a readable \.npy/\.npz array file"):
        load_inputs([tmp_path / "obj.npy"], GRAY28)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"junk\.npz is not a readable"):
        load_inputs([tmp_path / "junk.npz"], GRAY28)


def test_nan_and_inf_are_kept_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    arr = np.zeros((2, 28, 28, 1), np.float32)
    arr[0, 1, 2, 0] = np.nan
    arr[1, 3, 4, 0] = np.nan
    arr[1, 5, 5, 0] = -np.inf
    with caplog.at_level(logging.WARNING, logger="convscope.data"):
        got = load_inputs([arr], GRAY28)
    assert np.isnan(got.x).sum() == 2 and np.isneginf(got.x).sum() == 1
    assert "2 NaN and 1 Inf value(s)" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_uint8_taken_as_is_with_a_note(caplog: pytest.LogCaptureFixture) -> None:
    arr = np.full((28, 28, 1), 200, np.uint8)
    with caplog.at_level(logging.INFO, logger="convscope.data"):
        x = coerce_array(arr, GRAY28, label="raw")
    assert x.dtype == np.float32 and x.max() == 200.0
    assert "raw: uint8 array taken as-is, not scaled" in caplog.text


def test_int_and_bool_are_cast() -> None:
    assert coerce_array(np.ones((28, 28), np.int64), GRAY28).dtype == np.float32
    assert coerce_array(np.ones((28, 28), bool), GRAY28).max() == 1.0


@pytest.mark.parametrize("arr", [np.zeros((28, 28), complex), np.array([["a"] * 28] * 28)])
def test_non_numeric_dtypes_are_refused(arr: np.ndarray) -> None:
    with pytest.raises(InputError, match=f"has dtype {arr.dtype}; expected numbers"):
        coerce_array(arr, GRAY28)


def test_empty_batch_is_refused() -> None:
    with pytest.raises(InputError, match=r"shape \(0, 28, 28, 1\): an empty batch"):
        coerce_array(np.zeros((0, 28, 28, 1)), GRAY28)


def test_result_is_a_copy_of_the_callers_array() -> None:
    arr = np.zeros((2, 28, 28, 1), np.float32)
    got = load_inputs(arr, GRAY28)  # a bare array is one item
    arr[:] = 7
    assert got.x.max() == 0.0 and got.names == ("array[0]", "array[1]")


def test_array_display_min_max_scales_image_like_samples() -> None:
    sample = np.linspace(-2.0, 2.0, 28 * 28).reshape(28, 28, 1)
    sample[0, 0, 0] = np.nan
    disp = array_display(sample, GRAY28)
    assert disp is not None and disp.shape == (28, 28, 3) and disp.dtype == np.uint8
    lo, hi = np.nanmin(sample), np.nanmax(sample)
    expected = np.round((sample[..., 0] - lo) / (hi - lo) * 255.0)
    np.testing.assert_array_equal(disp[1:, :, 0], expected[1:])
    assert disp[0, 0, 0] == 0 and disp[0, 1, 0] == 0 and disp[-1, -1, 0] == 255
    planes = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.full((4, 4), 2.0)])
    cf = array_display(planes, InputSpec((3, 4, 4), "channels_first"))
    assert cf is not None and cf.shape == (4, 4, 3) and list(cf[0, 0]) == [0, 128, 255]


def test_array_display_none_when_not_image_like() -> None:
    assert array_display(np.zeros((100, 2)), InputSpec((100, 2))) is None
    assert array_display(np.zeros((8, 8, 5)), InputSpec((8, 8, 5))) is None
    assert array_display(np.zeros((4, 8, 8, 1)), InputSpec((4, 8, 8, 1))) is None
    constant = array_display(np.full((8, 8, 1), 3.0), InputSpec((8, 8, 1)))
    assert constant is not None and constant.max() == 0
