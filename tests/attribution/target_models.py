"""Small models of every output kind, each written as a Python function of its layers so that a plain
``tf.GradientTape`` reference can watch the target layer's activation (``at`` hook) and read the logits.

Each :class:`Kind` builds a Keras model (``model``) whose squashing layers (softmax / sigmoid) are separate
from the logits, and ``logits(x, at)`` runs the same layer instances eagerly, returning ``{name: logits}``.
Used by test_target_kinds.py (TensorFlow reference) and target_worker.py (JAX / torch equality).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers

Hook = Callable[[Any], Any] | None


@keras.saving.register_keras_serializable(package="convscope_tests")
class ClassToken(layers.Layer):
    """Prepends one learned token: ``(N, T, C) -> (N, 1 + T, C)``."""

    def build(self, input_shape: Any) -> None:
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

    def call(self, tokens: Any) -> Any:
        n = keras.ops.shape(tokens)[0]
        return keras.ops.concatenate([keras.ops.repeat(self.token, n, axis=0), tokens], axis=1)


class Kind:
    """A model kind: layers, the logits function, the squashes, the built model."""

    size = 16
    target_layer = ""

    def __init__(self) -> None:
        keras.utils.set_random_seed(7)
        self.make()
        inputs = keras.Input((self.size, self.size, 3), name="image")
        outs = self.logits(inputs)
        squashed = {k: self.squash(k, v) for k, v in outs.items()}
        self.model = keras.Model(inputs, squashed if len(squashed) > 1 else next(iter(squashed.values())),
                                 name=type(self).__name__.lower())

    def make(self) -> None:
        raise NotImplementedError

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        raise NotImplementedError

    def squash(self, name: str, v: Any) -> Any:
        return v


def _hook(at: Hook, a: Any) -> Any:
    return at(a) if at is not None else a


class TwoHead(Kind):
    """Class (softmax) + box (sigmoid) heads on a small conv body."""

    target_layer = "c2"

    def make(self) -> None:
        self.c1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")
        self.c2 = layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.cls = layers.Dense(5, name="cls_logits")
        self.box = layers.Dense(4, name="box_logits")
        self.soft = layers.Softmax(name="cls_softmax")
        self.sig = layers.Activation("sigmoid", name="box_sigmoid")

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        a = _hook(at, self.c2(self.c1(x)))
        f = self.gap(a)
        return {"box": self.box(f), "cls": self.cls(f)}

    def squash(self, name: str, v: Any) -> Any:
        return self.soft(v) if name == "cls" else self.sig(v)


class Regression(Kind):
    """One linear output (N, 1)."""

    target_layer = "r2"

    def make(self) -> None:
        self.r1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="r1")
        self.r2 = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="r2")
        self.flat = layers.Flatten(name="flat")
        self.out = layers.Dense(1, name="value")

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        return {"value": self.out(self.flat(_hook(at, self.r2(self.r1(x)))))}


class Detection(Kind):
    """Anchors x classes: ``(N, 6, 4)`` per-anchor class logits (sigmoid), detection-head style."""

    target_layer = "d2"

    def make(self) -> None:
        self.d1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="d1")
        self.d2 = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="d2")
        self.flat = layers.Flatten(name="flat")
        self.dense = layers.Dense(24, name="det_logits")
        self.reshape = layers.Reshape((6, 4), name="det_rows")
        self.sig = layers.Activation("sigmoid", name="det")

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        return {"det": self.reshape(self.dense(self.flat(_hook(at, self.d2(self.d1(x))))))}

    def squash(self, name: str, v: Any) -> Any:
        return self.sig(v)


class Segmenter(Kind):
    """A tiny U-Net: skip Concatenate, Conv2DTranspose, UpSampling2D; per-pixel softmax over 3 classes."""

    target_layer = "bottom"

    def make(self) -> None:
        self.e1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="e1")
        self.pool = layers.MaxPooling2D(name="pool")
        self.bottom = layers.Conv2D(8, 3, padding="same", activation="relu", name="bottom")
        self.up = layers.Conv2DTranspose(6, 2, strides=2, name="upconv")
        self.up2 = layers.UpSampling2D(name="upsample")
        self.cat = layers.Concatenate(name="skip")
        self.head = layers.Conv2D(3, 1, name="seg_logits")
        self.soft = layers.Softmax(name="seg")

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        s1 = self.e1(x)
        b = _hook(at, self.bottom(self.pool(s1)))
        u = self.cat([self.up(b), self.up2(b), s1])
        return {"seg": self.head(u)}

    def squash(self, name: str, v: Any) -> Any:
        return self.soft(v)


class TinyViT(Kind):
    """Conv2D patch embedding (4x4 patches of 16x16 -> 4x4 grid), a class token, position embedding, two
    transformer blocks, a class-token head; target layer = the last block's attention input (tokens)."""

    target_layer = "ln_b"

    def make(self) -> None:
        c = 8
        self.patch = layers.Conv2D(c, 4, strides=4, name="patch")
        self.to_tokens = layers.Reshape((16, c), name="tokens")
        self.cls_token = ClassToken(name="cls_token")
        self.pos = layers.Dense(c, name="pos_mix")
        self.blocks = [
            (layers.LayerNormalization(name=f"ln_{b}"), layers.MultiHeadAttention(2, 4, name=f"mha_{b}"),
             layers.Add(name=f"res_{b}"), layers.Dense(c, activation="gelu", name=f"mlp_{b}"),
             layers.Add(name=f"res2_{b}"))
            for b in ("a", "b")
        ]
        self.norm = layers.LayerNormalization(name="ln_out")
        self.take_cls = layers.Cropping1D((0, 16), name="take_cls")
        self.flat = layers.Flatten(name="cls_vector")
        self.head = layers.Dense(5, name="head")
        self.soft = layers.Softmax(name="probs")

    def logits(self, x: Any, at: Hook = None) -> dict[str, Any]:
        t = self.pos(self.cls_token(self.to_tokens(self.patch(x))))
        for ln, mha, add, mlp, add2 in self.blocks:
            h = ln(t)
            if ln.name == "ln_b":
                h = _hook(at, h)
            t = add([t, mha(h, h)])
            t = add2([t, mlp(t)])
        return {"probs": self.head(self.flat(self.take_cls(self.norm(t))))}

    def squash(self, name: str, v: Any) -> Any:
        return self.soft(v)


KINDS = {k.__name__.lower(): k for k in (TwoHead, Regression, Detection, Segmenter, TinyViT)}
