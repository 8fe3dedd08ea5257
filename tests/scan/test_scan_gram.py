"""Near-duplicates mean pixelwise copies: the streamed co-moment (centred Gram) matrix and its correlation
equal a float64 numpy reference computed on the whole dataset at once, for any batching, sharding and merge
order, on both reductions; copies and scaled copies of a channel injected into the bundled MNIST CNN are
reported, and every reported pair correlates pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from scanhelp import pixel_corr

from convscope.scan import reduce, stats
from convscope.scan.health import DUPLICATE, layer_health, summary_dict, summary_text
from convscope.scan.layerstats import LayerStats
from convscope.scan.stats import LayerAccumulator, correlation

# Against float64 numpy over the whole dataset at once. The default float32 BLAS products sum each chunk in
# float32 (~1e-6 relative, measured 3.3e-6 of r at worst on MNIST conv_0); float64 products are exact.
ATOL_R = {False: 5e-6, True: 1e-8}  # on r, by reduce.GRAM_FLOAT64 (1e-8: the reference's own rounding)
RTOL_GRAM = {False: 5e-6, True: 1e-9}  # on the co-moment matrix, relative to its largest entry


@pytest.fixture(autouse=True, params=["fused", "numpy"])
def impl(request, monkeypatch) -> str:
    """Every test runs on both reductions: the numba one-pass kernel and the numpy passes."""
    monkeypatch.setattr(reduce, "USE_FUSED", request.param == "fused")
    return request.param


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(11)
    x = np.maximum(rng.normal(size=(157, 8, 6, 12)), 0).astype(np.float32)
    x[..., 1] = x[..., 0]  # exact copy: r = 1
    x[..., 2] = 2 * x[..., 0]  # scaled copy: r = 1
    x[..., 3] = 0.0  # dead: constant, r undefined (NaN)
    x[..., 4] += 3000.0  # large offset: the co-moments must survive it
    x[..., 5] = 3000.0 + 0.5 * x[..., 6]  # offset + scaled copy
    x[..., 7] = x[..., 8] + rng.normal(scale=0.05, size=x.shape[:-1])  # near copy, r just below 1
    x[..., 9] = x.mean(axis=(1, 2), keepdims=True)[..., 10]  # equal spatial MEANS of 10, flat map: r ~ 0.5
    return x


def gram_reference(x: np.ndarray) -> np.ndarray:
    flat = x.astype(np.float64).reshape(-1, x.shape[-1])
    d = flat - flat.mean(axis=0)
    return d.T @ d


def accumulate(x: np.ndarray, shards: list[tuple[int, int]], batch: int, order: list[int] | None = None) -> LayerAccumulator:
    parts = []
    for a, b in shards:
        acc = LayerAccumulator(x.shape[-1], 3)
        for s in range(a, b, batch):
            acc.add_batch(np.ascontiguousarray(x[s : min(b, s + batch)]), s)
        parts.append(acc)
    total = LayerAccumulator(x.shape[-1], 3)
    for i in order or range(len(parts)):
        total.merge(parts[i])
    return total


def assert_corr(got: np.ndarray, ref: np.ndarray) -> None:
    both = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), both)
    np.testing.assert_allclose(got[both], ref[both], rtol=0, atol=ATOL_R[reduce.GRAM_FLOAT64])


@pytest.fixture(params=[False, True], ids=["f32-products", "f64-products"])
def products(request, monkeypatch) -> bool:
    monkeypatch.setattr(reduce, "GRAM_FLOAT64", request.param)
    return request.param


@pytest.mark.parametrize("shards,batch,order", [
    ([(0, 157)], 1, None),
    ([(0, 157)], 16, None),
    ([(0, 157)], 500, None),
    ([(0, 64), (64, 65), (65, 157)], 8, [2, 0, 1]),
    ([(i, min(i + 13, 157)) for i in range(0, 157, 13)], 5, list(range(12, -1, -1))),
])
def test_gram_and_r_equal_the_whole_dataset_reference(data, shards, batch, order, products):
    acc = accumulate(data, shards, batch, order)
    ref = gram_reference(data)
    assert acc.comoment is not None
    np.testing.assert_allclose(acc.comoment, ref, rtol=0, atol=RTOL_GRAM[products] * np.abs(ref).max())
    np.testing.assert_allclose(np.diag(acc.comoment), acc.m2, rtol=1e-12)  # one concept: its diagonal is M2
    corr = acc.finish()["corr"]
    assert_corr(corr, pixel_corr(data))
    np.testing.assert_allclose(corr[0, [1, 2]], 1.0, atol=ATOL_R[products])
    np.testing.assert_allclose(corr[5, 6], 1.0, atol=ATOL_R[products])
    assert 0.9 < corr[7, 8] < 0.9999 and corr[9, 10] < 0.8


def test_vector_and_1d_layers(data, products):
    rng = np.random.default_rng(3)
    v = rng.normal(size=(61, 7)).astype(np.float32)
    v[:, 6] = -3 * v[:, 1] + 2
    assert_corr(accumulate(v, [(0, 30), (30, 61)], 4).finish()["corr"], pixel_corr(v))
    w = rng.normal(size=(23, 17, 5)).astype(np.float32)
    assert_corr(accumulate(w, [(0, 23)], 6).finish()["corr"], pixel_corr(w))


def test_comoment_on_real_activations_of_the_mnist_cnn(products):
    """conv_0 of MNIST: most positions are background (one constant value per channel), the case where
    float32 sums lose ~1e-6 of r; float64 products keep it exact."""
    keras = pytest.importorskip("keras")
    from convscope.models.load import load_model
    from convscope.models.zoo.mnist import load_mnist_digits

    model = load_model("mnist-cnn")
    x, _ = load_mnist_digits()
    sub = keras.Model(model.inputs, model.get_layer("conv_0").output)
    act = np.asarray(sub(x[:300]), np.float32)
    acc = accumulate(act, [(0, 100), (100, 300)], 64)
    assert_corr(acc.finish()["corr"], pixel_corr(act))


def stats_from(acc: LayerAccumulator, images: int) -> LayerStats:
    arrays = acc.finish()
    return LayerStats(key="conv", shape=(1, 1, acc.channels), spatial=(1, 1), channels=acc.channels, images=images,
                      activation="relu", **arrays)


def test_health_reports_pixelwise_pairs_only_and_says_what_r_means(data):
    acc = accumulate(data, [(0, 157)], 32)
    layer = stats_from(acc, len(data))
    h = layer_health(layer)
    pairs = {(a, b) for a, b, _ in h.duplicates}
    assert {(0, 1), (0, 2), (1, 2), (5, 6), (7, 8)} <= pairs
    assert (9, 10) not in pairs and all(r >= DUPLICATE for _, _, r in h.duplicates)
    ref = pixel_corr(data)
    assert all(ref[a, b] >= DUPLICATE for a, b in pairs)
    assert h.dead == (3,) and h.correlated
    manifest = {"dataset": {"size": len(data), "source": "test"}, "model": {"name": "m"}}
    text = summary_text(manifest, {"conv": layer})
    assert "pixelwise Pearson correlation over all positions of the 157 scanned images" in text
    assert "near-duplicate of channel 0 (pixelwise r=1.000)" in text
    words = summary_dict(manifest, {"conv": layer})["words"]
    assert words["r"] == "pixelwise Pearson correlation over all positions of the 157 scanned images"
    assert words["dead"] == "zero at every position of all 157 scanned images"


def test_layers_wider_than_the_cap_skip_the_gram_and_say_so(data, monkeypatch):
    monkeypatch.setattr(stats, "MAX_GRAM_CHANNELS", 11)  # data has 12 channels
    acc = accumulate(data, [(0, 50), (50, 157)], 16)
    assert acc.comoment is None and "corr" not in acc.finish()
    layer = stats_from(acc, len(data))
    assert layer.corr is None and "corr" not in layer.arrays()
    again = LayerStats.from_parts(layer.meta(), layer.arrays())
    assert again.corr is None
    h = layer_health(layer)
    assert not h.correlated and h.duplicates == ()
    text = summary_text({"dataset": {"size": 157}}, {"conv": layer})
    assert "near-duplicates not measured (12 channels > 11)" in text
    monkeypatch.setattr(stats, "MAX_GRAM_CHANNELS", 12)
    np.testing.assert_array_equal(correlation(np.diag([4.0, 0.0])), [[1.0, np.nan], [np.nan, np.nan]])


@pytest.fixture(scope="module")
def sparse_relu() -> np.ndarray:
    """A ReLU-like layer at ~10% density (MNIST conv_1 is at 11%), with exact and scaled copies."""
    rng = np.random.default_rng(21)
    x = np.maximum(rng.normal(loc=-1.3, size=(90, 7, 9, 16)), 0).astype(np.float32)
    x[..., 1] = x[..., 0]
    x[..., 2] = 3 * x[..., 0]
    x[..., 3] = 0.0  # dead
    return x


@pytest.mark.parametrize("batch", [1, 16, 90])
def test_each_gram_route_equals_the_float64_reference(sparse_relu, batch, impl):
    """Sparse kernel (ReLU layers, fused pass), BLAS about zero (small offsets), shifted (large offsets):
    every route gives the whole-dataset reference, and each is really taken on the data meant for it."""
    dense = np.random.default_rng(4).normal(size=(40, 5, 5, 6)).astype(np.float32)  # offsets ~0: about zero
    offset = dense + 50.0  # condition ~2500: shifted
    for x, expected in ((sparse_relu, "sparse"), (dense, "about zero"), (offset, "shifted")):
        s = reduce.summarize(np.ascontiguousarray(x[:batch]))
        mean = s.sums.sum(axis=0) / (s.sums.shape[0] * s.positions)
        route = reduce.gram_route(x[:batch].reshape(-1, x.shape[-1]), mean, s.m2, s.nonzero, False)
        assert route == (("about zero" if expected == "sparse" else expected) if impl == "numpy" else expected)
        acc = accumulate(x, [(0, len(x))], batch)
        ref = gram_reference(x)
        np.testing.assert_allclose(acc.comoment, ref, rtol=0, atol=RTOL_GRAM[False] * np.abs(ref).max())
        assert_corr(acc.finish()["corr"], pixel_corr(x))
    corr = accumulate(sparse_relu, [(0, 90)], batch).finish()["corr"]
    np.testing.assert_allclose(corr[0, [1, 2]], 1.0, atol=ATOL_R[False])
    assert np.isnan(corr[3]).all()


def test_sparse_kernel_against_numpy_on_a_hand_made_matrix():
    from convscope.scan.fused import sparse_gram_kernel

    kernel = sparse_gram_kernel()
    assert kernel is not None
    a = np.array([[0, 2, 0], [1, 0, -3], [0, 0, 0], [4, 5, 6]], np.float32)
    out = np.full((3, 3), 10.0)  # the kernel adds to what is there
    kernel(a, out)
    np.testing.assert_array_equal(out, 10.0 + a.astype(np.float64).T @ a)
