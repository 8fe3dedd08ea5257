"""The `cam`, `filters` and `maximize` commands: files as promised, arrays identical to the Python API,
one-line errors (exit 2, nothing written) for bad classes, layers, methods and channel specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from convscope.models.load import load_model  # noqa: E402
from convscope.models.zoo import sample_digits  # noqa: E402
from convscope.present.cli import main  # noqa: E402


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), (code, err)
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def model():
    return load_model("mnist-cnn")


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[list[Path], np.ndarray]:
    """Two digit PNGs and the model input they decode to (uint8 grays / 255)."""
    d = tmp_path_factory.mktemp("why-digits")
    x, _ = sample_digits()
    grays = (x[:2, :, :, 0] * 255).round().astype(np.uint8)
    paths = []
    for i, g in enumerate(grays):
        paths.append(d / f"d{i}.png")
        Image.fromarray(g, "L").save(paths[-1])
    return paths, (grays.astype(np.float32) / 255.0)[..., None]


def test_cam_writes_overlays_and_arrays_equal_to_the_api(capsys, tmp_path, model, digits):
    from convscope.attribution import cam

    paths, x = digits
    out = tmp_path / "cam"
    code, stdout, _ = run(capsys, "cam", "mnist-cnn", *paths, "--method", "gradcam", "--method", "layercam",
                          "--class", "3", "--save-arrays", "--out", out)
    assert code == 0
    for stem in ("d0", "d1"):
        for method in ("gradcam", "layercam"):
            png = out / stem / f"{method}.png"
            assert png.is_file() and Image.open(png).mode == "RGB", png
    assert "gradcam: layer conv_1" in stdout
    arrays = np.load(out / "cam.npz")
    assert {"gradcam", "layercam"} <= set(arrays.files)
    for method in ("gradcam", "layercam"):
        ref = cam(model, x, method, target=3)  # the API on the same decoded pixels
        assert arrays[method].shape == (2, 28, 28)  # at input resolution
        assert ref.targets == (3, 3)
        np.testing.assert_allclose(arrays[method], ref.maps, atol=1e-5)


@pytest.mark.parametrize(("args", "needles"), [
    (["--class", "10"], ["class index 10", "0..9"]),
    (["--layer", "dense_0"], ["dense_0", "not a 2D spatial map", "conv_1"]),
    (["--method", "nope"], ["'nope'", "gradcam"]),
    (["--layer", "conv_9"], ["conv_9"]),
])
def test_cam_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, digits, args, needles):
    out = tmp_path / "cam"
    code, _, err = run(capsys, "cam", "mnist-cnn", digits[0][0], *args, "--out", out)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_filters_png_equals_the_api_picture(capsys, tmp_path, model):
    from convscope.render import render_filters

    out = tmp_path / "filters"
    code, stdout, _ = run(capsys, "filters", "mnist-cnn", "--layer", "conv_0", "--out", out)
    assert code == 0 and str(out / "conv_0.filters.png") in stdout
    got = np.asarray(Image.open(out / "conv_0.filters.png").convert("RGB"))
    ref = render_filters(model.get_layer("conv_0"), layer="conv_0").image
    np.testing.assert_array_equal(got, ref)


def test_filters_of_a_dense_layer_is_refused(capsys, tmp_path):
    out = tmp_path / "filters"
    code, _, err = run(capsys, "filters", "mnist-cnn", "--layer", "dense_0", "--out", out)
    assert_one_line_error(code, err, "dense_0", "Dense")
    assert not out.exists()


def test_maximize_png_equals_the_api_run_with_the_same_seed(capsys, tmp_path, model):
    from convscope.featvis import maximize_channels

    out = tmp_path / "max"
    code, stdout, _ = run(capsys, "maximize", "mnist-cnn", "--layer", "conv_1", "--channels", "0-3",
                          "--steps", "6", "--seed", "3", "--out", out)
    assert code == 0 and str(out / "conv_1.maximize.png") in stdout
    got = np.asarray(Image.open(out / "conv_1.maximize.png").convert("RGB"))
    ref = maximize_channels(model, "conv_1", "0-3", steps=6, seed=3).to_grid().image
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize(("args", "needles"), [
    (["--layer", "conv_1", "--channels", "0,64"], ["64"]),
    (["--layer", "conv_1", "--channels", "top4"], ["top4"]),
    (["--layer", "conv_1", "--steps", "0"], ["--steps", "0"]),
    (["--layer", "nope"], ["nope", "conv_1"]),
    (["--layer", "conv_1", "--input-shape", "28,a"], ["28,a"]),
])
def test_maximize_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, args, needles):
    out = tmp_path / "max"
    code, _, err = run(capsys, "maximize", "mnist-cnn", *args, "--out", out)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()
