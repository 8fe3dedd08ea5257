"""Each CAM method against an independent numpy reference on tiny hand-checkable models (every backend).

Model 1 — conv (3x3 'same', ReLU) -> GAP -> Dense(softmax), fixed weights. The logit is
``S_c = sum_k W[k, c] mean_ij A_ij^k + b_c``, so ``dS_c/dA_ij^k = W[k, c] / (h*w)`` exactly: Grad-CAM is
CAM with weights ``W[:, c] / (h*w)``, and Grad-CAM++ / LayerCAM follow from that constant gradient.
Score-CAM is recomputed from the numpy forward pass of the whole model (masks = min-max scaled channel
maps; 'same' padding means no upsampling).

Model 2 — conv 'same' -> conv 'valid' (the target, 4x4 of a 6x6 input) -> Flatten -> Dense(ReLU) -> Dense.
Its gradient at the target layer varies over positions; it is derived by hand: ``dS_c/dA =
W1 @ (relu'(z) * W2[:, c])`` reshaped. This model also checks the receptive-field placement of the
upsampled map. Tolerances: rtol 1e-5 of the reference scale (float32 vs float64).
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

import attrib_refs as ref  # noqa: E402

from convscope.attribution import cam  # noqa: E402
from convscope.render.overlay import resize_map  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.uniform(0, 1, size=(3, 6, 6, 2)).astype("float32")
TARGETS = [0, 2, 3]


@pytest.fixture(scope="module")
def gap_model():
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, padding="same", activation="relu", name="conv"),
                              L.GlobalAveragePooling2D(name="gap"), L.Dense(4, activation="softmax", name="head")])
    rng = np.random.default_rng(1)
    weights = {"conv": (rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3) * 0.2),
               "head": (rng.normal(size=(3, 4)) * 2, rng.normal(size=4) * 0.1)}
    for name, ws in weights.items():
        model.get_layer(name).set_weights([w.astype("float32") for w in ws])
    return model, weights


def gap_forward(weights, x):
    a = ref.relu(ref.conv2d(x, *weights["conv"], "same"))
    return a, a.mean(axis=(1, 2)) @ weights["head"][0] + weights["head"][1]


def gap_grad(weights, a, targets):
    w = weights["head"][0][:, targets].T  # (N, C)
    return np.broadcast_to(w[:, None, None, :] / (a.shape[1] * a.shape[2]), a.shape)


@pytest.mark.parametrize("method,formula", [("gradcam", ref.gradcam), ("gradcam++", ref.gradcampp),
                                            ("layercam", ref.layercam)])
def test_gradient_cams_on_gap_model(gap_model, method, formula):
    model, weights = gap_model
    a, logits = gap_forward(weights, X)
    expected = formula(a, gap_grad(weights, a, TARGETS))
    res = cam(model, X, method, target=TARGETS)
    ref.close(res.raw, expected)
    ref.close(res.maps, ref.minmax(expected), rtol=1e-4)
    ref.close(res.scores, logits[np.arange(3), TARGETS])
    assert res.targets == tuple(TARGETS) and res.layer == "conv" and res.used_logits and res.score == "logit"


def test_gradcam_is_cam_on_gap_model(gap_model):
    """The analytic reduction stated by Selvaraju et al.: Grad-CAM = CAM with weights W[:, c] / (h*w)."""
    model, weights = gap_model
    a, logits = gap_forward(weights, X)
    top = logits.argmax(axis=1)
    cam_map = ref.relu(np.einsum("nhwk,kn->nhw", a, weights["head"][0][:, top]) / 36.0)
    res = cam(model, X)  # top-1
    assert res.targets == tuple(int(t) for t in top)
    ref.close(res.raw, cam_map)


@pytest.mark.parametrize("max_channels", [256, 2])
def test_scorecam_on_gap_model(gap_model, max_channels):
    model, weights = gap_model
    a, _ = gap_forward(weights, X)
    def probs(x):
        return ref.softmax(gap_forward(weights, x)[1])

    base = probs(np.zeros_like(X))
    expected = np.zeros(a.shape[:3])
    for i, c in enumerate(TARGETS):
        order = np.argsort(-a[i].mean(axis=(0, 1)), kind="stable")[:max_channels]
        for k in order:
            mask = ref.minmax(a[i:i + 1, :, :, k])[0]
            weight = probs(X[i:i + 1] * mask[..., None])[0, c] - base[i, c]
            expected[i] += weight * a[i, :, :, k]
    expected = ref.relu(expected)
    res = cam(model, X, "scorecam", target=TARGETS, max_channels=max_channels, batch_size=4)
    ref.close(res.raw, expected)
    ref.close(res.scores, probs(X)[np.arange(3), TARGETS])
    assert res.score == "probability" and not res.used_logits


@pytest.fixture(scope="module")
def deep_model():
    inp = keras.Input((6, 6, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inp)
    h = L.Conv2D(2, 3, activation="relu", name="c2")(h)
    h = L.Dense(5, activation="relu", name="d1")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, L.Dense(4, name="out")(h), name="deep")
    rng = np.random.default_rng(3)
    weights = {"c1": (rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3) * 0.1),
               "c2": (rng.normal(size=(3, 3, 3, 2)) * 0.5, rng.normal(size=2) * 0.1 + 0.3),
               "d1": (rng.normal(size=(32, 5)), rng.normal(size=5) * 0.1 + 0.5),
               "out": (rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1)}
    for name, ws in weights.items():
        model.get_layer(name).set_weights([w.astype("float32") for w in ws])
    return model, weights


def deep_grad(weights, x, targets):
    a = ref.relu(ref.conv2d(ref.relu(ref.conv2d(x, *weights["c1"], "same")), *weights["c2"], "valid"))
    z = a.reshape(len(a), -1) @ weights["d1"][0] + weights["d1"][1]
    g = np.stack([weights["d1"][0] @ ((z[i] > 0) * weights["out"][0][:, c]) for i, c in enumerate(targets)])
    return a, g.reshape(a.shape)


@pytest.mark.parametrize("method,formula", [("gradcam", ref.gradcam), ("gradcam++", ref.gradcampp),
                                            ("layercam", ref.layercam)])
def test_gradient_cams_with_position_dependent_gradients(deep_model, method, formula):
    model, weights = deep_model
    a, g = deep_grad(weights, X, TARGETS)
    assert np.ptp(g[..., 0]) > 0  # the gradient really varies over positions
    expected = formula(a, g)
    res = cam(model, X, method, layer="c2", target=TARGETS)
    ref.close(res.raw, expected)
    assert res.score == "output" and not res.used_logits  # no softmax in this model


def test_upsampling_uses_the_receptive_field_grid(deep_model):
    """c2 (valid 3x3 after same 3x3) has 4 positions centred on input pixels 1..4 of 6."""
    model, _ = deep_model
    res = cam(model, X, "layercam", layer="c2", target=TARGETS)
    assert res.upsample == "grid" and res.maps.shape == (3, 6, 6)
    scaled = ref.minmax(res.raw.astype(np.float64))
    ref.close(res.maps[:, 1:5, 1:5], scaled)  # centres land exactly on the map values
    ref.close(res.maps[:, 0, 1:5], scaled[:, 0])  # borders take the edge value
    stretched = cam(model, X, "layercam", layer="c2", target=TARGETS, upsample="stretch")
    assert stretched.upsample == "stretch"
    pil = np.stack([resize_map(r, 6, 6) for r in stretched.raw])  # Pillow's bilinear, an independent resize
    ref.close(stretched.maps, ref.minmax(pil.astype(np.float64)), rtol=1e-4)
