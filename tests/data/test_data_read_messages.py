"""Image read errors say the file and the reason in words, never a Python repr (issue 18, item 7)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.data.read import image_to_array, read_image
from convscope.errors import InputError


def _png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(path)
    return path


def _cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.png"
    text.write_text("hello, not an image\n")
    empty = tmp / "empty.jpg"
    empty.write_bytes(b"")
    archive = tmp / "model.png"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
    npy = tmp / "array.png"
    with npy.open("wb") as fh:
        np.save(fh, np.zeros(3))
    binary = tmp / "noise.png"
    binary.write_bytes(bytes(range(256)) * 4)
    jpg = tmp / "full.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(jpg)
    cut = tmp / "cut.jpg"
    cut.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])
    return {"text": (text, "it holds text, not an image"), "empty": (empty, "the file is empty (0 bytes)"),
            "zip": (archive, "it is a zip archive, not an image"), "npy": (npy, "it is a numpy .npy array"),
            "binary": (binary, "its content is not a known image format"),
            "truncated": (cut, "the file is truncated (its image data ends early)")}


@pytest.mark.parametrize("case", ["text", "empty", "zip", "npy", "binary", "truncated"])
def test_unreadable_images_are_explained_without_reprs(tmp_path, case):
    path, reason = _cases(tmp_path)[case]
    with pytest.raises(InputError) as err:
        read_image(path)
    message = str(err.value)
    assert message.startswith(f"{path} is not a readable image (PNG/JPEG/BMP/GIF/TIFF/WebP): ")
    assert message.endswith(reason) or reason in message, message
    for leak in ("<_io", "BufferedReader", " at 0x", "<PIL", "object at"):
        assert leak not in message, message


def test_good_images_still_read(tmp_path):
    assert read_image(_png(tmp_path / "ok.png")).shape == (32, 32, 3)


def test_in_memory_image_errors_name_no_object(tmp_path):
    im = Image.open(_png(tmp_path / "a.png"))
    im.close()
    with pytest.raises(InputError) as err:
        image_to_array(im)
    assert " at 0x" not in str(err.value) and "<_io" not in str(err.value)
