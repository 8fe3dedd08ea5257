"""``compare`` on the bundled MNIST CNN and real digits: every number against a whole-dataset float64
numpy reference, exact merges over batches, the results folder, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from convscope.diagnose import compare, load_compare
from convscope.errors import InputError, OutputError
from convscope.models.load import load_model
from convscope.models.zoo.mnist import load_mnist_digits
from convscope.probe.cache import get_extractor

LAYERS = ["conv_1", "dense_0"]


@pytest.fixture(scope="module")
def mnist():
    return load_model("mnist-cnn")


@pytest.fixture(scope="module")
def sets() -> tuple[np.ndarray, np.ndarray]:
    x, _ = load_mnist_digits()
    rng = np.random.default_rng(0)
    a, b = x[::50], x[25::50]  # 100 + 100 real digits, 10 per class each
    noisy = np.clip(b + rng.normal(0, 0.3, b.shape), 0, 1).astype(np.float32)
    return a, noisy


@pytest.fixture(scope="module")
def result(mnist, sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    return compare(mnist, *sets, layers=LAYERS, top_k=4, bins=16, batch_size=16, out=out)


def whole(mnist, x: np.ndarray) -> dict[str, np.ndarray]:
    """The activations as the compare's forward passes give them (batches of 16: TensorFlow's float32
    results may differ in the last bit with the batch size), gathered for the whole-dataset reference."""
    acts = get_extractor(mnist, LAYERS, batch_size=16)(x)
    return {k: np.asarray(v, np.float64) for k, v in acts.items()}


def test_every_number_equals_the_whole_dataset_reference(mnist, sets, result):
    ra, rb = whole(mnist, sets[0]), whole(mnist, sets[1])
    for key in LAYERS:
        layer = result[key]
        xa, xb = ra[key], rb[key]
        sa, sb = (v.reshape(len(v), -1, v.shape[-1]).max(axis=1) for v in (xa, xb))
        lo, hi = np.minimum(sa.min(0), sb.min(0)), np.maximum(sa.max(0), sb.max(0))
        for c in range(layer.channels):
            edges = layer.edges[c]
            assert edges[0] == lo[c] or lo[c] == hi[c]
            np.testing.assert_array_equal(layer.hist_a[c], np.histogram(sa[:, c], bins=edges)[0])
            np.testing.assert_array_equal(layer.hist_b[c], np.histogram(sb[:, c], bins=edges)[0])
            centres = (edges[1:] + edges[:-1]) / 2
            ref = wasserstein_distance(centres, centres, layer.hist_a[c], layer.hist_b[c])
            assert layer.w1[c] == pytest.approx(ref, rel=1e-12, abs=1e-15)
        pooled = np.sqrt((sa.var(0, ddof=1) * 99 + sb.var(0, ddof=1) * 99) / 198)
        live = pooled > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (sb.mean(0) - sa.mean(0)) / pooled
        np.testing.assert_allclose(layer.effect[live], d[live], rtol=1e-9)
        np.testing.assert_allclose(layer.smax_mean_b, sb.mean(0), rtol=1e-12)
        flat = xa.reshape(-1, xa.shape[-1])
        np.testing.assert_allclose(layer.a.mean, flat.mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(layer.a.std, flat.std(0), rtol=2e-5, atol=1e-7)
        order = np.lexsort((np.broadcast_to(np.arange(100)[:, None], sb.shape).T, -sb.T), axis=-1)[:, :4]
        np.testing.assert_array_equal(layer.b.top_index, order)
        assert np.all(np.diff(layer.shift[layer.rank]) <= 0)


def test_noise_shifts_channels_far_more_than_another_clean_sample(mnist, sets, result):
    x, _ = load_mnist_digits()
    clean = compare(mnist, sets[0], x[25::50], layers=["conv_1"], bins=16, batch_size=50)
    noisy, same = np.median(result["conv_1"].shift), np.median(clean["conv_1"].shift)
    assert noisy > 3 * same, (noisy, same)


def test_folder_roundtrip_and_pictures(result):
    path = Path(result.path)
    assert {"manifest.json", "summary.json", "summary.txt", ".convscope.json"} <= {p.name for p in path.iterdir()}
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "convscope-compare" and manifest["datasets"]["b"]["size"] == 100
    assert (path / "layers/conv_1/top_a.png").is_file() and (path / "layers/conv_1/shift.png").is_file()
    assert not (path / "layers/dense_0/top_a.png").exists()  # a vector layer has no crops
    back = load_compare(path)
    for key in LAYERS:
        for name in ("hist_a", "effect", "w1", "rank", "edges"):
            np.testing.assert_array_equal(getattr(back[key], name), getattr(result[key], name))
        np.testing.assert_array_equal(back[key].b.top_index, result[key].b.top_index)
    summary = json.loads((path / "summary.json").read_text())
    assert summary["layers"][0]["top"][0]["channel"] == int(result["conv_1"].rank[0])


def test_a_different_comparison_is_refused_without_force(mnist, sets, result):
    with pytest.raises(OutputError, match="different compare result"):
        compare(mnist, sets[1], sets[0], layers=LAYERS, top_k=4, bins=16, out=result.path)


def test_bad_input_one_error_nothing_written(mnist, sets, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(InputError, match="DATA_B|does not fit|shape"):
        compare(mnist, sets[0], np.zeros((5, 20, 20, 1), np.float32), out=out)
    with pytest.raises(InputError, match="no samples"):
        compare(mnist, sets[0], np.zeros((0, 28, 28, 1), np.float32), out=out)
    assert not out.exists() and not list(tmp_path.iterdir())
