"""The same maps on TensorFlow, JAX and torch: one subprocess per backend, raw maps compared.

Criterion: for every image, ``max |a - b| <= 1e-4 * (max(a) - min(a))`` between each backend and
TensorFlow, for the raw Grad-CAM (layer ``conv_1``) and the raw saliency of the MNIST CNN on 4 digits.
Runs once, from the TensorFlow test run (``tf_only``: it starts all three backends itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("backend_worker.py")
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.tf_only
def test_gradcam_and_saliency_agree_across_backends(tmp_path):
    procs = {}
    for name in BACKENDS:  # all three at once
        env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3"}
        procs[name] = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / f"{name}.npz")], env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name} worker failed:\n{output[-3000:]}"
    results = {name: np.load(tmp_path / f"{name}.npz") for name in BACKENDS}
    assert {str(r["backend"]) for r in results.values()} == set(BACKENDS)
    reference = results["tensorflow"]
    for name in ("jax", "torch"):
        for key in ("gradcam", "saliency"):
            a, b = reference[key], results[name][key]
            assert a.shape == b.shape == (4, *( (24, 24) if key == "gradcam" else (28, 28)))
            for i in range(len(a)):
                span = float(a[i].max() - a[i].min())
                assert span > 0, f"{key} map {i} is constant on tensorflow"
                err = float(np.abs(a[i] - b[i]).max())
                assert err <= 1e-4 * span, f"{key} image {i}: {name} vs tensorflow max diff {err:.3g} (range {span:.3g})"
        np.testing.assert_allclose(results[name]["scores"], reference["scores"], rtol=1e-4, atol=1e-4)
