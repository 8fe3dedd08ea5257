"""JPEG reduced-size decoding (draft) for the scan, and 8-bit scaling by table: exact where promised, close
where not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.data import InputSpec, Preprocess, draft_size, prepare_image
from convscope.data.read import draft_scale, read_image, read_picture

skdata = pytest.importorskip("skimage.data")

SPEC = InputSpec((224, 224, 3))
PREP = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # EfficientNet-Lite's own scaling
# Draft (DCT-scaled) decoding then the bilinear resize vs the full decode then the bilinear resize, in 8-bit
# levels of the resized picture: the two low-pass filters differ, most on fine texture and sharp edges.
# Measured on these photos: mean 0.75..1.14 levels, 99th percentile 5..8, single pixels up to 33.
MEAN_LEVELS = 2.0
P99_LEVELS = 16.0


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real photos saved as 640x480 JPEGs (the size of a digital-camera picture, over 2x the input)."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        im = Image.fromarray(getattr(skdata, name)()).resize((640, 480), Image.Resampling.LANCZOS)
        path = folder / f"{name}.jpg"
        im.save(path, quality=90)
        paths.append(path)
    return paths


def test_draft_scale_keeps_at_least_the_target_size():
    assert draft_scale((640, 480), (224, 224)) == 2  # 320x240: still >= 224x224
    assert draft_scale((2000, 1800), (224, 224)) == 8  # 250x225
    assert draft_scale((1792, 1791), (224, 224)) == 4  # 1/8 would give 224x224 - 1 row
    assert draft_scale((500, 375), (224, 224)) == 1  # 250x187 would be too small: full decode
    assert draft_scale((224, 224), (224, 224)) == 1
    assert draft_scale((100, 50), (224, 224)) == 1  # upscaled anyway: full decode


def test_draft_decodes_smaller_but_never_below_the_target(photos):
    full = read_image(photos[0])
    small = read_image(photos[0], draft=(224, 224))
    assert full.shape == (480, 640, 3)
    assert small.shape == (240, 320, 3)
    assert read_image(photos[0], draft=(400, 300)).shape == (480, 640, 3)  # 1/2 would be 320x240 < 400x300


def test_draft_honours_exif_rotation(tmp_path):
    """A portrait photo stored landscape with EXIF orientation 6: the size kept is the upright one."""
    stored = Image.fromarray(skdata.astronaut()).resize((960, 480))  # stored 960 wide, 480 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: upright it is 480 wide, 960 high
    path = tmp_path / "portrait.jpg"
    stored.save(path, quality=90, exif=exif)
    upright = read_image(path)
    assert upright.shape == (960, 480, 3)
    # upright target 224 wide, 448 high: 1/2 gives an upright 240x480, >= the target on both sides
    assert read_image(path, draft=(224, 448)).shape == (480, 240, 3)
    # a target 448 wide cannot be halved (upright width 480 / 2 = 240 < 448): full decode
    assert read_image(path, draft=(448, 224)).shape == (960, 480, 3)


def test_draft_only_for_a_fixed_stretch_resize():
    assert draft_size(SPEC, PREP) == (224, 224)
    assert draft_size(InputSpec((96, 128, 3)), Preprocess()) == (128, 96)  # (width, height)
    assert draft_size(SPEC, Preprocess(resize="fit")) is None  # placement rounds the decoded size
    assert draft_size(SPEC, Preprocess(resize="none")) is None  # needs the stored size
    assert draft_size(InputSpec((None, None, 3)), Preprocess()) is None


def test_draft_inputs_are_close_to_the_full_decode(photos):
    for path in photos:
        full = prepare_image(read_image(path), SPEC, PREP)
        drafted = prepare_image(read_image(path, draft=(224, 224)), SPEC, PREP)
        diff = np.abs(full.display.astype(np.int16) - drafted.display.astype(np.int16))
        assert diff.any(), path  # the draft was really used
        assert diff.mean() <= MEAN_LEVELS, (path.name, diff.mean())
        assert np.percentile(diff, 99) <= P99_LEVELS, (path.name, np.percentile(diff, 99))
        # the model input is the same scaling of those pixels: (x/255 - 0.5)/0.5
        np.testing.assert_allclose(np.abs(full.x - drafted.x).mean(), diff.mean() / 127.5, rtol=1e-4)


def test_without_a_usable_draft_the_decode_is_untouched(photos, tmp_path):
    """PNGs, small JPEGs and ``draft=None`` decode exactly as before (byte for byte)."""
    png = tmp_path / "a.png"
    Image.open(photos[1]).save(png)
    small = tmp_path / "small.jpg"
    Image.open(photos[1]).resize((400, 300)).save(small, quality=85)
    for path in (png, small):
        np.testing.assert_array_equal(read_picture(path, None, draft=(224, 224)), read_image(path))
    np.testing.assert_array_equal(read_picture(photos[1], None, draft=None), read_image(photos[1]))


@pytest.mark.parametrize(
    ("prep", "channels"),
    [
        (Preprocess(), 1),
        (Preprocess(), 3),
        (Preprocess(value_range=(-1.0, 1.0)), 3),
        (Preprocess(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)), 3),
        (Preprocess(mean=0.3, std=0.7, invert=True), 1),
        (Preprocess(mean=0.3, std=0.7, invert=True), 3),
    ],
)
def test_8bit_scaling_by_table_is_identical_to_the_float64_formula(prep, channels):
    """Every 8-bit level in every channel, against the formula written out in float64 here."""
    rng = np.random.default_rng(channels)
    img = rng.integers(0, 256, (16, 256, channels), dtype=np.uint8)
    img[0, :, :] = np.arange(256, dtype=np.uint8)[:, None]  # every level present
    got = prepare_image(img, InputSpec((16, 256, channels)), prep).x
    pixels = (255 - img if prep.invert else img).astype(np.float64) / 255.0
    if prep.mean is not None:
        want = (pixels - np.asarray(prep.mean)) / np.asarray(prep.std)
    else:
        lo, hi = prep.value_range
        want = lo + (hi - lo) * pixels
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))
