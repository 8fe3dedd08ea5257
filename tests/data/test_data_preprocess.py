"""parse_range and the Preprocess options: accepted values, refusals that name the value, describe()."""

from __future__ import annotations

import pytest

from convscope.data import InputSpec, Preprocess, parse_range
from convscope.errors import OptionError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0,1", (0.0, 1.0)), ("-1,1", (-1.0, 1.0)), (" 0 , 255 ", (0.0, 255.0)), ("-0.5,1e3", (-0.5, 1000.0))],
)
def test_parse_range_good(text: str, expected: tuple[float, float]) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["0;1", "1,0", "1,1", "a,b", "0,1,2", "", "0", "nan,1", "0,inf", "0,"])
def test_parse_range_bad_names_value_and_form(text: str) -> None:
    with pytest.raises(OptionError) as err:
        parse_range(text)
    msg = str(err.value)
    assert repr(text) in msg
    assert "LO,HI" in msg


def test_parse_range_lo_not_below_hi_says_so() -> None:
    with pytest.raises(OptionError, match="LO >= HI"):
        parse_range("1,0")


def test_defaults() -> None:
    prep = Preprocess()
    assert (prep.value_range, prep.mean, prep.std, prep.resize, prep.invert, prep.channels) == (
        (0.0, 1.0),
        None,
        None,
        "stretch",
        False,
        "auto",
    )
    assert not prep.uses_mean_std


def test_lists_become_tuples_and_it_is_hashable() -> None:
    prep = Preprocess(mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])  # type: ignore[arg-type]
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.2, 0.2, 0.2)
    assert hash(prep) == hash(Preprocess(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)))
    with pytest.raises(AttributeError):
        prep.invert = True  # type: ignore[misc]


def test_mean_std_excludes_a_non_default_range() -> None:
    with pytest.raises(OptionError, match=r"value_range \(-1, 1\) and mean/std cannot be combined"):
        Preprocess(value_range=(-1.0, 1.0), mean=(0.5,), std=(0.5,))
    assert Preprocess(value_range=(0.0, 1.0), mean=(0.5,), std=(0.5,)).uses_mean_std


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"mean": (0.5,)}, "give both"),
        ({"std": (0.5,)}, "give both"),
        ({"mean": (0.5, 0.5), "std": (0.5,)}, "same length"),
        ({"mean": (0.5,), "std": (0.0,)}, r"std \(0\) must be > 0"),
        ({"mean": ("a",), "std": (1.0,)}, "not a sequence of numbers"),
        ({"mean": (), "std": ()}, "one finite number per channel"),
        ({"value_range": (1.0, 0.0)}, r"value_range \(1.0, 0.0\) must be \(lo, hi\) with lo < hi"),
        ({"value_range": (0.0, 1.0, 2.0)}, "must be \\(lo, hi\\)"),
        ({"resize": "crop"}, r"resize 'crop' is not valid; expected one of stretch, fit, none"),
        ({"channels": "rgb"}, r"channels 'rgb' is not valid; expected one of auto"),
        ({"invert": "yes"}, r"invert 'yes' must be True or False"),
    ],
)
def test_bad_options_are_refused_with_the_value(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(OptionError, match=pattern):
        Preprocess(**kwargs)  # type: ignore[arg-type]


def test_describe_without_spec() -> None:
    assert Preprocess().describe() == "stretch (bilinear), channels as read (alpha dropped), 0..255 -> [0, 1]"


def test_describe_states_every_step() -> None:
    spec = InputSpec((28, 28, 1))
    assert Preprocess(invert=True, value_range=(-1.0, 1.0)).describe(spec) == (
        "stretch (bilinear) to 28x28, 1 channel (gray), inverted (255-x), 0..255 -> [-1, 1]"
    )
    cf = InputSpec((3, 224, 160), "channels_first")
    text = Preprocess(resize="fit", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).describe(cf)
    assert text == (
        "fit (keep aspect, bilinear, pad black) to 160x224, 3 channels (RGB), "
        "(x/255 - mean)/std, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channels_first"
    )
    assert "\n" not in text
    free = InputSpec((None, None, 3))
    assert Preprocess(resize="none").describe(free).startswith("no resize (size must be anyxany)")
