"""Custom layers from the command line (issue 18, items 7 and 9): ``--custom-objects FILE.py`` imports the
file that defines them; a file that lacks them names the real missing classes and the real option."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.errors import ModelLoadError  # noqa: E402
from convscope.models.custom import import_objects  # noqa: E402
from convscope.models.load import load_model  # noqa: E402
from convscope.present.cli import main  # noqa: E402

SOURCE = '''
import keras
from helper_constants import FACTOR  # a neighbour module: the file's folder is importable while it imports


@keras.saving.register_keras_serializable(package="{pkg}")
class Scale(keras.layers.Layer):
    def __init__(self, factor=FACTOR, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {{**super().get_config(), "factor": self.factor}}


class Shift(keras.layers.Layer):  # not registered: found through the file's names
    def call(self, x):
        return x + 1.0
'''


@pytest.fixture
def custom(tmp_path, request) -> tuple[Path, Path, Path, keras.Model]:
    """(FILE.py, model.keras, model.h5, the model) with the custom classes unregistered again."""
    pkg = "cstest_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:40]
    code = tmp_path / "code"
    code.mkdir()
    (code / "helper_constants.py").write_text("FACTOR = 3.0\n")
    file = code / "my_layers.py"
    file.write_text(SOURCE.format(pkg=pkg))
    # build the model from a throw-away import of the same file, then forget it
    sys.path.insert(0, str(code))
    try:
        spec = importlib.util.spec_from_file_location("cstest_build", file)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("helper_constants", None)
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = mod.Scale(name="scale")(x)
    x = mod.Shift(name="shift")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(3, name="head")(x), name="custom_model")
    model.save(tmp_path / "model.keras")
    model.save(tmp_path / "model.h5")
    registry = keras.saving.get_custom_objects()
    registry.pop(f"{pkg}>Scale", None)
    yield file, tmp_path / "model.keras", tmp_path / "model.h5", model
    registry.pop(f"{pkg}>Scale", None)


def _x() -> np.ndarray:
    return np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")


def _same(a: keras.Model, b: keras.Model) -> None:
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a(_x())), keras.ops.convert_to_numpy(b(_x())),
                               atol=1e-6, rtol=0)


def test_missing_classes_are_named_with_the_real_option(custom):
    _, path, _, _ = custom
    with pytest.raises(ModelLoadError) as err:
        load_model(path)
    message = str(err.value)
    assert "Scale (registered as 'cstest_" in message and "Shift" in message
    assert "Functional" not in message and "\n" not in message
    assert "--custom-objects FILE.py (CLI)" in message and "custom_objects=" in message


def test_missing_class_in_an_h5_file_is_named(custom):
    _, _, h5, _ = custom
    with pytest.raises(ModelLoadError, match=r"Keras does not know: Scale \(registered as 'cstest_"):
        load_model(h5)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_custom_objects_file_loads_the_model(custom, kind):
    file, path, h5, model = custom
    path_before = list(sys.path)
    loaded = load_model(path if kind == "keras" else h5, custom_objects=file)
    _same(loaded, model)
    assert sys.path == path_before  # the file's folder was on sys.path only while it imported
    assert "my_layers" not in sys.modules  # imported under a private name


def test_custom_objects_dict_still_works(custom):
    file, path, _, model = custom
    objects = import_objects(file)
    assert set(objects) == {"Scale", "Shift"}
    _same(load_model(path, custom_objects={"Shift": objects["Shift"]}), model)


def test_a_file_that_lacks_the_classes_says_so(custom, tmp_path):
    _, path, _, _ = custom
    other = tmp_path / "other.py"
    other.write_text("X = 1\n")
    with pytest.raises(ModelLoadError, match=r"Keras does not know: Scale .*, Shift; .*other.py does not define them"):
        load_model(path, custom_objects=other)


@pytest.mark.parametrize(("content", "name", "needle"), [
    (None, "absent.py", "no such file"),
    ("x = 1\n", "layers.txt", "not a .py file"),
    ("raise RuntimeError('boom at import')\n", "broken.py", "failed to import: RuntimeError: boom at import"),
    ("def f(:\n", "syntax.py", "failed to import: SyntaxError"),
])
def test_bad_custom_objects_files_are_one_line(custom, tmp_path, content, name, needle):
    _, path, _, _ = custom
    bad = tmp_path / name
    if content is not None:
        bad.write_text(content)
    with pytest.raises(ModelLoadError, match=needle) as err:
        load_model(path, custom_objects=bad)
    assert "\n" not in str(err.value)


def test_every_model_command_takes_custom_objects(custom, tmp_path, capsys):
    file, path, _, _ = custom
    data = tmp_path / "x.npy"
    np.save(data, _x())
    out = tmp_path / "out"
    commands = {
        "inspect": [],
        "maps": [data, "--out", out / "maps"],
        "cam": [data, "--out", out / "cam"],
        "filters": ["--out", out / "filters"],
        "maximize": ["--layer", "conv", "--channels", "1", "--steps", "2", "--out", out / "max"],
        "scan": [data, "--out", out / "scan", "--top", "1", "--no-crops"],
        "report": [data, "--out", out.parent / "report.html", "--no-cam"],
    }
    code = main(["inspect", str(path)])
    assert code == 2 and "--custom-objects FILE.py" in capsys.readouterr().err
    for command, args in commands.items():
        code = main([command, str(path), *map(str, args), "--custom-objects", str(file)])
        captured = capsys.readouterr()
        assert code == 0, (command, captured.err)
        assert "scale" in captured.out or command != "inspect"
    help_code = main(["serve", "--help"])
    assert help_code == 0 and "--custom-objects" in capsys.readouterr().out


def test_explorer_takes_custom_objects(custom):
    from convscope.present.web.server import build_explorer

    file, path, _, _ = custom
    explorer = build_explorer(str(path), custom_objects=str(file))
    assert explorer.summary()["name"] == "custom_model"


def test_custom_objects_text_names_the_option_everywhere():
    from convscope.models.custom import HOW

    assert HOW.startswith("--custom-objects FILE.py (CLI)")
    assert textwrap.shorten(HOW, 400) == HOW
