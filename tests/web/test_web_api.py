"""The explorer's JSON + PNG API on the bundled MNIST CNN: contents checked against numpy references."""

from __future__ import annotations

import io
import threading

import httpx
import numpy as np
import pytest
from PIL import Image

from convscope.models.zoo import sample_digits
from convscope.present.web import plugins
from convscope.render.mosaic import INACTIVE_COLOR, SEP_COLOR


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_model_summary_lists_layers_with_shapes_and_fields(client):
    r = client.get("/api/model")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "mnist-cnn" and body["input_shape"] == [28, 28, 1]
    rows = {row["path"]: row for row in body["layers"]}
    assert list(rows) == ["conv_0", "conv_1", "pool", "dropout_0", "flatten", "dense_0", "dropout_1", "predictions"]
    assert rows["conv_1"]["output_shape"] == [None, 24, 24, 64] and rows["conv_1"]["rf_size"] == [5, 5]
    assert rows["pool"]["rf_jump"] == [2, 2] and rows["conv_1"]["spatial"] and not rows["dense_0"]["spatial"]
    assert all(row["viewable"] for row in body["layers"])
    assert body["class_names"] == [str(d) for d in range(10)]
    assert set(body["features"]) >= {"cam", "filters", "cam_methods"}
    assert body["norms"][0] == "channel"
    assert body["default_layer"] == "conv_0" and body["groups"] == []  # conv_0, conv_1: no block prefix


def test_images_are_the_bundled_digits_and_thumbnails_are_what_the_model_sees(client):
    images = client.get("/api/images").json()["images"]
    x, y = sample_digits()
    samples = [im for im in images if im["source"] == "sample"]
    assert [im["label"] for im in samples] == y.tolist()
    r = client.get("/api/images/s3.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    thumb = decode(r.content)
    assert thumb.shape == (28, 28, 3)
    np.testing.assert_allclose(thumb[..., 0] / 255.0, x[3, ..., 0], atol=1 / 255 + 1e-6)


def test_grid_json_matches_png_and_top_channels_follow_the_activation(client, explorer):
    params = {"image": "s5", "layer": "conv_1", "channels": "top16:max", "norm": "layer", "cmap": "viridis"}
    meta = client.get("/api/grid", params=params).json()
    png = client.get("/api/grid.png", params=params)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    picture = decode(png.content)
    assert picture.shape[:2] == (meta["height"], meta["width"])
    act = explorer.activations("s5")["conv_1"]
    expected = np.argsort(-act.reshape(-1, 64).max(axis=0), kind="stable")[:16]
    assert meta["channels"] == expected.tolist()
    assert meta["norm"] == "layer" and meta["cmap"] == "viridis" and meta["n_channels"] == 64
    assert meta["value_range"][1] == pytest.approx(float(act.max()), rel=1e-6)
    assert meta["geometry"]["rows"] * meta["geometry"]["cols"] >= 16
    zero = np.flatnonzero(~act.reshape(-1, 64).any(axis=0)).tolist()  # zero on this image: inactive, not dead
    assert meta["inactive"] == zero and "dead" not in meta


def test_the_grid_picture_is_bare_and_its_words_are_json(client, explorer):
    params = {"image": "s2", "layer": "conv_1", "norm": "layer", "cmap": "magma", "aspect": "1.5"}
    meta = client.get("/api/grid", params=params).json()
    picture = decode(client.get("/api/grid.png", params=params).content)
    g = meta["geometry"]
    assert meta["labels"] is False and g["top"] == 0 and picture.shape[:2] == (meta["height"], meta["width"])
    assert picture.shape[:2] == (g["sep"] + g["rows"] * g["cell_h"], g["sep"] + g["cols"] * g["cell_w"])
    assert 1.2 <= g["cols"] * g["cell_w"] / (g["rows"] * g["cell_h"]) <= 1.9  # the screen's shape, no label strip
    assert "conv_1" in meta["caption"] and meta["channels"] == list(range(64))
    act = explorer.activations("s2")["conv_1"]
    legend = meta["legend"]
    assert legend["cmap"] == "magma" and len(legend["colors"]) == 17
    assert legend["lo"] <= float(act.min()) + 1e-6 and legend["hi"] == pytest.approx(float(act.max()), rel=1e-6)
    # No caption strip: the first row is the separator line (red over inactive channels' frames).
    assert {tuple(c) for c in picture[0]} <= {tuple(SEP_COLOR), tuple(INACTIVE_COLOR)} and g["cell_h"] == g["cell_w"]
    assert client.get("/api/grid", params={**params, "norm": "channel"}).json()["legend"] is None


def test_non_spatial_layers_render_too(client):
    meta = client.get("/api/grid", params={"image": "s0", "layer": "dense_0"}).json()
    assert meta["kind"] == "vector" and meta["geometry"] is None and meta["shape"] == [128]
    assert client.get("/api/grid.png", params={"image": "s0", "layer": "predictions"}).status_code == 200


def test_gallery_adds_named_pictures_prepared_like_files(explorer):
    from convscope.present.web.gallery import Gallery

    gallery = Gallery(explorer.gallery.spec)
    photo = np.zeros((40, 30, 3), np.uint8)
    photo[:20] = 255
    gallery.add_pictures([("top white", photo), ("gray", np.full((28, 28), 128, np.uint8))])
    assert [(im["id"], im["name"], im["source"]) for im in gallery.list()] == [
        ("s0", "top white", "sample"), ("s1", "gray", "sample")]
    x = gallery.prepared("s0").x
    assert x.shape == (28, 28, 1) and x[0, 14, 0] == pytest.approx(1.0) and x[-1, 14, 0] == pytest.approx(0.0)
    assert gallery.prepared("s1").x[..., 0] == pytest.approx(np.full((28, 28), 128 / 255), abs=1e-6)


def test_channel_view_statistics_match_numpy(client, explorer):
    meta = client.get("/api/channel", params={"image": "s2", "layer": "pool", "channel": 7}).json()
    ch = explorer.activations("s2")["pool"][..., 7].astype(np.float64)
    assert meta["min"] == pytest.approx(ch.min()) and meta["max"] == pytest.approx(ch.max())
    assert meta["mean"] == pytest.approx(ch.mean()) and meta["std"] == pytest.approx(ch.std())
    y, x = np.unravel_index(int(np.argmax(ch)), ch.shape)
    assert meta["argmax"] == [y, x]
    assert meta["peak_center"] == [2.5 + 2 * y, 2.5 + 2 * x]  # pool: start 2.5, jump 2
    assert (meta["legend"]["lo"], meta["legend"]["hi"]) == pytest.approx((ch.min(), ch.max()), rel=1e-5, abs=1e-6)
    png = client.get("/api/channel.png", params={"image": "s2", "layer": "pool", "channel": 7, "alpha": 0.3})
    assert png.status_code == 200 and decode(png.content).shape == (224, 224, 3)  # 8x the digit, no caption


def test_prediction_top5_matches_the_model(client, explorer):
    x, y = sample_digits()
    probs = np.asarray(explorer.model(x[:4], training=False))
    for i in range(4):
        body = client.get("/api/predict", params={"image": f"s{i}"}).json()
        assert body["available"] and body["kind"] == "probability" and len(body["top"]) == 5
        assert body["top"][0]["index"] == int(np.argmax(probs[i])) and body["top"][0]["label"] == str(np.argmax(probs[i]))
        assert body["top"][0]["score"] == pytest.approx(float(probs[i].max()), abs=1e-5)
        assert body["true_label"] == int(y[i])


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"image": "s0", "layer": "conv_0", "norm": "loud"}, 400, "loud"),
    ({"image": "s0", "layer": "conv_0", "cmap": "jet"}, 400, "jet"),
    ({"image": "s0", "layer": "conv_0", "channels": "top16:median"}, 400, "median"),
    ({"image": "s0", "layer": "conv_0", "channels": "0,99"}, 400, "99"),
    ({"image": "s0", "layer": "conv_9"}, 404, "conv_9"),
    ({"image": "s999", "layer": "conv_0"}, 404, "s999"),
    ({"layer": "conv_0"}, 400, "image"),
])
def test_bad_requests_answer_json_that_echoes_the_value(client, params, status, words):
    for path in ("/api/grid", "/api/grid.png"):
        r = client.get(path, params=params)
        assert r.status_code == status and r.headers["content-type"] == "application/json"
        assert words in r.json()["error"] and r.json()["status"] == status


def test_bad_channel_requests(client):
    for params, words in [({"channel": 64}, "0..63"), ({"channel": "x"}, "integer"),
                          ({"layer": "dense_0", "channel": 0}, "2-D"), ({"alpha": 3, "channel": 0}, "alpha")]:
        r = client.get("/api/channel", params={"image": "s0", "layer": "conv_1", **params})
        assert r.status_code == 400 and words in r.json()["error"], r.json()
    assert client.get("/api/model").status_code == 200  # still serving


def test_unknown_routes_and_methods_are_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "no such page" in r.json()["error"]
    r = client.delete("/api/images")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_activations_are_computed_once_per_image_and_pictures_cached(explorer):
    before = explorer.cache_stats()[0]["misses"]
    threads = [threading.Thread(target=explorer.grid, args=("s11", key, _opts()))
               for key in ("conv_0", "conv_1", "pool") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert explorer.cache_stats()[0]["misses"] == before + 1  # one forward pass for 12 concurrent views
    a = explorer.grid("s11", "conv_0", _opts())
    assert explorer.grid("s11", "conv_0", _opts()) is a


def _opts():
    from convscope.present.web.explorer import ViewOptions

    return ViewOptions.parse("channel", None, None)


def test_the_extractor_is_the_cached_one_and_the_model_is_untouched(explorer, client):
    from convscope.api import get_extractor

    paths = [n.path for n in explorer.extractor.nodes]
    assert get_extractor(explorer.model, paths, include_output=True) is explorer.extractor
    model = explorer.model
    weights = [w.copy() for w in model.get_weights()]
    config, calls = model.get_config(), [type(layer).call for layer in model.layers]
    client.get("/api/grid", params={"image": "s9", "layer": "conv_0"})
    client.get("/api/predict", params={"image": "s9"})
    assert model.get_config() == config and not model.compiled
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert [type(layer).call for layer in model.layers] == calls
    assert all("call" not in vars(layer) for layer in model.layers)


def test_cam_and_filter_views_are_served(client, explorer):
    from convscope.render.filters import render_filters

    features = client.get("/api/model").json()["features"]
    assert features["cam"] and features["filters"]
    assert plugins.has_module("convscope.attribution") and plugins.has_module("convscope.render.filters")
    r = client.get("/api/filters.png", params={"layer": "conv_0"})
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    meta = client.get("/api/filters", params={"layer": "conv_0"}).json()
    assert meta["caption"].startswith("conv_0  Conv2D kernel (3, 3, 1, 32)") and meta["legend"] is None
    framed = render_filters(explorer.model.get_layer("conv_0"))  # the CLI's picture: caption strip on top
    bare = decode(r.content)
    assert bare.shape[1] <= framed.image.shape[1] and bare.shape[0] < framed.image.shape[0]
    np.testing.assert_array_equal(bare, np.asarray(framed.image)[-bare.shape[0]:, : bare.shape[1]])
    meta = client.get("/api/cam", params={"image": "s0", "method": "gradcam"}).json()
    assert meta["method"] == "gradcam" and meta["target"] == 0
    assert meta["legend"]["cmap"] == "magma" and meta["legend"]["lo"] < meta["legend"]["hi"]
    png = client.get("/api/cam.png", params={"image": "s0", "target": 3})
    assert png.status_code == 200 and decode(png.content).shape == (224, 224, 3)  # the picture alone, no words
    r = client.get("/api/cam.png", params={"image": "s0", "method": "magic"})
    assert r.status_code == 400 and "magic" in r.json()["error"]


def test_health_reports_caches(client):
    body = client.get("/api/health").json()
    assert body["ok"] and {c["name"] for c in body["caches"]} == {"activations", "pictures"}


def test_keep_alive_requests_are_not_delayed_by_nagle(live_server):
    import socket
    import time

    from convscope.present.web.server import bind

    sock = bind("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY on accepted sockets only then
    sock.close()
    times = []
    with httpx.Client(base_url=live_server.url) as c:
        for _ in range(12):
            t0 = time.perf_counter()
            assert c.get("/api/health").status_code == 200
            times.append(time.perf_counter() - t0)
    assert float(np.median(times[2:])) < 0.02, times  # a delayed ACK would make every request ~40 ms


def test_nested_models_reused_layers_and_free_input_sizes(tmp_path):
    import keras

    from convscope.api import model_spec
    from convscope.present.web.app import create_app
    from convscope.present.web.explorer import Explorer
    from convscope.present.web.gallery import Gallery
    from convscope.present.web.server import start_in_thread

    L = keras.layers
    inp = keras.Input((None, None, 3))
    backbone = keras.Sequential([L.Conv2D(4, 3, name="conv_a"), L.ReLU(name="relu_a")], name="backbone")
    shared = L.Conv2D(4, 3, padding="same", name="shared")
    h = shared(shared(backbone(inp)))
    model = keras.Model(inp, L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(h)))
    gallery = Gallery(model_spec(model))
    gallery.add_arrays(np.random.default_rng(0).random((2, 32, 40, 3), dtype=np.float32))
    handle = start_in_thread(create_app(Explorer(model, gallery, input_shape=(20, 20, 3))))
    try:
        with httpx.Client(base_url=handle.url) as c:
            keys = [row["key"] for row in c.get("/api/model").json()["layers"]]
            assert keys == [None, "backbone/conv_a", "backbone/relu_a", "shared@0", "shared@1",
                            "gap", "head"]
            meta = c.get("/api/grid", params={"image": "s1", "layer": "shared@1", "aspect": "2"}).json()
            assert meta["shape"] == [30, 38, 4] and meta["geometry"]["rows"] * meta["geometry"]["cols"] >= 4  # own size
            stats = c.get("/api/channel", params={"image": "s0", "layer": "backbone/conv_a", "channel": 3}).json()
            assert stats["rf_size"] == [3, 3] and stats["peak_center"] == [1 + stats["argmax"][0], 1 + stats["argmax"][1]]
            pred = c.get("/api/predict", params={"image": "s0"}).json()
            assert pred["kind"] == "score" and pred["top"][0]["label"] in "012"  # logits are shown raw, not softmaxed
    finally:
        handle.stop()
