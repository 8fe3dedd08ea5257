"""Grad-CAM beyond classifiers: a U-Net (``seg:1``) and a ViT-style model (token layer) vs a compiled
forward + backward pass.

Target (<= 1.3x, as for classifiers in bench_cam.py): convscope ``GradCAM(model, layer)(x, target)`` per
batch (maps at the input size in [0, 1]) / a hand-written baseline: one ``tf.function`` running the same
layer instances, watching the target layer's activation through a hook, forming the target score from the
logits (U-Net: class 1's logits summed over the pixels predicted as class 1; ViT: the top-1 logit) and
returning the activation, its gradient, the scores and the classes as numpy. The baseline does no channel
weighting, token reshaping, upsampling or normalization, so the ratio is convscope's whole cost over the
bare passes it needs. Timed interleaved (order alternating), medians after warm-up; the raw maps are
cross-checked against the baseline's Grad-CAM (not timed).

Models (random weights; the cost does not depend on them): U-Net 96x96x1, 3 levels (16-32-64 channels),
skip concatenations, Conv2DTranspose, per-pixel softmax over 2 classes, 32 images; ViT 64x64x3, 8x8 patches
(an 8x8 grid of tokens), width 64, 4 blocks of 4-head attention, class-token head over 10 classes, 32 images.

Usage: python benchmarks/bench_cam_kinds.py [--quick]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import _common as C
import numpy as np

LIMIT = 1.3
BATCH = 32


def _keras_classes() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="convscope_bench")
    class ClassToken(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

        def call(self, tokens: Any) -> Any:
            n = keras.ops.shape(tokens)[0]
            return keras.ops.concatenate([keras.ops.repeat(self.token, n, axis=0), tokens], axis=1)

    return ClassToken


class UNet:
    layer = "bottom"

    def __init__(self) -> None:
        import keras
        from keras import layers as L

        keras.utils.set_random_seed(1)
        self.down = [(L.Conv2D(c, 3, padding="same", activation="relu", name=f"enc{i}a"),
                      L.Conv2D(c, 3, padding="same", activation="relu", name=f"enc{i}b"),
                      L.MaxPooling2D(name=f"pool{i}")) for i, c in enumerate((16, 32))]
        self.bottom = L.Conv2D(64, 3, padding="same", activation="relu", name="bottom")
        self.up = [(L.Conv2DTranspose(c, 2, strides=2, name=f"up{i}"), L.Concatenate(name=f"skip{i}"),
                    L.Conv2D(c, 3, padding="same", activation="relu", name=f"dec{i}")) for i, c in enumerate((32, 16))]
        self.head = L.Conv2D(2, 1, name="logits")
        inputs = keras.Input((96, 96, 1))
        self.model = keras.Model(inputs, L.Softmax(name="mask")(self.logits(inputs)), name="unet")

    def logits(self, x: Any, at: Callable[[Any], Any] | None = None) -> Any:
        skips = []
        for a, b, pool in self.down:
            x = b(a(x))
            skips.append(x)
            x = pool(x)
        x = self.bottom(x)
        if at is not None:
            x = at(x)
        for (up, cat, conv), skip in zip(self.up, reversed(skips)):
            x = conv(cat([up(x), skip]))
        return self.head(x)

    def score(self, logits: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        mask = tf.stop_gradient(tf.cast(tf.equal(tf.argmax(logits, axis=-1), 1), logits.dtype))
        scores = tf.reduce_sum(logits[..., 1] * mask, axis=(1, 2))
        return scores, tf.fill(tf.shape(scores), 1)

    def to_grid(self, a: np.ndarray) -> np.ndarray:
        return a


class ViT:
    layer = "ln_3"

    def __init__(self) -> None:
        import keras
        from keras import layers as L

        keras.utils.set_random_seed(2)
        c = 64
        self.patch = L.Conv2D(c, 8, strides=8, name="patch")
        self.tokens = L.Reshape((64, c), name="tokens")
        self.cls = _keras_classes()(name="cls_token")
        self.pos = L.Dense(c, name="pos")
        self.blocks = [(L.LayerNormalization(name=f"ln_{b}"), L.MultiHeadAttention(4, 16, name=f"mha_{b}"),
                        L.Add(name=f"res_{b}"), L.LayerNormalization(name=f"ln2_{b}"),
                        L.Dense(2 * c, activation="gelu", name=f"mlp1_{b}"), L.Dense(c, name=f"mlp2_{b}"),
                        L.Add(name=f"res2_{b}")) for b in range(4)]
        self.norm = L.LayerNormalization(name="ln_out")
        self.take = L.Cropping1D((0, 64), name="take_cls")
        self.flat = L.Flatten(name="cls_vector")
        self.head = L.Dense(10, name="head")
        inputs = keras.Input((64, 64, 3))
        self.model = keras.Model(inputs, L.Softmax(name="probs")(self.logits(inputs)), name="vit")

    def logits(self, x: Any, at: Callable[[Any], Any] | None = None) -> Any:
        t = self.pos(self.cls(self.tokens(self.patch(x))))
        for ln, mha, add, ln2, mlp1, mlp2, add2 in self.blocks:
            h = ln(t)
            if at is not None and ln.name == self.layer:
                h = at(h)
            t = add([t, mha(h, h)])
            t = add2([t, mlp2(mlp1(ln2(t)))])
        return self.head(self.flat(self.take(self.norm(t))))

    def score(self, logits: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        classes = tf.argmax(logits, axis=-1)
        return tf.gather(logits, classes, batch_dims=1), classes

    def to_grid(self, a: np.ndarray) -> np.ndarray:
        return a[:, 1:, :].reshape(len(a), 8, 8, -1)


def compiled_pass(kind: Any) -> Callable[[np.ndarray], list[np.ndarray]]:
    """``x -> [A, dS/dA, scores, classes]`` as numpy, one ``tf.function`` call."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward_backward(x: Any) -> Any:
        box: list[Any] = []
        with tf.GradientTape() as tape:

            def at(a: Any) -> Any:
                tape.watch(a)
                box.append(a)
                return a

            scores, classes = kind.score(kind.logits(x, at))
            total = tf.reduce_sum(scores)
        return box[0], tape.gradient(total, box[0]), scores, classes

    def run(x: np.ndarray) -> list[np.ndarray]:
        return [t.numpy() for t in forward_backward(tf.convert_to_tensor(x))]

    return run


def bench(kind: Any, x: np.ndarray, target: str, repeats: int) -> dict[str, Any]:
    from convscope.attribution import GradCAM

    base = compiled_pass(kind)
    gradcam = GradCAM(kind.model, kind.layer)

    def compiled() -> Any:
        return base(x)

    def convscope() -> Any:
        return gradcam(x, target)

    act, grad, scores, _ = compiled()
    act, grad = kind.to_grid(act), kind.to_grid(grad)
    expected = np.maximum(np.einsum("nhwc,nc->nhw", act, grad.mean(axis=(1, 2))), 0.0)
    res = convscope()
    err = float(np.max(np.abs(res.raw - expected)) / np.ptp(expected))
    assert err <= 1e-3, f"{kind.model.name}: convscope and the baseline disagree (max diff {err:.2e} of the range)"
    assert np.allclose(res.scores, scores, rtol=1e-3, atol=1e-3), "convscope and the baseline score differently"
    times = C.interleaved({"compiled": compiled, "convscope": convscope}, repeats=repeats, warmup=3, collect=False)
    med = {k: C.median(v) for k, v in times.items()}
    ratio = med["convscope"] / med["compiled"]
    paired = float(np.median(np.array(times["convscope"]) / np.array(times["compiled"])))
    C.show()
    C.show(C.table([f"Grad-CAM {kind.model.name}, {len(x)} images, target {target} ({repeats} repeats)", "median ms",
                    "min..max ms", "vs compiled"],
                   [["compiled forward+backward (tf.function + GradientTape, .numpy())", C.ms(med["compiled"]),
                     C.spread(times["compiled"]), "1.00x"],
                    [f"convscope GradCAM(model, {kind.layer!r})(x, {target!r})", C.ms(med["convscope"]),
                     C.spread(times["convscope"]), f"{ratio:.3f}x"]]))
    C.show(f"  paired median of per-repeat ratios: {paired:.3f}x; raw maps vs the baseline's Grad-CAM: "
           f"max |diff| = {err:.2e} of the range; map {res.raw.shape[1]}x{res.raw.shape[2]} at layer {res.layer}")
    return {"compiled_ms": med["compiled"] * 1e3, "convscope_ms": med["convscope"] * 1e3, "ratio": ratio,
            "ratio_paired": paired, "per_image_ms": med["convscope"] * 1e3 / len(x), "raw_max_rel_err": err}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args(argv)
    env = C.header("bench_cam_kinds: Grad-CAM of a U-Net (seg:1) and a ViT-style model vs compiled forward+backward")
    rng = np.random.default_rng(0)
    repeats = 10 if args.quick else 60
    unet, vit = UNet(), ViT()
    figures = {
        "unet": bench(unet, rng.random((BATCH, 96, 96, 1), dtype=np.float32), "seg:1", repeats),
        "vit": bench(vit, rng.random((BATCH, 64, 64, 3), dtype=np.float32), "top1", repeats),
    }
    targets = [
        C.target(f"gradcam {name} {BATCH} images: convscope / compiled forward+backward", f["ratio"], "<=", LIMIT, "x",
                 note=f"paired {f['ratio_paired']:.3f}x; {f['convscope_ms']:.1f} vs {f['compiled_ms']:.1f} ms")
        for name, f in figures.items()
    ]
    C.emit("cam_kinds", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
