"""Channels computed from a Conv2D's input equal the layer's own output; early exit; redirected ReLU."""

from __future__ import annotations

import numpy as np
import pytest
from fvhelp import to_np

from convscope import backend
from convscope.errors import OptionError
from convscope.featvis import channels, layer_mean, objective_values
from convscope.featvis.fastconv import can_compute, channel_maps
from convscope.featvis.taps import Need, TapPlan, run_taps

keras = pytest.importorskip("keras")
L = keras.layers


@pytest.mark.parametrize(
    "conv",
    [
        {"padding": "valid"},
        {"padding": "same", "strides": 2, "activation": "tanh"},
        {"dilation_rate": 2, "use_bias": False},
        {"kernel_size": (4, 2), "strides": (3, 2), "padding": "same"},
    ],
)
def test_every_route_agrees_with_the_layer_output(conv):
    kw = {"kernel_size": 3, "activation": "relu", **conv}
    model = keras.Sequential([keras.Input((11, 10, 3)), L.Conv2D(4, 3, name="c0"),
                              L.Conv2D(6, bias_initializer="random_normal", name="c1", **kw), L.Flatten()])
    x = np.random.default_rng(0).uniform(size=(5, 11, 10, 3)).astype(np.float32)
    obj = channels("c1", [5, 0, 3, 3, 1])
    got = {route: objective_values(model, obj, x, route=route) for route in ("slice", "taps", "conv", "output")}
    for route in ("slice", "taps", "conv"):
        np.testing.assert_allclose(got[route], got["output"], atol=1e-5, err_msg=route)
    ref = to_np(keras.ops.mean(model.get_layer("c1")(model.get_layer("c0")(x)), axis=(1, 2)))
    np.testing.assert_allclose(got["output"], ref[np.arange(5), [5, 0, 3, 3, 1]], atol=1e-5)


def test_only_plain_conv2d_is_computed_from_its_input():
    conv = L.Conv2D(2, 3)
    assert can_compute(conv)
    assert not can_compute(L.Conv2D(2, 3, activation="softmax"))
    assert not can_compute(L.Conv2D(4, 3, groups=2))
    assert not can_compute(L.DepthwiseConv2D(3))
    with pytest.raises(OptionError, match="unknown channel route 'fast'"):
        TapPlan.build(keras.Sequential([keras.Input((4, 4, 1)), conv]), [], route="fast")


class Boom(L.Layer):
    """Fails if it ever runs: proves the forward pass stopped before it."""

    def call(self, x):
        raise AssertionError("the forward pass should have stopped before this layer")

    def compute_output_shape(self, shape):
        return shape


def test_forward_pass_stops_once_everything_is_recorded():
    layers = [L.Conv2D(3, 3, name="c0"), L.Conv2D(2, 3, name="c1"), Boom(name="boom")]
    model = keras.Sequential([keras.Input((6, 6, 1)), *layers])
    x = np.random.default_rng(1).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    v = objective_values(model, "c1:1 + c0:mean", x)
    c0 = model.get_layer("c0")(x)
    ref = to_np(keras.ops.mean(model.get_layer("c1")(c0)[..., 1], axis=(1, 2)) + keras.ops.mean(c0, axis=(1, 2, 3)))
    np.testing.assert_allclose(v, ref, atol=1e-5)
    assert all("call" not in vars(layer) for layer in model.layers)


def test_redirected_relu_keeps_the_value_and_lets_gradient_through_a_dead_channel():
    model = keras.Sequential([keras.Input((5, 5, 1)), L.Conv2D(1, 3, activation="relu", name="c",
                                                                 kernel_initializer="ones", bias_initializer="zeros")])
    be = backend.get()
    x = -np.ones((1, 5, 5, 1), np.float32)  # all pre-activations are -9: the ReLU is off everywhere

    def grad(redirect):
        plan = TapPlan.build(model, [Need("c", "channel")], redirect_relu=redirect)

        def fn(call, wrt):
            taps = run_taps(plan, call, wrt[0], wrt[0])
            v = keras.ops.sum(taps.channel_means("c", np.array([0])))
            return v, (v,)

        value, _, grads = be.value_and_grad(model, fn, compile=False)([x])
        return float(be.to_numpy(value)), to_np(grads[0])

    v0, g0 = grad(False)
    v1, g1 = grad(True)
    assert v0 == v1 == 0.0
    assert np.all(g0 == 0) and np.all(g1 > 0)
    np.testing.assert_allclose(g1.sum(), 9.0, rtol=1e-5)  # d mean(z) / dx summed over the image


def test_channel_maps_checks_channels():
    conv = L.Conv2D(2, 3)
    conv.build((None, 5, 5, 1))
    with pytest.raises(OptionError, match="channel 2 is out of range"):
        channel_maps(np.zeros((1, 5, 5, 1), np.float32), (conv.kernel, conv.bias), np.array([2]), conv)


def test_layer_needed_twice_is_tapped_once():
    model = keras.Sequential([keras.Input((5, 5, 1)), L.Conv2D(2, 3, name="c")])
    plan = TapPlan.build(model, [Need("c", "channel"), Need("c", "output")])
    assert len(plan.taps) == 1 and plan.routes[Need("c", "channel")][1] == "output"  # the output is there anyway
    x = np.ones((1, 5, 5, 1), np.float32)
    out = to_np(model(x))
    np.testing.assert_allclose(objective_values(model, layer_mean("c") + channels("c", [1]), x),
                               out.mean(axis=(1, 2, 3)) + out[..., 1].mean(axis=(1, 2)), atol=1e-5)


def _bn_relu6_model():
    """Conv (linear) -> BatchNorm -> Activation("relu6"), channel 2 pushed off everywhere by BN's beta."""
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, name="c"), L.BatchNormalization(name="bn"),
                              L.Activation("relu6", name="act"), L.Flatten()])
    bn = model.get_layer("bn")
    rng = np.random.default_rng(3)
    bn.set_weights([np.ones(3, np.float32), np.array([0.5, 0.0, -50.0], np.float32),
                    rng.normal(size=3).astype(np.float32) * 0.1, np.ones(3, np.float32)])
    return model


def _channel_mean_and_grad(model, x, ks, redirect):
    be = backend.get()
    plan = TapPlan.build(model, [Need("act", "channel")], redirect_relu=redirect)

    def fn(call, wrt):
        v = run_taps(plan, call, wrt[0], wrt[0]).channel_means("act", np.asarray(ks))
        return keras.ops.sum(v), (v,)

    _, (values,), grads = be.value_and_grad(model, fn, compile=False)([x])
    return plan, to_np(values), to_np(grads[0])


def test_relu_activation_channel_comes_from_its_input_with_the_same_values():
    model = _bn_relu6_model()
    x = np.random.default_rng(4).uniform(size=(4, 6, 6, 2)).astype(np.float32)
    ks = [0, 1, 2, 0]
    plan_on, v_on, g_on = _channel_mean_and_grad(model, x, ks, True)
    plan_off, v_off, g_off = _channel_mean_and_grad(model, x, ks, False)
    assert plan_on.routes[Need("act", "channel")][1] == "act"
    assert plan_off.routes[Need("act", "channel")][1] == "output"
    pre = to_np(model.get_layer("bn")(model.get_layer("c")(x), training=False))  # independent reference
    ref = np.clip(pre, 0, 6).mean(axis=(1, 2))[np.arange(4), ks]
    np.testing.assert_allclose(v_on, ref, atol=1e-5)
    np.testing.assert_allclose(v_off, ref, atol=1e-5)
    assert v_on[2] == 0.0  # channel 2 is off everywhere ...
    assert np.all(g_off[2] == 0) and np.abs(g_on[2]).sum() > 0  # ... yet gets a gradient only when redirected
    live = [0, 1, 3]  # where the channel is on, the redirected gradient is the true one
    np.testing.assert_allclose(g_on[live], g_off[live], atol=1e-6)
