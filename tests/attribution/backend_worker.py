"""Worker for test_attribution_backends.py: raw Grad-CAM and saliency maps of the MNIST CNN on 4 bundled digits.

Run as ``KERAS_BACKEND=jax python backend_worker.py OUT.npz``; writes ``gradcam``, ``saliency`` (raw maps),
``scores`` and the backend name.
"""

from __future__ import annotations

import sys

import numpy as np


def main(out: str) -> None:
    import keras

    from convscope.attribution import cam
    from convscope.models.load import load_model
    from convscope.models.zoo import sample_digits

    model = load_model("mnist-cnn")
    x, y = sample_digits()
    rows = [0, 2, 4, 6]  # digits 0, 1, 2, 3
    # upsample="stretch": the raw maps do not depend on it, and the grid lookup would import TensorFlow
    g = cam(model, x[rows], "gradcam", target=[int(c) for c in y[rows]], upsample="stretch")
    s = cam(model, x[rows], "saliency", target=[int(c) for c in y[rows]])
    np.savez(out, gradcam=g.raw, saliency=s.raw, scores=g.scores, backend=keras.backend.backend())


if __name__ == "__main__":
    main(sys.argv[1])
