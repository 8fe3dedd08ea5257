"""Loading: every way a model file can be wrong gives one clear ModelLoadError."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.errors import ConvscopeError, ModelLoadError, UnsafeModelError  # noqa: E402
from convscope.models.load import load_model  # noqa: E402


@pytest.fixture(scope="module")
def small_model():
    return keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3, name="c"), L.Flatten(), L.Dense(2)], name="small")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("models")
    small_model.save(d / "m.keras")
    small_model.save(d / "m.h5")
    return d


def test_keras_and_h5_round_trip_weights(saved, small_model):
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype("float32")
    ref = keras.ops.convert_to_numpy(small_model(x))
    for name in ("m.keras", "m.h5"):
        model = load_model(saved / name)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), ref, atol=1e-6)
        assert getattr(model, "optimizer", None) is None  # loaded with compile=False


def test_in_memory_model_is_returned_as_is(small_model):
    assert load_model(small_model) is small_model


def test_zoo_name():
    model = load_model("mnist-cnn")
    assert [layer.name for layer in model.layers][:2] == ["conv_0", "conv_1"]


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no such model file: .*nope.keras"):
        load_model(tmp_path / "nope.keras")


def test_directory_given_as_model(tmp_path):
    with pytest.raises(ModelLoadError, match=r"is a directory; expected a .keras"):
        load_model(tmp_path)


def test_text_file_renamed_keras(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("just some text, not a model\n")
    with pytest.raises(ModelLoadError, match=r"not a valid .keras file: it is not a zip archive"):
        load_model(path)


def test_corrupt_zip(tmp_path, saved):
    data = bytearray((saved / "m.keras").read_bytes())
    # flip bytes inside the first member's data: the archive still lists, the CRC check fails
    start = 200
    data[start:start + 64] = bytes(64)
    path = tmp_path / "corrupt.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(path)


def test_zip_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelLoadError, match=r"not a Keras model \(no config.json"):
        load_model(path)


def test_truncated_h5(tmp_path, saved):
    data = (saved / "m.h5").read_bytes()
    path = tmp_path / "trunc.h5"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match=r"trunc.h5 could not be loaded as a HDF5 file model"):
        load_model(path)


def test_unknown_extension_text(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("x")
    with pytest.raises(ModelLoadError, match=r"not a model file; expected a .keras"):
        load_model(path)


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_lambda_model_refused_by_default_and_loads_with_opt_out(tmp_path, ext):
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Lambda(lambda t: t * 2.0, name="double")(inp))
    path = tmp_path / f"lam{ext}"
    model.save(path)
    with pytest.raises(UnsafeModelError) as err:
        load_model(path)
    assert "--unsafe" in str(err.value) and "safe_mode=False" in str(err.value)
    assert isinstance(err.value, ConvscopeError)
    loaded = load_model(path, safe_mode=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(np.ones((1, 4), "float32"))), 2.0)


@keras.saving.register_keras_serializable(package="tests_unregistered")
class Scale(L.Layer):
    def call(self, x):
        return x * 3.0


def test_custom_objects(tmp_path):
    inp = keras.Input((2,))
    model = keras.Model(inp, Scale(name="scale")(inp))
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(np.ones((1, 2), "float32"))), 3.0)


def test_non_model_object():
    with pytest.raises(ModelLoadError, match="cannot use int as a model"):
        load_model(42)
