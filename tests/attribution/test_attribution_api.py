"""The public surface: registry, options, results, caching, batching, overlay-readiness (every backend)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from convscope.attribution import (  # noqa: E402
    METHODS,
    CamResult,
    cam,
    engines,
    get_method,
)
from convscope.errors import ConvscopeError, InputError, OptionError  # noqa: E402


def test_registry_and_aliases():
    assert list(METHODS) == ["gradcam", "gradcampp", "layercam", "scorecam", "saliency", "smoothgrad",
                             "integrated_gradients"]
    assert get_method("Grad-CAM") is METHODS["gradcam"] and get_method("ig") is METHODS["integrated_gradients"]
    with pytest.raises(OptionError, match=r"unknown attribution method 'gradcan'; choose one of gradcam, .*"
                       r"did you mean gradcam"):
        get_method("gradcan")


def test_option_errors(mnist, digits):
    x = digits[0][:1]
    with pytest.raises(OptionError, match=r"'gradcam' got unknown option\(s\) 'steps'; accepted: use_logits"):
        cam(mnist, x, steps=3)
    with pytest.raises(OptionError, match=r"'saliency' attributes to the input pixels; layer='conv_1' does not apply"):
        cam(mnist, x, "saliency", layer="conv_1")
    with pytest.raises(OptionError, match=r"batch_size must be an integer >= 1, got 0"):
        cam(mnist, x, batch_size=0)
    with pytest.raises(OptionError, match=r"upsample must be one of grid, stretch, got 'nearest'"):
        cam(mnist, x, upsample="nearest")
    with pytest.raises(OptionError, match=r"rule must be one of trapezoid, midpoint, got 'simpson'"):
        cam(mnist, x, "ig", rule="simpson")
    with pytest.raises(OptionError, match=r"max_channels must be an integer >= 1, got -2"):
        cam(mnist, x, "scorecam", max_channels=-2)
    with pytest.raises(InputError, match=r"images shaped \(N, H, W, C\).*got shape \(28, 28\)"):
        cam(mnist, x[0, :, :, 0])
    with pytest.raises(InputError, match=r"baseline must be a number, one sample shaped \(28, 28, 1\)"):
        cam(mnist, x, "ig", baseline=np.zeros((3, 3)))


def test_result_is_frozen_read_only_and_saves_once(mnist, digits, tmp_path):
    res = cam(mnist, digits[0][0])  # one (H, W, C) image
    assert isinstance(res, CamResult) and len(res) == 1
    assert res.maps.shape == (1, 28, 28) and res.raw.shape == (1, 24, 24) and res.maps.dtype == np.float32
    assert res.maps.min() == 0.0 and res.maps.max() == 1.0 and res.upsample == "grid"
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.method = "other"  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.maps[0, 0, 0] = 1.0
    path = res.save(tmp_path / "gradcam")
    assert path.name == "gradcam.npz" and np.load(path)["maps"].shape == (1, 28, 28)
    with pytest.raises(ConvscopeError, match=r"already exists; refusing to overwrite"):
        res.save(path)


def test_maps_are_overlay_ready(mnist, digits):
    from convscope.render import overlay

    x = digits[0][:2]
    res = cam(mnist, x, "layercam")
    grid = overlay(x[1], res.maps[1][..., None], 0, cmap="magma", caption=False)
    assert grid.image.shape == (224, 224, 3) and grid.image.dtype == np.uint8


def test_compiled_passes_are_cached_and_batches_agree(mnist, digits):
    x = digits[0][:7]
    first = cam(mnist, x, "gradcam")
    again = cam(mnist, x, "gradcam++")
    cam(mnist, x, "layercam")
    count = len(engines._ENGINES[mnist])
    for method in ("gradcam", "gradcam++", "layercam"):  # every pass is cached: nothing new is built
        cam(mnist, x, method)
    assert len(engines._ENGINES[mnist]) == count
    # Grad-CAM's pass pools dS/dA inside the backend; gradcam++ and layercam share the full-gradient pass
    layer_passes = [k for k in engines._ENGINES[mnist] if k[0] == "layer-grad" and k[1] == first.layer]
    assert len(layer_passes) == 2 and {k[-1] for k in layer_passes} == {True, False}
    small = cam(mnist, x, "gradcam", batch_size=3)
    np.testing.assert_allclose(small.raw, first.raw, rtol=1e-5, atol=1e-6 * float(first.raw.max()))
    assert again.targets == first.targets


def test_scorecam_on_mnist_is_batched_and_sane(mnist, digits):
    x = digits[0][[0, 2]]
    res = cam(mnist, x, "scorecam", max_channels=16, batch_size=32)
    assert res.layer == "conv_1" and res.score == "probability" and res.maps.shape == (2, 28, 28)
    assert np.all(res.raw >= 0) and np.all(res.raw.reshape(2, -1).max(axis=1) > 0)


def test_importing_attribution_stays_light():
    code = "import sys, convscope.attribution; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ}, timeout=60)
