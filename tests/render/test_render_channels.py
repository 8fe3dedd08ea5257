"""Channel-spec grammar, top-k selection and inactive-channel detection."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import OptionError
from convscope.render import format_indices, inactive_channels, parse_channels, select_channels


def ids(spec, n=64, maps=None) -> list[int]:
    return parse_channels(spec, n).resolve(maps).tolist()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, list(range(10))),
        ("all", list(range(10))),
        (" ALL ", list(range(10))),
        ("4", [0, 1, 2, 3]),
        (4, [0, 1, 2, 3]),
        (np.int64(3), [0, 1, 2]),
        ("32", list(range(10))),  # a count beyond C shows all
        ("0,3,5", [0, 3, 5]),
        ("5, 3 ,0", [5, 3, 0]),
        ("0-3,7", [0, 1, 2, 3, 7]),
        ("2-2", [2]),
        ("6-4", [6, 5, 4]),
        ("1,1,2,1", [1, 2]),
        ([9, 0, 4], [9, 0, 4]),
        ((np.int32(2),), [2]),
    ],
)
def test_grammar(spec, expected: list[int]) -> None:
    assert ids(spec, 10) == expected


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("0,10", ["10", "0..9", "'0,10'"]),
        ("3-12", ["12", "0..9"]),
        ([1, 99], ["99", "0..9"]),
        ([-1], ["-1", "0..9"]),
        ("abc", ["'abc'", "top16"]),
        ("1,,2", ["'1,,2'"]),
        ("-3", ["'-3'"]),
        ("0", ["at least 1"]),
        ("top0", ["top0"]),
        ("top3:median", ["'median'", "mean", "max"]),
        ([], ["empty"]),
        ([1.5], ["1.5"]),
        (True, ["True"]),
    ],
)
def test_errors_name_the_bad_value(spec, needles: list[str]) -> None:
    with pytest.raises(OptionError) as info:
        parse_channels(spec, 10)
    for needle in needles:
        assert needle in str(info.value)


def test_top_k_matches_argsort_of_mean_and_max() -> None:
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(20, 5, 5))
    maps[7] = maps[3]  # a tie: the lower index must come first
    means = maps.reshape(20, -1).mean(axis=1)
    maxes = maps.reshape(20, -1).max(axis=1)
    assert ids("top6", 20, maps) == np.argsort(-means, kind="stable")[:6].tolist()
    assert ids("top6:mean", 20, maps) == np.argsort(-means, kind="stable")[:6].tolist()
    assert ids("top 4 : max", 20, maps) == np.argsort(-maxes, kind="stable")[:4].tolist()
    assert select_channels(maps, "top50").tolist() == np.argsort(-means, kind="stable").tolist()
    order = ids("top20", 20, maps)
    assert order.index(3) < order.index(7)


def test_top_k_on_channels_last_view_and_nonfinite() -> None:
    rng = np.random.default_rng(4)
    act = rng.random((6, 6, 8)).astype(np.float32)  # (H, W, C)
    act[0, 0, 2] = np.nan  # ignored: channel 2 ranks by its finite values
    act[..., 5] = np.nan  # no finite value: ranks last
    maps = np.moveaxis(act, -1, 0)
    means = np.array([np.nanmean(act[..., c]) if c != 5 else -np.inf for c in range(8)])
    assert select_channels(maps, "top8").tolist() == np.argsort(-means, kind="stable").tolist()


def test_top_needs_data() -> None:
    with pytest.raises(OptionError):
        parse_channels("top3", 10).resolve(None)


def test_inactive_channels() -> None:
    maps = np.ones((5, 3, 3))
    maps[1] = 0.0
    maps[2] = 0.0
    maps[2, 1, 1] = 1e-30  # tiny but not zero
    maps[3] = 0.0
    maps[3, 0, 0] = np.nan  # NaN is not "inactive"
    maps[4] = -0.0
    assert inactive_channels(maps).tolist() == [False, True, False, False, True]


def test_describe_and_format() -> None:
    assert parse_channels(None, 64).describe() == "all 64 channels"
    assert parse_channels("32", 64).describe() == "channels 0-31 of 64"
    assert parse_channels("0-7,12", 64).describe() == "channels 0-7,12 of 64"
    assert parse_channels("top16:max", 512).describe() == "top 16 by max of 512"
    assert format_indices([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"
    assert format_indices(list(range(0, 400, 2)), limit=20).endswith(",...")
