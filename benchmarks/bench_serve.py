"""Target 6: the browser explorer (``convscope serve``) over HTTP on loopback.

1. Layer-switch latency, as the page does it (``GET /api/grid`` then ``GET /api/grid.png``), for every
   viewable layer of several images, on the bundled MNIST CNN and on a VGG16-shaped model at 224x224
   (``weights=None``, seeded; nothing downloaded). The first view of an image includes its one forward
   pass and is reported apart ("image switch"); a layer switch renders from the cached activations.
   Targets: p95 <= 50 ms (MNIST) and <= 400 ms (VGG16-shaped).
2. A load test: 32 concurrent clients x 50 requests each (uploads ~10%, grid views, channel views, JSON and
   PNG), on a fresh MNIST server. Target: zero 5xx and zero dropped connections; p99 reported. Bounded: every
   request has a 60 s timeout and the whole test a 300 s one, after which it stops by itself.

Each server runs in its own process (``python -m convscope.present.web``), so client and server do not share
a GIL. Only 127.0.0.1 is ever contacted.

Usage: python benchmarks/bench_serve.py [--images 4] [--clients 32] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as C
import numpy as np

MNIST_P95_MS, VGG_P95_MS = 50.0, 400.0
GRID_OPTS = {"norm": "channel", "cmap": "auto", "channels": "64", "aspect": "1.6"}  # the page's defaults


@contextmanager
def server(*args: str) -> Iterator[str]:
    """Run ``python -m convscope.present.web ARGS --port 0`` and yield its URL; stop it with SIGINT."""
    cmd = [sys.executable, "-m", "convscope.present.web", *args, "--port", "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " at http://127.0.0.1:" not in line:
            proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        C.show(f"  server ready in {time.perf_counter() - t0:.1f} s: {line.strip()}")
        yield line.split(" at ")[1].split()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else float("nan")


def layer_switches(url: str, n_images: int) -> dict[str, Any]:
    """Walk every viewable layer of ``n_images`` images, timing each view (JSON + PNG) on one connection."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        model = client.get("/api/model").json()
        keys = [row["key"] for row in model["layers"] if row["viewable"]]
        images = [im["id"] for im in client.get("/api/images").json()["images"]][:n_images]
        image_switch, layer_switch, png_bytes = [], [], []
        for image in images:
            for i, key in enumerate(keys):
                t0 = time.perf_counter()
                meta = client.get("/api/grid", params={"image": image, "layer": key, **GRID_OPTS})
                png = client.get("/api/grid.png", params={"image": image, "layer": key, **GRID_OPTS})
                dt = time.perf_counter() - t0
                if meta.status_code != 200 or png.status_code != 200:
                    raise RuntimeError(f"{image} {key}: {meta.status_code} {png.status_code} {meta.text[:200]}")
                (image_switch if i == 0 else layer_switch).append(dt)
                png_bytes.append(len(png.content))
    return {"layers": len(keys), "images": len(images), "views": len(image_switch) + len(layer_switch),
            "layer_p50_ms": pct(layer_switch, 50), "layer_p95_ms": pct(layer_switch, 95),
            "layer_max_ms": pct(layer_switch, 100), "image_switch_p50_ms": pct(image_switch, 50),
            "image_switch_p95_ms": pct(image_switch, 95), "png_kb_median": float(np.median(png_bytes)) / 1024,
            "png_kb_max": float(np.max(png_bytes)) / 1024}


def upload_png(rng: np.random.Generator) -> bytes:
    from PIL import Image

    size = int(rng.integers(28, 96))
    img = np.zeros((size, size), np.uint8)
    for _ in range(3):  # a few random strokes
        y, x = rng.integers(0, size - size // 4, 2)
        img[y : y + size // 4, x : x + max(2, size // 10)] = 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


async def one_client(url: str, seed: int, n: int, keys: list[str], spatial: list[str], record: list[tuple[str, int, float]],
                     errors: list[str]) -> None:
    import httpx

    rng = np.random.default_rng(seed)
    mine: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for j in range(n):
            kind = "upload" if j == 0 or rng.random() < 0.08 else ("grid" if rng.random() < 0.5 else "channel")
            image = str(rng.choice(mine)) if mine and rng.random() < 0.6 else f"s{int(rng.integers(0, 16))}"
            t0 = time.perf_counter()
            try:
                if kind == "upload":
                    r = await client.post("/api/images", content=upload_png(rng),
                                          headers={"content-type": "image/png", "x-filename": f"c{seed}-{j}.png"})
                    if r.status_code == 201:
                        mine.append(r.json()["id"])
                elif kind == "grid":
                    path = "/api/grid.png" if rng.random() < 0.5 else "/api/grid"
                    params = {"image": image, "layer": str(rng.choice(keys)), **GRID_OPTS}
                    if rng.random() < 0.3:
                        params["channels"] = f"top{int(rng.integers(4, 33))}:max"
                    r = await client.get(path, params=params)
                else:
                    path = "/api/channel.png" if rng.random() < 0.5 else "/api/channel"
                    r = await client.get(path, params={"image": image, "layer": str(rng.choice(spatial)),
                                                       "channel": int(rng.integers(0, 32))})
                record.append((kind, r.status_code, time.perf_counter() - t0))
            except httpx.HTTPError as exc:  # dropped connection, timeout, protocol error
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                record.append((kind, -1, time.perf_counter() - t0))


async def load_test(url: str, clients: int, requests: int, limit_s: float = 300.0) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        layers = (await c.get("/api/model")).json()["layers"]
    keys = [row["key"] for row in layers if row["viewable"]]
    spatial = [row["key"] for row in layers if row["spatial"]]
    record: list[tuple[str, int, float]] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    tasks = [one_client(url, seed, requests, keys, spatial, record, errors) for seed in range(clients)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=limit_s)
        finished = True
    except TimeoutError:
        finished = False
    wall = time.perf_counter() - t0
    times = [dt for _, status, dt in record if status > 0]
    codes: dict[str, int] = {}
    for kind, status, _ in record:
        codes[f"{kind}_{status}"] = codes.get(f"{kind}_{status}", 0) + 1
    return {"clients": clients, "requests_per_client": requests, "sent": len(record), "finished": finished,
            "wall_s": wall, "req_per_s": len(record) / wall, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95),
            "p99_ms": pct(times, 99), "max_ms": pct(times, 100),
            "n_5xx": sum(1 for _, s, _ in record if s >= 500), "n_4xx": sum(1 for _, s, _ in record if 400 <= s < 500),
            "n_dropped": len(errors), "codes": codes, "first_errors": errors[:3]}


def vgg_files(tmp: Path, n_images: int) -> tuple[Path, Path]:
    """Save the VGG16-shaped model and ``n_images`` 224x224 PNGs (a real photo first, when available)."""
    import _models
    from PIL import Image

    model = _models.vgg16()
    path = tmp / "vgg16_shaped.keras"
    model.save(path)
    folder = tmp / "vgg_images"
    folder.mkdir()
    for i, row in enumerate(_models.vgg_images(n_images)):
        Image.fromarray(np.clip(row + 127.5, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return path, folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images walked per model")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    env = C.header("6. convscope serve: layer-switch latency and a load test over HTTP (loopback)")
    figures: dict[str, Any] = {}
    C.show("\nmnist-cnn: layer switches")
    with server() as url:
        figures["mnist-cnn"] = layer_switches(url, args.images)
    with tempfile.TemporaryDirectory(prefix="convscope-bench-serve-") as tmp:
        C.show("\nvgg16-shaped 224x224: saving the model and images")
        model_path, folder = vgg_files(Path(tmp), args.images)
        with server(str(model_path), "--images", str(folder)) as url:
            figures["vgg16-shaped"] = layer_switches(url, args.images)
    rows = [[name, f["layers"], f["images"], f"{f['layer_p50_ms']:.1f}", f"{f['layer_p95_ms']:.1f}",
             f"{f['layer_max_ms']:.1f}", f"{f['image_switch_p50_ms']:.1f}", f"{f['png_kb_max']:.0f}"]
            for name, f in figures.items()]
    C.show(C.table(["model", "layers", "images", "layer p50 ms", "layer p95 ms", "layer max ms",
                    "image switch p50 ms", "largest PNG KB"], rows))
    C.show(f"\nload test: {args.clients} clients x {args.requests} requests (fresh mnist-cnn server)")
    with server() as url:
        load = asyncio.run(load_test(url, args.clients, args.requests))
    figures["load"] = load
    C.show(C.table(["sent", "finished", "wall s", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "5xx", "4xx", "dropped"],
                   [[load["sent"], load["finished"], f"{load['wall_s']:.1f}", f"{load['req_per_s']:.0f}",
                     f"{load['p50_ms']:.1f}", f"{load['p95_ms']:.1f}", f"{load['p99_ms']:.1f}", f"{load['max_ms']:.1f}",
                     load["n_5xx"], load["n_4xx"], load["n_dropped"]]]))
    C.show(f"responses by kind and status: {load['codes']}")
    if load["first_errors"]:
        C.show(f"first errors: {load['first_errors']}")
    m, v = figures["mnist-cnn"], figures["vgg16-shaped"]
    targets = [
        C.target("serve mnist-cnn: layer switch p95", m["layer_p95_ms"], "<=", MNIST_P95_MS, " ms",
                 f"p50 {m['layer_p50_ms']:.1f} ms; image switch (forward pass) p50 {m['image_switch_p50_ms']:.0f} ms"),
        C.target("serve vgg16-shaped 224: layer switch p95", v["layer_p95_ms"], "<=", VGG_P95_MS, " ms",
                 f"p50 {v['layer_p50_ms']:.1f} ms; image switch p50 {v['image_switch_p50_ms']:.0f} ms; "
                 f"largest PNG {v['png_kb_max']:.0f} KB"),
        C.target(f"serve load {args.clients}x{args.requests}: 5xx + dropped connections",
                 load["n_5xx"] + load["n_dropped"] + (0 if load["finished"] else 1), "<=", 0, "",
                 f"p99 {load['p99_ms']:.0f} ms, p95 {load['p95_ms']:.0f} ms, {load['req_per_s']:.0f} req/s, "
                 f"{load['n_4xx']} 4xx, finished={load['finished']}"),
    ]
    C.emit("serve", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
