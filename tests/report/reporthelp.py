"""Helpers for the report tests: reading a report's HTML back, and headless Chromium."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from PIL import Image

CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Parsed(html.parser.HTMLParser):
    """Every start tag with its attributes, plus the text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attrs(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]


def decode_data_uri(uri: str) -> np.ndarray:
    """A ``data:image/png;base64,...`` URI -> uint8 RGB array."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    with Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def have_chromium() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(CHROMIUM) or shutil.which(CHROMIUM) is not None


@contextmanager
def browser_page() -> Iterator[Any]:
    """A Playwright page in the system's headless Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            yield page
        finally:
            browser.close()
