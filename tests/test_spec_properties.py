"""Property tests (hypothesis) for the text grammars a user types: value ranges, layer selectors, the
``why --class`` target and featvis objectives. Whatever the text, a parser answers or raises from
convscope's error tree, and its cost never follows a number written in the text (channel specs:
tests/render/test_render_channels_hostile.py)."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.data.preprocess import parse_range
from convscope.errors import ConvscopeError, LayerNotFound, OptionError
from convscope.featvis.parse import parse_objective
from convscope.present.why import parse_target
from convscope.probe.select import select_layers

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMBERISH = st.sampled_from([*list("0123456789-+.,eE:@ *_/"), "²", "٣", "１", "inf", "nan", "top", "conv_0", "logit", "tv", "class:", "Conv*", "9" * 5000])
TEXT = st.one_of(st.text(max_size=40), st.lists(NUMBERISH, max_size=12).map("".join))
HUGE = ["9" * 5000, "-" + "9" * 5000, "1e999999", "9" * 400 + ",1", "0," + "9" * 400, "--5", "\u00b2", "\u0663\u0663",
        "\uff11", "1_000", " 12 ", "-0", "0x10", "top1" * 10_000]


def peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
    except ConvscopeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# -- value ranges ------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.one_of(TEXT, st.tuples(st.floats(), st.floats()).map(lambda t: f"{t[0]},{t[1]}")))
def test_parse_range_answers_finite_ordered_pairs_or_option_error(text: str) -> None:
    try:
        lo, hi = parse_range(text)
    except OptionError:
        return
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi


@pytest.mark.parametrize("text", HUGE)
def test_parse_range_huge_numbers(text: str) -> None:
    assert peak_bytes(lambda: parse_range(text)) < 1 << 20


# -- layer selectors ----------------------------------------------------------------------------------------------
NODES = [SimpleNamespace(path=p, class_name=c, index=i, is_container=c == "Functional")
         for i, (p, c) in enumerate([("input_layer", "InputLayer"), ("conv_0", "Conv2D"), ("block/conv_1", "Conv2D"),
                                     ("block", "Functional"), ("pool", "MaxPooling2D"), ("dense", "Dense")])]


@SETTINGS
@given(st.one_of(TEXT, st.integers(-10**30, 10**30), st.lists(st.one_of(TEXT, st.integers(-50, 50)), max_size=4)))
def test_layer_selectors_pick_existing_layers_or_raise_layer_not_found(selector: Any) -> None:
    try:
        picked = select_layers(NODES, selector, model_name="m")  # type: ignore[arg-type]
    except LayerNotFound:
        return
    assert picked or selector == []
    assert all(node in NODES for node in picked)
    assert [n.index for n in picked] == sorted({n.index for n in picked})


@pytest.mark.parametrize("selector", [h for h in HUGE if h not in ("-0", "top1" * 10_000)] + [10**5000, -(10**5000)],
                         ids=lambda v: f"{type(v).__name__}")
def test_layer_selectors_huge_numbers(selector: Any) -> None:
    with pytest.raises(LayerNotFound):
        select_layers(NODES, selector, model_name="m")  # type: ignore[arg-type]
    assert peak_bytes(lambda: select_layers(NODES, selector, model_name="m")) < 1 << 20  # type: ignore[arg-type]


# -- the target grammar (cam --target, --class) -------------------------------------------------------------------
@SETTINGS
@given(st.one_of(st.none(), TEXT))
def test_target_is_a_spec_object_or_option_error(text: str | None) -> None:
    from convscope.attribution.targets import ClassTarget, OutputTarget, SegTarget, Top1

    try:
        target = parse_target(text)
    except OptionError:
        return
    assert isinstance(target, (Top1, ClassTarget, OutputTarget, SegTarget))
    assert parse_target(str(target)) == target or isinstance(target, SegTarget)  # the spec reads back


@SETTINGS
@given(st.one_of(st.none(), TEXT))
def test_class_option_is_top1_a_class_or_option_error(text: str | None) -> None:
    from convscope.attribution.targets import ClassTarget, Top1

    try:
        target = parse_target(text, "--class")
    except OptionError:
        return
    assert isinstance(target, (Top1, ClassTarget))


@pytest.mark.parametrize("text", HUGE)
def test_class_target_huge_numbers(text: str) -> None:
    assert peak_bytes(lambda: parse_target(text)) < 1 << 20


# -- featvis objectives --------------------------------------------------------------------------------------------
@SETTINGS
@given(TEXT)
def test_objectives_parse_or_raise_option_error(text: str) -> None:
    try:
        parse_objective(text)
    except OptionError:
        return


@pytest.mark.parametrize("text", [*HUGE, "conv_0:" + "9" * 5000, "conv_0:1@" + "9" * 5000 + ",1", "logit:" + "9" * 5000, "1e999999*conv_0:1", "conv_0:²", "conv_0:1@²,1"])
def test_objectives_huge_numbers(text: str) -> None:
    assert peak_bytes(lambda: parse_objective(text)) < 8 << 20
