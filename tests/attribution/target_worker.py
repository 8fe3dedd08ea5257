"""Worker for test_target_kinds.py: raw Grad-CAM maps of every target kind on one backend.

Run as ``KERAS_BACKEND=jax python target_worker.py DIR OUT.npz``; DIR holds ``<kind>.keras`` and ``x.npy``
(saved by the TensorFlow test run); writes ``<kind>|<target>`` raw maps and ``...|scores``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

TARGETS = {
    "twohead": ["top1", "class:3", "output:box[2]"],
    "regression": ["output:value"],
    "detection": ["output:det[3]", "output:det[3,2]"],
    "segmenter": ["seg:1", "seg:2 region"],
    "tinyvit": ["top1"],
}
LAYERS = {"twohead": "c2", "regression": "r2", "detection": "d2", "segmenter": "bottom", "tinyvit": "ln_b"}


def main(folder: str, out: str) -> None:
    import keras
    import target_models  # noqa: F401  (registers ClassToken)

    from convscope.attribution import cam
    from convscope.attribution.targets import SegTarget

    x = np.load(Path(folder) / "x.npy")
    arrays: dict[str, np.ndarray] = {"backend": np.array(keras.backend.backend())}
    for kind, targets in TARGETS.items():
        model = keras.saving.load_model(Path(folder) / f"{kind}.keras")
        for spec in targets:
            target = SegTarget(2, region=(4, 2, 12, 9)) if spec == "seg:2 region" else spec
            res = cam(model, x, "gradcam", layer=LAYERS[kind], target=target, upsample="stretch")
            arrays[f"{kind}|{spec}"] = res.raw
            arrays[f"{kind}|{spec}|scores"] = res.scores
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
