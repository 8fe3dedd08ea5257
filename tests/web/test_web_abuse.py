"""A careless user or a hostile page against the explorer: every bad request is a quick 4xx JSON that
names no server folder, with flat memory; slow clients get 408 without holding others up; big uploads are
decoded reduced and kept within a byte budget."""

from __future__ import annotations

import io
import socket
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from webhelp import digit_seven, png_bytes

from convscope.data import InputSpec, prepare_image, read_image
from convscope.present.web.app import create_app, scrub
from convscope.present.web.gallery import Gallery, reduction_factor
from convscope.present.web.server import ServerThread, build_explorer, start_in_thread

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 in its test client; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CORPUS = Path(__file__).parents[1] / "corpus" / "web_requests.txt"
LAYER, IMAGE = "conv_0", "s0"
HOME = str(Path.home())


def corpus() -> list[tuple[str, str]]:
    lines = [ln.strip() for ln in CORPUS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [tuple(ln.split(" ", 1)) for ln in lines]  # type: ignore[misc]


def long_strings() -> list[tuple[str, str]]:
    big = "9" * 20_000  # a URL longer than 16 KiB is refused by the HTTP parser; here the app sees it
    return [("GET", f"/api/grid?image={IMAGE}&layer={LAYER}&channels=0-{big}"),
            ("GET", f"/api/grid?image={'u' * 20_000}&layer={LAYER}"),
            ("GET", f"/api/grid?image={IMAGE}&layer={'x' * 20_000}"),
            ("GET", f"/api/grid?image={IMAGE}&layer={LAYER}&channels={','.join(['0-31'] * 5_000)}"),
            ("GET", f"/api/channel?image={IMAGE}&layer={LAYER}&channel={big}"),
            ("GET", f"/api/channel?image={IMAGE}&layer={LAYER}&channel=0&alpha={big}"),
            ("GET", f"/api/grid?image={IMAGE}&layer={LAYER}&aspect={big}")]


@pytest.fixture(scope="module")
def app_client(explorer) -> Iterator[TestClient]:
    with TestClient(create_app(explorer), base_url="http://127.0.0.1") as c:
        yield c


def assert_refused(response: httpx.Response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["status"] == response.status_code and error["error"]
    assert HOME not in error["error"] and "/tmp/" not in error["error"] and "/work/" not in error["error"]
    assert len(error["error"]) <= 600
    return error


@pytest.mark.parametrize(("method", "target"), corpus() + long_strings(), ids=lambda v: str(v)[:60])
def test_hostile_requests_are_refused_cheaply(app_client, method, target) -> None:
    target = target.replace("{L}", LAYER).replace("{I}", IMAGE)
    app_client.get(f"/api/grid?image={IMAGE}&layer={LAYER}")  # activations cached: only the request costs
    tracemalloc.start()
    try:
        response = app_client.request(method, target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_refused(response)
    assert peak < 64 << 20, f"{target[:80]} peaked at {peak / 1e6:.0f} MB"
    assert app_client.get(f"/api/grid?image={IMAGE}&layer={LAYER}&channels=0-3").json()["channels"] == [0, 1, 2, 3]


def test_huge_channel_range_names_the_value_and_the_valid_range(app_client) -> None:
    error = assert_refused(app_client.get(f"/api/grid?image={IMAGE}&layer={LAYER}&channels=0-1000000000"))
    assert "1000000000" in error["error"] and "0..31" in error["error"]


def test_error_messages_name_no_server_folder() -> None:
    assert scrub(f"'{HOME}/data/my photos/cat.png' is not a readable image") == \
        "'.../cat.png' is not a readable image"
    assert scrub("/tmp/convscope-upload-x1 is truncated; see GET /api/images") == \
        ".../convscope-upload-x1 is truncated; see GET /api/images"


def test_a_corrupt_folder_image_is_reported_by_name_only(tmp_path) -> None:
    served = tmp_path / "secret-folder"
    served.mkdir()
    (served / "a.png").write_bytes(png_bytes(digit_seven(28))[:70])  # truncated
    with TestClient(create_app(build_explorer("mnist-cnn", images=served)), base_url="http://127.0.0.1") as c:
        error = assert_refused(c.get(f"/api/grid?image=f0&layer={LAYER}"))
        assert "a.png" in error["error"] and "secret-folder" not in error["error"]
        assert c.get("/api/model").status_code == 200


# -- slow clients --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def impatient_server(explorer) -> Iterator[ServerThread]:
    handle = start_in_thread(create_app(explorer, body_timeout=1.0), header_timeout=1.0, body_timeout=2.0)
    yield handle
    handle.stop()


def open_socket(url: str) -> socket.socket:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=15)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_a_slow_upload_body_gets_408_and_others_are_served(impatient_server) -> None:
    sock = open_socket(impatient_server.url)
    sock.sendall(b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                 b"Content-Length: 5000\r\n\r\nabcd")
    started = time.monotonic()
    ok = httpx.get(impatient_server.url + "api/model", timeout=10)  # meanwhile, another client
    assert ok.status_code == 200
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"status":408' in answer.replace(b" ", b"") and b"4 of 5,000 bytes" in answer
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1",  # headers never finished
    b"GE",  # request line never finished
])
def test_slow_headers_get_408_and_close(impatient_server, request_bytes) -> None:
    sock = open_socket(impatient_server.url)
    sock.sendall(request_bytes)
    started = time.monotonic()
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"headers" in answer, answer[:200]
    assert time.monotonic() - started < 10


def test_trickled_headers_do_not_reset_the_deadline(impatient_server) -> None:
    sock = open_socket(impatient_server.url)
    started, answer = time.monotonic(), b""
    for byte in b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n":
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.2)
        if time.monotonic() - started > 6:
            break
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 6


def test_a_silent_connection_is_closed(impatient_server) -> None:
    sock = open_socket(impatient_server.url)
    started = time.monotonic()
    assert read_all(sock) == b""
    sock.close()
    assert time.monotonic() - started < 10


def test_a_body_sent_to_a_get_route_does_not_hold_the_connection(impatient_server) -> None:
    sock = open_socket(impatient_server.url)
    sock.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nxx")
    started = time.monotonic()
    answer = read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 10


def test_many_slow_clients_do_not_block_a_fast_one(impatient_server) -> None:
    socks = [open_socket(impatient_server.url) for _ in range(30)]
    for s in socks:
        s.sendall(b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 9")
    try:
        for _ in range(5):
            assert httpx.get(impatient_server.url + "api/images", timeout=10).status_code == 200
    finally:
        for s in socks:
            s.close()


# -- big uploads: decoded reduced, kept within a byte budget -------------------------------------------------
def photo(height: int, width: int, orientation: int | None = None) -> bytes:
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // width, yy * 255 // height, (xx // 7 + yy // 5) % 256], -1).astype(np.uint8)
    img[height // 4: height // 4 + height // 20, width // 3: 2 * width // 3] = 255
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(img).save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def test_reduction_factor_keeps_a_margin_over_the_model_size() -> None:
    assert reduction_factor(6000, 4000, (28, 28), 1024) == 4000 // 112
    assert reduction_factor(200, 200, (224, 224), 1024) == 1
    assert reduction_factor(6000, 4000, (None, None), 1024) == 6
    assert reduction_factor(800, 600, (None, None), 1024) == 1


@pytest.mark.parametrize("orientation", [None, 6])
def test_a_large_upload_decoded_reduced_matches_the_full_decode(tmp_path, orientation) -> None:
    data = photo(2400, 3600, orientation)
    spec = InputSpec((32, 32, 3))
    reduced = Gallery(spec).add_upload(data, "big.jpg").prepared
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    full = prepare_image(read_image(path), spec)
    assert reduced.x.shape == full.x.shape == (32, 32, 3)
    assert np.abs(reduced.x - full.x).mean() < 0.01 and np.abs(reduced.x - full.x).max() < 0.1


def test_a_free_size_model_gets_uploads_capped_on_the_longer_side() -> None:
    prepared = Gallery(InputSpec((None, None, 3)), max_free_side=500).add_upload(photo(900, 1500, 6), "p.jpg").prepared
    assert prepared.x.shape == (500, 300, 3)  # rotated by its EXIF orientation, shrunk 3x


def test_uploads_are_kept_within_a_byte_budget() -> None:
    gallery = Gallery(InputSpec((64, 64, 3)), max_upload_mb=1)
    data = png_bytes(np.full((64, 64, 3), 7, np.uint8))
    per = None
    for i in range(40):
        entry = gallery.add_upload(data, f"{i}.png")
        per = per or entry.prepared.x.nbytes + entry.prepared.display.nbytes
    kept = [im for im in gallery.list() if im["source"] == "upload"]
    assert len(kept) == (1 << 20) // per and kept[-1]["name"] == "39.png"


def test_concurrent_large_uploads_are_decoded_a_few_at_a_time(monkeypatch) -> None:
    gallery = Gallery(InputSpec((28, 28, 1)), decode_slots=2)
    active, most = 0, 0
    lock = threading.Lock()
    real = gallery._decode_bytes

    def counting(data: bytes, name: str):
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            time.sleep(0.05)
            return real(data, name)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(gallery, "_decode_bytes", counting)
    data = photo(600, 800)
    threads = [threading.Thread(target=gallery.add_upload, args=(data, f"{i}.jpg")) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 2 and len(gallery.list()) == 12


def test_large_folder_images_are_decoded_reduced_too(tmp_path) -> None:
    (tmp_path / "big.jpg").write_bytes(photo(1800, 2400, 6))
    (tmp_path / "small.png").write_bytes(png_bytes(digit_seven(28)))
    gallery = Gallery(InputSpec((32, 32, 3)))
    gallery.add_folder(tmp_path)
    full = prepare_image(read_image(tmp_path / "big.jpg"), InputSpec((32, 32, 3)))
    reduced = gallery.prepared("f0").x
    assert reduced.shape == full.x.shape and np.abs(reduced - full.x).mean() < 0.01
    assert gallery.prepared("f1").x.shape == (32, 32, 3)
    free = Gallery(InputSpec((None, None, 3)), max_free_side=600)
    free.add_folder(tmp_path)
    assert free.prepared("f0").x.shape == (600, 450, 3)  # 2400x1800 rotated by EXIF, shrunk 3x


# -- memory after a burst ------------------------------------------------------------------------------------
def test_caches_are_trimmed_once_the_server_is_idle() -> None:
    import time

    explorer = build_explorer("mnist-cnn", cache_mb=8)  # 2 MB per image: 0.25 MB after the trim, the latest kept
    with TestClient(create_app(explorer, idle_seconds=0.3), base_url="http://127.0.0.1") as c:
        for i in range(6):
            assert c.get(f"/api/grid.png?image=s{i}&layer={LAYER}").status_code == 200
        busy = {s["name"]: s for s in c.get("/api/health").json()["caches"]}
        assert busy["activations"]["entries"] >= 6 and busy["pictures"]["entries"] >= 6
        time.sleep(1.5)  # idle: the watcher trims to 1/32 of each bound, keeping the latest entry
        stats = {s.name: s for s in (explorer._acts.stats(), explorer._pictures.stats())}
        for name, s in stats.items():
            assert s.entries == 1 or s.bytes <= s.max_bytes // 32, (name, s)
        assert stats["activations"].entries == 1 < busy["activations"]["entries"]
        assert c.get(f"/api/grid.png?image=s0&layer={LAYER}").status_code == 200  # and it serves on
