"""Colormap lookup tables and special colors, checked against matplotlib and exact values."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import OptionError
from convscope.render import (
    ALIASES,
    COLORMAPS,
    NAN_COLOR,
    NEGINF_COLOR,
    POSINF_COLOR,
    apply_colormap,
    get_lut,
    resolve_cmap,
)
from convscope.render.colormap import colorize, to_indices

MPL_NAMES = {"viridis": "viridis", "magma": "magma", "diverging": "RdBu_r", "gray": "gray"}


@pytest.mark.parametrize("name", COLORMAPS)
def test_lut_matches_matplotlib_within_2_of_255(name: str) -> None:
    mpl = pytest.importorskip("matplotlib")
    ref = mpl.colormaps[MPL_NAMES[name]].resampled(256)(np.arange(256))[:, :3] * 255.0
    lut = get_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert np.abs(lut.astype(np.float64) - ref).max() <= 2.0


def test_gray_is_identity_and_luts_are_read_only() -> None:
    lut = get_lut("gray")
    np.testing.assert_array_equal(lut, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    with pytest.raises(ValueError):
        lut[0, 0] = 1


def test_diverging_is_blue_white_red() -> None:
    lut = get_lut("diverging").astype(int)
    assert lut[0, 2] > lut[0, 0]  # blue end
    assert lut[255, 0] > lut[255, 2]  # red end
    assert lut[128].min() >= 240  # near-white middle


def test_aliases_and_case() -> None:
    assert resolve_cmap("GREY") == "gray"
    assert resolve_cmap("coolwarm") == "diverging"
    assert resolve_cmap("RdBu") == "diverging"
    for alias, target in ALIASES.items():
        assert resolve_cmap(alias) == target


def test_unknown_colormap_lists_valid_names() -> None:
    with pytest.raises(OptionError) as info:
        resolve_cmap("jet")
    msg = str(info.value)
    assert "'jet'" in msg
    for name in COLORMAPS:
        assert name in msg
    with pytest.raises(OptionError):
        apply_colormap(np.zeros(3), "plasma")


def test_special_colors_exact_and_distinct_from_every_lut_entry() -> None:
    values = np.array([0.0, 1.0, np.nan, np.inf, -np.inf, 0.5], np.float32)
    for name in COLORMAPS:
        rgb = apply_colormap(values, name)
        lut = get_lut(name)
        assert tuple(rgb[2]) == NAN_COLOR
        assert tuple(rgb[3]) == POSINF_COLOR
        assert tuple(rgb[4]) == NEGINF_COLOR
        np.testing.assert_array_equal(rgb[[0, 1, 5]], lut[[0, 255, 128]])
        for special in (NAN_COLOR, POSINF_COLOR, NEGINF_COLOR):
            assert not (lut == np.array(special, np.uint8)).all(axis=1).any()


def test_quantization_rounds_and_clips() -> None:
    values = np.array([-3.0, 0.0, 0.5 / 255, 0.49 / 255, 1.0, 7.0, 0.5])
    idx, codes = to_indices(values)
    assert codes is None
    np.testing.assert_array_equal(idx, [0, 0, 1, 0, 255, 255, 128])


def test_to_indices_codes_only_for_nonfinite() -> None:
    idx, codes = to_indices(np.array([[np.nan, 0.2], [np.inf, -np.inf]]))
    assert codes is not None
    np.testing.assert_array_equal(codes, [[1, 0], [2, 3]])
    assert idx[0, 1] == round(0.2 * 255)


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (4, 4), (2, 3, 5)])
def test_colorize_matches_fancy_indexing(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 256, shape, dtype=np.uint8)
    for name in ("viridis", "magma"):
        np.testing.assert_array_equal(colorize(idx, None, name), get_lut(name)[idx])


def test_colorize_into_non_contiguous_view() -> None:
    idx = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    canvas = np.zeros((3, 6, 3), np.uint8)
    colorize(idx, None, "magma", out=canvas[:, 1:5])
    np.testing.assert_array_equal(canvas[:, 1:5], get_lut("magma")[idx])
    assert (canvas[:, [0, 5]] == 0).all()


def test_apply_colormap_shape_and_no_warnings() -> None:
    values = np.full((2, 3, 4), np.nan)
    values[0] = np.inf
    with np.errstate(all="raise"):
        rgb = apply_colormap(values, "viridis")
    assert rgb.shape == (2, 3, 4, 3) and rgb.dtype == np.uint8
