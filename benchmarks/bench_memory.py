"""Target 4: probing all 13 conv layers of a VGG16-shaped model over 128 images with ``save_arrays=True``
(~6.9 GB of float32 activations) keeps peak RSS within 1.5 GB of the RSS right after model load.

The parent process writes 128 deterministic random 224x224x3 float32 inputs to an ``.npy`` file in a
temporary folder, then runs a FRESH child process (this script with ``--child``) that:

1. builds the VGG16-shaped model (``weights=None``) and records VmRSS ("after load");
2. loads the inputs into memory (77 MB; counted INSIDE the measured growth, which is conservative);
3. runs ``write_maps(get_extractor(model), x, names, out, GridOptions(channels="32"), save_arrays=True,
   batch_size=8)`` into the temporary folder, while a thread samples VmRSS every 50 ms;
4. reports VmHWM (the kernel's peak RSS) and the sampled peaks per phase.

The parent then checks ``activations.npz`` without loading it (zip member headers via
``np.lib.format.read_magic`` / ``read_array_header_*``: 13 keys, leading dim 128, sizes), compares with
the naive way (every activation in memory at once), and deletes the temporary folder.

Usage: python benchmarks/bench_memory.py [--images 128] [--batch-size 8] [--dir PARENT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import _common as C
import numpy as np

LIMIT_GB = 1.5
CHILD_PREFIX = "CHILD-RESULT "


# -- child: the measured process --------------------------------------------------------------------------
def child(inputs: Path, out: Path, batch_size: int) -> None:
    import _models as M

    rss0 = C.proc_status("VmRSS")
    model = M.vgg16()
    rss_load = C.proc_status("VmRSS")
    hwm_load = C.proc_status("VmHWM")

    from convscope.api import get_extractor
    from convscope.present.maps import GridOptions, write_maps

    x = np.load(inputs)  # fully in memory: its 77 MB count in the growth
    rss_inputs = C.proc_status("VmRSS")
    names = [f"img{i:03d}" for i in range(len(x))]

    samples: list[tuple[float, int]] = []
    marks: dict[str, float] = {}
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), C.proc_status("VmRSS")))
            stop.wait(0.05)

    done = [0]

    def on_batch(k: int) -> None:
        done[0] += k
        marks["last_batch"] = time.perf_counter()
        if done[0] % 32 == 0 or done[0] == len(x):
            print(f"  [child] {done[0]}/{len(x)} images, RSS {C.gb(C.proc_status('VmRSS'))} GB", file=sys.stderr, flush=True)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    ext = get_extractor(model)
    written = write_maps(ext, x, names, out, GridOptions(channels="32"), save_arrays=True,
                         batch_size=batch_size, on_batch=on_batch)
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    hwm = C.proc_status("VmHWM")
    end_batches = marks.get("last_batch", t0)
    peak_batches = max((r for t, r in samples if t <= end_batches), default=0)
    peak_archive = max((r for t, r in samples if t > end_batches), default=0)
    result = {
        "rss_start": rss0, "rss_after_load": rss_load, "hwm_after_load": hwm_load, "rss_after_inputs": rss_inputs,
        "inputs_bytes": int(x.nbytes), "hwm": hwm, "rss_end": C.proc_status("VmRSS"),
        "sampled_peak_batches": peak_batches, "sampled_peak_archive": peak_archive,
        "wall_s": wall, "archive_s": time.perf_counter() - end_batches if samples else 0.0,
        "pngs": sum(1 for p in written if p.suffix == ".png"), "npz": str(out / "activations.npz"),
    }
    print(CHILD_PREFIX + json.dumps(result), flush=True)


# -- parent -------------------------------------------------------------------------------------------------
def npz_members(path: Path) -> dict[str, tuple[tuple[int, ...], str, int]]:
    """``{key: (shape, dtype, payload bytes)}`` read from the zip member headers, loading no data."""
    members = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = reader(fh)
            key = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            members[key] = (tuple(shape), str(dtype), int(np.prod(shape)) * dtype.itemsize)
    return members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="parent folder for the temporary output (default: system temp)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.inputs, args.out, args.batch_size)
        return 0

    env = C.header(f"bench_memory: VGG16-shaped, 13 conv layers x {args.images} images, save_arrays=True, "
                   f"batch_size={args.batch_size}; peak RSS growth after model load")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="convscope-bench-memory-", dir=args.dir))
    try:
        import _models as M

        inputs = tmp / "inputs.npy"
        np.save(inputs, M.random_vgg_batch(args.images, seed=0))
        out = tmp / "out"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--inputs", str(inputs), "--out", str(out),
               "--batch-size", str(args.batch_size)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=1800,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})
        child_wall = time.perf_counter() - t0
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_PREFIX)]
        if proc.returncode != 0 or not lines:
            C.show(proc.stdout)
            C.show(f"child failed with exit code {proc.returncode}")
            return 1
        r = json.loads(lines[-1][len(CHILD_PREFIX):])
        npz = Path(r["npz"])
        npz_size = npz.stat().st_size
        members = npz_members(npz)
        png_bytes = sum(p.stat().st_size for p in out.rglob("*.png"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    leftover = tmp.exists()

    payload = sum(b for _, _, b in members.values())
    ok_keys = len(members) == 13 and all(shape[0] == args.images for shape, _, _ in members.values())
    growth = r["hwm"] - r["rss_after_load"]
    naive = payload  # ext(x) of all images at once holds every activation in memory
    rows = [
        ["RSS at child start", C.gb(r["rss_start"]), ""],
        ["RSS after model load (reference)", C.gb(r["rss_after_load"]), "0.00"],
        [f"RSS after loading inputs ({r['inputs_bytes'] / 1e6:.0f} MB, counted in growth)", C.gb(r["rss_after_inputs"]),
         C.gb(r["rss_after_inputs"] - r["rss_after_load"])],
        ["peak RSS (VmHWM), whole run", C.gb(r["hwm"]), C.gb(growth)],
        ["  sampled peak while probing/rendering", C.gb(r["sampled_peak_batches"]), C.gb(r["sampled_peak_batches"] - r["rss_after_load"])],
        ["  sampled peak while assembling the .npz", C.gb(r["sampled_peak_archive"]),
         C.gb(max(0, r["sampled_peak_archive"] - r["rss_after_load"]))],
        ["RSS at end", C.gb(r["rss_end"]), C.gb(r["rss_end"] - r["rss_after_load"])],
        ["naive: every activation in memory (estimate)", "", C.gb(naive)],
    ]
    C.show()
    C.show(C.table(["memory (GB)", "RSS", "growth over after-load"], rows))
    C.show()
    C.show(f"  activations.npz: {npz_size / 1e9:.2f} GB on disk, payload {payload / 1e9:.2f} GB, {len(members)} keys, "
           f"leading dims {sorted({s[0] for s, _, _ in members.values()})}, dtypes {sorted({d for _, d, _ in members.values()})} "
           f"-> {'OK' if ok_keys else 'WRONG'}")
    for key, (shape, dtype, nbytes) in members.items():
        C.show(f"    {key:16s} {str(shape):22s} {dtype:8s} {nbytes / 1e9:.3f} GB")
    C.show(f"  PNGs: {r['pngs']} files, {png_bytes / 1e6:.0f} MB; write_maps wall {r['wall_s']:.0f} s "
           f"(npz assembly after the last batch {r['archive_s']:.0f} s); child process wall {child_wall:.0f} s")
    C.show(f"  growth / naive = {growth / naive:.3f} (naive holds {naive / 1e9:.2f} GB; convscope grew {growth / 1e9:.2f} GB)")
    C.show(f"  temporary folder {'NOT deleted: ' + str(tmp) if leftover else 'deleted'}")
    figures = {
        "images": args.images, "batch_size": args.batch_size, "rss_after_load_gb": r["rss_after_load"] / 1e9,
        "peak_gb": r["hwm"] / 1e9, "growth_gb": growth / 1e9, "naive_gb": naive / 1e9,
        "npz_gb": npz_size / 1e9, "npz_keys": len(members), "npz_ok": ok_keys, "pngs": r["pngs"],
        "wall_s": r["wall_s"], "sampled_peak_batches_growth_gb": (r["sampled_peak_batches"] - r["rss_after_load"]) / 1e9,
        "sampled_peak_archive_growth_gb": (r["sampled_peak_archive"] - r["rss_after_load"]) / 1e9,
    }
    targets = [C.target("memory vgg16-shaped x128: peak RSS - after load", growth / 1e9, "<=", LIMIT_GB, " GB",
                        note=f"npz {npz_size / 1e9:.2f} GB, {len(members)} keys {'OK' if ok_keys else 'WRONG'}; "
                             f"naive {naive / 1e9:.2f} GB")]
    C.emit("memory", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
