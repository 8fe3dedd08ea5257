"""Safe by default: loopback, traversal, symlinks, upload caps, bombs, hosts; errors are 4xx JSON."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from webhelp import digit_seven, png_bytes, raw_get

from convscope.present.web import app as web_app
from convscope.present.web.app import create_app
from convscope.present.web.server import ServerThread, allowed_hosts, build_explorer, start_in_thread

SECRETS = (b"root:", b"[project]", b"TOP-SECRET", b"BEGIN")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but holds almost no data (a 'bomb' header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def folder_server(image_folder) -> Iterator[ServerThread]:
    root, _ = image_folder
    handle = start_in_thread(create_app(build_explorer("mnist-cnn", images=root, max_pixels=4_000_000),
                                        max_upload_bytes=1 << 20))
    yield handle
    handle.stop()


def assert_json_4xx(status: int, ctype: str, body: bytes) -> dict:
    assert 400 <= status < 500, (status, body[:200])
    assert ctype.startswith("application/json"), ctype
    assert not any(s in body for s in SECRETS)
    return json.loads(body)


def test_folder_serves_only_images_directly_inside_it(folder_server):
    images = httpx.get(folder_server.url + "api/images").json()["images"]
    assert [(im["id"], im["name"]) for im in images] == [("f0", "gray.jpg"), ("f1", "seven.png")]
    r = httpx.get(folder_server.url + "api/images/f1.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


@pytest.mark.parametrize("target", [
    "/static/../../pyproject.toml", "/static/../../../../../../etc/passwd", "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/%2E%2E%2F%2E%2E%2Fpyproject.toml", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static//etc/passwd",
    "/static/%2fetc%2fpasswd", "//etc/passwd", "/etc/passwd", "/api/images/..%2f..%2fetc%2fpasswd.png",
    "/api/images/%2fetc%2fpasswd.png", "/api/images/../../secret.png", "/api/images/escape.png",
    "/api/images/sub%2fnested.png", "/api/images/notes.txt", "/static/..\\..\\pyproject.toml",
    "/static/%252e%252e/%252e%252e/pyproject.toml", "http://127.0.0.1/etc/passwd",
])
def test_traversal_attempts_are_refused(folder_server, target):
    status, ctype, body = raw_get(folder_server.url, target)
    error = assert_json_4xx(status, ctype, body)
    assert error["status"] == status


def test_no_parameter_names_a_file(folder_server, image_folder):
    _, outside = image_folder
    for image in ("../outside/secret.png", str(outside / "secret.png"), "f1/../../outside/secret.png", "escape.png"):
        status, ctype, body = raw_get(folder_server.url, f"/api/grid?layer=conv_0&image={image}")
        assert assert_json_4xx(status, ctype, body)["status"] == 404


def test_a_file_replaced_by_a_symlink_after_start_is_refused(image_folder, tmp_path):
    _, outside = image_folder
    served = tmp_path / "served"
    served.mkdir()
    (served / "a.png").write_bytes(png_bytes(digit_seven(28)))
    handle = start_in_thread(create_app(build_explorer("mnist-cnn", images=served)))
    try:
        (served / "a.png").unlink()
        (served / "a.png").symlink_to(outside / "secret.png")
        status, ctype, body = raw_get(handle.url, "/api/images/f0.png")
        assert "no longer inside" in assert_json_4xx(status, ctype, body)["error"]
    finally:
        handle.stop()


def test_static_files_do_not_follow_symlinks_out(monkeypatch, explorer, tmp_path, image_folder):
    _, outside = image_folder
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>t</title>")
    (static / "leak.txt").symlink_to(outside / "secret.txt")
    monkeypatch.setattr(web_app, "static_dir", lambda: str(static))
    handle = start_in_thread(create_app(explorer))
    try:
        assert raw_get(handle.url, "/")[0] == 200
        assert_json_4xx(*raw_get(handle.url, "/static/leak.txt"))
    finally:
        handle.stop()


def test_uploads_accept_images_and_refuse_everything_else(live_server):
    url = live_server.url + "api/images"
    ok = httpx.post(url, content=png_bytes(digit_seven(64)), headers={"content-type": "image/png", "x-filename": "seven.png"})
    assert ok.status_code == 201 and ok.json()["id"].startswith("u") and ok.json()["name"] == "seven.png"
    jpeg = httpx.post(url, content=png_bytes(np.full((50, 60, 3), 90, np.uint8), "JPEG"), headers={"content-type": "image/jpeg"})
    assert jpeg.status_code == 201
    cases = [
        (b"#!/bin/sh\necho hi\n", "text/x-shellscript", 415, "image"),
        (b"this is not a picture at all", "image/png", 400, "not a readable image"),
        (png_bytes(digit_seven(64))[:60], "image/png", 400, "not a readable image"),
        (b"", "image/png", 400, "empty"),
        (os.urandom((1 << 20) + 10), "image/png", 413, "limit"),
        (png_header_only(100_000, 100_000), "image/png", 413, "pixels"),
    ]
    for data, ctype, status, words in cases:
        r = httpx.post(url, content=data, headers={"content-type": ctype, "x-filename": "x<script>.png"})
        assert r.status_code == status and words in r.json()["error"], (status, r.text[:300])
    assert httpx.get(live_server.url + "api/model").status_code == 200  # still serving


def test_decompression_bombs_are_refused_before_decoding(folder_server):
    url = folder_server.url + "api/images"  # this server allows 4 MP
    bomb = png_bytes(np.zeros((3000, 3000), np.uint8))  # 9 MP of zeros: ~10 KB compressed
    assert len(bomb) < 100_000
    r = httpx.post(url, content=bomb, headers={"content-type": "image/png"})
    assert r.status_code == 413 and "3000x3000" in r.json()["error"] and "4,000,000" in r.json()["error"]
    r = httpx.post(url, content=png_header_only(30_000, 30_000), headers={"content-type": "image/png"})
    assert r.status_code == 413


def test_streamed_uploads_without_length_are_capped(live_server):
    def body():
        for _ in range(40):
            yield b"\0" * 65536
    r = httpx.post(live_server.url + "api/images", content=body(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_foreign_host_headers_are_refused(live_server):
    status, ctype, body = raw_get(live_server.url, "/api/model", headers={"Host": "evil.example:8050"})
    assert "evil.example" in assert_json_4xx(status, ctype, body)["error"]
    host = live_server.url.split("//")[1].rstrip("/")
    assert raw_get(live_server.url, "/api/model", headers={"Host": host.replace("127.0.0.1", "localhost")})[0] == 200


def test_defaults_bind_loopback_only():
    import inspect

    from convscope.present.cli_serve import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert "*" not in allowed_hosts("127.0.0.1") and allowed_hosts("0.0.0.0") == ["*"]


def test_responses_carry_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and "<title>" in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "http" not in r.text.split("<body>")[0].replace("http-equiv", "")  # nothing from another origin


def test_the_page_loads_nothing_from_another_origin():
    static = Path(web_app.static_dir())
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path.name
