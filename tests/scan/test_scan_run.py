"""End to end: the bundled MNIST CNN over real digits, the results folder and its manifest, interruption,
data kinds (arrays, .npz, image folders with labels), health, the CLI and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from scanhelp import assert_matches, pixel_corr, reference  # noqa: E402

from convscope.api import get_extractor  # noqa: E402
from convscope.errors import InputError, LayerNotFound, OptionError  # noqa: E402
from convscope.models.load import load_model  # noqa: E402
from convscope.models.zoo.mnist import load_mnist_digits  # noqa: E402
from convscope.present.cli import app, main  # noqa: E402
from convscope.present.cli_scan import register  # noqa: E402
from convscope.scan import load_scan, scan  # noqa: E402

register(app)  # idempotent; the lead wires it into cli.py


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    x, y = load_mnist_digits()
    x, y = x[::25], y[::25]  # 200 real digits, 20 per class
    path = tmp_path_factory.mktemp("data") / "digits.npy"
    np.save(path, x)
    return path, x, y


@pytest.fixture(scope="module")
def mnist():
    return load_model("mnist-cnn")


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_statistics_equal_float64_reference_of_the_activations(mnist, digits):
    path, x, _ = digits
    result = scan(mnist, path, top_k=8, batch_size=64)
    acts = get_extractor(mnist, batch_size=64)(x)
    assert list(result.layers) == ["conv_0", "conv_1"]
    for key, stats in result.layers.items():
        got = {name: np.asarray(getattr(stats, name)) for name in
               ("mean", "std", "max", "frac_positive", "mean_spatial_max", "corr", "top_index", "top_value", "top_pos")}
        assert_matches(got, reference(acts[key], 8))
    assert result["conv_1"].top_coords.shape == (64, 8, 2)


def test_results_folder_roundtrip_and_manifest(mnist, digits, tmp_path):
    path, _, _ = digits
    out = tmp_path / "scan"
    result = scan("mnist-cnn", path, layers=["conv_1"], top_k=4, out=out)
    assert result.path == out
    files = tree(out)
    for name in ("manifest.json", "summary.json", "summary.txt", "layers/conv_1/stats.npz", "layers/conv_1/top.png",
                 "layers/conv_1/top/ch0063.png"):
        assert name in files, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "convscope-scan" and manifest["format_version"] == 2
    assert len(manifest["model"]["sha256"]) == 64 and manifest["model"]["hash_of"] == "file"
    assert manifest["dataset"]["size"] == 200 and manifest["options"]["top_k"] == 4
    assert {"convscope", "keras", "numpy", "python"} <= set(manifest["versions"])
    again = load_scan(out)
    for name in ("mean", "std", "corr", "top_index", "top_pos"):
        np.testing.assert_array_equal(getattr(again["conv_1"], name), getattr(result["conv_1"], name))
    assert again["conv_1"].rf_size == (5, 5) and "conv_1" in again.summary_text()
    with pytest.raises(LayerNotFound, match="conv_1"):
        again["conv_9"]


def test_refuses_to_overwrite_a_different_scan(digits, tmp_path):
    path, _, _ = digits
    out = tmp_path / "scan"
    scan("mnist-cnn", path, layers=["conv_0"], top_k=2, out=out, crops=False)
    before = (out / "manifest.json").read_text()
    with pytest.raises(OptionError, match=r"different scan.*top_k"):
        scan("mnist-cnn", path, layers=["conv_0"], top_k=3, out=out, crops=False)
    assert (out / "manifest.json").read_text() == before
    scan("mnist-cnn", path, layers=["conv_0"], top_k=2, out=out, crops=False)  # same scan: allowed
    scan("mnist-cnn", path, layers=["conv_0"], top_k=3, out=out, crops=False, force=True)
    assert load_scan(out)["conv_0"].top_index.shape == (32, 3)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for force in (False, True):  # a folder convscope did not write is never replaced, even with force
        with pytest.raises(OptionError, match="convscope did not write"):
            scan("mnist-cnn", path, out=other, force=force)
    assert tree(other) == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("where", ["batch", "writing"])
def test_interrupted_scan_leaves_no_complete_looking_folder(digits, tmp_path, monkeypatch, where):
    path, _, _ = digits
    out = tmp_path / "scan"
    seen = []

    def on_batch(rows: int) -> None:
        seen.append(rows)
        if where == "batch" and len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises

    if where == "writing":
        from convscope.scan import crops

        def boom(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(crops, "write_layer_pictures", boom)
    with pytest.raises(KeyboardInterrupt):
        scan("mnist-cnn", path, out=out, batch_size=32, on_batch=on_batch)
    assert not out.exists()
    # the hidden staging folder is gone too; Ctrl-C during the scan leaves only its checkpoint (for --resume)
    left = [p.name for p in tmp_path.iterdir()]
    assert left == ([".scan.checkpoint"] if where == "batch" else []), left
    with pytest.raises(InputError, match="does not exist"):
        load_scan(out)


def test_image_folder_with_class_subfolders_npz_and_health(tmp_path):
    x, y = load_mnist_digits()
    root = tmp_path / "imgs"
    for i in range(0, 5000, 500):  # one digit per class, in its class folder
        (root / str(y[i])).mkdir(parents=True)
        Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8)).save(root / str(y[i]) / f"d{i}.png")
    result = scan("mnist-cnn", root, top_k=3)
    assert result.images == 10 and result["conv_0"].top_label is not None
    assert set(np.asarray(result["conv_0"].top_label).ravel()) <= {str(d) for d in range(10)}
    npz = tmp_path / "d.npz"
    np.savez(npz, x=x[:40, :, :, 0], y=y[:40])  # channel axis dropped: accepted for a 1-channel input
    from_npz = scan("mnist-cnn", npz, top_k=2, batch_size=16)
    assert from_npz.images == 40 and str(from_npz["conv_1"].top_label[0, 0]) == "0"
    health = from_npz.health()
    assert set(health) == {"conv_0", "conv_1"} and 0 < health["conv_1"].sparsity < 1


def test_dead_and_saturated_channels_are_named(tmp_path):
    L = keras.layers
    inputs = keras.Input((10, 10, 1))
    a = L.Conv2D(4, 3, activation="relu", name="relu_conv")(inputs)
    b = L.Conv2D(3, 3, activation="tanh", name="tanh_conv")(inputs)
    model = keras.Model(inputs, [a, b])
    w, bias = model.get_layer("relu_conv").get_weights()
    bias[2] = -100.0  # channel 2 can never be positive
    model.get_layer("relu_conv").set_weights([w, bias])
    w, bias = model.get_layer("tanh_conv").get_weights()
    w[..., 1] = 0.0
    bias[1] = 50.0  # channel 1 sits at +1
    model.get_layer("tanh_conv").set_weights([w, bias])
    x = np.random.default_rng(0).random((30, 10, 10, 1)).astype(np.float32)
    result = scan(model, x, top_k=2, out=tmp_path / "s")
    health = result.health()
    assert health["relu_conv"].dead == (2,) and health["tanh_conv"].saturated == (1,)
    assert result["relu_conv"].frac_saturated is None
    text = (tmp_path / "s" / "summary.txt").read_text()
    assert "ch 2: dead" in text and "ch 1: saturated" in text
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["layers"][0]["worst"][0] == {"channel": 2, "reason": "dead: zero on all 30 scanned images"}


def test_channels_first_layers_report_their_spatial_size(tmp_path):
    L = keras.layers
    # (TensorFlow's CPU kernels run no channels-first conv; padding is enough to carry the layout)
    model = keras.Sequential([keras.Input((3, 9, 7)), L.ZeroPadding2D(1, data_format="channels_first", name="pad"),
                              L.Activation("relu", name="relu")])
    x = np.random.default_rng(0).normal(size=(6, 3, 9, 7)).astype(np.float32)
    stats = scan(model, x, layers=["pad"], top_k=2)["pad"]
    assert stats.shape == (3, 11, 9) and stats.spatial == (11, 9) and stats.channels == 3
    acts = np.moveaxis(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), 1, -1)  # (6, 11, 9, 3)
    np.testing.assert_allclose(stats.mean, acts.reshape(-1, 3).mean(axis=0), rtol=1e-5, atol=1e-6)


# -- CLI -------------------------------------------------------------------------------------------------
def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_scan_writes_and_prints_summary(digits, tmp_path, capsys):
    path, _, _ = digits
    code, out, err = run(capsys, "scan", "mnist-cnn", path, "--layer", "conv_1", "--top", "3", "--out", tmp_path / "s",
                         "--no-crops")
    assert code == 0, err
    assert "conv_1 (24, 24, 64) relu" in out and f"results: {tmp_path / 's'}" in out
    assert load_scan(tmp_path / "s")["conv_1"].top_index.shape == (64, 3)


@pytest.mark.parametrize("args,needle", [
    (["mnist-cnn", "{tmp}/missing"], "no such file or folder"),
    (["mnist-cnn", "{tmp}/empty"], "has no images"),
    (["mnist-cnn", "{data}", "--layer", "conv_9"], "no layer 'conv_9'"),
    (["mnist-cnn", "{data}", "--top", "0"], "--top must be an integer >= 1, got 0"),
    (["mnist-cnn", "{data}", "--engine", "spark"], "expected one of local, ray"),
    (["mnist-cnn", "{data}", "--batch-size", "0"], "--batch-size must be an integer >= 1"),
])
def test_cli_bad_inputs_are_one_line_errors(digits, tmp_path, capsys, args, needle):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    argv = [a.format(tmp=tmp_path, data=digits[0]) for a in args]
    code, _, err = run(capsys, "scan", *argv, "--out", tmp_path / "out")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    assert needle in lines[0]
    assert not (tmp_path / "out").exists()


def test_copies_of_a_channel_injected_into_the_mnist_cnn_are_near_duplicates(mnist, digits):
    """An exact copy and a 2x copy of a conv_0 channel (kernel and bias) in a clone of the bundled model
    are reported with r = 1; every reported pair correlates >= 0.9 pixel by pixel over the scanned digits,
    and the model scanned as loaded no longer shows the false pair of per-image means (ch 4 and 30)."""
    _, x, _ = digits
    before = [w.copy() for w in mnist.get_weights()]
    model = keras.models.clone_model(mnist)
    model.set_weights(mnist.get_weights())
    kernel, bias = model.get_layer("conv_0").get_weights()
    kernel[..., 5], bias[5] = kernel[..., 4], bias[4]  # exact copy of channel 4
    kernel[..., 7], bias[7] = 2 * kernel[..., 9], 2 * bias[9]  # scaled copy of channel 9: relu(2z) = 2 relu(z)
    model.get_layer("conv_0").set_weights([kernel, bias])
    for net, injected in ((model, True), (mnist, False)):
        result = scan(net, x, layers="conv_0", top_k=2, batch_size=48)
        stats = result["conv_0"]
        ref = pixel_corr(get_extractor(net, ["conv_0"], batch_size=64)(x)["conv_0"])
        both = np.isfinite(ref)
        np.testing.assert_allclose(np.asarray(stats.corr)[both], ref[both], rtol=0, atol=5e-6)  # float32 products
        pairs = {(a, b): r for a, b, r in result.health()["conv_0"].duplicates}
        assert all(ref[a, b] >= 0.9 and r >= 0.9 for (a, b), r in pairs.items())
        if injected:
            assert pairs[(4, 5)] == pytest.approx(1.0, abs=5e-6) and pairs[(7, 9)] == pytest.approx(1.0, abs=5e-6)
        else:
            assert (4, 5) not in pairs and (7, 9) not in pairs and (4, 30) not in pairs and ref[4, 30] < 0.9
    for a, b in zip(before, mnist.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the loaded model is untouched
