"""Target forms, logits instead of probabilities, and the model left exactly as it was (every backend)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

import attrib_refs as ref  # noqa: E402

from convscope.attribution import cam  # noqa: E402
from convscope.errors import AttributionError  # noqa: E402

np_ = ref.to_numpy


def test_target_forms_agree(mnist, digits):
    x = digits[0][:4]
    probs = np_(mnist(x, training=False))
    top = cam(mnist, x)
    assert top.targets == tuple(int(c) for c in probs.argmax(axis=1))
    listed = cam(mnist, x, target=list(top.targets))
    np.testing.assert_array_equal(listed.raw, top.raw)
    three = cam(mnist, x, target=3)
    assert three.targets == (3, 3, 3, 3)
    def picked(out):
        return out[:, 3]

    custom = cam(mnist, x, target=picked)
    np.testing.assert_allclose(custom.raw, three.raw, rtol=1e-5, atol=1e-7)
    assert custom.targets == (-1,) * 4 and custom.score == "custom" and custom.used_logits
    per_image = cam(mnist, x, target=np.array([3, 1, 4, 1]))
    assert per_image.targets == (3, 1, 4, 1)
    np.testing.assert_allclose(per_image.raw[0], three.raw[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("target,match", [
    (12, r"class index 12 is out of range: the model has 10 classes \(valid indices 0\.\.9\)"),
    (-1, r"class index -1 is out of range: the model has 10 classes"),
    ([1, 10], r"class index 10 \(image 1\) is out of range"),
    ([1, 2, 3], r"got 3 target classes for 2 images"),
    ("top5", r"target 'top5' is not understood; accepted: top1, class:IDX"),
    (2.5, r"target 2\.5 is not understood"),
    (True, r"target True is not understood"),
])
def test_bad_targets_name_the_value(mnist, digits, target, match):
    with pytest.raises(AttributionError, match=match):
        cam(mnist, digits[0][:2], target=target)


def test_logits_are_used_and_the_model_is_unchanged(mnist, digits):
    x = digits[0][:4]
    head = mnist.get_layer("predictions")
    state_before = dict(vars(head))
    weights_before = [ref.to_numpy(w) for w in mnist.weights]
    kernel, bias = ref.weights(head)
    hidden = np_(keras.Model(mnist.inputs, mnist.get_layer("dropout_1").output)([x], training=False))
    res = cam(mnist, x, target=[0, 1, 2, 3])
    assert res.used_logits and res.score == "logit"
    np.testing.assert_allclose(res.scores, (hidden @ kernel + bias)[np.arange(4), [0, 1, 2, 3]], rtol=1e-4, atol=1e-4)
    probs = cam(mnist, x, target=[0, 1, 2, 3], use_logits=False)
    assert not probs.used_logits and probs.score == "probability"
    out = np_(mnist(x, training=False))
    np.testing.assert_allclose(probs.scores, out[np.arange(4), [0, 1, 2, 3]], rtol=1e-5, atol=1e-6)
    assert not np.allclose(probs.raw, res.raw)
    # nothing left behind: same instance state, same weights, still probabilities, never compiled
    assert vars(head).keys() == state_before.keys()
    assert all(vars(head)[k] is v for k, v in state_before.items())
    assert head.activation is keras.activations.softmax
    for layer in mnist.layers:
        assert "call" not in vars(layer), layer.name
    for w, before in zip(mnist.weights, weights_before):
        np.testing.assert_array_equal(ref.to_numpy(w), before)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert getattr(mnist, "optimizer", None) is None


@pytest.fixture(scope="module")
def shared_layers():
    conv, gap, dense = L.Conv2D(4, 3, activation="relu", name="conv"), L.GlobalAveragePooling2D(name="gap"), L.Dense(3, name="dense")
    plain = keras.Sequential([keras.Input((7, 7, 2)), conv, gap, dense], name="plain")
    return plain, conv, gap, dense


@pytest.mark.parametrize("final", ["softmax_layer", "activation_layer"])
def test_a_final_softmax_layer_is_bypassed(shared_layers, final):
    plain, conv, gap, dense = shared_layers
    last = L.Softmax(name="sm") if final == "softmax_layer" else L.Activation("softmax", name="sm")
    model = keras.Sequential([keras.Input((7, 7, 2)), conv, gap, dense, last], name=final)
    x = np.random.default_rng(0).uniform(size=(3, 7, 7, 2)).astype("float32")
    res, ref = cam(model, x, target=1), cam(plain, x, target=1)
    assert res.used_logits and res.layer == "conv"
    np.testing.assert_allclose(res.raw, ref.raw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-5, atol=1e-6)
    assert "call" not in vars(last)
    np.testing.assert_allclose(np_(model(x)).sum(axis=1), 1.0, rtol=1e-5)
