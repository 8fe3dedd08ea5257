"""The command line's edges: help text, usage errors, option checks before the backend, names and defaults."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.models.zoo import sample_images
from convscope.present.cli import app, main

SRC = Path(__file__).resolve().parents[2] / "src" / "convscope"


def click_command():
    import typer

    return typer.main.get_command(app)


def commands() -> dict:
    return dict(click_command().commands)


def one_line(capsys, *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("convscope: error: ") and "Traceback" not in err
    return code, lines[0]


# -- help ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", *sorted(commands())])
def test_help_names_values_by_metavar_not_python_types(capsys, name):
    code = main([name, "--help"] if name else ["--help"])
    out = capsys.readouterr().out
    assert code == 0 and "Usage: convscope" in out
    assert not re.search(r"<[a-z_\[\]|, ]+>", out), out  # no <str>, <int>, <list[str]>, <bool>, <path>
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_every_option_and_argument_declares_a_metavar():
    for name, command in commands().items():
        for param in command.params:
            if getattr(param, "is_flag", False):
                continue
            assert param.metavar, (name, param.name)


def test_model_argument_help_is_shared():
    for name, command in commands().items():
        models = [p for p in command.params if p.name in ("model", "args") and p.param_type_name == "argument"]
        if name in ("samples", "demo"):  # zoo models only (samples: an argument, demo: --model)
            continue
        assert models and "zoo name (mnist-cnn, efficientnet-lite0)" in models[0].help, name


# -- usage errors: one line, exit 2, the nearest valid name --------------------------------------------------
@pytest.mark.parametrize(("args", "needles"), [
    (["maps", "--bogus"], ["--bogus", "did you mean"]),
    (["maps", "mnist-cnn", "x.png", "--nrom", "layer"], ["--nrom", "--norm"]),
    (["cam", "mnist-cnn", "x.png", "--metod", "gradcam"], ["--metod", "--method"]),
    (["maps"], ["Missing argument", "MODEL"]),
    (["maps", "mnist-cnn", "x.png", "--batch-size", "many"], ["--batch-size", "'many'"]),
    (["scan", "mnist-cnn", "mnist", "--top=x"], ["--top", "'x'"]),
    (["mapz", "mnist-cnn"], ["mapz", "maps"]),
    (["inspekt"], ["inspekt", "inspect"]),
    (["serve", "--port", "70000"], ["--port 70000"]),
])
def test_usage_errors_are_one_line_with_exit_2(capsys, args, needles):
    code, line = one_line(capsys, *args)
    assert code == 2
    for needle in needles:
        assert needle in line, (needle, line)


def test_unknown_option_in_a_subprocess_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "convscope", "maps", "--bogus"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(SRC.parent)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("convscope: error:") and proc.stderr.strip().count("\n") == 0


def test_version_prints_the_package_metadata_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"convscope {version('convscope')}"


def test_no_suggestion_is_not_an_empty_did_you_mean(capsys):
    code, line = one_line(capsys, "--zzzzzzzzzzzzzzzz")
    assert code == 2 and "--zzzzzzzzzzzzzzzz" in line
    assert "did you mean ?" not in line


def test_bare_convscope_prints_help(capsys):
    assert main([]) == 0
    assert "Commands" in capsys.readouterr().out


# Options a message may name that belong to another program, or land with a parallel change.
FOREIGN_OPTIONS = {
    "--head": "`ray start --head`, Ray's own command line",
}


def option_names_in_messages() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    pattern = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for name in pattern.findall(node.value):
                    found.setdefault(name, set()).add(str(path.relative_to(SRC)))
    return found


def test_every_option_named_in_a_message_exists():
    existing = {"--help"}
    for command in [click_command(), *commands().values()]:
        for param in command.params:
            existing.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    named = option_names_in_messages()
    assert "--norm" in named and "--range" in named  # the scan sees the messages
    missing = {name: files for name, files in named.items() if name not in existing and name not in FOREIGN_OPTIONS}
    assert not missing, missing


# -- option errors that need no model answer before the backend is imported ----------------------------------
@pytest.mark.parametrize("args", [
    ["maps", "mnist-cnn", "x.png", "--norm", "fancy"],
    ["maps", "mnist-cnn", "x.png", "--cmap", "rainbowz"],
    ["maps", "mnist-cnn", "x.png", "--channels", "1-x"],
    ["maps", "mnist-cnn", "x.png", "--channels", "0-1000000000,x"],
    ["maps", "mnist-cnn", "x.png", "--channels", "0-1000000000"],  # beyond any layer: no model needed
    ["maps", "mnist-cnn", "x.png", "--range", "2,1"],
    ["maps", "mnist-cnn", "x.png", "--mean", "0.5"],
    ["maps", "mnist-cnn", "x.png", "--overlay", "middle"],
    ["maps", "mnist-cnn", "x.png", "--input-shape", "28,a"],
    ["cam", "mnist-cnn", "x.png", "--method", "gradcamz"],
    ["cam", "mnist-cnn", "x.png", "--class", "cat"],
    ["maximize", "mnist-cnn", "--layer", "conv_1", "--channels", "top4"],
    ["maximize", "mnist-cnn", "--layer", "conv_1", "--param", "wavelet"],
    ["filters", "mnist-cnn", "--mode", "sepia"],
    ["scan", "mnist-cnn", "mnist", "--engine", "spark"],
    ["report", "mnist-cnn", "x.png", "--max-map-size", "-1"],
    ["serve", "--max-upload-mb", "0"],
])
def test_option_errors_come_before_the_backend_is_imported(args):
    code = ("import sys\nfrom convscope.present.cli import main\n"
            f"code = main({args!r})\n"
            "print(code, sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC.parent)})
    assert proc.stdout.split() == ["2", "[]"], (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: "), proc.stderr


# -- one name for Grad-CAM++ ------------------------------------------------------------------------------
@pytest.mark.parametrize("alias", ["gradcampp", "gradcam++", "GradCAM++", "grad-cam++", "gradcam_pp", "Grad-CAM++"])
def test_gradcam_plus_plus_aliases(alias):
    from convscope.attribution import METHODS, get_method
    from convscope.attribution.api import canonical_method

    assert canonical_method(alias) == "gradcampp" and get_method(alias) is METHODS["gradcampp"]


def test_unknown_method_lists_canonical_ids_and_the_nearest():
    from convscope.attribution import get_method
    from convscope.errors import OptionError

    with pytest.raises(OptionError) as info:
        get_method("gradcam+++")
    text = str(info.value)
    assert "gradcam, gradcampp, layercam, scorecam, saliency, smoothgrad, integrated_gradients" in text
    assert "did you mean gradcampp" in text


def test_cam_files_and_npz_keys_use_the_canonical_id(capsys, tmp_path):
    pytest.importorskip("keras")
    pictures = dict(sample_images("mnist-cnn"))
    Image.fromarray(pictures["digit0_label0"][..., 0], "L").save(tmp_path / "d.png")
    code = main(["cam", "mnist-cnn", str(tmp_path / "d.png"), "-m", "Grad-CAM++", "--save-arrays",
                 "--out", str(tmp_path / "cam")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "cam" / "d" / "gradcampp.png").is_file()
    assert set(np.load(tmp_path / "cam" / "cam.npz").files) == {"gradcampp", "gradcampp_raw"}
    assert "gradcampp: layer conv_1" in out


# -- samples and default folders -----------------------------------------------------------------------------
def test_samples_writes_the_zoo_pictures_and_prints_their_paths(capsys, tmp_path):
    code = main(["samples", "--out", str(tmp_path / "s")])
    printed = capsys.readouterr().out.split()
    expected = sample_images("mnist-cnn")
    assert code == 0 and printed == [str(tmp_path / "s" / f"{name}.png") for name, _ in expected]
    for (name, pixels), path in zip(expected, printed):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels[..., 0])
    assert "digit0_label0" in printed[0]


def test_samples_photos_are_jpeg_close_to_the_originals(capsys, tmp_path):
    code = main(["samples", "efficientnet-lite0", "--out", str(tmp_path)])
    printed = capsys.readouterr().out.split()
    assert code == 0 and [Path(p).name for p in printed] == ["chelsea.jpg", "coffee.jpg", "astronaut.jpg"]
    for (name, pixels), path in zip(sample_images("efficientnet-lite0"), printed):
        decoded = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
        assert decoded.shape == pixels.shape and np.abs(decoded - pixels).mean() < 3.0, name


def test_samples_refuses_unknown_models_and_file_outs(capsys, tmp_path):
    code, line = one_line(capsys, "samples", "mnist-cnnn", "--out", tmp_path / "s")
    assert code == 2 and "mnist-cnnn" in line and not (tmp_path / "s").exists()
    (tmp_path / "afile").write_text("mine")
    code, line = one_line(capsys, "samples", "--out", tmp_path / "afile")
    assert code == 2 and "is a file" in line and (tmp_path / "afile").read_text() == "mine"


def test_default_output_folder_is_convscope_out_command(capsys, tmp_path, monkeypatch):
    pytest.importorskip("keras")
    monkeypatch.chdir(tmp_path)
    assert main(["samples"]) == 0
    assert main(["maps", "mnist-cnn", "convscope-out/samples/digit0_label0.png", "--layer", "conv_0"]) == 0
    assert main(["filters", "mnist-cnn", "--layer", "conv_0"]) == 0
    printed = capsys.readouterr().out.split()
    assert "convscope-out/maps/digit0_label0/conv_0.png" in printed
    assert "convscope-out/filters/conv_0.filters.png" in printed
    for name, command in commands().items():
        outs = [p for p in command.params if p.name == "out"]
        if outs:
            assert Path(outs[0].default).parts[:2] == ("convscope-out", name), (name, outs[0].default)


# -- one number format in inspect and the report ---------------------------------------------------------------
def test_inspect_and_report_write_per_axis_values_alike():
    keras = pytest.importorskip("keras")
    from convscope.models.inspect import format_axes, format_table, inspect_model
    from convscope.present.report.tables import layer_table_html

    inputs = keras.Input((17, 17, 3))
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c0")(inputs)
    x = keras.layers.Conv2D(2, 2, dilation_rate=2, name="c1")(x)
    info = inspect_model(keras.Model(inputs, x))
    table, page = format_table(info), layer_table_html(info)
    assert format_axes((2, 2)) == "2x2" and format_axes((0.5, 1.0)) == "0.5x1" and format_axes(None) == "-"
    for row in info.layers:
        if row.kernel is None:
            continue
        for values in (row.rf_size, row.rf_jump, row.rf_start):
            cell = format_axes(values)
            assert cell in table and f"<td>{cell}</td>" in page, (row.path, cell)
    assert "3x3/2x2/1x1" in table and "<td>3x3/2x2/1x1</td>" in page
