"""The CLI contract: inspect, maps, demo; and every bad input gives one line + exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
L = keras.layers

import convscope  # noqa: E402
from convscope.models.zoo import sample_digits  # noqa: E402
from convscope.present.cli import main  # noqa: E402
from convscope.render import NAN_COLOR  # noqa: E402


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, list[Path], np.ndarray]:
    d = tmp_path_factory.mktemp("digits")
    x, _ = sample_digits()
    paths = []
    for i in range(3):
        p = d / f"d{i}.png"
        Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8), "L").save(p)
        paths.append(p)
    return d, paths, x[:3]


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("convscope: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# -- contract -------------------------------------------------------------------------------------------
def test_import_and_help_do_not_import_tensorflow_or_keras():
    code = (
        "import sys, convscope, convscope.present.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\nprint('LIGHT')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LIGHT" in proc.stdout and "maps" in proc.stdout and "inspect" in proc.stdout


def test_inspect_json(capsys):
    code, out, _ = run(capsys, "inspect", "mnist-cnn", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["path"] for r in rows][:3] == ["conv_0", "conv_1", "pool"]
    for key in ("path", "class", "output_shape", "params"):
        assert all(key in r for r in rows)
    model = convscope.load_model("mnist-cnn")
    assert sum(r["params"] for r in rows) == model.count_params()
    conv1 = rows[1]
    assert conv1["output_shape"] == [None, 24, 24, 64] and conv1["rf_size"] in ([5, 5], 5)


def test_inspect_table(capsys):
    code, out, _ = run(capsys, "inspect", "mnist-cnn")
    assert code == 0 and "conv_1" in out and "Conv2D" in out


def test_maps_pngs_and_arrays_equal_keras_reference(capsys, tmp_path, digits):
    _folder, paths, x = digits
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "maps", "mnist-cnn", *paths, "--out", out, "--save-arrays")
    assert code == 0
    printed = [Path(line) for line in stdout.splitlines()]
    pngs = [p for p in printed if p.suffix == ".png"]
    assert len(pngs) == 3 * 2  # (layer, image) pairs for both conv layers
    assert all(p.exists() and Image.open(p).size[0] > 50 for p in pngs)
    arrays = np.load(out / "activations.npz")
    assert sorted(arrays.files) == ["conv_0", "conv_1"]
    model = convscope.load_model("mnist-cnn")
    reference = keras.Model(model.inputs, [model.get_layer("conv_0").output, model.get_layer("conv_1").output])
    ref0, ref1 = (keras.ops.convert_to_numpy(t) for t in reference(x))
    # images were written as 8-bit PNGs: compare against the model fed the same quantized pixels
    xq = np.stack([np.asarray(Image.open(p), np.float32)[..., None] / 255.0 for p in paths])
    ref0, ref1 = (keras.ops.convert_to_numpy(t) for t in reference(xq))
    assert arrays["conv_0"].shape == (3, 26, 26, 32) and arrays["conv_1"].shape == (3, 24, 24, 64)
    np.testing.assert_allclose(arrays["conv_0"], ref0, atol=1e-5)
    np.testing.assert_allclose(arrays["conv_1"], ref1, atol=1e-5)
    # the Python API returns the same arrays
    api = convscope.activations("mnist-cnn", paths)
    np.testing.assert_array_equal(api["conv_1"], arrays["conv_1"])
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".convscope.json"]  # the marker only
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging leftovers


def test_maps_folder_npy_layers_and_options(capsys, tmp_path, digits):
    _, _, x = digits
    npy = tmp_path / "batch.npy"
    np.save(npy, x)
    out = tmp_path / "o"
    code, _stdout, _ = run(capsys, "maps", "mnist-cnn", npy, "--layer", "conv_1", "--layer", "dense_0",
                          "--out", out, "--norm", "symmetric", "--cmap", "diverging", "--channels", "top8:max",
                          "--overlay", "mean")
    assert code == 0
    written = files_under(out)
    names = {p.name for p in written}
    assert {"conv_1.png", "dense_0.png", "conv_1.overlay.png"} <= names
    assert len([p for p in written if p.name == "conv_1.png"]) == 3


def test_demo_writes_grids_and_summary(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0
    assert "Predictions:" in out and "Where to look:" in out and "[ok]" in out
    assert "inactive on all" in out and "silent" not in out and "dead" not in out
    pngs = [p for p in files_under(tmp_path / "demo") if p.suffix == ".png"]
    assert {p.name for p in pngs} >= {"conv_0.png", "conv_1.png", "predictions.png"}


# -- bad input: one line, exit 2, nothing written ---------------------------------------------------------
def test_missing_model_file(capsys, tmp_path, digits):
    code, _, err = run(capsys, "maps", tmp_path / "nope.keras", digits[1][0], "--out", tmp_path / "o")
    assert_one_line_error(code, err, "no such model file")
    assert not files_under(tmp_path / "o")


def test_directory_as_model(capsys, tmp_path, digits):
    code, _, err = run(capsys, "inspect", tmp_path)
    assert_one_line_error(code, err, "is a directory")


def test_text_renamed_keras(capsys, tmp_path):
    p = tmp_path / "fake.keras"
    p.write_text("hello")
    code, _, err = run(capsys, "inspect", p)
    assert_one_line_error(code, err, "not a zip archive")


def test_corrupt_zip_and_truncated_h5(capsys, tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Conv2D(2, 3)])
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    raw = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "bad.keras").write_bytes(raw[: len(raw) // 2])
    code, _, err = run(capsys, "inspect", tmp_path / "bad.keras")
    assert_one_line_error(code, err, "bad.keras")
    raw = (tmp_path / "m.h5").read_bytes()
    (tmp_path / "bad.h5").write_bytes(raw[: len(raw) // 2])
    code, _, err = run(capsys, "inspect", tmp_path / "bad.h5")
    assert_one_line_error(code, err, "bad.h5")


def test_lambda_model_refused_then_allowed_with_unsafe(capsys, tmp_path, digits):
    inp = keras.Input((28, 28, 1))
    model = keras.Model(inp, L.Conv2D(2, 3, name="c")(L.Lambda(lambda t: t * 2.0, name="lam")(inp)))
    model.save(tmp_path / "lam.keras")
    out = tmp_path / "o"
    code, _, err = run(capsys, "maps", tmp_path / "lam.keras", digits[1][0], "--out", out)
    assert_one_line_error(code, err, "--unsafe", "Lambda")
    assert not files_under(out)
    code, stdout, _ = run(capsys, "maps", tmp_path / "lam.keras", digits[1][0], "--out", out, "--unsafe")
    assert code == 0 and "c.png" in stdout


def test_unknown_layer_lists_nearest(capsys, tmp_path, digits):
    out = tmp_path / "o"
    code, _, err = run(capsys, "maps", "mnist-cnn", digits[1][0], "--layer", "conv_3", "--out", out)
    assert_one_line_error(code, err, "'conv_3'", "conv_0", "conv_1")
    assert not files_under(out)


def test_dense_layer_as_grid_is_a_faithful_bar_picture(capsys, tmp_path, digits):
    code, stdout, _ = run(capsys, "maps", "mnist-cnn", digits[1][0], "--layer", "predictions", "--out", tmp_path)
    assert code == 0
    img = np.asarray(Image.open(stdout.split()[0]).convert("RGB"))
    assert img.shape[0] > 50 and img.shape[1] > 100


def test_wrong_channel_count(capsys, tmp_path):
    arr = np.zeros((2, 28, 28, 3), np.float32)  # RGB array for a 1-channel model
    np.save(tmp_path / "rgb.npy", arr)
    code, _, err = run(capsys, "maps", "mnist-cnn", tmp_path / "rgb.npy", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "(2, 28, 28, 3)", "28, 28, 1")
    # an RGB *image file* is converted to the model's gray input (documented), not refused
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "rgb.png")
    code, _, _ = run(capsys, "maps", "mnist-cnn", tmp_path / "rgb.png", "--out", tmp_path / "o2")
    assert code == 0


def test_one_pixel_image_gives_a_picture(capsys, tmp_path):
    Image.new("L", (1, 1), 255).save(tmp_path / "px.png")
    code, stdout, _ = run(capsys, "maps", "mnist-cnn", tmp_path / "px.png", "--out", tmp_path / "o")
    assert code == 0 and len(stdout.split()) == 2


def test_huge_image_refused_before_decoding(capsys, tmp_path):
    import importlib.util

    # by file path: a top-level ``tests`` package installed by some other distribution must not shadow ours
    spec = importlib.util.spec_from_file_location("datahelp", Path(__file__).parents[1] / "data" / "datahelp.py")
    datahelp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(datahelp)
    huge_png = datahelp.huge_png  # a 20000x20000 PNG of ~50 kB

    path = huge_png(tmp_path / "huge.png", 20000, 20000)
    code, _, err = run(capsys, "maps", "mnist-cnn", path, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "20000x20000")
    assert not files_under(tmp_path / "o")


def test_nan_in_input_is_shown(capsys, caplog, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(3, 3, name="lin")])  # linear: NaN propagates
    model.save(tmp_path / "lin.keras")
    x = np.full((1, 8, 8, 1), 0.5, np.float32)
    x[0, 4, 4, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    code, stdout, _ = run(capsys, "maps", tmp_path / "lin.keras", tmp_path / "nan.npy", "--out", tmp_path / "o",
                          "--no-labels", "--save-arrays")
    assert code == 0
    assert "1 NaN" in caplog.text  # the user is told about the bad input
    assert np.isnan(np.load(tmp_path / "o" / "activations.npz")["lin"]).sum() == 3 * 9  # 3x3 neighbourhood x 3 ch
    img = np.asarray(Image.open(stdout.split()[0]).convert("RGB"))
    assert np.all(img == np.array(NAN_COLOR, np.uint8), axis=-1).any()


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "maps", "mnist-cnn", tmp_path / "empty", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "empty")
    assert not files_under(tmp_path / "o")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--norm", "bogus"], "bogus"),
        (["--cmap", "rainbowz"], "rainbowz"),
        (["--channels", "1-x"], "1-x"),
        (["--range", "1,0"], "1,0"),
        (["--input-shape", "a,b"], "a,b"),
    ],
)
def test_bad_options(capsys, tmp_path, digits, args, needle):
    code, _, err = run(capsys, "maps", "mnist-cnn", digits[1][0], "--out", tmp_path / "o", *args)
    assert_one_line_error(code, err, needle)
    assert not files_under(tmp_path / "o")


def test_console_script_exit_code_in_subprocess(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-m", "convscope", "inspect", str(tmp_path / "missing.keras")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such model file" in proc.stderr


def test_overlay_grids_come_from_the_receptive_field_table():
    from convscope.present.maps import overlay_grids

    grids = overlay_grids(convscope.load_model("mnist-cnn"), ["conv_0", "conv_1", "pool", "dense"])
    assert grids["conv_0"] == ((1.0, 1.0), (1.0, 1.0))  # 3x3 valid: position 0 centred on pixel 1
    assert grids["conv_1"] == ((2.0, 2.0), (1.0, 1.0))
    assert grids["pool"] == ((2.5, 2.5), (2.0, 2.0))
