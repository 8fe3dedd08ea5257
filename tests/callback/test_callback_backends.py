"""FeatureMapCallback on JAX, where Keras keeps trained weights outside the model until it syncs them.

Mid-epoch (``unit="batch"``) recordings must still show the weights as trained so far. A Keras backend
is fixed per process, so this runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")
pytest.importorskip("mlxtend")

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    from convscope.keras import FeatureMapCallback
    from convscope.models.zoo.mnist import build_mnist_cnn, load_mnist_digits

    x, y = load_mnist_digits()
    idx = np.random.default_rng(0).permutation(len(x))[:256]
    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cb = FeatureMapCallback(x[:1], layers=["conv_0"], out=sys.argv[1], unit="batch", every=2, record_start=True)
    model.fit(x[idx], y[idx], batch_size=64, epochs=1, verbose=0, callbacks=[cb])
    frames = cb.frames("conv_0")
    def diff(a, b):  # over the common area: captions may wrap differently
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        return float(np.abs(a[:h, :w].astype(int) - b[:h, :w].astype(int)).mean())

    diffs = [diff(a, b) for a, b in zip(frames, frames[1:])]
    print("RESULT " + json.dumps({"backend": keras.backend.backend(), "steps": cb.steps, "diffs": diffs,
                                  "gifs": sorted(cb.gif_paths), "tensorboard": cb._writer is not None}))
""")


def test_batch_recordings_follow_training_on_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["backend"] == "jax" and result["steps"] == [0, 2, 4]
    assert all(d > 0.1 for d in result["diffs"]), result["diffs"]  # each recording saw newer weights
    assert result["gifs"] == ["conv_0"] and (tmp_path / "conv_0.gif").exists()
    assert not (tmp_path / "tensorboard").exists()  # TensorBoard summaries are for the TensorFlow backend
