"""check_scaling: one check of value_range / mean / std, one message, for Preprocess and featvis' ValueMap."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.data import Preprocess
from convscope.data.preprocess import check_scaling
from convscope.errors import OptionError
from convscope.featvis import ValueMap


def test_accepted_values_become_float_tuples() -> None:
    assert check_scaling() == ((0.0, 1.0), None, None)
    assert check_scaling([-1, 1]) == ((-1.0, 1.0), None, None)
    assert check_scaling(None, 0.5, np.float32(0.25)) == ((0.0, 1.0), (0.5,), (0.25,))
    assert check_scaling(None, np.array([0.4, 0.5, 0.6]), [0.2, 0.2, 0.2]) == ((0.0, 1.0), (0.4, 0.5, 0.6), (0.2,) * 3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"value_range": (1.0, 0.0)}, "value_range (1.0, 0.0) must be (lo, hi) with lo < hi (two numbers, both finite)"),
    ({"value_range": "0,1"}, "value_range '0,1' must be (lo, hi) with lo < hi"),
    ({"value_range": (0.0, float("inf"))}, "value_range (0.0, inf) must be (lo, hi)"),
    ({"mean": (0.5,)}, "mean=(0.5,) and std=None: give both together (one per channel) or neither"),
    ({"value_range": (-1, 1), "mean": 0.5, "std": 0.5}, "value_range (-1, 1) and mean/std cannot be combined"),
    ({"mean": (0.5, 0.5), "std": (0.5,)}, "mean (0.5, 0.5) and std (0.5) must have the same length"),
    ({"mean": 0.5, "std": 0.0}, "std (0) must be > 0 (positive) in every channel"),
    ({"mean": (float("nan"),), "std": (1.0,)}, "mean (nan,) must hold one finite number per channel"),
    ({"mean": "0.5", "std": 1.0}, "mean '0.5' is not a sequence of numbers (or one number)"),
])
def test_preprocess_and_value_map_refuse_alike(kwargs: dict[str, object], message: str) -> None:
    errors = []
    for make in (check_scaling, Preprocess, ValueMap.build):
        with pytest.raises(OptionError) as err:
            make(**kwargs)  # type: ignore[operator]
        errors.append(str(err.value))
    assert message in errors[0]
    assert errors[0] == errors[1] == errors[2]


def test_the_default_range_is_not_a_choice_for_preprocess_but_is_for_value_map() -> None:
    # Preprocess cannot tell its default (0, 1) from a given one, so (0, 1) with mean/std is accepted there;
    # ValueMap.build takes None for "not given", so an explicit range with mean/std is refused.
    assert Preprocess(value_range=(0.0, 1.0), mean=(0.5,), std=(0.5,)).uses_mean_std
    with pytest.raises(OptionError, match="cannot be combined"):
        ValueMap.build((0, 1), 0.5, 0.2)
    vmap = ValueMap.build(None, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    assert (vmap.mean, vmap.std, vmap.value_range) == ((0.5, 0.4, 0.3), (0.2, 0.2, 0.2), (0.0, 1.0))
