"""The HTML report: content, faithfulness of the pictures, escaping, size caps, optional sections."""

from __future__ import annotations

import importlib.machinery
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reporthelp import Parsed, decode_data_uri

keras = pytest.importorskip("keras")
L = keras.layers

import convscope  # noqa: E402
from convscope.errors import ConvscopeError, OptionError  # noqa: E402
from convscope.models.load import load_model  # noqa: E402
from convscope.models.zoo import sample_digits  # noqa: E402
from convscope.present.report import build_report, describe_output, extras  # noqa: E402

PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = sample_digits()
    return x[[0, 5, 9]], y[[0, 5, 9]]


@pytest.fixture(scope="module")
def mnist_report(digits):
    return build_report("mnist-cnn", digits[0], cam=False)


def test_page_structure_anchors_and_no_external_references(mnist_report, digits):
    page = Parsed(mnist_report.html)
    assert mnist_report.html.startswith("<!DOCTYPE html>")
    assert not page.attrs("script") and "<script" not in mnist_report.html.lower()
    csp = [a for a in page.attrs("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"] and "img-src data:" in csp[0]["content"]
    # every picture is inline, every link is an in-page anchor that exists, nothing else is referenced
    srcs = [a["src"] for a in page.attrs("img")]
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = [a["href"] for a in page.attrs("a")]
    ids = page.ids
    assert len(ids) == len(set(ids)), "element ids must be unique"
    assert all(h.startswith("#") and h[1:] in ids for h in hrefs), [h for h in hrefs if h[1:] not in ids]
    assert not re.search(r"(?:src|href|action)\s*=\s*[\"']?\s*(?:https?:|//|file:)", mnist_report.html, re.IGNORECASE)
    assert not page.attrs("link") and not page.attrs("iframe")
    # a table of contents entry and an anchor per layer and per input
    toc = {a["href"] for a in page.attrs("a")}
    for entry in (*mnist_report.content.layers, *mnist_report.content.inputs):
        assert f"#{entry.anchor}" in toc and entry.anchor in ids
    assert [e.key for e in mnist_report.content.layers] == ["conv_0", "conv_1"]
    assert {"model", "inputs", "maps"} <= set(ids)


def test_layer_table_predictions_normalization_and_cap_are_stated(mnist_report, digits):
    _, y = digits
    text = " ".join(Parsed(mnist_report.html).text)
    info = convscope.inspect("mnist-cnn")
    for row in info.to_dicts():
        assert row["path"] in text
    assert "1,199,882 parameters" in text and "5x5" in text  # conv_1's receptive field
    for entry, label in zip(mnist_report.content.inputs, y):
        assert entry.prediction.startswith(f"predicted {label} (") and entry.prediction.endswith("%)")  # the bundled digits are classified right
        assert entry.top[0][0] == str(label) and len(entry.top) == 3
    assert "Normalization: channel" in text and "norm=channel" in text
    conv1 = mnist_report.content.layers[1]
    assert (conv1.n_shown, conv1.n_channels) == (32, 64)
    assert "32 of 64 channels shown (capped)" in text and "At most 32 channels per layer" in text
    assert mnist_report.nbytes < 400_000


def test_inline_pictures_are_exactly_the_rendered_grids(mnist_report, digits):
    x, _ = digits
    acts = convscope.activations("mnist-cnn", x, layers=["conv_0", "conv_1"])
    for j, key in enumerate(["conv_0", "conv_1"]):
        for i in range(len(x)):
            picture = mnist_report.content.layers[j].grids[i]
            expected = convscope.render_activation(acts[key][i], layer=key, max_channels=32)
            assert np.array_equal(decode_data_uri(picture.data_uri()), expected.image)
            assert picture.caption == expected.caption
            assert f'src="{picture.data_uri()}"' in mnist_report.html
    display = decode_data_uri(mnist_report.content.inputs[0].picture.data_uri())
    assert np.array_equal(display[..., 0], np.round(x[0, :, :, 0] * 255).astype(np.uint8))


def test_save_refuses_to_overwrite_and_repr_html_is_sandboxed(mnist_report, tmp_path):
    path = mnist_report.save(tmp_path / "r.html")
    assert path.read_text(encoding="utf-8") == mnist_report.html
    with pytest.raises(FileExistsError):
        mnist_report.save(path)
    mnist_report.save(path, overwrite=True)
    frame = mnist_report._repr_html_()
    assert frame.startswith('<iframe sandbox=""') and "<script" not in frame.lower()
    assert "mnist-cnn" in repr(mnist_report)


def test_every_name_from_model_files_and_user_is_escaped(tmp_path):
    """Layer class names, input file paths, class labels and the title cannot inject markup."""
    evil_class = type(PAYLOAD, (L.Layer,), {"call": lambda self, x: x})
    inputs = keras.Input((12, 12, 1))
    h = L.Conv2D(4, 3, name="conv")(inputs)
    h = evil_class(name="identity")(h)
    h = L.Flatten()(h)
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(h), name="evil>model")
    image = tmp_path / f"{PAYLOAD}.png"
    Image.fromarray(np.full((12, 12), 200, np.uint8)).save(image)
    labels = ["<svg onload=alert(2)>", "a&b", '"quoted"']
    from convscope.models.resolve import resolve_model

    report = build_report(resolve_model(model, labels=labels), [str(image)], layers=["conv", "identity"],
                          title="</title><script>alert(3)</script>", cam=False)
    page = report.html
    for raw in (PAYLOAD, "<svg onload", "<script>", '"quoted"'):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;svg onload=alert(2)&gt;" in page
    assert "evil&gt;model" in page and "&lt;/title&gt;&lt;script&gt;" in page
    parsed = Parsed(page)
    text = "".join(parsed.text)
    assert PAYLOAD in text  # shown as text
    assert not parsed.attrs("script") and not parsed.attrs("svg")
    assert all(set(a) <= {"src", "width", "height", "alt", "class"} for a in parsed.attrs("img"))
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)


def test_big_maps_are_drawn_smaller_and_the_page_says_so():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((240, 240, 3)), L.Conv2D(40, 3, padding="same", name="wide")], name="wide_model")
    x = np.random.default_rng(0).random((1, 240, 240, 3), dtype=np.float32)
    report = build_report(model, x, cam=False)
    entry = report.content.layers[0]
    assert entry.factor == 3 and entry.n_shown == 32 and entry.n_channels == 40
    assert "maps drawn at 1/3 size" in report.html and "larger than 112 pixels" in report.html
    assert "Full resolution: shape (240, 240, 40)" in entry.grids[0].caption
    assert decode_data_uri(entry.grids[0].data_uri()).shape[1] < 1000
    full = build_report(model, x, cam=False, max_map_size=None, max_channels=40)
    assert full.content.layers[0].factor == 1 and full.nbytes > 2 * report.nbytes


def test_options_fail_before_any_work():
    with pytest.raises(OptionError, match="bogus"):
        build_report("mnist-cnn", np.zeros((1, 28, 28, 1), np.float32), norm="bogus")
    with pytest.raises(OptionError, match="max_channels"):
        build_report("mnist-cnn", np.zeros((1, 28, 28, 1), np.float32), max_channels=0)
    with pytest.raises(ConvscopeError):
        build_report("no-such-model", np.zeros((1, 28, 28, 1), np.float32))


def test_describe_output():
    text, top = describe_output(np.array([0.1, 0.7, 0.2]), ["cat", "dog", "eel"])
    assert text == "predicted 1 dog (70.0%)" and [t[0] for t in top] == ["1 dog", "2 eel", "0 cat"]
    text, top = describe_output(np.array([-3.0, 5.0]), None)
    assert text == "predicted 1 (score 5)" and top[0] == ("1", 5.0)
    text, top = describe_output(np.zeros((4, 4)), None)
    assert text.startswith("output shape (4, 4)") and top == ()


# -- optional parts: Grad-CAM and scan, found at run time ----------------------------------------------------
def _fake_module(monkeypatch, name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_cam_overlays_are_the_attribution_results(digits):
    from convscope.attribution import cam

    x, _ = digits
    report = build_report("mnist-cnn", x, layers=["conv_0"])
    expected = cam(load_model("mnist-cnn"), x, method="gradcam")
    cams = [e.cam for e in report.content.inputs]
    target = int(expected.targets[1])
    assert all(c is not None for c in cams)
    assert cams[1].caption == f"Grad-CAM at {expected.layer} for class {target}"
    image = decode_data_uri(cams[0].data_uri())
    assert image.shape[0] >= 224 and image.std() > 0  # enlarged digit with the heat blended in
    assert "Grad-CAM" in report.html and "not drawn" not in report.html


def test_cam_refusal_is_noted_but_a_bug_is_not_hidden(monkeypatch, digits):
    x, _ = digits

    def refused(model, xs, method):
        raise ConvscopeError("no conv layer to explain")

    monkeypatch.setattr(extras, "cam", refused)
    report = build_report("mnist-cnn", x[:1], layers=["conv_0"])
    assert "Grad-CAM overlays are not drawn: no conv layer to explain" in report.html

    def buggy(model, xs, method):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(extras, "cam", buggy)
    with pytest.raises(ZeroDivisionError):  # never turned into a note on the page
        build_report("mnist-cnn", x[:1], layers=["conv_0"])
    with pytest.raises(OptionError, match="--scan"):
        build_report("mnist-cnn", x[:1], scan="somewhere")


def test_real_attribution_module(digits):
    report = build_report("mnist-cnn", digits[0][:2], layers=["conv_1"])
    assert all(e.cam is not None for e in report.content.inputs), report.content.notes


def test_report_of_a_folder_of_images(tmp_path: Path, digits):
    x, _ = digits
    for i in range(2):
        Image.fromarray((x[i, :, :, 0] * 255).astype(np.uint8)).save(tmp_path / f"digit{i}.png")
    report = build_report("mnist-cnn", [str(tmp_path)], layers=["conv_0"], cam=False)
    assert [e.name for e in report.content.inputs] == ["digit0", "digit1"]


def test_report_with_a_real_scan_folder(tmp_path, digits):
    import base64

    from convscope.scan import scan

    x, _ = sample_digits()
    result = scan("mnist-cnn", x, layers=["conv_0", "conv_1"], top_k=4, out=tmp_path / "scan")
    report = build_report("mnist-cnn", digits[0][:1], layers=["conv_0"], scan=tmp_path / "scan", cam=False)
    page = Parsed(report.html)
    assert "scan" in page.ids and "16 images scanned." in report.html
    assert result.predictions is not None  # the scan's own top-1 verdicts, named as everywhere else
    assert f"Model's top-1 class, most frequent: {result.predictions.counts(1)[0][0]}" in report.html
    health = result.health()
    assert f"<td>conv_1</td><td class=num>64</td><td class=num>{round(health['conv_1'].sparsity, 3):.4g}</td>" in report.html
    overview = (tmp_path / "scan" / "layers" / "conv_1" / "top.png").read_bytes()
    srcs = [a["src"] for a in page.attrs("img")]
    assert "data:image/png;base64," + base64.b64encode(overview).decode() in srcs
    assert "scan-1-conv_1" in page.ids
