"""Architectures of the bundled canvas models: ``digit-unet`` (segmentation) and ``digit-locator`` (class + box).

Both take one 96x96 gray digit canvas (:mod:`convscope.models.zoo.canvas`) in [0, 1] and are functional
models of plain Keras layers only, so their ``.keras`` files load with ``safe_mode=True`` and no custom
objects. Keras is imported only inside the builders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convscope.models.zoo.canvas import CANVAS_SIZE, MASK_CLASSES

if TYPE_CHECKING:
    import keras

#: Input shape of both models (height, width, channels).
INPUT_SHAPE: tuple[int, int, int] = (CANVAS_SIZE, CANVAS_SIZE, 1)
#: Name of the U-Net's per-pixel softmax output, (N, 96, 96, 2): background, stroke.
MASK_OUTPUT: str = "mask"
#: Names of the locator's outputs: class softmax (N, 10) and box (N, 4) ``(x0, y0, x1, y1) / 96``.
CLASS_OUTPUT: str = "cls"
BOX_OUTPUT: str = "box"


def build_digit_unet(width: int = 8, size: int | None = CANVAS_SIZE) -> keras.Model:
    """Build the (un-compiled, randomly initialised) stroke-segmentation U-Net.

    Two encoder levels and a bottleneck, each two 3x3 ReLU convolutions (``width``, ``2*width``,
    ``4*width`` filters; 2x2 max-pooling between levels); the decoder goes up once with a learned
    ``Conv2DTranspose`` (``dec2_up``) and once with ``UpSampling2D`` (``dec1_up``), each followed by a
    ``Concatenate`` with the encoder features of that size (the skip connection) and two 3x3 ReLU
    convolutions; a 1x1 convolution with a softmax over the classes :data:`MASK_CLASSES` gives ``mask``
    (N, 96, 96, 2).

    The network is fully convolutional: ``size=None`` leaves the input size free (any multiple of 4), which
    is how it is trained, on smaller canvases (see ``scripts/train_canvas_models.py``); the bundled model is
    built with the default 96.

    Args:
        width: Filters of the first level.
        size: Side of the square input, or ``None`` for any size.

    Returns:
        A functional ``keras.Model`` named ``digit_unet``.
    """
    import keras  # lazy: importing the zoo must stay light

    L = keras.layers

    def block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
        x = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv0")(x)
        return L.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)

    image = keras.Input((size, size, 1), name="image")
    enc1 = block(image, width, "enc1")  # 96
    enc2 = block(L.MaxPooling2D(2, name="enc1_pool")(enc1), 2 * width, "enc2")  # 48
    mid = block(L.MaxPooling2D(2, name="enc2_pool")(enc2), 4 * width, "mid")  # 24
    up2 = L.Conv2DTranspose(2 * width, 2, strides=2, name="dec2_up")(mid)  # 48
    dec2 = block(L.Concatenate(name="dec2_concat")([up2, enc2]), 2 * width, "dec2")
    up1 = L.UpSampling2D(2, name="dec1_up")(dec2)  # 96
    dec1 = block(L.Concatenate(name="dec1_concat")([up1, enc1]), width, "dec1")
    mask = L.Conv2D(len(MASK_CLASSES), 1, activation="softmax", name=MASK_OUTPUT)(dec1)
    return keras.Model(image, mask, name="digit_unet")


def build_digit_locator(width: int = 16) -> keras.Model:
    """Build the (un-compiled, randomly initialised) two-head digit locator.

    A shared trunk of four 3x3 ReLU convolutions (``width``, ``2*width``, ``4*width``, ``4*width``
    filters) with 2x2 max-pooling after the first three (96 -> 12 pixels), then two heads:

    - ``cls``: global max-pooling (position-free), Dense 64 ReLU, Dense 10 softmax: the digit class;
    - ``box``: a 1x1 convolution to 8 channels (keeps the position), Flatten, Dense 32 ReLU, Dense 4
      sigmoid: ``(x0, y0, x1, y1) / 96``.

    Args:
        width: Filters of the first convolution.

    Returns:
        A functional ``keras.Model`` named ``digit_locator`` with outputs ``[cls, box]``.
    """
    import keras  # lazy: importing the zoo must stay light

    L = keras.layers
    image = keras.Input(INPUT_SHAPE, name="image")
    x = image
    for level, filters in enumerate((width, 2 * width, 4 * width)):
        x = L.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{level}")(x)
        x = L.MaxPooling2D(2, name=f"pool_{level}")(x)
    trunk = L.Conv2D(4 * width, 3, padding="same", activation="relu", name="conv_3")(x)  # 12x12

    c = L.GlobalMaxPooling2D(name="cls_pool")(trunk)
    c = L.Dense(64, activation="relu", name="cls_dense")(c)
    cls = L.Dense(10, activation="softmax", name=CLASS_OUTPUT)(c)

    b = L.Conv2D(8, 1, activation="relu", name="box_reduce")(trunk)
    b = L.Flatten(name="box_flatten")(b)
    b = L.Dense(32, activation="relu", name="box_dense")(b)
    box = L.Dense(4, activation="sigmoid", name=BOX_OUTPUT)(b)
    return keras.Model(image, [cls, box], name="digit_locator")


__all__ = [
    "BOX_OUTPUT",
    "CLASS_OUTPUT",
    "INPUT_SHAPE",
    "MASK_OUTPUT",
    "build_digit_locator",
    "build_digit_unet",
]
