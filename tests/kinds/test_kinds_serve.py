"""The explorer (``convscope serve``) on every model kind, through Starlette's test client: every viewable
layer's grid answers, activations equal Keras, predictions of per-pixel and multi-output models."""

from __future__ import annotations

import io
import warnings

import keras
import numpy as np
import pytest
from models import HEAD_CLASSES, KINDS, SEG_CLASSES, reference
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from convscope.models.tree import layer_tree
from convscope.present.web.app import create_app
from convscope.present.web.server import build_explorer

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 in its test client; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ATOL = 1e-5


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("kind", KINDS)
def test_every_viewable_layer_answers_and_predictions_fit_the_output(kinds, kind):
    k = kinds[kind]
    explorer = build_explorer(str(k.path), images=k.images)
    with TestClient(create_app(explorer), base_url="http://127.0.0.1") as client:
        summary = client.get("/api/model").json()
        image = client.get("/api/images").json()["images"][0]["id"]
        viewable = [row for row in summary["layers"] if row["viewable"]]
        assert summary["default_layer"] in {row["key"] for row in viewable}
        for row in viewable:
            meta = client.get("/api/grid", params={"image": image, "layer": row["key"]})
            png = client.get("/api/grid.png", params={"image": image, "layer": row["key"]})
            assert meta.status_code == 200 and png.status_code == 200, (row["key"], meta.text[:200])
            assert decode(png.content).shape[:2] == (meta.json()["height"], meta.json()["width"])
            if row["spatial"]:  # a channel over the input: 2-D maps and token layers drawn as maps
                one = client.get("/api/channel", params={"image": image, "layer": row["key"], "channel": 0})
                assert one.status_code == 200, (row["key"], one.text[:200])
        pred = client.get("/api/predict", params={"image": image}).json()

    x = explorer.gallery.prepared(image).x[None]
    out = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(k.model(x))]
    acts = explorer.activations(image)
    default = explorer.layer(summary["default_layer"])
    node = next(n.layer for n in layer_tree(k.model) if n.path == default["path"])
    try:
        np.testing.assert_allclose(acts[default["key"]], reference(k.model, x, node)[0], atol=ATOL, rtol=0)
    except LookupError:
        assert kind == "hub_vit"  # the patch conv inside a KerasHub layer: see test_kinds_activations
    if kind in ("unet", "deeplab"):  # per-pixel classes: the share of pixels each class wins
        winners = np.argmax(out[0][0], axis=-1)
        shares = np.bincount(winners.ravel(), minlength=SEG_CLASSES) / winners.size
        assert pred["available"] and pred["kind"] == "pixels" and pred["n_classes"] == SEG_CLASSES
        assert pred["top"][0]["index"] == int(np.argmax(shares))
        assert pred["top"][0]["score"] == pytest.approx(shares.max()) and "of pixels" in pred["headline"]
    elif kind.startswith("two_heads"):  # every head, in the order the model declares them; "cls" speaks first
        assert [h["name"] for h in pred["heads"]] == ["cls", "box"]
        assert pred["name"] == "cls" and pred["kind"] == "probability" and pred["n_classes"] == HEAD_CLASSES
        cls = k.model(x)["cls"] if kind == "two_heads" else k.model(x)[0]
        assert pred["top"][0]["index"] == int(np.argmax(keras.ops.convert_to_numpy(cls)[0]))
        assert pred["heads"][1]["kind"] == "score" and pred["heads"][1]["n_classes"] == 4
    elif kind == "regression":
        assert pred["kind"] == "score" and pred["headline"] == f"output {float(out[0][0, 0]):.4g}"
    else:
        assert pred["kind"] == "probability" and pred["top"][0]["index"] == int(np.argmax(out[0][0]))
