"""``similarity`` on real digits: the CKA matrix against the float64 numpy reference over the same
minibatch partition, one model with itself and two different models, the folder, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_diagnose_cka import ref_cka

from convscope.diagnose import load_similarity, similarity
from convscope.diagnose.cka import minibatches
from convscope.errors import InputError, OptionError, OutputError
from convscope.models.load import load_model
from convscope.models.zoo.mnist import load_mnist_digits
from convscope.probe.cache import get_extractor

LAYERS = ["conv_0", "conv_1", "dense_0", "predictions"]


@pytest.fixture(scope="module")
def mnist():
    return load_model("mnist-cnn")


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_mnist_digits()[0][::40]  # 125 real digits


def small(shape=(28, 28, 1), seed=1):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Conv2D(6, 3, activation="relu", name="c0"),
                             keras.layers.MaxPooling2D(2, name="p0"), keras.layers.Flatten(name="f"),
                             keras.layers.Dense(8, activation="tanh", name="d0")])  # fmt: skip


def acts(model, layers, x, batch):
    out = get_extractor(model, layers, batch_size=batch)(x)  # the same forward batches as the run
    return [np.asarray(out[k]) for k in layers]


def test_one_model_with_itself_equals_the_reference_on_the_same_partition(mnist, digits, tmp_path):
    result = similarity(mnist, digits, layers=LAYERS, batch_size=16, out=tmp_path / "self")
    ref = ref_cka(acts(mnist, LAYERS, digits, 16), acts(mnist, LAYERS, digits, 16), minibatches(125, 16))
    np.testing.assert_allclose(result.matrix, ref, atol=1e-6, rtol=0)
    assert result.rows == tuple(LAYERS) and result.sums.batches == 8  # 7 x 16 + 13 rows
    np.testing.assert_allclose(np.diag(result.matrix), 1.0, atol=1e-12)
    back = load_similarity(tmp_path / "self")
    np.testing.assert_array_equal(back.matrix, result.matrix)
    data = json.loads((tmp_path / "self" / "cka.json").read_text())
    assert data["rows"] == LAYERS and data["diagonal"]["conv_1"] == pytest.approx(1.0)
    assert (tmp_path / "self" / "cka.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(OutputError, match="different similarity"):
        similarity(mnist, digits, layers=LAYERS[:2], batch_size=16, out=tmp_path / "self")


def test_two_models_and_one_batch_is_the_full_dataset_estimate(mnist, digits):
    other = small()
    result = similarity(mnist, digits, model_b=other, layers=["conv_0", "dense_0"], layers_b=["c0", "d0"],
                        batch_size=125)  # fmt: skip
    ref = ref_cka(acts(mnist, ["conv_0", "dense_0"], digits, 125), acts(other, ["c0", "d0"], digits, 125),
                  [(0, 125)])  # fmt: skip
    np.testing.assert_allclose(result.matrix, ref, atol=1e-6, rtol=0)
    assert result.matrix.shape == (2, 2) and result.diagonal() is None


def test_bad_input(mnist, digits, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(InputError, match=r"model B .* \(20, 20, 1\)"):
        similarity(mnist, digits, model_b=small((20, 20, 1)), out=out)
    with pytest.raises(InputError, match="at least 4"):
        similarity(mnist, digits[:3], out=out)
    with pytest.raises(InputError, match="no samples"):
        similarity(mnist, digits[:0], out=out)
    for bad in (3, 5000):
        with pytest.raises(OptionError, match="from 4 .* to 1024"):
            similarity(mnist, digits, batch_size=bad, out=out)
    assert not out.exists()
