"""Normalization modes against hand-computed values and numpy references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from convscope.errors import OptionError, RenderError
from convscope.render import NORM_MODES, default_cmap, normalize

TOL = dict(rtol=0, atol=1e-6)
# two channels of 2x2: channel 0 spans 0..4, channel 1 spans -2..2
MAPS = np.array([[[0.0, 1.0], [2.0, 4.0]], [[-2.0, 0.0], [1.0, 2.0]]], np.float32)


def test_channel_mode_scales_each_channel() -> None:
    out = normalize(MAPS, "channel")
    np.testing.assert_allclose(out.values[0], [[0, 0.25], [0.5, 1]], **TOL)
    np.testing.assert_allclose(out.values[1], [[0, 0.5], [0.75, 1]], **TOL)
    np.testing.assert_allclose(out.lo, [0, -2])
    np.testing.assert_allclose(out.hi, [4, 2])
    assert out.mode == "channel" and out.values.dtype == np.float32


def test_layer_mode_uses_one_range() -> None:
    out = normalize(MAPS, "layer")  # -2..4
    np.testing.assert_allclose(out.values[0], np.array([[2, 3], [4, 6]]) / 6, **TOL)
    np.testing.assert_allclose(out.values[1], np.array([[0, 2], [3, 4]]) / 6, **TOL)
    np.testing.assert_allclose(out.lo, [-2, -2])
    np.testing.assert_allclose(out.hi, [4, 4])


def test_symmetric_mode_maps_zero_to_half() -> None:
    out = normalize(MAPS, "symmetric")  # max |v| = 4
    np.testing.assert_allclose(out.values[0], 0.5 + 0.5 * np.array([[0, 1], [2, 4]]) / 4, **TOL)
    np.testing.assert_allclose(out.values[1], 0.5 + 0.5 * np.array([[-2, 0], [1, 2]]) / 4, **TOL)
    assert out.values[1, 0, 1] == 0.5
    np.testing.assert_allclose(out.lo, [-4, -4])
    assert default_cmap("symmetric") == "diverging"
    assert default_cmap("channel") == default_cmap("layer") == "gray"


def test_percentile_mode_matches_numpy_percentile() -> None:
    rng = np.random.default_rng(1)
    maps = rng.standard_cauchy((3, 20, 20)).astype(np.float32)
    out = normalize(maps, "percentile", percentile=(2, 97))
    lo, hi = np.percentile(maps, [2, 97])
    np.testing.assert_allclose(out.lo, lo, rtol=1e-6)
    np.testing.assert_allclose(out.hi, hi, rtol=1e-6)
    expected = np.clip((maps.astype(np.float64) - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(out.values, expected, atol=1e-5)
    assert out.values.min() == 0 and out.values.max() == 1


def test_percentile_ignores_nonfinite_values() -> None:
    maps = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    maps[0, 0, 0] = np.nan
    maps[0, 0, 1] = np.inf
    out = normalize(maps, "percentile", percentile=(10, 90))
    finite = maps[np.isfinite(maps)]
    np.testing.assert_allclose([out.lo[0], out.hi[0]], np.percentile(finite, [10, 90]), rtol=1e-6)
    assert np.isnan(out.values[0, 0, 0]) and out.values[0, 0, 1] == np.inf


def test_raw_mode_fixed_range_clips() -> None:
    out = normalize(MAPS, "raw", vrange=(0, 2))
    np.testing.assert_allclose(out.values[0], [[0, 0.5], [1, 1]], **TOL)
    np.testing.assert_allclose(out.values[1], [[0, 0], [0.5, 1]], **TOL)
    default = normalize(MAPS, "raw")
    np.testing.assert_allclose(default.values, normalize(MAPS, "layer").values, **TOL)


def test_constant_channels_no_division_warning() -> None:
    maps = np.stack([np.full((3, 3), 5.0), np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            results = {mode: normalize(maps, mode) for mode in NORM_MODES}
    ch = results["channel"]
    np.testing.assert_array_equal(ch.values[0], 0.0)
    np.testing.assert_array_equal(ch.values[1], 0.0)
    np.testing.assert_array_equal(ch.constant, [True, True, False])
    for mode, out in results.items():
        assert np.isfinite(out.values).all(), mode


def test_all_constant_layer_maps_to_zero_or_half() -> None:
    zeros = np.zeros((2, 4, 4), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(normalize(zeros, "layer").values, 0.0)
        np.testing.assert_array_equal(normalize(zeros, "symmetric").values, 0.5)
        np.testing.assert_array_equal(normalize(zeros + 3, "percentile").values, 0.0)


def test_nan_and_inf_pass_through_and_do_not_set_range() -> None:
    maps = MAPS.copy()
    maps[0, 0, 0] = np.nan
    maps[0, 0, 1] = np.inf
    maps[1, 0, 0] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in NORM_MODES:
            out = normalize(maps, mode)
            assert np.isnan(out.values[0, 0, 0]), mode
            assert out.values[0, 0, 1] == np.inf, mode
            assert out.values[1, 0, 0] == -np.inf, mode
            finite = out.values[np.isfinite(out.values)]
            assert finite.min() >= 0 and finite.max() <= 1, mode
    out = normalize(maps, "channel")
    np.testing.assert_allclose(out.lo, [2, 0])
    np.testing.assert_allclose(out.hi, [4, 2])


def test_channel_without_finite_values() -> None:
    maps = np.full((2, 2, 2), np.nan, np.float32)
    maps[1] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalize(maps, "channel")
    assert np.isnan(out.values[0]).all() and np.isnan(out.lo[0])
    np.testing.assert_array_equal(out.values[1], 0.0)
    assert out.constant.tolist() == [True, True]


def test_input_untouched_and_ints_accepted() -> None:
    maps = MAPS.copy()
    normalize(maps, "symmetric")
    np.testing.assert_array_equal(maps, MAPS)
    out = normalize(np.arange(4).reshape(1, 2, 2), "channel")
    np.testing.assert_allclose(out.values, np.arange(4).reshape(1, 2, 2) / 3, **TOL)


def test_unknown_mode_lists_modes() -> None:
    with pytest.raises(OptionError) as info:
        normalize(MAPS, "minmax")
    assert "'minmax'" in str(info.value)
    for mode in NORM_MODES:
        assert mode in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(mode="raw", vrange=(2, 1)), "(2, 1)"),
        (dict(mode="raw", vrange=(0, np.inf)), "inf"),
        (dict(mode="raw", vrange="ab"), "'ab'"),
        (dict(mode="layer", vrange=(0, 1)), "norm='raw'"),
        (dict(mode="percentile", percentile=(99, 1)), "(99, 1)"),
        (dict(mode="percentile", percentile=(0, 101)), "101"),
    ],
)
def test_bad_ranges_are_option_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(OptionError) as info:
        normalize(MAPS, **kwargs)
    assert needle in str(info.value)


def test_empty_or_complex_input() -> None:
    with pytest.raises(RenderError):
        normalize(np.zeros((0, 3)), "channel")
    with pytest.raises(RenderError):
        normalize(np.ones((2, 2), complex), "channel")
