"""What a model's outputs say, for outputs that are not one class vector: per-pixel classes, several heads,
a single regression value; and the receptive field through ``Resizing`` (DeepLab's decoder)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convscope.models.inspect import inspect_model
from convscope.models.predictions import head_class_names, head_predictions, top_classes
from convscope.probe.extractor import Extractor

L = keras.layers


def test_per_pixel_classes_are_ranked_by_the_pixels_they_win():
    logits = np.zeros((4, 5, 3))
    logits[..., 2] = 1.0  # class 2 wins 20 pixels ...
    logits[0, :, 0] = 2.0  # ... but class 0 takes the first row (5), class 1 one pixel
    logits[3, 4, 1] = 3.0
    pred = top_classes(logits, ("sky", "road", "car"), k=3)
    assert pred.kind == "pixels" and [s.index for s in pred.top] == [2, 0, 1]
    assert [s.value for s in pred.top] == pytest.approx([14 / 20, 5 / 20, 1 / 20])
    assert pred.headline() == "mostly 2 car (70.0% of pixels)" and pred.shape == (4, 5, 3)
    assert top_classes(np.zeros((4, 5, 1))).kind == "none"  # one channel: a mask, shown by its range
    assert top_classes(np.zeros((7, 7, 512))).kind == "none"  # a backbone's feature map, not 512 classes


def test_heads_keep_their_order_and_class_names_go_where_they_fit():
    outputs = {"cls": np.array([0.1, 0.7, 0.2]), "box": np.array([3.0, -1.0, 0.5, 2.0])}
    names = head_class_names(outputs, ("a", "b", "c"))
    assert names == {"cls": ("a", "b", "c"), "box": None}
    preds = head_predictions(outputs, ("a", "b", "c"), k=2)
    assert list(preds) == ["cls", "box"]
    assert preds["cls"].headline() == "predicted 1 b (70.0%)" and preds["box"].kind == "score"
    assert preds["box"].top[0].name is None
    single = top_classes(np.array([-0.25]))  # a regression value, not "class 0"
    assert single.headline() == single.text() == "output -0.25"


@pytest.mark.parametrize("kind", ["dict", "list"])
def test_the_extractor_returns_every_head_in_declared_order(kind):
    inp = keras.Input((6, 6, 1))
    feat = L.GlobalAveragePooling2D()(L.Conv2D(2, 3, name="conv")(inp))
    cls, box = L.Dense(3, activation="softmax", name="cls")(feat), L.Dense(4, name="box")(feat)
    model = keras.Model(inp, {"cls": cls, "box": box} if kind == "dict" else [cls, box])
    x = np.random.default_rng(0).random((2, 6, 6, 1), dtype=np.float32)
    acts = Extractor(model, ["conv"], include_output=True)(x)
    heads = Extractor.heads(acts)
    assert list(heads) == ["cls", "box"]  # keras.tree.flatten would sort a dict: "box" first
    want = model(x)
    want = [want["cls"], want["box"]] if kind == "dict" else want
    np.testing.assert_allclose(heads["cls"], keras.ops.convert_to_numpy(want[0]), atol=1e-6)
    np.testing.assert_allclose(heads["box"], keras.ops.convert_to_numpy(want[1]), atol=1e-6)
    np.testing.assert_array_equal(acts[Extractor.OUTPUT_KEY], heads["cls"])
    assert sorted(k for k in acts if not Extractor.is_output(k)) == ["conv"]


def test_resizing_moves_the_field_like_an_upsampling_of_the_same_factor():
    def rows(up):
        inp = keras.Input((16, 16, 1))
        x = L.Conv2D(2, 3, strides=2, padding="same", name="c")(inp)
        x = up(x)
        return {r.path: r for r in inspect_model(keras.Model(inp, L.Conv2D(1, 1, name="out")(x))).layers}

    resized = rows(L.Resizing(16, 16, interpolation="bilinear", name="up"))
    upsampled = rows(L.UpSampling2D(2, interpolation="bilinear", name="up"))
    for path in ("up", "out"):
        a, b = resized[path], upsampled[path]
        assert a.rf_size == b.rf_size and a.rf_jump == b.rf_jump and a.rf_start == b.rf_start, path
        assert not a.rf_exact
    shrunk = rows(L.Resizing(4, 4, interpolation="nearest", name="up"))["up"]
    assert shrunk.rf_jump == (4, 4) and shrunk.rf_size == resized["c"].rf_size  # nearest: no spread
