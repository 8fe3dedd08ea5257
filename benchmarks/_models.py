"""Models, inputs and the RECIPE baseline shared by the benchmark scripts.

The RECIPE is the snippet users copy today to look at feature maps in Keras 3, per conv layer::

    sub = keras.Model(inputs=model.inputs, outputs=layer.output)   # model.input raises on Sequential
    fmap = sub.predict(x, verbose=0)
    fig, axes = plt.subplots(4, 8, figsize=(12, 6))
    for i, ax in enumerate(axes.flat):
        ax.imshow(fmap[0, :, :, i], cmap="gray"); ax.axis("off")
    fig.savefig(path); plt.close(fig)

No weights are ever downloaded (``weights=None``).
"""

from __future__ import annotations

import _common  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL / MPLBACKEND before the imports below)

from pathlib import Path
from typing import Any

import numpy as np

RECIPE_FIGSIZE = (12, 6)  # inches at matplotlib's default 100 dpi -> a 1200x600 PNG
RECIPE_ROWS, RECIPE_COLS = 4, 8


def mnist() -> tuple[Any, np.ndarray]:
    """The bundled MNIST CNN and the 16 bundled held-out digits ``(16, 28, 28, 1)`` float32."""
    from convscope.models.load import load_model
    from convscope.models.zoo import sample_digits

    model = load_model("mnist-cnn")
    x, _ = sample_digits()
    return model, np.ascontiguousarray(x, dtype=np.float32)


def vgg16() -> Any:
    """A VGG16-shaped model (13 conv layers, random seeded weights, no download)."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))


def vgg_images(n: int = 1, seed: int = 0) -> np.ndarray:
    """``(n, 224, 224, 3)`` float32: a real photo (skimage's chelsea) for the first row when available,
    then deterministic random images. Values roughly in VGG's caffe-preprocessed range."""
    rng = np.random.default_rng(seed)
    rows = []
    try:
        import skimage.data
        from PIL import Image

        cat = Image.fromarray(skimage.data.chelsea()).resize((224, 224), Image.BILINEAR)
        rows.append(np.asarray(cat, dtype=np.float32) - 127.5)
    except Exception:
        pass
    while len(rows) < n:
        rows.append(rng.uniform(-127.5, 127.5, size=(224, 224, 3)).astype(np.float32))
    return np.stack(rows[:n]).astype(np.float32)


def random_vgg_batch(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 224, 224, 3)`` float32 deterministic random inputs."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-127.5, 127.5, size=(n, 224, 224, 3)).astype(np.float32)


def conv_layers(model: Any) -> list[Any]:
    """The model's Conv2D layers (what convscope probes by default)."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def recipe_submodels(model: Any) -> dict[str, Any]:
    """One ``keras.Model(inputs=model.inputs, outputs=layer.output)`` per conv layer."""
    import keras

    return {layer.name: keras.Model(inputs=model.inputs, outputs=layer.output) for layer in conv_layers(model)}


def recipe_plot(fmap: np.ndarray, path: Path) -> None:
    """The recipe's 4x8 matplotlib grid of the first 32 channels of ``fmap[0]``, saved to ``path``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(RECIPE_ROWS, RECIPE_COLS, figsize=RECIPE_FIGSIZE)
    for i, ax in enumerate(axes.flat):
        if i < fmap.shape[-1]:
            ax.imshow(fmap[0, :, :, i], cmap="gray")
        ax.axis("off")
    fig.savefig(path)
    plt.close(fig)


def recipe_one_image(model: Any, x1: np.ndarray, out_dir: Path, submodels: dict[str, Any] | None = None,
                     tag: str = "img") -> list[Path]:
    """Every conv layer of one image ``x1`` (shape ``(1, ...)``) to a PNG grid, the recipe's way.

    ``submodels=None`` builds the sub-model per layer per call, exactly as the snippet does;
    pass :func:`recipe_submodels` output to build them once (kinder to the recipe).
    """
    import keras

    paths = []
    for layer in conv_layers(model):
        if submodels is None:
            sub = keras.Model(inputs=model.inputs, outputs=layer.output)
        else:
            sub = submodels[layer.name]
        fmap = sub.predict(x1, verbose=0)
        path = out_dir / f"{tag}_{layer.name}.png"
        recipe_plot(fmap, path)
        paths.append(path)
    return paths
