"""Channel specs from a careless user or a hostile page: compact parsing, checks before expansion, and
property tests (hypothesis) that no spec raises outside convscope's error tree or costs memory in
proportion to a number written in it."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.errors import ConvscopeError, OptionError
from convscope.render import parse_channel_spec, parse_channels
from convscope.render.channels import MAX_CHANNELS, ChannelQuery, _unique_ranges, check_spec

PEAK_LIMIT = 4 << 20  # generous: a parse may allocate its own text a few times, never a number's worth


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak traced allocation while running ``fn`` (exceptions from convscope's tree are swallowed)."""
    tracemalloc.start()
    try:
        fn()
    except ConvscopeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def reference_unique(ranges: list[tuple[int, int]]) -> list[int]:
    out: list[int] = []
    for a, b in ranges:
        for i in (range(a, b + 1) if a <= b else range(a, b - 1, -1)):
            if i not in out:
                out.append(i)
    return out


HUGE = ["0-1000000000", "1000000000", "top1000000000", "5-99999999999999999999999999999999", "9" * 5000,
        "0-" + "9" * 5000, ",".join(["0-999999999"] * 2000), "top" + "9" * 10000, "1-" + "1" * 60]


@pytest.mark.parametrize("spec", HUGE)
def test_huge_numbers_are_refused_or_capped_without_allocation(spec: str) -> None:
    assert peak_bytes(lambda: parse_channel_spec(spec)) < PEAK_LIMIT
    assert peak_bytes(lambda: parse_channels(spec, 64)) < PEAK_LIMIT
    try:
        plan = parse_channels(spec, 64)
    except OptionError as err:
        assert "out of range" in str(err) and "0..63" in str(err)
        assert len(str(err)) < 400  # the echo of a long spec is cut
    else:  # counts saturate at the layer's channel count
        assert plan.kind in ("first", "top") and plan.count == 64


@pytest.mark.parametrize("spec", [[10**5000], [0, -(10**5000)], 10**5000, -(10**5000), (1.5, 10**5000)],
                         ids=["list", "negative", "count", "negative count", "float"])
def test_python_ints_of_thousands_of_digits(spec: Any) -> None:
    try:
        plan = parse_channels(spec, 8)
    except OptionError as err:
        assert len(str(err)) < 400
    else:
        assert plan.kind == "first" and plan.count == 8


def test_grammar_check_keeps_ranges_compact() -> None:
    q = parse_channel_spec("0-1000000000,7")
    assert q == ChannelQuery("list", ranges=((0, 1_000_000_000), (7, 7)), spec="0-1000000000,7")
    assert parse_channel_spec(range(10**12)).ranges == ((0, 10**12 - 1),)
    with pytest.raises(OptionError, match=r"0..31"):
        parse_channels(range(10**12), 32)
    assert parse_channels(range(5, 1, -1), 8).indices == (5, 4, 3, 2)


@pytest.mark.parametrize("spec", ["\u00b2", "\u0663", "top\u00b2", "1-\u0663", "\uff11", "1\u00b9"])
def test_non_ascii_digits_are_refused_as_grammar(spec: str) -> None:
    with pytest.raises(OptionError, match=r"invalid channel spec|expected"):
        parse_channels(spec, 10)


def test_unique_ranges_matches_reference_on_overlaps() -> None:
    cases = [[(0, 3), (2, 5)], [(5, 2), (0, 9)], [(3, 3), (1, 1), (2, 2), (0, 4)], [(9, 0), (0, 9)],
             [(0, 1), (4, 5), (2, 3), (8, 9), (0, 9)], [(6, 4), (3, 7), (1, 1), (2, 0)]]
    for ranges in cases:
        assert list(_unique_ranges(ranges)) == reference_unique(ranges), ranges


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=12))
def test_unique_ranges_property(ranges: list[tuple[int, int]]) -> None:
    assert list(_unique_ranges(ranges)) == reference_unique(ranges)


SPEC_ALPHABET = st.sampled_from([*list("0123456789,- :topmeanx*²٣ \t"), "top", "all", "max"])
SPEC_TEXT = st.one_of(st.text(max_size=60), st.lists(SPEC_ALPHABET, max_size=30).map("".join))
ANY_SPEC = st.one_of(
    st.none(), SPEC_TEXT, st.integers(-10**30, 10**30), st.booleans(), st.floats(allow_nan=True),
    st.lists(st.one_of(st.integers(-10**30, 10**30), st.floats(), st.text(max_size=3)), max_size=8),
    st.binary(max_size=8), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_SPEC, st.integers(-3, 300))
def test_any_spec_parses_or_raises_option_error(spec: Any, n_channels: int) -> None:
    try:
        plan = parse_channels(spec, n_channels)
    except OptionError:
        return
    idx = plan.resolve(np.zeros((n_channels, 1), np.float32))
    assert 1 <= idx.size <= n_channels
    assert idx.min() >= 0 and idx.max() < n_channels
    assert len(set(idx.tolist())) == idx.size


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**15), st.integers(0, 10**15)), min_size=1, max_size=20),
       st.integers(1, 512))
def test_big_ranges_cost_nothing_until_checked(ranges: list[tuple[int, int]], n_channels: int) -> None:
    spec = ",".join(f"{a}-{b}" for a, b in ranges)
    assert peak_bytes(lambda: parse_channel_spec(spec)) < PEAK_LIMIT
    assert peak_bytes(lambda: parse_channels(spec, n_channels)) < PEAK_LIMIT


@pytest.mark.parametrize("kwargs", [{"scale": 10**6}, {"cols": 10**9}, {"rows": 10**9}, {"rows": 10**5, "cols": 10**5},
                                    {"scale": 10**30}])
def test_rows_cols_scale_cannot_size_a_huge_picture(kwargs: dict[str, int]) -> None:
    from convscope.render import render_activation

    act = np.random.default_rng(0).random((26, 26, 32)).astype(np.float32)
    with pytest.raises(OptionError, match="over the limit"):
        render_activation(act, **kwargs)
    assert peak_bytes(lambda: render_activation(act, **kwargs)) < 16 << 20
    assert render_activation(act, cols=40).image.shape[1] < 40 * 60  # generous but sane layouts still work


@pytest.mark.parametrize("spec", ["0-1000000000", "3,16777216", "0-" + "9" * 5000, ",".join(["0-999999999"] * 2000)])
def test_the_early_check_refuses_an_index_beyond_any_layer(spec: str) -> None:
    # before a model is loaded (the command line's first check), an index no layer can have is refused
    assert peak_bytes(lambda: check_spec(spec)) < PEAK_LIMIT
    with pytest.raises(OptionError, match="beyond any layer") as err:
        check_spec(spec)
    assert f"{MAX_CHANNELS:,}" in str(err.value) and len(str(err.value)) < 500


@pytest.mark.parametrize("spec", ["0-16777215", "16777215", "top16777216", "99999999999999999999"])
def test_the_early_check_keeps_what_some_layer_could_take(spec: str) -> None:
    assert check_spec(spec) == spec  # the largest index a layer may have; counts saturate later
