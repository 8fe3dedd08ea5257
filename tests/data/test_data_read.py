"""read_image: formats, orientation, bit depths, modes, and refusals (missing, corrupt, too large)."""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

import numpy as np
import pytest
from datahelp import huge_png, png16_rgb, save, smooth
from PIL import Image, ImageFile

from convscope.data import read_image
from convscope.errors import InputError

READABLE = "not a readable image (PNG/JPEG/BMP/GIF/TIFF/WebP)"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("a.png", {}), ("a.bmp", {}), ("a.tif", {}), ("a.TIFF", {}), ("a.webp", {"lossless": True})],
)
@pytest.mark.parametrize("channels", [None, 3])
def test_lossless_formats_round_trip_exactly(
    tmp_path: Path, name: str, kwargs: dict[str, object], channels: int | None
) -> None:
    arr = smooth(17, 23, channels)
    out = read_image(save(tmp_path / name, arr, **kwargs))
    assert out.dtype == np.uint8
    if name.endswith(".webp") and channels is None:  # WebP has no gray mode: stored as RGB
        arr = np.dstack([arr] * 3)
    np.testing.assert_array_equal(out, arr)


def test_jpeg_matches_pillow_decoding(tmp_path: Path) -> None:
    path = save(tmp_path / "a.jpg", smooth(30, 40, 3), quality=90)
    np.testing.assert_array_equal(read_image(path), np.asarray(Image.open(path)))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # What the viewer should see: 20 rows x 40 columns, dark left half, bright right half.
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:, 20:] = 220
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 40 rows x 20 columns on disk
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"; undoes ROTATE_90 (which turns counter-clockwise)
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    out = read_image(path)
    assert out.shape == (20, 40, 3)
    assert np.abs(out.astype(int) - upright).mean() < 3


def test_16bit_gray_png_keeps_every_level(tmp_path: Path) -> None:
    arr16 = (np.arange(12 * 16, dtype=np.uint32).reshape(12, 16) * 341).astype(np.uint16)
    path = save(tmp_path / "deep.png", arr16)
    assert Image.open(path).mode.startswith("I;16")
    out = read_image(path)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, arr16 / 65535.0, rtol=0, atol=1e-7)
    assert len(np.unique(out)) == len(np.unique(arr16))  # no two levels merged (8 bits would merge many)


def test_16bit_rgb_png_is_read_at_8_bits_with_a_warning(tmp_path: Path, caplog) -> None:
    rng = np.random.default_rng(1)
    arr16 = rng.integers(0, 65536, size=(6, 7, 3), dtype=np.uint16)
    with caplog.at_level("WARNING"):
        out = read_image(png16_rgb(tmp_path / "deep_rgb.png", arr16))
    assert out.shape == (6, 7, 3)
    assert np.abs(out.astype(float) - arr16 / 257.0).max() <= 1.0
    assert "16-bit colour PNG: it is read at 8 bits per channel" in caplog.text  # never silently


def test_rgba_keeps_alpha_and_colour(tmp_path: Path) -> None:
    arr = np.dstack([smooth(9, 11, 3), np.full((9, 11), 77, np.uint8)])
    out = read_image(save(tmp_path / "a.png", arr))
    np.testing.assert_array_equal(out, arr)


def test_palette_gif_is_expanded_to_rgb(tmp_path: Path) -> None:
    pal = Image.fromarray(smooth(12, 14, 3)).quantize(16)
    path = tmp_path / "p.gif"
    pal.save(path)
    out = read_image(path)
    assert out.shape == (12, 14, 3)
    np.testing.assert_array_equal(out, np.asarray(Image.open(path).convert("RGB")))


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = Image.fromarray(smooth(8, 8, 3)).quantize(8)
    path = tmp_path / "t.png"
    pal.save(path, transparency=0)
    out = read_image(path)
    assert out.shape == (8, 8, 4)
    np.testing.assert_array_equal(out, np.asarray(Image.open(path).convert("RGBA")))


def test_one_bit_image_becomes_0_and_255(tmp_path: Path) -> None:
    bits = np.zeros((5, 6), bool)
    bits[1:3, 2:5] = True
    out = read_image(save(tmp_path / "b.png", bits))
    np.testing.assert_array_equal(out, bits.astype(np.uint8) * 255)


def test_animated_gif_reads_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (6, 5), v) for v in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = read_image(path)
    assert out.shape[:2] == (5, 6)
    assert int(np.asarray(Image.open(path).convert("L")).mean()) == int(
        np.asarray(Image.fromarray(out).convert("L")).mean()
    )
    assert np.asarray(Image.fromarray(out).convert("L")).max() < 100


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such file or folder: .*nope\.png"):
        read_image(tmp_path / "nope.png")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_garbage_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InputError, match=re.escape("junk.png is " + READABLE)):
        read_image(path)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_truncated_file_is_unreadable(tmp_path: Path, name: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    full = save(tmp_path / ("full" + Path(name).suffix), noise)
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"is not a readable image \(PNG/JPEG/BMP/GIF/TIFF/WebP\)"):
        read_image(cut)


def test_20000x20000_png_is_refused_before_decoding(
    huge_png_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert huge_png_path.stat().st_size < 200_000  # tiny on disk, 400 M pixels decoded

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(InputError) as err:
        read_image(huge_png_path)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 100_000  # kB
    assert "20000x20000" in str(err.value)
    assert "50,000,000" in str(err.value)


def test_image_over_max_pixels_below_pillow_limit_is_refused(tmp_path: Path) -> None:
    path = huge_png(tmp_path / "big.png", 8000, 8000)  # 64 M: over 50 M, under Pillow's 89 M warning
    with pytest.raises(InputError, match=r"8000x8000 .* over the limit of 50,000,000"):
        read_image(path)


def test_custom_max_pixels(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", smooth(20, 30))
    with pytest.raises(InputError, match=r"30x20 = 600 pixels, over the limit of 599"):
        read_image(path, max_pixels=599)
    assert read_image(path, max_pixels=600).shape == (20, 30)


def test_max_pixels_above_pillows_own_limit_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arr = smooth(100, 100)
    path = save(tmp_path / "a.png", arr)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow now refuses 10 000 pixels outright
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    np.testing.assert_array_equal(read_image(path, max_pixels=10_000), arr)
    with pytest.raises(InputError, match="100x100"):
        read_image(path, max_pixels=9_999)
