"""One resolved model, one truth: every surface states the same top-1 class, name and probability.

For each zoo model, the same image files go through ``predict()``, ``activations()``, ``convscope cam``,
the report, the explorer's ``/api/predict`` and ``scan``; each must name the same class with the same
probability (to 0.005). The scan's statistics must equal the API's activations of the same files.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

import convscope
from convscope.models.zoo import sample_images
from convscope.present.cli import main

ZOO = {
    "mnist-cnn": {"layer": "conv_1", "files": 3},
    "efficientnet-lite0": {"layer": "top_activation", "files": 2},
}


@pytest.fixture(scope="module", params=sorted(ZOO))
def case(request, tmp_path_factory):
    name = request.param
    folder = tmp_path_factory.mktemp(name) / "images"
    folder.mkdir()
    files = []
    for stem, picture in sample_images(name)[-ZOO[name]["files"]:]:
        path = folder / (f"{stem}.png" if picture.shape[-1] == 1 else f"{stem}.jpg")
        Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(path)
        files.append(path)
    files.sort(key=lambda p: p.name)
    return name, folder, files, convscope.predict(name, [str(f) for f in files])


def _parse(text: str) -> tuple[int, float]:
    """``"967 espresso (85.1%)"`` -> ``(967, 0.851)``."""
    m = re.match(r"(\d+)\b.*?\((\d+(?:\.\d+)?)%\)", text)
    assert m, text
    return int(m.group(1)), float(m.group(2)) / 100


def test_predict_and_activations_agree(case):
    name, _, files, preds = case
    out = convscope.activations(name, [str(f) for f in files], layers=[-1])
    probs = next(iter(out.values()))
    for pred, row in zip(preds, probs):
        assert pred.kind == "probability" and pred.best is not None
        assert pred.best.index == int(np.argmax(row))
        assert pred.best.value == pytest.approx(float(row.max()), abs=1e-6)
        if name == "efficientnet-lite0":
            assert pred.best.name and pred.best.name != str(pred.best.index)  # ImageNet names, not bare ids


def test_cam_command_says_the_same(case, tmp_path, capsys):
    name, _, files, preds = case
    assert main(["cam", name, *map(str, files), "--out", str(tmp_path / "cam")]) == 0
    lines = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()
             if ": " in line and not line.startswith("gradcam")}
    for f, pred in zip(files, preds):
        index, prob = _parse(lines[f.stem])
        assert index == pred.best.index and prob == pytest.approx(pred.best.value, abs=0.005)
        assert lines[f.stem].startswith(pred.best.label())


def test_report_says_the_same(case):
    from convscope.present.report import build_report

    name, _, files, preds = case
    report = build_report(name, [str(f) for f in files], layers=[ZOO[name]["layer"]], cam=False)
    for entry, pred in zip(report.content.inputs, preds):
        assert entry.prediction == pred.headline()
        index, prob = _parse(entry.prediction.removeprefix("predicted "))
        assert index == pred.best.index and prob == pytest.approx(pred.best.value, abs=0.005)


def test_explorer_api_predict_says_the_same(case):
    from starlette.testclient import TestClient

    from convscope.present.web.app import create_app
    from convscope.present.web.server import build_explorer

    name, folder, files, preds = case
    explorer = build_explorer(name, images=folder)
    by_name = {e["name"]: e["id"] for e in explorer.gallery.list()}
    with TestClient(create_app(explorer), base_url="http://127.0.0.1") as client:
        for f, pred in zip(files, preds):
            body = client.get("/api/predict", params={"image": by_name[f.name]}).json()
            assert body["headline"] == pred.headline()
            assert body["top"][0]["index"] == pred.best.index
            assert body["top"][0]["score"] == pytest.approx(pred.best.value, abs=0.005)
    assert explorer.summary()["preprocess"] == explorer.resolved.preprocess.describe(explorer.gallery.spec)


def test_scan_says_the_same_and_its_statistics_are_the_apis(case):
    from convscope.scan import scan

    name, folder, files, preds = case
    layer = ZOO[name]["layer"]
    result = scan(name, folder, layers=[layer], top_k=1)
    assert result.predictions is not None
    for row, pred in enumerate(preds):
        index, prob = _parse(result.predictions.text(row))
        assert index == pred.best.index and prob == pytest.approx(pred.best.value, abs=0.005)
    acts = convscope.activations(name, [str(f) for f in files], layers=[layer])[layer].astype(np.float64)
    stats = result[layer]
    flat = acts.reshape(-1, acts.shape[-1])
    np.testing.assert_allclose(stats.mean, flat.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.max, flat.max(axis=0), rtol=1e-6, atol=1e-6)


def test_resolved_model_is_shared_and_carries_its_own_preprocessing():
    a = convscope.resolve("efficientnet-lite0")
    b = convscope.resolve("efficientnet-lite0")
    assert a.model is b.model  # built once per process
    assert a.preprocess.mean == pytest.approx((127 / 255,) * 3) and a.class_names[967] == "espresso"
    m = convscope.resolve("mnist-cnn")
    assert m.preprocess.value_range == (0.0, 1.0) and m.class_names == tuple(str(d) for d in range(10))
    assert "\n" not in repr(a) and len(repr(a)) < 200
