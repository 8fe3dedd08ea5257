"""Optimization on the bundled MNIST CNN: objectives rise, batches are independent, runs repeat exactly,
the gradient function is traced once, and the model is left exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
from fvhelp import assert_untouched

from convscope import backend
from convscope.errors import OptionError
from convscope.featvis import (
    MaxResult,
    channels,
    clear_cache,
    maximize,
    maximize_channels,
    objective_values,
)

keras = pytest.importorskip("keras")
STEPS = 30
LR = 0.2  # lucid's 0.05 is tuned for 256-512 steps; 30 steps need a larger one
CHANNELS = [0, 5, 7, 12, 20, 33]


@pytest.fixture(scope="module")
def weights(mnist):
    return [w.copy() for w in mnist.get_weights()]


@pytest.fixture(scope="module")
def batched(mnist, weights):
    clear_cache()
    return maximize_channels(mnist, "conv_1", CHANNELS, steps=STEPS, seed=0, lr=LR)


def test_single_channel_rises_for_several_seeds(mnist, weights):
    for seed in (0, 1, 2):
        res = maximize(mnist, "conv_1:7", steps=STEPS, seed=seed, lr=LR)
        assert res.final[0] > res.initial[0], (seed, res.initial, res.final)
        assert res.history.shape == (STEPS, 1) and res.images.shape == (1, 28, 28, 1)
        assert res.images.dtype == np.uint8
    assert_untouched(mnist, weights)


def test_each_image_of_a_batch_raises_its_own_channel(mnist, batched):
    res = batched
    assert res.images.shape == (len(CHANNELS), 28, 28, 1) and res.labels == tuple(map(str, CHANNELS))
    assert np.all(res.final > res.initial), (res.initial, res.final)
    # independently: image b scores channel CHANNELS[b] as reported (its own channel, not another one)
    own = objective_values(mnist, channels("conv_1", CHANNELS), res.images / 255.0)
    np.testing.assert_allclose(own, res.final, rtol=0.05, atol=1e-3)
    cross = np.stack([objective_values(mnist, channels("conv_1", [k] * len(CHANNELS)), res.images / 255.0)
                      for k in CHANNELS])  # cross[j, b]: channel CHANNELS[j] on image b
    assert np.sum(np.argmax(cross, axis=1) == np.arange(len(CHANNELS))) >= len(CHANNELS) - 1


def test_gradient_function_is_traced_once_and_reused(mnist, batched):
    eager = backend.current() == "torch"  # no tracing: fn runs every step
    assert batched.settings["traces"] == (STEPS if eager else 1)
    again = maximize_channels(mnist, "conv_1", CHANNELS, steps=5, seed=0, lr=LR)
    assert again.settings["traces"] == (5 if eager else 0)  # same structure: the compiled function is reused


def test_fixed_seed_reproduces_the_result(mnist):
    def run(seed):
        return maximize_channels(mnist, "conv_1", CHANNELS, steps=8, seed=seed, lr=LR)  # compiled already

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_allclose(again.history, first.history, rtol=1e-6, atol=1e-7)
    assert not np.array_equal(other.images, first.images)


def test_plain_batch_and_logits(mnist, weights):
    res = maximize(mnist, "logit:3", batch=3, steps=12, param="pixel", transforms=None, tv=0.01, l2=0.01)
    assert res.images.shape == (3, 28, 28, 1) and res.history.shape == (12, 3)
    assert len({im.tobytes() for im in res.images}) == 3  # independent starts
    assert np.all(res.final > res.initial + 1.0)
    assert_untouched(mnist, weights)


def test_result_is_frozen_data_with_a_grid(batched, tmp_path):
    res = batched
    assert isinstance(res, MaxResult) and not res.images.flags.writeable
    assert res.settings["steps"] == STEPS and res.settings["param"] == "fft"
    with pytest.raises(TypeError):
        res.settings["steps"] = 1  # type: ignore[index]
    grid = res.to_grid()
    assert grid.kind == "featvis" and grid.image.dtype == np.uint8
    assert grid.channels == tuple(CHANNELS) and grid.n_channels == 64 and grid.layer == "conv_1"
    assert "conv_1:[0,5,7,12,20,33]" in grid.caption and "param=fft" in grid.caption
    path = res.save(tmp_path / "f.png")
    assert path.stat().st_size > 0
    with pytest.raises(FileExistsError):
        res.save(path)


def test_progress_is_reported_every_step(mnist):
    seen = []
    maximize(mnist, "conv_1:7", steps=4, progress=lambda step, total, values: seen.append((step, total, values.shape)))
    assert seen == [(1, 4, (1,)), (2, 4, (1,)), (3, 4, (1,)), (4, 4, (1,))]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": -1}, "steps must be an integer >= 0, got -1"),
        ({"lr": 0}, "lr must be a number > 0"),
        ({"param": "wavelet"}, "unknown parameterization 'wavelet'"),
        ({"size": 32}, "fixed at 28x28"),
        ({"transforms": "wild"}, "unknown transforms 'wild'"),
        ({"mean": (0.1, 0.2), "std": (1, 1)}, "mean/std have 2 values"),
        ({"init": np.zeros((2, 28, 28, 1))}, r"init must have shape \(1, 28, 28, 1\)"),
        ({"progress": "yes"}, "progress must be"),
    ],
)
def test_bad_options_are_refused(mnist, kwargs, match):
    with pytest.raises(OptionError, match=match):
        maximize(mnist, "conv_1:7", **kwargs)


def test_batch_conflicts_and_top_k_are_refused(mnist):
    with pytest.raises(OptionError, match="batch=2 conflicts"):
        maximize(mnist, channels("conv_1", [1, 2, 3]), batch=2)
    with pytest.raises(OptionError, match="ranks channels by activation data"):
        maximize_channels(mnist, "conv_1", "top8")
    with pytest.raises(OptionError, match="sets the batch itself"):
        maximize_channels(mnist, "conv_1", "4", batch=4)
    with pytest.raises(OptionError, match="channel 64 in spec"):
        maximize_channels(mnist, "conv_1", [64])


def test_color_model_with_free_size_and_imagenet_normalization():
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c0")(inp)
    model = keras.Model(inp, keras.layers.Conv2D(8, 3, activation="relu", name="c1")(x))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    res = maximize(model, "c1:3", size=(20, 24), steps=6, mean=mean, std=std)
    assert res.images.shape == (1, 20, 24, 3) and np.isfinite(res.final).all()
    assert res.settings["value_map"].startswith("input (x - ") and res.settings["size"] == (20, 24)


class _Subclassed(keras.Model):
    """No graph inputs: maximize must take the geometry from input_shape or from the first call."""

    def __init__(self):
        super().__init__(name="sub")
        self.c0 = keras.layers.Conv2D(6, 3, activation="relu", name="c0")
        self.c1 = keras.layers.Conv2D(5, 3, activation="relu", name="c1")
        self.pool = keras.layers.GlobalAveragePooling2D()

    def call(self, x):
        return self.pool(self.c1(self.c0(x)))


def test_subclassed_model_takes_its_geometry_from_input_shape_or_its_first_call():
    model = _Subclassed()
    res = maximize_channels(model, "c1", "3", steps=12, lr=LR, input_shape=(14, 12, 2))
    assert res.images.shape == (3, 14, 12, 2) and np.all(res.final > res.initial)
    called = _Subclassed()
    called(np.zeros((1, 17, 13, 1), np.float32))
    res = maximize(called, "c1:4", steps=4)
    assert res.images.shape == (1, 17, 13, 1)
    x = res.images / 255.0  # identity with the model's own layers
    ref = keras.ops.convert_to_numpy(called.c1(called.c0(x)))[..., 4].mean(axis=(1, 2))
    np.testing.assert_allclose(objective_values(called, "c1:4", x), ref, rtol=1e-5, atol=1e-6)
    assert maximize(called, "c1:0", steps=2, size=9).images.shape == (1, 9, 9, 1)  # any size: it is free
