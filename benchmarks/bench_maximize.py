"""Target: activation maximization of 64 channels of one layer as ONE batch costs <= 4x one channel alone.

Both sides are ``convscope.featvis.maximize_channels(model, "conv_1", spec, steps=STEPS)`` on the bundled
MNIST CNN, with the defaults otherwise (decorrelated Fourier parameterization, the standard
jitter/scale/rotate transforms, seed 0): ``spec="64"`` (all 64 channels of conv_1, a batch of 64 images)
against ``spec="1"`` (channel 0 alone, a batch of one). Same steps, parameterization and transforms.

Warm figures (the target): the compiled step of each structure is already traced (convscope caches it
per structure, so a repeated call does not retrace); median of interleaved repeats, order alternating.
Cold figures (context): the first call of each structure after :func:`convscope.featvis.clear_cache`
(tracing included), after one unrelated call has warmed TensorFlow itself. Also for context: the naive
cost of 64 one-channel runs (64 x the warm one-channel time), and a floor: the 64-channel batch with no
Fourier image and no transforms (``param="pixel", transforms=None``), i.e. little more than the model's
own forward+backward to ``conv_1`` for 64 images, against the same one-channel run as above.

Usage: python benchmarks/bench_maximize.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as C
import _models as M
import numpy as np

LIMIT = 4.0
LAYER = "conv_1"
BATCH = 64


def bench(model: Any, steps: int, repeats: int) -> dict[str, Any]:
    from convscope.featvis import clear_cache, maximize_channels

    def run(spec: str, **kwargs: Any) -> Any:
        return maximize_channels(model, LAYER, spec, steps=steps, **kwargs)

    # warm TensorFlow itself (first tf.function, oneDNN primitives) on an unrelated structure
    maximize_channels(model, "conv_0", "2", steps=2)
    clear_cache()
    cold: dict[str, float] = {}
    results: dict[str, Any] = {}
    for name, spec in (("one", "1"), ("batch", str(BATCH))):
        cold[name], results[name] = C.timed(lambda spec=spec: run(spec))
    traces = {name: r.settings["traces"] for name, r in results.items()}

    last: dict[str, Any] = {}

    def one() -> None:
        last["one"] = run("1")

    def batch() -> None:
        last["batch"] = run(str(BATCH))

    def floor() -> None:
        run(str(BATCH), param="pixel", transforms=None)

    times = C.interleaved({"one": one, "batch": batch, "floor": floor}, repeats=repeats, warmup=1)
    warm_traces = {name: r.settings["traces"] for name, r in last.items()}
    med = {k: C.median(v) for k, v in times.items()}
    ratio = med["batch"] / med["one"]
    paired = float(np.median(np.array(times["batch"]) / np.array(times["one"])))
    naive = BATCH * med["one"]
    final = {name: float(np.mean(r.final)) for name, r in last.items()}

    rows = [
        [f"one channel   ({LAYER} '1', batch 1)", f"{med['one']:.3f}", f"{cold['one']:.3f}",
         f"{med['one'] / steps * 1e3:.2f}", "1.00x"],
        [f"{BATCH} channels  ({LAYER} '{BATCH}', batch {BATCH})", f"{med['batch']:.3f}", f"{cold['batch']:.3f}",
         f"{med['batch'] / steps * 1e3:.2f}", f"{ratio:.2f}x"],
        [f"naive: {BATCH} one-channel runs   [context]", f"{naive:.3f}", f"{BATCH * cold['one']:.3f}",
         f"{naive / steps * 1e3:.2f}", f"{BATCH:.2f}x"],
        [f"floor: {BATCH} channels, pixel, no transforms   [context]", f"{med['floor']:.3f}", "",
         f"{med['floor'] / steps * 1e3:.2f}", f"{med['floor'] / med['one']:.2f}x"],
    ]
    C.show()
    C.show(C.table([f"MNIST CNN, {steps} steps ({repeats} repeats)", "warm s", "cold s", "warm ms/step",
                    "vs one"], rows))
    C.show(f"  paired median of per-repeat ratios: {paired:.2f}x; cold ratio {cold['batch'] / cold['one']:.2f}x; "
           f"batch vs naive: {med['batch'] / naive:.3f}x ({naive / med['batch']:.1f}x faster)")
    C.show(f"  traces: cold {traces}, warm {warm_traces}; mean final objective: "
           f"one {final['one']:.3f}, batch {final['batch']:.3f}")
    return {
        "layer": LAYER,
        "batch": BATCH,
        "steps": steps,
        "repeats": repeats,
        "one_s": med["one"],
        "batch_s": med["batch"],
        "one_cold_s": cold["one"],
        "batch_cold_s": cold["batch"],
        "one_ms_per_step": med["one"] / steps * 1e3,
        "batch_ms_per_step": med["batch"] / steps * 1e3,
        "naive_s": naive,
        "floor_s": med["floor"],
        "floor_ratio": med["floor"] / med["one"],
        "ratio": ratio,
        "ratio_paired": paired,
        "ratio_cold": cold["batch"] / cold["one"],
        "warm_traces": warm_traces,
        "final_mean": final,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (smoke test)")
    args = parser.parse_args(argv)
    env = C.header("bench_maximize: featvis.maximize_channels, 64 channels as one batch vs one channel")
    model, _ = M.mnist()
    figures = bench(model, steps=64 if args.quick else 256, repeats=3 if args.quick else 9)
    targets = [
        C.target(f"maximize {BATCH} channels of {LAYER} as a batch / one channel", figures["ratio"], "<=", LIMIT,
                 "x", note=f"paired {figures['ratio_paired']:.2f}x; {figures['batch_s']:.2f} s vs "
                           f"{figures['one_s']:.2f} s warm, {figures['steps']} steps; floor (pixel, no "
                           f"transforms) {figures['floor_ratio']:.2f}x"),
    ]
    C.emit("maximize", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
