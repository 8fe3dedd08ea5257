"""Activation keys ``path@call[output]``: one format, one parser, the round trip as a property."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convscope.errors import InputError
from convscope.models.keys import ActivationKey, call_keys
from convscope.probe.extractor import Extractor

# Any text, with the characters that matter for keys made likely; a path must not end in a suffix form.
_paths = st.text(alphabet=st.sampled_from(list("ab/@[]09_-.# ")) | st.characters(), min_size=1, max_size=24).filter(
    lambda p: not re.search(r"(@\d+|\[\d+\])\Z", p))
_index = st.none() | st.integers(min_value=0, max_value=10_000)


@given(_paths, _index, _index)
def test_parse_of_format_is_the_key(path: str, call: int | None, output: int | None) -> None:
    key = ActivationKey(path, call, output)
    assert ActivationKey.parse(key.format()) == key
    assert str(key) == key.format()


@pytest.mark.parametrize(("text", "expected"), [
    ("conv", ("conv", None, None)),
    ("backbone/block3_conv2", ("backbone/block3_conv2", None, None)),
    ("conv@1", ("conv", 1, None)),
    ("split[2]", ("split", None, 2)),
    ("outer/shared@0[1]", ("outer/shared", 0, 1)),
    ("odd@name/conv@3", ("odd@name/conv", 3, None)),   # '@' inside a name stays in the path
    ("a[b]/c[x]", ("a[b]/c[x]", None, None)),            # brackets without digits are part of the name
    ("we@ird@2[0]", ("we@ird", 2, 0)),
    ("@1", ("@1", None, None)),                          # a bare suffix is a path, never an empty one
])
def test_parse_examples(text: str, expected: tuple[str, int | None, int | None]) -> None:
    key = ActivationKey.parse(text)
    assert (key.path, key.call, key.output) == expected
    assert key.format() == text


def test_ambiguous_paths_read_as_suffixes_as_documented() -> None:
    # A layer named "conv@1" called once writes "conv@1", the same as call 1 of "conv": parse reads the suffix.
    assert ActivationKey.parse(ActivationKey("conv@1").format()) == ActivationKey("conv", 1)


def test_indices_default_to_zero_and_bad_keys_are_refused() -> None:
    key = ActivationKey.parse("conv")
    assert (key.call_index, key.output_index) == (0, 0)
    assert ActivationKey.parse("conv@2[3]").call_index == 2 and ActivationKey.parse("conv@2[3]").output_index == 3
    with pytest.raises(InputError, match="has no layer path"):
        ActivationKey.parse("")
    with pytest.raises(InputError, match="-1"):
        ActivationKey("conv", -1)


def test_of_writes_call_and_output_only_when_there_are_several() -> None:
    assert str(ActivationKey.of("c")) == "c"
    assert str(ActivationKey.of("c", 0, 2)) == "c@0"
    assert str(ActivationKey.of("c", 1, 2, 1, 3)) == "c@1[1]"
    assert str(ActivationKey.of("c", 0, 1, 2, 3)) == "c[2]"


def test_call_keys_counts_calls_per_path() -> None:
    keys = call_keys([("a", 0), ("shared", 0), ("shared", 1), ("b", 0)])
    assert {k: str(v) for k, v in keys.items()} == {
        ("a", 0): "a", ("shared", 0): "shared@0", ("shared", 1): "shared@1", ("b", 0): "b"}


class _TwoOutputs(keras.layers.Layer):
    def call(self, x):
        return x + 1.0, x * 2.0


def test_extractor_keys_are_the_formatted_keys() -> None:
    inp = keras.Input((6, 6, 2))
    shared = keras.layers.Conv2D(2, 1, name="shared")
    a, b = _TwoOutputs(name="two")(shared(inp))
    out = keras.layers.Add(name="add")([shared(a), b])
    model = keras.Model(inp, out)
    ext = Extractor(model, ["shared", "two", "add"], compile=False)
    acts = ext(np.zeros((1, 6, 6, 2), np.float32))
    assert list(acts) == ["shared@0", "shared@1", "two[0]", "two[1]", "add"]
    parsed = [ActivationKey.parse(k) for k in acts]
    assert [(p.path, p.call, p.output) for p in parsed] == [
        ("shared", 0, None), ("shared", 1, None), ("two", None, 0), ("two", None, 1), ("add", None, None)]
