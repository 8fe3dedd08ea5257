"""FeatureGrid output: PNG round trips, safe saving, notebook and matplotlib hooks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.errors import OptionError, RenderError
from convscope.render import FeatureGrid, encode_png, render_activation


@pytest.fixture
def grid() -> FeatureGrid:
    return render_activation(np.random.default_rng(0).random((9, 9, 6)), layer="c", cmap="viridis")


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_png_round_trip(grid: FeatureGrid) -> None:
    data = grid.to_png()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode(data), grid.image)
    np.testing.assert_array_equal(decode(grid.to_png(compress_level=9)), grid.image)


def test_gray_picture_round_trips_as_gray_png() -> None:
    g = render_activation(np.random.default_rng(1).random((9, 9, 4)))  # gray colormap, gray text
    img = Image.open(io.BytesIO(g.to_png()))
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), g.image)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 3), (7, 2), (700, 900, 3), (1200, 1000)])
@pytest.mark.parametrize("level", [0, 1, 6])
def test_encoder_round_trip(shape: tuple[int, ...], level: int) -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    img[: shape[0] // 2] = 9  # some structure, so deflate has runs to find
    decoded = Image.open(io.BytesIO(encode_png(img, level)))
    np.testing.assert_array_equal(np.asarray(decoded), img)


def test_encoder_rejects_bad_input() -> None:
    with pytest.raises(RenderError):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(OptionError, match=r"0..9"):
        encode_png(np.zeros((4, 4, 3), np.uint8), 10)


def test_save_refuses_to_overwrite(grid: FeatureGrid, tmp_path: Path) -> None:
    path = tmp_path / "grid.png"
    assert grid.save(path) == path
    np.testing.assert_array_equal(decode(path.read_bytes()), grid.image)
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        grid.save(path)
    assert path.read_bytes() == b"keep me"
    grid.save(str(path), overwrite=True)
    np.testing.assert_array_equal(decode(path.read_bytes()), grid.image)
    assert sorted(os.listdir(tmp_path)) == ["grid.png"]  # no temporary files left behind


def test_save_other_formats_and_errors(grid: FeatureGrid, tmp_path: Path) -> None:
    grid.save(tmp_path / "g.jpg")
    with Image.open(tmp_path / "g.jpg") as img:
        assert img.format == "JPEG" and img.size == grid.image.shape[1::-1]
    with pytest.raises(OptionError, match=r".png"):
        grid.save(tmp_path / "g.xyz")
    with pytest.raises(FileNotFoundError):
        grid.save(tmp_path / "missing" / "g.png")
    assert sorted(os.listdir(tmp_path)) == ["g.jpg"]


def test_notebook_and_array_hooks(grid: FeatureGrid) -> None:
    assert grid._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(grid), grid.image)
    assert "layer='c'" in repr(grid) and "6 of 6" in repr(grid)
    with pytest.raises(ValueError):
        grid.image[0, 0, 0] = 1  # results are read-only data
    with pytest.raises(AttributeError):
        grid.layer = "other"  # type: ignore[misc]


def test_to_figure(grid: FeatureGrid) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = grid.to_figure()
    assert isinstance(fig, Figure)
    assert fig._suptitle is not None
    assert fig._suptitle.get_text().split() == grid.caption.split()  # wrapped to the figure width
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
