"""DynamicsCallback: per-layer CKA to the previous recording (against the float64 reference over the same
minibatch partition), dead channel fractions, and a real training run writing TensorBoard scalars and a plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope.diagnose.cka import minibatches  # noqa: E402
from convscope.errors import InputError, OptionError  # noqa: E402
from convscope.keras import DynamicsCallback  # noqa: E402
from convscope.models.zoo.mnist import build_mnist_cnn, load_mnist_digits  # noqa: E402
from convscope.probe.cache import get_extractor  # noqa: E402

LAYERS = ["conv_0", "conv_1", "dense_0"]


def ref_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    n = len(k)
    kt, lt = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    t = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * (one @ kt @ lt @ one)
    return float(t / (n * (n - 3)))


def ref_cka(x: np.ndarray, y: np.ndarray, parts: list[tuple[int, int]]) -> float:
    grams = [(x[a:b].reshape(b - a, -1).astype(np.float64), y[a:b].reshape(b - a, -1).astype(np.float64)) for a, b in parts]
    xy = np.mean([ref_hsic(p @ p.T, q @ q.T) for p, q in grams])
    xx = np.mean([ref_hsic(p @ p.T, p @ p.T) for p, _ in grams])
    yy = np.mean([ref_hsic(q @ q.T, q @ q.T) for _, q in grams])
    return float(xy / np.sqrt(xx * yy))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_mnist_digits()
    idx = np.random.default_rng(0).permutation(len(x))
    return x[idx[:128]], y[idx[:128]]


def test_cka_to_previous_and_dead_fraction_equal_the_reference(digits):
    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    probes = digits[0][:100]
    cb = DynamicsCallback(probes, layers=LAYERS, batch=32)
    cb.set_model(model)
    cb.on_train_begin()
    extractor = get_extractor(model, LAYERS, batch_size=32)
    before = {k: np.array(v) for k, v in extractor(probes).items()}
    conv0, conv1 = model.get_layer("conv_0"), model.get_layer("conv_1")
    kernel, bias = conv0.kernel.numpy(), conv0.bias.numpy()
    kernel[..., 3], bias[3] = 0.0, -1.0  # channel 3 of conv_0 can only output 0 now: dead
    conv0.kernel.assign(kernel)
    conv0.bias.assign(bias)
    conv1.kernel.assign(conv1.kernel.numpy() * 0.5 + np.random.default_rng(1).normal(0, 0.05, conv1.kernel.shape))
    cb.on_epoch_end(0)
    after = extractor(probes)
    first, second = cb.history
    assert first["step"] == 0 and all(np.isnan(v) for v in first["cka_to_previous"].values())
    assert first["dead_fraction"]["conv_0"] == 0.0 and second["dead_fraction"]["conv_0"] == 1 / 32
    for key in LAYERS:
        ref = ref_cka(before[key], np.asarray(after[key]), minibatches(100, 32))
        assert second["cka_to_previous"][key] == pytest.approx(ref, abs=1e-6)
        assert 0.0 < second["cka_to_previous"][key] < 1.0
    assert second["saturated_fraction"] == dict.fromkeys(LAYERS, 0.0)  # relu layers never saturate


def test_training_run_writes_scalars_json_and_plot(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    out = tmp_path / "dyn"
    cb = DynamicsCallback(digits[0][:64], layers=LAYERS, out=out, batch=32)
    model.fit(digits[0], digits[1], epochs=2, batch_size=64, verbose=0, callbacks=[cb])
    assert [e["step"] for e in cb.history] == [0, 1, 2]
    data = json.loads((out / "dynamics.json").read_text())
    assert data[0]["cka_to_previous"]["conv_0"] is None and 0 < data[2]["cka_to_previous"]["conv_1"] <= 1
    assert (out / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    import tensorflow as tf

    tags = set()
    for event_file in (out / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags |= {(v.tag, event.step) for v in event.summary.value}
    assert ("dynamics/cka_to_previous/conv_1", 2) in tags and ("dynamics/dead_fraction/dense_0", 0) in tags
    assert json.loads((out / ".convscope.json").read_text())["command"] == "callback"


def test_bad_options_and_too_few_probes():
    with pytest.raises(OptionError, match="batch must be an integer >= 4"):
        DynamicsCallback(np.zeros((8, 28, 28, 1), np.float32), batch=2)
    with pytest.raises(OptionError, match="batch must be at most 1024"):
        DynamicsCallback(np.zeros((8, 28, 28, 1), np.float32), batch=10**6)
    cb = DynamicsCallback(np.zeros((3, 28, 28, 1), np.float32))
    cb.set_model(build_mnist_cnn())
    with pytest.raises(InputError, match="at least 4 probe images"):
        cb.on_train_begin()
