"""Small, seeded models of the kinds people bring (segmentation, detection heads, regression, ViT, KerasHub).

Each builder returns a fresh ``keras.Model`` whose inputs are 32x32 to 64x64, built in well under a second,
with no weights downloaded. ``tests/kinds/conftest.py`` builds each once per test module.
"""

from __future__ import annotations

import keras
import numpy as np
from vit_layers import ClassToken, PositionEmbedding, TakeToken

L = keras.layers

#: Classes of the segmentation outputs (per-pixel), of the two-head model's "cls" head.
SEG_CLASSES = 3
HEAD_CLASSES = 10


def unet(size: int = 32, softmax: bool = True) -> keras.Model:
    """A two-level U-Net: skip Concatenates, one Conv2DTranspose and one UpSampling2D; ``(N, H, W, 3)``."""
    inp = keras.Input((size, size, 3), name="image")
    e1 = L.Conv2D(8, 3, padding="same", activation="relu", name="enc1")(inp)
    p1 = L.MaxPooling2D(name="pool1")(e1)
    e2 = L.Conv2D(16, 3, padding="same", activation="relu", name="enc2")(p1)
    p2 = L.MaxPooling2D(name="pool2")(e2)
    b = L.Conv2D(32, 3, padding="same", activation="relu", name="bottleneck")(p2)
    u2 = L.Conv2DTranspose(16, 2, strides=2, name="up2")(b)
    c2 = L.Concatenate(name="skip2")([u2, e2])
    d2 = L.Conv2D(16, 3, padding="same", activation="relu", name="dec2")(c2)
    u1 = L.UpSampling2D(2, name="up1")(d2)
    c1 = L.Concatenate(name="skip1")([u1, e1])
    d1 = L.Conv2D(8, 3, padding="same", activation="relu", name="dec1")(c1)
    out = L.Conv2D(SEG_CLASSES, 1, activation="softmax" if softmax else None, name="seg")(d1)
    return keras.Model(inp, out, name="unet")


def deeplab(size: int = 48) -> keras.Model:
    """DeepLabV3+-style: dilated convs, ASPP with an image-pooling branch, bilinear decoder; per-pixel logits."""
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(inp)  # 1/2
    low = L.Conv2D(8, 3, padding="same", activation="relu", name="low_level")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down")(low)  # 1/4
    x = L.Conv2D(16, 3, padding="same", dilation_rate=2, activation="relu", name="atrous")(x)
    side = size // 4
    a0 = L.Conv2D(8, 1, activation="relu", name="aspp_1x1")(x)
    a1 = L.Conv2D(8, 3, padding="same", dilation_rate=2, activation="relu", name="aspp_d2")(x)
    a2 = L.Conv2D(8, 3, padding="same", dilation_rate=3, activation="relu", name="aspp_d3")(x)
    pooled = L.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = L.Conv2D(8, 1, activation="relu", name="aspp_pool_conv")(pooled)
    pooled = L.UpSampling2D(side, interpolation="bilinear", name="aspp_pool_up")(pooled)
    x = L.Concatenate(name="aspp_concat")([a0, a1, a2, pooled])
    x = L.Conv2D(16, 1, activation="relu", name="aspp_project")(x)
    x = L.UpSampling2D(2, interpolation="bilinear", name="decoder_up")(x)  # 1/2
    x = L.Concatenate(name="decoder_concat")([x, low])
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="decoder_conv")(x)
    x = L.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    out = L.Conv2D(SEG_CLASSES, 1, name="logits")(x)
    return keras.Model(inp, out, name="deeplab")


def two_heads(outputs: str = "dict", size: int = 32) -> keras.Model:
    """Classification ``"cls"`` (softmax, 10) and box regression ``"box"`` (4) heads; dict or list outputs."""
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(8, 3, activation="relu", name="conv0")(inp)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv1")(x)
    feat = L.GlobalAveragePooling2D(name="gap")(x)
    cls = L.Dense(HEAD_CLASSES, activation="softmax", name="cls")(feat)
    box = L.Dense(4, name="box")(feat)
    out = {"cls": cls, "box": box} if outputs == "dict" else [cls, box]
    return keras.Model(inp, out, name=f"two_heads_{outputs}")


def regression(size: int = 32) -> keras.Model:
    """A CNN with one linear output ``(N, 1)``."""
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(8, 3, activation="relu", name="conv0")(inp)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Conv2D(16, 3, activation="relu", name="conv1")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(1, name="value")(x)
    return keras.Model(inp, out, name="regression")


def vit(size: int = 32, patch: int = 4, dim: int = 16, heads: int = 2, blocks: int = 2) -> keras.Model:
    """A ViT: Conv2D patch embedding -> (N, h*w, C) -> class token + positions -> transformer blocks -> head.

    With the defaults: 8x8 = 64 patches + 1 class token = 65 tokens of 16 channels.
    """
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(dim, patch, strides=patch, name="patch_embed")(inp)
    side = size // patch
    x = L.Reshape((side * side, dim), name="patches")(x)
    x = ClassToken(name="class_token")(x)
    x = PositionEmbedding(name="position")(x)
    for i in range(blocks):
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        y = L.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(y, y)
        x = L.Add(name=f"block{i}_add1")([x, y])
        y = L.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        y = L.Dense(2 * dim, activation="gelu", name=f"block{i}_mlp1")(y)
        y = L.Dense(dim, name=f"block{i}_mlp2")(y)
        x = L.Add(name=f"block{i}_out")([x, y])
    x = L.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = TakeToken(0, name="cls_token")(x)
    out = L.Dense(HEAD_CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="vit")


# -- KerasHub backbones from config (tiny; no weights) --------------------------------------------------
def hub_resnet(size: int = 32) -> keras.Model:
    """A KerasHub ResNet backbone nested in a Sequential classifier head."""
    import keras_hub

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(size, size, 3),
        name="resnet_backbone",
    )
    return keras.Sequential(
        [
            backbone,
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(HEAD_CLASSES, activation="softmax", name="head"),
        ],
        name="hub_resnet",
    )


def hub_mobilenet(size: int = 32) -> keras.Model:
    """A KerasHub MobileNetV3 backbone called on ``keras.Input`` in a functional classifier."""
    import keras_hub

    backbone = keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16], [24]],
        stackwise_num_blocks=[1, 1],
        stackwise_num_filters=[[8], [16]],
        stackwise_kernel_size=[[3], [3]],
        stackwise_num_strides=[[2], [2]],
        stackwise_se_ratio=[[None], [0.25]],
        stackwise_activation=[["relu"], ["hard_swish"]],
        stackwise_padding=[[1], [1]],
        output_num_filters=32,
        depthwise_filters=8,
        depthwise_stride=1,
        depthwise_residual=False,
        last_layer_filter=32,
        input_num_filters=8,
        image_shape=(size, size, 3),
        name="mobilenet_backbone",
    )
    inp = keras.Input((size, size, 3), name="image")
    x = backbone(inp)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(HEAD_CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="hub_mobilenet")


def hub_vit(size: int = 32, patch: int = 8) -> keras.Model:
    """A KerasHub ViT backbone (4x4 patches + class token = 17 tokens) with a head on the class token."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3),
        patch_size=patch,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        name="vit_backbone",
    )
    inp = keras.Input((size, size, 3), name="image")
    x = backbone(inp)
    x = TakeToken(0, name="cls_token")(x)
    out = L.Dense(HEAD_CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="hub_vit")


def reference(model, x: np.ndarray, layer) -> np.ndarray:
    """Keras' own output of ``layer`` for ``x``: ``keras.Model(inputs, layer.output)`` of the (sub-)model
    whose graph holds the layer (the model itself, or a nested backbone that takes the raw input)."""
    for owner in (model, *[sub for sub in model.layers if isinstance(sub, keras.Model)]):
        try:
            probe = keras.Model(owner.inputs, layer.output)
        except (ValueError, AttributeError):
            continue
        return keras.ops.convert_to_numpy(probe(x, training=False))
    raise LookupError(layer.name)


BUILDERS = {
    "unet": unet,
    "deeplab": deeplab,
    "two_heads": two_heads,
    "two_heads_list": lambda: two_heads("list"),
    "regression": regression,
    "vit": vit,
    "hub_resnet": hub_resnet,
    "hub_mobilenet": hub_mobilenet,
    "hub_vit": hub_vit,
    # 14x14 patches + a class token = 197 tokens, as ViT-B/16 at 224x224 (small: 8 channels, one block)
    "vit197": lambda: vit(size=56, patch=4, dim=8, blocks=1),
}
#: The kinds every surface is run on (``vit197`` is for the token-grid tests only).
KINDS = tuple(name for name in BUILDERS if name != "vit197")
