"""Target 11: ``convscope serve`` under load and abuse: 50 client threads for 60 s mixing normal views,
uploads (24-megapixel photos among them) and hostile requests, against the bundled MNIST CNN.

Mix per request (each client thread draws one at a time): ~45% normal views (grid JSON/PNG, channel
JSON/PNG, predict, thumbnails) of the bundled digits and of recent uploads, ~15% uploads (a 24-megapixel
JPEG photo, a 6-megapixel one, or a small digit PNG), ~40% hostile requests from tests/corpus/web_requests.txt
(huge channel ranges, NaN, unicode, traversal, very long strings) and bad uploads (not an image, a
decompression-bomb header, a truncated file). Two more threads play slow clients the whole time: a POST
that declares 5,000 bytes and sends 4, and request headers that never finish; each must end in a 408.

Measured: requests/s, p50/p95/p99 latency of the normal views, 5xx count (goal 0), connection errors,
hostile requests not answered 4xx, and the server's resident memory (VmRSS of its process): warm baseline
(after a warm-up that views every layer and uploads a few big photos), peak, and final (after the run and
5 s of quiet). Goal: final / baseline <= 1.2.

The server runs in its own process (``python -m convscope.present.web --port 0``) on 127.0.0.1; nothing
else is contacted. Usage: python benchmarks/bench_abuse.py [--quick] [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import io
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import _common as C
import numpy as np
from bench_serve import server

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "web_requests.txt"
GRID_OPTS = {"norm": "channel", "cmap": "auto", "channels": "64", "aspect": "1.6"}
RSS_RATIO_GOAL = 1.2


def photo(height: int, width: int, seed: int) -> bytes:
    """A smooth synthetic photo (gradients, a bar, mild noise) as a JPEG of a few MB."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    xs, ys = np.arange(width), np.arange(height)
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (xs * 240 // width).astype(np.uint8)[None, :]
    img[..., 1] = (ys * 240 // height).astype(np.uint8)[:, None]
    img[..., 2] = ((np.sin(ys / 23)[:, None] + np.sin(xs / 37)[None, :] + 2) * 58).astype(np.uint8)
    img += rng.integers(0, 14, img.shape, dtype=np.uint8)  # sensor-like noise, no overflow (max 240 + 13)
    img[height // 3 : height // 3 + height // 12, width // 4 : 3 * width // 4] = 250
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def digit_png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64), np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, 48, 2)
        img[y : y + 16, x : x + 6] = 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def hostile_targets(layer: str) -> list[str]:
    lines = [ln.split(" ", 1)[1] for ln in CORPUS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    lines = [t.replace("{L}", layer).replace("{I}", "s0") for t in lines]
    big = "9" * 8000
    return lines + [f"/api/grid?image=s0&layer={layer}&channels=0-{big}", f"/api/grid?image={'u' * 8000}&layer={layer}",
                    f"/api/grid?image=s0&layer={layer}&channels={','.join(['0-31'] * 1500)}",
                    f"/api/channel?image=s0&layer={layer}&channel={big}"]


class Recorder:
    """Thread-safe tallies of the run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.normal: list[float] = []
        self.counts: dict[str, int] = {"requests": 0, "5xx": 0, "conn_errors": 0, "hostile_not_4xx": 0,
                                       "normal_not_2xx": 0, "uploads_ok": 0, "uploads_refused": 0, "slow_408": 0,
                                       "slow_other": 0}
        self.examples: list[str] = []

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def note(self, text: str) -> None:
        with self.lock:
            if len(self.examples) < 12:
                self.examples.append(text[:200])


def client_thread(url: str, seed: int, stop: float, rec: Recorder, ctx: dict[str, Any]) -> None:
    import httpx

    rnd = random.Random(seed)
    mine: list[str] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            roll = rnd.random()
            kind = "normal" if roll < 0.45 else "upload" if roll < 0.60 else "hostile"
            t0 = time.perf_counter()
            try:
                if kind == "normal":
                    image = rnd.choice(mine) if mine and rnd.random() < 0.4 else f"s{rnd.randrange(16)}"
                    view = rnd.random()
                    if view < 0.5:
                        path = "/api/grid.png" if rnd.random() < 0.5 else "/api/grid"
                        params = {"image": image, "layer": rnd.choice(ctx["keys"]), **GRID_OPTS}
                        if rnd.random() < 0.3:
                            params["channels"] = f"top{rnd.randrange(4, 33)}:max"
                        r = client.get(path, params=params)
                    elif view < 0.8:
                        path = "/api/channel.png" if rnd.random() < 0.5 else "/api/channel"
                        r = client.get(path, params={"image": image, "layer": rnd.choice(ctx["spatial"]),
                                                     "channel": rnd.randrange(32)})
                    elif view < 0.92:
                        r = client.get("/api/predict", params={"image": image})
                    else:
                        r = client.get(f"/api/images/{image}.png")
                    dt = time.perf_counter() - t0
                    if r.status_code == 404 and image.startswith("u"):
                        pass  # an upload dropped by the gallery's bounds: expected, not a latency sample
                    elif r.status_code != 200:
                        rec.add("normal_not_2xx")
                        rec.note(f"normal {r.status_code}: {r.text[:150]}")
                    else:
                        with rec.lock:
                            rec.normal.append(dt)
                elif kind == "upload":
                    body, name = rnd.choice(ctx["uploads"])
                    r = client.post("/api/images", content=body, headers={"content-type": "image/jpeg" if name.endswith(
                        ".jpg") else "image/png", "x-filename": name})
                    if r.status_code == 201:
                        rec.add("uploads_ok")
                        mine = (mine + [r.json()["id"]])[-8:]
                    else:
                        rec.add("uploads_refused")
                        rec.note(f"upload {name} {r.status_code}: {r.text[:150]}")
                else:
                    if rnd.random() < 0.8:
                        r = client.get(rnd.choice(ctx["hostile"]))
                    else:
                        body, ctype = rnd.choice(ctx["bad_uploads"])
                        r = client.post("/api/images", content=body, headers={"content-type": ctype})
                    if not 400 <= r.status_code < 500:
                        rec.add("hostile_not_4xx")
                        rec.note(f"hostile {r.status_code}: {r.request.url!s:.100}")
                rec.add("requests")
                if r.status_code >= 500:
                    rec.add("5xx")
                    rec.note(f"5xx {r.status_code} {r.request.method} {r.request.url!s:.100}: {r.text[:100]}")
            except httpx.HTTPError as exc:
                rec.add("conn_errors")
                rec.note(f"{kind}: {type(exc).__name__}: {exc}")


def slow_thread(url: str, stop: float, rec: Recorder, mode: str) -> None:
    """Play a slowloris until ``stop``: a POST body that never completes, or headers that never end."""
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    while time.monotonic() < stop:
        try:
            with socket.create_connection((host, int(port)), timeout=60) as sock:
                if mode == "body":
                    sock.sendall(b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                                 b"Content-Length: 5000\r\n\r\nabcd")
                else:
                    sock.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            rec.add("slow_408" if data.startswith(b"HTTP/1.1 408") else "slow_other")
            if not data.startswith(b"HTTP/1.1 408"):
                rec.note(f"slow {mode}: {data[:100]!r}")
        except OSError as exc:
            rec.add("slow_other")
            rec.note(f"slow {mode}: {type(exc).__name__}: {exc}")


def cache_bytes(url: str) -> int:
    """Bytes held by the explorer's caches right now (``/api/health``)."""
    import httpx

    return sum(c["bytes"] for c in httpx.get(url + "api/health", timeout=60).json()["caches"])


def rss_of(pid: int) -> int:
    return C.proc_status("VmRSS", str(pid))


def server_pid(url: str) -> int:
    """The pid of the process listening on ``url``'s port (found through /proc, loopback only)."""
    import psutil

    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    raise RuntimeError(f"no process listens on port {port}")


def warm_up(url: str, ctx: dict[str, Any]) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=120) as client:
        for i in range(16):
            client.get("/api/predict", params={"image": f"s{i}"})
            for key in ctx["keys"]:
                client.get("/api/grid.png", params={"image": f"s{i}", "layer": key, **GRID_OPTS})
        for body, name in ctx["uploads"]:
            for _ in range(2):
                r = client.post("/api/images", content=body, headers={"content-type": "image/jpeg" if name.endswith(
                    ".jpg") else "image/png", "x-filename": name})
                if r.status_code == 201:
                    uid = r.json()["id"]
                    client.get("/api/grid.png", params={"image": uid, "layer": ctx["keys"][0], **GRID_OPTS})
        for target in ctx["hostile"][:20]:
            client.get(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="10 clients for 15 s (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = 10, 15.0
    env = C.header(f"11. convscope serve under abuse: {args.clients} clients x {args.seconds:g} s, normal + uploads + "
                   "hostile requests + slow clients (bench_abuse.py)")
    t0 = time.perf_counter()
    uploads = [(photo(4000, 6000, 1), "photo-24mp.jpg"), (photo(2000, 3000, 2), "photo-6mp.jpg"),
               (digit_png(3), "digit.png")]
    C.show(f"  upload bodies: {', '.join(f'{n} {len(b) / 1e6:.1f} MB' for b, n in uploads)} "
           f"(made in {time.perf_counter() - t0:.1f} s)")
    bad_uploads = [(b"not an image at all", "image/png"), (bomb_png(100_000, 100_000), "image/png"),
                   (uploads[2][0][:60], "image/png"), (b"#!/bin/sh\n", "text/x-shellscript")]
    with server("mnist-cnn") as url:
        import httpx

        pid = server_pid(url)
        layers = httpx.get(url + "api/model", timeout=60).json()["layers"]
        keys = [row["key"] for row in layers if row["viewable"]]
        spatial = [row["key"] for row in layers if row["spatial"]]
        ctx = {"keys": keys, "spatial": spatial, "uploads": uploads, "bad_uploads": bad_uploads,
               "hostile": hostile_targets(spatial[0])}
        start_rss = rss_of(pid)
        t0 = time.perf_counter()
        warm_up(url, ctx)
        time.sleep(2)
        baseline = rss_of(pid)
        cached_before = cache_bytes(url)
        C.show(f"  server pid {pid}: RSS {C.gb(start_rss)} GB at start, {C.gb(baseline)} GB warm "
               f"(warm-up {time.perf_counter() - t0:.1f} s)")
        rec = Recorder()
        stop = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client_thread, args=(url, 1000 + i, stop, rec, ctx), daemon=True)
                   for i in range(args.clients)]
        threads += [threading.Thread(target=slow_thread, args=(url, stop, rec, mode), daemon=True)
                    for mode in ("body", "headers")]
        peak, samples = baseline, []
        t_run = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads[: args.clients]):
            rss = rss_of(pid)
            peak = max(peak, rss)
            samples.append(rss)
            time.sleep(0.5)
        elapsed = time.perf_counter() - t_run
        for t in threads[args.clients:]:
            t.join(timeout=40)  # a slow client waits for its 408
        time.sleep(5)
        final = rss_of(pid)
        health = httpx.get(url + "api/health", timeout=60).json()
        cached_after = sum(c["bytes"] for c in health["caches"])
    n = rec.counts["requests"]
    lat = np.asarray(rec.normal) * 1e3 if rec.normal else np.asarray([np.nan])
    figures = {
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": n, "requests_per_s": n / elapsed,
        "normal_views": len(rec.normal), "normal_p50_ms": float(np.percentile(lat, 50)),
        "normal_p95_ms": float(np.percentile(lat, 95)), "normal_p99_ms": float(np.percentile(lat, 99)),
        **rec.counts, "rss_start_mb": start_rss / 2**20, "rss_baseline_mb": baseline / 2**20,
        "rss_peak_mb": peak / 2**20, "rss_final_mb": final / 2**20, "rss_final_over_baseline": final / baseline,
        "cache_mb_baseline": cached_before / 2**20, "cache_mb_final": cached_after / 2**20,
        "rss_final_less_cache_growth_over_baseline": (final - (cached_after - cached_before)) / baseline,
        "caches": {c["name"]: f"{c['entries']} entries, {c['bytes'] / 2**20:.1f} of {c['max_bytes'] / 2**20:.0f} MB"
                   for c in health["caches"]},
    }
    C.show(C.table(["figure", "value"], [[k, f"{v:.4g}" if isinstance(v, float) else v] for k, v in figures.items()
                                         if k != "caches"]))
    for name, text in figures["caches"].items():
        C.show(f"  cache {name}: {text}")
    if rec.examples:
        C.show("  examples of what went wrong:")
        for text in rec.examples:
            C.show(f"    {text}")
    targets = [
        C.target("abuse: 5xx answers", rec.counts["5xx"], "<=", 0, ""),
        C.target("abuse: hostile requests not answered 4xx", rec.counts["hostile_not_4xx"], "<=", 0, ""),
        C.target("abuse: slow clients not cut off with 408", rec.counts["slow_other"], "<=", 0, ""),
        C.target("abuse: RSS final / warm baseline", final / baseline, "<=", RSS_RATIO_GOAL, "x",
                 note=f"baseline {baseline / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB, final {final / 2**20:.0f} MB, "
                      f"of which the bounded caches grew by {(cached_after - cached_before) / 2**20:.0f} MB"),
    ]
    C.emit("abuse", targets, figures, env)


if __name__ == "__main__":
    main()
