"""Shared fixtures of the web explorer tests: one MNIST explorer per worker, in-process and real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from webhelp import digit_seven

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

import httpx

from convscope.present.web.app import create_app
from convscope.present.web.server import ServerThread, build_explorer, start_in_thread


@pytest.fixture(scope="session")
def explorer():
    """The bundled MNIST CNN with its 16 sample digits (built once per test worker)."""
    return build_explorer("mnist-cnn")


@pytest.fixture(scope="session")
def live_server(explorer) -> Iterator[ServerThread]:
    """A real uvicorn server on a free loopback port (uploads capped at 1 MiB), stopped at the end."""
    handle = start_in_thread(create_app(explorer, max_upload_bytes=1 << 20))
    yield handle
    handle.stop()
    assert not handle.thread.is_alive()


@pytest.fixture(scope="session")
def client(live_server) -> Iterator[httpx.Client]:
    """An HTTP client of the live server."""
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, Path]:
    """A served folder (two images, a symlink out, a sub-folder, a text file) and a secret outside it."""
    base = tmp_path_factory.mktemp("served")
    root, outside = base / "images", base / "outside"
    root.mkdir()
    outside.mkdir()
    Image.fromarray(digit_seven(28)).save(root / "seven.png")
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(root / "gray.jpg")
    Image.fromarray(digit_seven(28)).save(outside / "secret.png")
    (outside / "secret.txt").write_text("TOP-SECRET")
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "sub").mkdir()
    Image.fromarray(digit_seven(28)).save(root / "sub" / "nested.png")
    (root / "notes.txt").write_text("not an image")
    return root, outside
