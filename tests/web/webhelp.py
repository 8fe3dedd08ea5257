"""Helpers shared by the web explorer tests (images to upload, raw HTTP requests)."""

from __future__ import annotations

import http.client
import io

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode a uint8 image array (``(H, W)`` or ``(H, W, 3)``)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def digit_seven(size: int = 64) -> np.ndarray:
    """A hand-drawn-looking white 7 on black, ``(size, size)`` uint8."""
    img = np.zeros((size, size), np.uint8)
    t = size // 8
    img[2 * t : 3 * t, 2 * t : 6 * t] = 255
    for i in range(2 * t, 7 * t):
        x = 6 * t - (i - 2 * t) * 3 * t // (5 * t)
        img[i, max(0, x - t // 2) : x + t // 2] = 255
    return img


def raw_get(url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """Send ``GET target`` exactly as written (no URL normalization); return (status, content type, body)."""
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.putrequest("GET", target, skip_host=bool(headers and "Host" in headers), skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type", ""), resp.read()
    finally:
        conn.close()
