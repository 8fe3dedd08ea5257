"""Grad-CAM against a plain ``tf.GradientTape`` implementation on the MNIST CNN (TensorFlow only).

The reference is the textbook one: a functional sub-model maps the input to the ``conv_1`` output ``A``, a
second one maps ``A`` through the rest of the network to the hidden features, the logits are formed by
hand from the ``predictions`` kernel (softmax left out), and ``ReLU(sum_k mean_ij(dS/dA^k) A^k)`` is
computed in TensorFlow. Criterion: Pearson r >= 0.999 per image (and the raw maps agree to 1e-4 of their
range). The other backends are covered by test_attribution_backends.py.

(A single sub-model with outputs ``[conv_1 output, later output]`` — the Keras 2 tutorial pattern — gives
``None`` gradients with respect to its first output under Keras 3.15 / TF 2.21, hence the split.)
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope.attribution import cam  # noqa: E402
from convscope.models.load import load_model  # noqa: E402


@pytest.mark.tf_only
def test_gradcam_matches_gradient_tape(digits):
    import tensorflow as tf

    x, _ = digits
    model = load_model("mnist-cnn")  # a private copy: the reference adds call nodes to its layers
    body = keras.Model(model.inputs, model.get_layer("conv_1").output)
    a_in = keras.Input((24, 24, 64))
    h = a_in
    for name in ("pool", "dropout_0", "flatten", "dense_0", "dropout_1"):
        h = model.get_layer(name)(h)
    head = keras.Model(a_in, h)
    kernel, bias = model.get_layer("predictions").get_weights()
    act = body(tf.constant(x), training=False)
    with tf.GradientTape() as tape:
        tape.watch(act)
        logits = head(act, training=False) @ kernel + bias
        top = tf.argmax(logits, axis=1)
        score = tf.reduce_sum(tf.gather(logits, top, batch_dims=1))
    grads = tape.gradient(score, act)
    expected = tf.nn.relu(tf.einsum("nhwc,nc->nhw", act, tf.reduce_mean(grads, axis=(1, 2)))).numpy()

    res = cam(model, x)
    assert res.layer == "conv_1" and res.used_logits and res.targets == tuple(int(t) for t in top.numpy())
    for i in range(len(x)):
        r = np.corrcoef(res.raw[i].ravel(), expected[i].ravel())[0, 1]
        assert r >= 0.999, f"image {i}: Pearson r = {r:.5f}"
        assert np.abs(res.raw[i] - expected[i]).max() <= 1e-4 * np.ptp(expected[i])
