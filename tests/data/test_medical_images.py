"""16-bit PNG and TIFF keep their full range; TIFF stacks are batches (2D models) or volumes (Conv3D)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from datahelp import save

from convscope.data import InputSpec, Preprocess, load_inputs
from convscope.data.readopts import ReadOptions, SliceSpec
from convscope.data.window import Window
from convscope.errors import InputError, OptionError

keras = pytest.importorskip("keras")


def ramp16(h: int = 16, w: int = 16) -> np.ndarray:
    """uint16 (H, W) spanning exactly 0..65535."""
    v = np.linspace(0, 65535, h * w).round().astype(np.uint16).reshape(h, w)
    v.flat[0], v.flat[-1] = 0, 65535
    return v


def small_cnn(shape: tuple[int, ...]) -> keras.Model:
    conv = keras.layers.Conv3D if len(shape) == 4 else keras.layers.Conv2D
    inp = keras.Input(shape)
    out = conv(4, 3, activation="relu", name="conv")(inp)
    return keras.Model(inp, out)


def test_16bit_png_maps_equal_keras_on_the_float_array(tmp_path: Path) -> None:
    import convscope

    arr = ramp16()
    path = save(tmp_path / "deep.png", arr)
    model = small_cnn((16, 16, 1))
    for rng, (lo, hi) in ((None, (0.0, 1.0)), ((-1.0, 1.0), (-1.0, 1.0))):
        prep = Preprocess() if rng is None else Preprocess(value_range=rng)
        got = convscope.activations(model, path, ["conv"], preprocess=prep)["conv"]
        x = (lo + (hi - lo) * (arr.astype(np.float64) / 65535.0)).astype(np.float32)[None, :, :, None]
        want = keras.ops.convert_to_numpy(model(x))
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        batch = load_inputs([path], InputSpec((16, 16, 1)), prep)
        np.testing.assert_allclose(batch.x, x, atol=1e-6, rtol=0)  # the float array, not 8-bit levels


def test_values_differing_only_in_the_low_byte_give_different_inputs(tmp_path: Path) -> None:
    base = np.full((8, 8), 0x4200, np.uint16)
    other = base.copy()
    other[3, 4] = 0x42FF  # same high byte: 8-bit truncation would make the two images equal
    spec = InputSpec((8, 8, 1))
    a = load_inputs([save(tmp_path / "a.png", base)], spec).x
    b = load_inputs([save(tmp_path / "b.png", other)], spec).x
    assert not np.array_equal(a, b)
    assert b[0, 3, 4, 0] - a[0, 3, 4, 0] == pytest.approx(0xFF / 65535, abs=1e-7)
    c = load_inputs([save(tmp_path / "c.tif", other)], spec).x  # TIFF through tifffile alike
    np.testing.assert_array_equal(b, c)


def test_window_on_a_16bit_png_uses_the_stored_values(tmp_path: Path) -> None:
    arr = ramp16()
    prep = Preprocess(read=ReadOptions(window=Window(1000.0, 2001.0)))
    got = load_inputs([save(tmp_path / "w.png", arr)], InputSpec((16, 16, 1)), prep)
    x = arr.astype(np.float64)
    want = np.clip((x - 999.5) / 2000.0 + 0.5, 0, 1)  # DICOM LINEAR, as viewers
    want = np.where(x <= 999.5 - 1000.0, 0.0, np.where(x > 999.5 + 1000.0, 1.0, want))
    np.testing.assert_allclose(got.x[0, :, :, 0], want, atol=1e-6)
    assert "window 1000,2001 (LINEAR)" in got.preprocess


def write_stack(path: Path, pages: list[np.ndarray]) -> Path:
    for i, page in enumerate(pages):
        tifffile.imwrite(path, page, append=i > 0, photometric="minisblack")
    return path


def test_tiff_stack_pages_are_a_batch_with_16bit_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pages = [rng.integers(0, 65536, (10, 12), dtype=np.uint16) for _ in range(3)]
    path = write_stack(tmp_path / "stack.tif", pages)
    got = load_inputs([path], InputSpec((10, 12, 1)))
    assert got.names == ("stack[0]", "stack[1]", "stack[2]")
    for i, page in enumerate(pages):
        np.testing.assert_allclose(got.x[i, :, :, 0], page / 65535.0, atol=1e-7)
    assert "TIFF 3x10x12x1" in got.preprocess and "3 pages" in got.preprocess
    one = load_inputs([path], InputSpec((10, 12, 1)), Preprocess(read=ReadOptions(slice=SliceSpec(0, -1))))
    np.testing.assert_array_equal(one.x[0], got.x[2])
    assert one.names == ("stack[2]",)


def test_tiff_stack_is_one_volume_for_a_conv3d_model(tmp_path: Path) -> None:
    import convscope

    pages = [np.full((6, 7), 1000 * (i + 1), np.uint16) for i in range(5)]
    pages[2][1, 1] = 1
    path = write_stack(tmp_path / "vol.tiff", pages)
    model = small_cnn((5, 6, 7, 1))
    got = convscope.activations(model, path, ["conv"])["conv"]
    x = (np.stack(pages).astype(np.float64) / 65535.0).astype(np.float32)[None, ..., None]
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)), atol=1e-5, rtol=0)
    with pytest.raises(OptionError, match=r"--slice 2:1 picks 2D slices.*takes whole volumes"):
        load_inputs([path], InputSpec((5, 6, 7, 1)), Preprocess(read=ReadOptions(slice=SliceSpec(2, 1))))


def test_tiff_stack_volume_is_resized_to_the_model(tmp_path: Path) -> None:
    pages = [np.full((6, 8), 30000, np.uint16) for _ in range(4)]
    got = load_inputs([write_stack(tmp_path / "v.tif", pages)], InputSpec((2, 3, 4, 1)))
    assert got.x.shape == (1, 2, 3, 4, 1)
    np.testing.assert_allclose(got.x, 30000 / 65535.0, atol=1e-6)  # a constant stays constant
    with pytest.raises(InputError, match=r"resize is 'none'"):
        load_inputs([tmp_path / "v.tif"], InputSpec((2, 3, 4, 1)), Preprocess(resize="none"))


def test_mixed_page_sizes_are_refused(tmp_path: Path) -> None:
    path = write_stack(tmp_path / "mixed.tif", [np.zeros((4, 5), np.uint16), np.zeros((6, 5), np.uint16)])
    with pytest.raises(InputError) as err:
        load_inputs([path], InputSpec((4, 5, 1)))
    msg = str(err.value)
    assert "mixed.tif: TIFF pages differ in size: page 0 is 4x5 uint16, page 1 is 6x5 uint16" in msg
    assert "a stack needs pages of one size" in msg


def test_slice_out_of_range_names_the_valid_range(tmp_path: Path) -> None:
    path = write_stack(tmp_path / "s.tif", [np.zeros((4, 5), np.uint8)] * 3)
    prep = Preprocess(read=ReadOptions(slice=SliceSpec(0, 7)))
    with pytest.raises(InputError, match=r"slice 0:7 is out of range; it has 3 slice\(s\) along axis 0.*0\.\.2"):
        load_inputs([path], InputSpec((4, 5, 1)), prep)


def test_8bit_tiff_page_is_the_8bit_image_path(tmp_path: Path) -> None:
    from convscope.data.read import read_image

    arr = (np.arange(30 * 40) % 256).astype(np.uint8).reshape(30, 40)
    path = save(tmp_path / "eight.tif", arr)
    spec = InputSpec((28, 28, 1))
    via_stack = load_inputs([path], spec).x
    png = load_inputs([save(tmp_path / "eight.png", arr)], spec).x
    np.testing.assert_array_equal(via_stack, png)  # resized as 8-bit pixels, exactly like a PNG
    assert read_image(path).dtype == np.uint8


def test_tiff_without_tifffile_names_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_stack(tmp_path / "multi.tif", [np.zeros((4, 5), np.uint16)] * 2)
    single = save(tmp_path / "single.tif", np.full((4, 5), 7, np.uint8))
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile -> ImportError
    with pytest.raises(InputError, match=r"needs the tifffile package: pip install 'convscope\[medical\]'"):
        load_inputs([path], InputSpec((4, 5, 1)))
    got = load_inputs([single], InputSpec((4, 5, 1)))  # one page: Pillow still reads it
    np.testing.assert_allclose(got.x, 7 / 255.0, atol=1e-7)


def test_stack_over_the_voxel_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write_stack(tmp_path / "big.tif", [np.zeros((10, 10), np.uint8)] * 5)
    prep = Preprocess(read=ReadOptions(max_voxels=400))
    with pytest.raises(InputError, match=r"declares shape \(5, 1, 10, 10, 1\) = 500 values, over the limit of 400"):
        load_inputs([path], InputSpec((10, 10, 1)), prep)
    with pytest.raises(InputError, match=r"declares 10x10 = 100 pixels per image, over the limit of 99"):
        load_inputs([path], InputSpec((10, 10, 1)), max_pixels=99)
