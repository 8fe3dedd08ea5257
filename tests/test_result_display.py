"""Every result of the public API has a one-line repr (no array contents) and an escaped ``_repr_html_``.

The results are made by the real functions on a tiny model, then given the name ``<script>...`` where
their layer (or model, or objective) name goes -- TensorFlow refuses such a layer name, but a name read
from a file, a zoo port or another backend can hold anything. The HTML must show it as text, never as markup.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import numpy as np
import pytest
from PIL import Image

EVIL = "<script>alert(1)<script>"  # Keras refuses "/" in names, so no closing tag
REPR_MAX = 200


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ], name="tiny")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).random((12, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def results(tiny, x) -> dict[str, object]:
    from convscope.api import load_inputs_for
    from convscope.attribution import cam
    from convscope.data.convert import prepare_image
    from convscope.data.spec import InputSpec
    from convscope.featvis.optimize import maximize_channels
    from convscope.models.inspect import inspect_model
    from convscope.scan import scan

    info = inspect_model(tiny)
    info = dataclasses.replace(info, name=EVIL, layers=tuple(
        dataclasses.replace(row, path=EVIL) if row.path == "conv" else row for row in info.layers))
    scanned = scan(tiny, x, layers=["conv"], top_k=3, crops=False)
    stats = dataclasses.replace(scanned["conv"], key=EVIL)
    manifest = {**scanned.manifest, "model": {**scanned.manifest.get("model", {}), "name": EVIL}}
    scanned = dataclasses.replace(scanned, manifest=manifest, layers={EVIL: stats})
    picture = (np.random.default_rng(1).random((8, 8)) * 255).astype(np.uint8)
    return {
        "ModelInfo": info,
        "LayerInfo": info.find(EVIL),
        "CamResult": dataclasses.replace(cam(tiny, x, "gradcam", layer="conv"), layer=EVIL),
        "MaxResult": dataclasses.replace(maximize_channels(tiny, "conv", "2", steps=2), objective=EVIL),
        "ScanResult": scanned,
        "LayerStats": stats,
        "Inputs": load_inputs_for(tiny, x),
        "PreparedImage": prepare_image(picture, InputSpec((8, 8, 1))),
    }


NAMES = ["ModelInfo", "LayerInfo", "CamResult", "MaxResult", "ScanResult", "LayerStats", "Inputs", "PreparedImage"]
WITH_HTML = ["ModelInfo", "CamResult", "MaxResult", "ScanResult", "LayerStats"]


@pytest.mark.parametrize("name", NAMES)
def test_repr_is_one_short_line_without_array_contents(results, name: str) -> None:
    obj = results[name]
    text = repr(obj)
    assert type(obj).__name__ == name and text.startswith(f"{name}(") and text.endswith(")")
    assert "\n" not in text and len(text) <= REPR_MAX, text
    assert "array(" not in text and "[[" not in text


@pytest.mark.parametrize("name", WITH_HTML)
def test_repr_html_escapes_names(results, name: str) -> None:
    html = results[name]._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;script&gt;" in html


def test_cam_repr_states_the_facts_and_html_shows_the_maps(results, x) -> None:
    result = results["CamResult"]
    text = repr(result)
    for part in ("method='gradcam'", f"layer={EVIL!r}", "maps=12x8x8", "raw=12x6x6", "score=", "upsample="):
        assert part in text, text
    html = result._repr_html_()
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 8 and "first 8 maps of 12 shown" in html  # capped; the table lists all 12 targets
    from convscope.render.colormap import apply_colormap

    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(pngs[0]))))
    np.testing.assert_array_equal(first, apply_colormap(result.maps[0], "magma"))


def test_scan_repr_stays_short_with_many_layers(results) -> None:
    from convscope.scan.result import ScanResult

    scanned = results["ScanResult"]
    many = ScanResult(manifest=scanned.manifest, layers={f"block{i}/conv{i}": scanned[EVIL] for i in range(300)})
    text = repr(many)
    assert len(text) <= REPR_MAX and "(300)" in text and "\n" not in text
    assert many._repr_html_().count("<tr>") == 300 + 1 + 4  # one row per layer, a header, 4 facts


def test_model_info_html_holds_the_printed_layer_table(results) -> None:
    from convscope.models.inspect import format_table

    info = results["ModelInfo"]
    html = info._repr_html_()
    import html as html_lib

    assert html_lib.escape(format_table(info), quote=True) in html
    assert "params=" in repr(info) and "layers=3" in repr(info)
