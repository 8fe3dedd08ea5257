"""field_grid / field_grids: where each activation position sits on the input, from one home."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convscope.attribution.upsample import receptive_grid
from convscope.errors import ConvscopeError, FieldsUnavailable, InputError
from convscope.models.grids import Grid, field_grid, field_grids, field_table
from convscope.models.inspect import inspect_model
from convscope.models.keys import ActivationKey


class _TwoOutputs(keras.layers.Layer):
    def call(self, x):
        return x + 1.0, x * 2.0


@pytest.fixture(scope="module")
def model() -> keras.Model:
    inp = keras.Input((10, 10, 1))
    x = keras.layers.Conv2D(2, 3, name="c0")(inp)                      # valid 3x3
    x = keras.layers.MaxPooling2D(2, name="pool")(x)                  # 2x2 stride 2
    shared = keras.layers.Conv2D(2, 1, name="shared")                 # called twice
    a, b = _TwoOutputs(name="two")(shared(x))
    x = keras.layers.Conv2D(2, 3, name="c1")(keras.layers.Add(name="add")([shared(a), b]))
    out = keras.layers.Dense(3, name="dense")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(inp, out, name="tiny")


def test_grids_match_the_hand_computed_recurrence(model: keras.Model) -> None:
    # c0: size 3, step 1, position 0 centred on pixel 1. pool: size 3+1=4, step 2, start 1 + 0.5 = 1.5.
    # c1 (3x3 valid on step 2): size 4 + 2*2 = 8, step 2, start 1.5 + 1*2 = 3.5.
    assert field_grid(model, "c0") == Grid((1, 1), (1, 1), (3, 3), True)
    assert field_grid(model, "pool") == Grid((1.5, 1.5), (2, 2), (4, 4), True)
    assert field_grid(model, "c1") == Grid((3.5, 3.5), (2, 2), (8, 8), False)  # after a custom layer: estimate
    assert field_grid(model, "c1").placement == ((3.5, 3.5), (2.0, 2.0))
    assert all(isinstance(v, float) for pair in field_grid(model, "c0").placement for v in pair)


def test_keys_pick_the_call_and_only_first_outputs_have_a_grid(model: keras.Model) -> None:
    info = inspect_model(model)
    pool = field_grid(info, "pool")
    assert field_grid(info, "shared@0") == pool
    shared1 = field_grid(info, "shared@1")
    assert shared1 == field_grid(info, ActivationKey("shared", 1))
    assert (shared1.start, shared1.step, shared1.size) == (pool.start, pool.step, pool.size)
    assert field_grid(info, "two[0]") == field_grid(info, "two") == Grid(pool.start, pool.step, pool.size, False)
    assert field_grid(info, "two[1]") is None                  # the table describes first outputs only
    assert field_grid(info, "dense") is None and field_grid(info, "flat") is None   # not spatial
    assert field_grid(info, "nope") is None and field_grid(info, "c0@3") is None     # not in the table
    grids = field_grids(info, ["c0", "two[0]", "two[1]", "dense", "nope"], ndim=2)
    assert list(grids) == ["c0", "two[0]"]
    assert field_grids(info, ["c0"], ndim=1) == {}


def test_table_is_kept_per_model_and_failures_are_one_error_with_the_cause() -> None:
    free = keras.Sequential([keras.layers.Conv2D(1, 3, name="c")])  # unbuilt: no input shape anywhere
    with pytest.raises(FieldsUnavailable, match="no receptive-field grid for model") as err:
        field_grid(free, "c")
    assert isinstance(err.value, ConvscopeError) and isinstance(err.value.__cause__, InputError)
    with pytest.raises(FieldsUnavailable):
        field_grids(free, ["c"])
    assert field_grid(free, "c", input_shape=(6, 6, 1)) == Grid((1, 1), (1, 1), (3, 3), True)
    assert field_table(free, (6, 6, 1)) is field_table(free, (6, 6, 1))


def test_cam_resampler_grid_comes_from_the_same_home(model: keras.Model) -> None:
    assert receptive_grid(model, "pool", (10, 10, 1)) == ((1.5, 1.5), (2.0, 2.0))
    assert receptive_grid(model, "shared", (10, 10, 1)) == ((1.5, 1.5), (2.0, 2.0))   # its first call
    assert receptive_grid(model, "dense", (10, 10, 1)) is None and receptive_grid(model, "", (10, 10, 1)) is None
    np.testing.assert_equal(receptive_grid(keras.Sequential([keras.layers.Conv2D(1, 3)]), "x", (4, 4)), None)
