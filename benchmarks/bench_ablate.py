"""Issue 13.3: ``ablate`` removes all 64 channels of the MNIST CNN's conv_1 in a few large passes.

1. Speed, over 1,000 real digits (in memory), all measured in this run, interleaved, median of repeats:

   * baseline "full loop": 64 full-model evaluations, one per channel, each on a modified copy of the
     model (conv_1's kernel column and bias of that channel zeroed: its ReLU output is then exactly 0) with
     the softmax replaced by linear, compiled once with ``tf.function`` (weights are read at call time, so
     one trace serves every channel), 1,000 digits per call (batches of 250);
   * "bare suffix": the compiled suffix model (the layers after conv_1, ``tf.function``) over 64 x 1,000
     inputs (conv_1's activations of the 1,000 digits, precomputed, run 64 times in batches of 250): the
     suffix passes the folded graph route needs;
   * ``ablate("mnist-cnn", digits, layer="conv_1")`` (in memory, no pictures; it chooses its route).

   Targets: full loop / ablate >= 20x; ablate / bare suffix <= 1.5x. The route ``ablate`` picks for conv_1 is
   ``delta`` (only the head after the first Dense runs on the folded rows); the generic ``graph`` route,
   which folds the 64 x 1,000 ablated activations through the whole suffix, is timed against the bare
   suffix too (``ablate(..., route="graph")``, fewer repeats): the same 1.5x target.
2. Memory: peak RSS (VmHWM) of ``ablate("mnist-cnn", digits.npy, layer="conv_1", out=DIR)`` (pictures,
   hence the layer scan for the crops, included) for 5,000 vs 500 digits, each in a fresh subprocess.
   Target: difference <= 200 MB.

Usage: python benchmarks/bench_ablate.py [--quick]
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

SPEEDUP = 20.0
SUFFIX_RATIO = 1.5
MEMORY_MB = 200.0
IMAGES, BATCH = 1000, 250


def child(data: Path, out: Path) -> None:
    from convscope.diagnose import ablate

    t0 = time.perf_counter()
    result = ablate("mnist-cnn", data, layer="conv_1", out=out)
    C.child_result({"hwm": C.proc_status("VmHWM"), "rss": C.proc_status("VmRSS"),
                    "images": result.images, "wall_s": time.perf_counter() - t0})


def speed(repeats: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from convscope.diagnose import ablate
    from convscope.models.resolve import resolve_model
    from convscope.models.zoo.mnist import load_mnist_digits

    x = load_mnist_digits()[0][:IMAGES]
    model = resolve_model("mnist-cnn").model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.layers[-1].activation = keras.activations.linear
    conv = copy.get_layer("conv_1")
    kernel, bias = (w.copy() for w in conv.get_weights())
    full = tf.function(lambda t: copy(t, training=False), reduce_retracing=True)
    names = [layer.name for layer in model.layers]
    rest = model.layers[names.index("conv_1") + 1:]
    inp = keras.Input((24, 24, 64))
    h = inp
    for layer in rest:
        h = layer(h)
    suffix_model = keras.Model(inp, h)
    suffix = tf.function(lambda t: suffix_model(t, training=False), reduce_retracing=True)
    prefix = keras.Model(model.inputs, model.get_layer("conv_1").output)
    acts = np.asarray(prefix.predict(x, batch_size=BATCH, verbose=0))
    batches = [x[i:i + BATCH] for i in range(0, IMAGES, BATCH)]
    act_batches = [acts[i:i + BATCH] for i in range(0, IMAGES, BATCH)]

    def full_loop() -> None:
        for c in range(64):
            k2, b2 = kernel.copy(), bias.copy()
            k2[..., c], b2[c] = 0.0, 0.0
            conv.set_weights([k2, b2])
            for xb in batches:
                np.asarray(full(xb))
        conv.set_weights([kernel, bias])

    def bare_suffix() -> None:
        for _ in range(64):
            for ab in act_batches:
                np.asarray(suffix(ab))

    routes: list[str] = []

    def run_ablate() -> None:
        routes.append(ablate("mnist-cnn", x, layer="conv_1", batch_size=BATCH).route)

    def run_graph() -> None:
        routes.append(ablate("mnist-cnn", x, layer="conv_1", batch_size=BATCH, route="graph").route)

    times = C.interleaved({"full loop": full_loop, "bare suffix": bare_suffix, "ablate()": run_ablate},
                          repeats=repeats, warmup=1)
    graph = C.interleaved({"bare suffix": bare_suffix, "ablate(route=graph)": run_graph},
                          repeats=max(1, repeats // 2), warmup=1)
    times["ablate(route=graph)"] = graph["ablate(route=graph)"]
    med = {k: C.median(v) for k, v in times.items()}
    graph_ratio = C.median(graph["ablate(route=graph)"]) / C.median(graph["bare suffix"])
    paired = [f / a for f, a in zip(times["full loop"], times["ablate()"])]
    rows = [[k, C.ms(med[k]), C.spread(v)] for k, v in times.items()]
    C.show(C.table([f"64 channels of conv_1, {IMAGES} digits", "median ms", "min..max ms"], rows))
    C.show(f"  ablate route: {routes[0]}; full loop / ablate: {med['full loop'] / med['ablate()']:.1f}x "
           f"(paired median {C.median(paired):.1f}x); ablate / bare suffix: "
           f"{med['ablate()'] / med['bare suffix']:.3f}x; graph route / bare suffix: {graph_ratio:.3f}x")
    return {"images": IMAGES, "batch": BATCH, "repeats": repeats, "route": routes[0],
            "graph_ms": med["ablate(route=graph)"] * 1e3, "graph_ratio": graph_ratio,
            "full_loop_ms": med["full loop"] * 1e3, "bare_suffix_ms": med["bare suffix"] * 1e3,
            "ablate_ms": med["ablate()"] * 1e3, "speedup": med["full loop"] / med["ablate()"],
            "speedup_paired": C.median(paired), "suffix_ratio": med["ablate()"] / med["bare suffix"]}


def memory(tmp: Path) -> dict[str, Any]:
    from convscope.models.zoo.mnist import load_mnist_digits

    x, _ = load_mnist_digits()
    figures: dict[str, Any] = {}
    for n, data in ((500, x[::10]), (5000, x)):
        path = tmp / f"digits{n}.npy"
        np.save(path, data)
        figures[str(n)] = C.run_child(__file__, [path, tmp / f"out{n}"], f"{n} digits", timeout=900)
    diff = (figures["5000"]["hwm"] - figures["500"]["hwm"]) / 1e6
    rows = [[f"{n} digits", f"{r['hwm'] / 1e6:,.0f}", f"{r['wall_s']:.1f}"] for n, r in figures.items()]
    C.show()
    C.show(C.table(["ablate('mnist-cnn', digits.npy, layer='conv_1', out=DIR)", "peak RSS MB (VmHWM)", "wall s"],
                   rows))
    C.show(f"  difference 5000 - 500: {diff:+.1f} MB")
    return {"hwm_500_mb": figures["500"]["hwm"] / 1e6, "hwm_5000_mb": figures["5000"]["hwm"] / 1e6,
            "diff_mb": diff, "wall_500_s": figures["500"]["wall_s"], "wall_5000_s": figures["5000"]["wall_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    env = C.header("bench_ablate: all 64 channels of conv_1 vs 64 full-model evaluations; peak RSS 5000 vs 500")
    figures: dict[str, Any] = {"speed": speed(2 if args.quick else 5)}
    tmp = Path(tempfile.mkdtemp(prefix="convscope-bench-ablate-"))
    try:
        figures["memory"] = memory(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s, m = figures["speed"], figures["memory"]
    targets = [
        C.target("ablate conv_1 (64 ch) x 1000 digits: full loop / ablate", s["speedup"], ">=", SPEEDUP, "x",
                 note=f"route {s['route']}; paired {s['speedup_paired']:.1f}x; {s['full_loop_ms']:,.0f} ms vs "
                      f"{s['ablate_ms']:,.0f} ms"),
        C.target("ablate / bare compiled suffix over 64 x 1000 inputs", s["suffix_ratio"], "<=", SUFFIX_RATIO, "x",
                 note=f"{s['ablate_ms']:,.0f} ms vs {s['bare_suffix_ms']:,.0f} ms"),
        C.target("ablate(route=graph) / bare compiled suffix over 64 x 1000 inputs", s["graph_ratio"], "<=",
                 SUFFIX_RATIO, "x", note=f"the generic folded route; {s['graph_ms']:,.0f} ms"),
        C.target("ablate peak RSS: 5000 digits - 500 digits", m["diff_mb"], "<=", MEMORY_MB, " MB",
                 note=f"{m['hwm_500_mb']:,.0f} MB vs {m['hwm_5000_mb']:,.0f} MB, fresh subprocesses, pictures on"),
    ]
    C.emit("ablate", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
