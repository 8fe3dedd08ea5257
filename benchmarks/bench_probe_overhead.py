"""Target 2: probing all conv layers of one image costs <= 1.15x a COMPILED bare forward pass.

Baseline: ``f = tf.function(lambda x: model(x, training=False), reduce_retracing=True)`` called on one
image, result converted with ``.numpy()`` (the numpy input is converted with ``tf.convert_to_tensor``
inside the timed call, as ``ext`` does). convscope: ``ext(x1)`` (numpy in, ``{layer: numpy}`` out).
Same input, median of many repeats, the two interleaved (order alternating) to cancel drift.

For context it also times the eager ``model(x, training=False)`` and ``model.predict(x, verbose=0)``.

Usage: python benchmarks/bench_probe_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as C
import _models as M
import numpy as np

LIMIT = 1.15


def bench_model(label: str, model: Any, x1: np.ndarray, repeats: int, context_repeats: int) -> dict[str, Any]:
    import tensorflow as tf
    from convscope.api import get_extractor

    f = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    ext = get_extractor(model)

    def compiled() -> Any:
        return f(tf.convert_to_tensor(x1)).numpy()

    def probe() -> Any:
        return ext(x1)

    def eager() -> Any:
        return model(x1, training=False).numpy()

    def predict() -> Any:
        return model.predict(x1, verbose=0)

    acts = probe()
    out_mb = sum(a.nbytes for a in acts.values()) / 1e6
    main = C.interleaved({"compiled": compiled, "convscope": probe}, repeats=repeats, warmup=3, collect=False)
    ctx = C.interleaved({"eager": eager, "predict": predict}, repeats=context_repeats, warmup=2, collect=False)
    med = {k: C.median(v) for k, v in {**main, **ctx}.items()}
    ratio = med["convscope"] / med["compiled"]
    # paired ratios (each repeat's convscope / the compiled call next to it): a drift-proof cross-check
    paired = float(np.median(np.array(main["convscope"]) / np.array(main["compiled"])))

    base = med["compiled"]
    rows = [
        ["compiled forward  tf.function(model)(x).numpy()", C.ms(base), C.spread(main["compiled"]), "1.00x"],
        [f"convscope ext(x1)  ({len(acts)} layers, {out_mb:.1f} MB out)", C.ms(med["convscope"]),
         C.spread(main["convscope"]), f"{ratio:.3f}x"],
        ["eager model(x).numpy()   [context]", C.ms(med["eager"]), C.spread(ctx["eager"]), f"{med['eager'] / base:.2f}x"],
        ["model.predict(x)         [context]", C.ms(med["predict"]), C.spread(ctx["predict"]), f"{med['predict'] / base:.2f}x"],
    ]
    C.show()
    C.show(C.table([f"one image, {label} ({repeats} repeats)", "median ms", "min..max ms", "vs compiled"], rows))
    C.show(f"  paired median of per-repeat ratios: {paired:.3f}x")
    return {
        "layers": len(acts),
        "repeats": repeats,
        "activations_mb": out_mb,
        "compiled_ms": base * 1e3,
        "convscope_ms": med["convscope"] * 1e3,
        "eager_ms": med["eager"] * 1e3,
        "predict_ms": med["predict"] * 1e3,
        "ratio": ratio,
        "ratio_paired": paired,
        "overhead_ms": (med["convscope"] - base) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args(argv)
    env = C.header("bench_probe_overhead: ext(x1) over all conv layers vs a compiled bare forward pass")
    figures: dict[str, Any] = {}
    model, x = M.mnist()
    figures["mnist-cnn"] = bench_model("MNIST CNN", model, x[:1], repeats=60 if args.quick else 400,
                                       context_repeats=20 if args.quick else 50)
    vgg = M.vgg16()
    figures["vgg16-shaped"] = bench_model("VGG16-shaped 224x224x3", vgg, M.vgg_images(1),
                                          repeats=6 if args.quick else 25, context_repeats=3 if args.quick else 7)
    targets = [
        C.target(f"probe overhead {name}: ext / compiled forward", figures[name]["ratio"], "<=", LIMIT, "x",
                 note=f"paired {figures[name]['ratio_paired']:.3f}x; +{figures[name]['overhead_ms']:.2f} ms")
        for name in ("mnist-cnn", "vgg16-shaped")
    ]
    C.emit("probe_overhead", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
