"""The Ray engine against a local Ray cluster started here: same numbers as the local engine."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope.errors import OptionError  # noqa: E402
from convscope.models.zoo.mnist import load_mnist_digits  # noqa: E402
from convscope.scan import scan  # noqa: E402
from convscope.scan.ray_engine import shards  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster(request):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    request.addfinalizer(ray.shutdown)
    return ray


@pytest.fixture(scope="module")
def digits500(tmp_path_factory):
    x, _ = load_mnist_digits()
    path = tmp_path_factory.mktemp("ray") / "digits500.npy"
    np.save(path, x[::10])  # 500 real digits, 50 per class
    return path


def test_shards_are_whole_batches_fixed_by_size_and_batch():
    assert shards(500, 64) == [(0, 64), (64, 128), (128, 192), (192, 256), (256, 320), (320, 384),
                               (384, 448), (448, 500)]
    assert shards(10, 64) == [(0, 10)]
    many = shards(100_000, 32)  # 3,125 batches: 64 shards of 49 batches (the last shorter)
    assert len(many) == 64 and all(a % 32 == 0 for a, _ in many) and many[-1][1] == 100_000
    assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(many))


def test_ray_equals_local_on_500_digits(ray_cluster, digits500, tmp_path):
    local = scan("mnist-cnn", digits500, top_k=8, out=tmp_path / "local", crops=False)
    ray = scan("mnist-cnn", digits500, top_k=8, engine="ray", out=tmp_path / "ray", crops=False)
    assert ray.manifest["options"]["engine"] == "ray" and "ray" in ray.manifest["versions"]
    for key in ("conv_0", "conv_1"):
        a, b = local[key], ray[key]
        np.testing.assert_allclose(b.mean, a.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.std, a.std, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.corr, a.corr, rtol=1e-9, atol=1e-9)
        for name in ("max", "frac_positive", "top_index", "top_value", "top_pos"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=f"{key}.{name}")
    assert ray_cluster.is_initialized()  # the engine used the running session and left it running


def test_ray_needs_a_model_path_and_the_package(monkeypatch, digits500):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(OptionError, match="file path or zoo name"):
        scan(model, digits500, engine="ray")
    with pytest.raises(OptionError, match="--address 'auto' is only used with --engine ray"):
        scan("mnist-cnn", digits500, address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(OptionError, match=r"pip install 'convscope\[ray\]'"):
        scan("mnist-cnn", digits500, engine="ray")
