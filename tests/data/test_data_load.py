"""load_inputs: items, folders, names, sources, mixed batches, free sizes, and the error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datahelp import pil_bilinear, save, smooth
from PIL import Image

from convscope.data import IMAGE_EXTENSIONS, Inputs, InputSpec, Preprocess, folder_images, load_inputs
from convscope.errors import InputError

GRAY28 = InputSpec((28, 28, 1))


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, name in enumerate(["img10.png", "img2.png", "IMG1.PNG", "b.jpg"]):
        save(folder / name, smooth(20 + i, 24, seed=i))
    save(folder / ".hidden.png", smooth(5, 5))
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    save(folder / "sub" / "deep.png", smooth(5, 5))
    return folder


def test_folder_natural_order_names_and_sources(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    got = load_inputs([folder], GRAY28)
    assert got.names == ("b", "IMG1", "img2", "img10")
    assert got.sources == tuple(str(folder / n) for n in ("b.jpg", "IMG1.PNG", "img2.png", "img10.png"))
    assert got.x.shape == (4, 28, 28, 1) and got.x.dtype == np.float32
    expected = pil_bilinear(np.asarray(Image.open(folder / "img2.png")), 28, 28) / 255.0
    np.testing.assert_allclose(got.x[2, :, :, 0], expected, atol=1e-6, rtol=0)
    assert [p.name for p in folder_images(folder)] == ["b.jpg", "IMG1.PNG", "img2.png", "img10.png"]


def test_display_and_preprocess_line(tmp_path: Path) -> None:
    path = save(tmp_path / "c.png", smooth(40, 40, 3))
    got = load_inputs([path], GRAY28, Preprocess(invert=True))
    assert len(got) == 1 and got.display[0] is not None
    assert got.display[0].shape == (28, 28, 3)
    # the display is what the model sees: resized, gray, inverted
    np.testing.assert_allclose(got.display[0][:, :, 0] / 255.0, got.x[0, :, :, 0], atol=1e-6)
    np.testing.assert_array_equal(got.display[0][:, :, 0], got.display[0][:, :, 2])
    assert got.preprocess == (
        "stretch (bilinear) to 28x28, 1 channel (gray), inverted (255-x), 0..255 -> [0, 1]; "
        "converted: RGB->gray (ITU-R 601-2 luma)"
    )


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        load_inputs([tmp_path / "empty"], GRAY28)
    msg = str(err.value)
    assert f"folder {tmp_path / 'empty'} has no images" in msg
    assert all(ext in msg for ext in IMAGE_EXTENSIONS)


def test_folder_with_only_arrays_says_to_pass_them_directly(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((28, 28)))
    with pytest.raises(InputError, match=r"has no images .*\.npy/\.npz files are not read from folders"):
        load_inputs([tmp_path], GRAY28)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such file or folder: .*ghost\.png"):
        load_inputs([tmp_path / "ghost.png"], GRAY28)


def test_unknown_extension_lists_accepted(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(InputError) as err:
        load_inputs([str(tmp_path / "data.csv")], GRAY28)
    msg = str(err.value)
    assert "unknown file type '.csv'" in msg
    assert ".png .jpg .jpeg .bmp .gif .tif .tiff .webp .dcm .dicom .nii .nii.gz .npy .npz" in msg


def test_corrupt_image_in_a_batch(tmp_path: Path) -> None:
    save(tmp_path / "ok.png", smooth(28, 28))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(InputError, match=r"bad\.jpg is not a readable image"):
        load_inputs([tmp_path], GRAY28)


def test_max_pixels_is_passed_on(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", smooth(20, 20))
    with pytest.raises(InputError, match="over the limit of 100 pixels"):
        load_inputs([path], GRAY28, max_pixels=100)


def test_name_collisions_get_suffixes(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        save(tmp_path / sub / "digit.png", smooth(28, 28))
    save(tmp_path / "digit.jpg", smooth(28, 28))
    save(tmp_path / "digit_2.png", smooth(28, 28))
    items = [tmp_path / "a", tmp_path / "b" / "digit.png", tmp_path / "digit.jpg", tmp_path / "digit_2.png"]
    got = load_inputs(items, GRAY28)
    assert got.names == ("digit", "digit_3", "digit_4", "digit_2")
    assert len(set(got.sources)) == 4


def test_unsafe_file_names_are_made_safe(tmp_path: Path) -> None:
    got = load_inputs([save(tmp_path / "my digit (1).png", smooth(28, 28))], GRAY28)
    assert got.names == ("my_digit_1_",)


def test_mixed_images_and_arrays(tmp_path: Path) -> None:
    img = save(tmp_path / "seven.png", smooth(28, 28))
    np.save(tmp_path / "batch.npy", np.full((2, 28, 28, 1), 0.25, np.float32))
    mem = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    got = load_inputs([img, tmp_path / "batch.npy", mem], GRAY28, Preprocess(value_range=(-1.0, 1.0)))
    assert got.x.shape == (4, 28, 28, 1)
    assert got.names == ("seven", "batch.npy[0]", "batch.npy[1]", "array")
    assert got.sources[-1] == "<array 2>"
    np.testing.assert_allclose(got.x[1], 0.25)  # arrays are not rescaled to [-1, 1]
    np.testing.assert_allclose(got.x[0, :, :, 0], -1.0 + 2.0 * smooth(28, 28) / 255.0, atol=1e-6)
    assert got.display[3] is not None and got.display[3][0, 0, 0] == 0 and got.display[3][-1, -1, 0] == 255
    assert got.preprocess.endswith("0..255 -> [-1, 1]; arrays taken as-is (already preprocessed)")


def test_several_arrays_are_numbered_by_position() -> None:
    got = load_inputs([np.zeros((28, 28)), np.zeros((2, 28, 28))], GRAY28)
    assert got.names == ("array0", "array1[0]", "array1[1]")


def test_a_bare_path_is_one_item(tmp_path: Path) -> None:
    path = save(tmp_path / "solo.png", smooth(28, 28))
    assert load_inputs(str(path), GRAY28).names == ("solo",)


def test_pil_images_are_accepted() -> None:
    got = load_inputs([Image.fromarray(smooth(30, 30, 3))], InputSpec((3, 32, 32), "channels_first"))
    assert got.x.shape == (1, 3, 32, 32) and got.names == ("image0",)


def test_no_items_and_wrong_item_types() -> None:
    with pytest.raises(InputError, match="no inputs given"):
        load_inputs([], GRAY28)
    with pytest.raises(InputError, match=r"input 1 is a int; expected a path"):
        load_inputs([np.zeros((28, 28)), 5], GRAY28)  # type: ignore[list-item]


def test_free_size_keeps_each_image_size_when_equal(tmp_path: Path) -> None:
    spec = InputSpec((None, None, 3))
    a, b = save(tmp_path / "a.png", smooth(30, 40, 3)), save(tmp_path / "b.png", smooth(30, 40, 3, seed=1))
    got = load_inputs([a, b], spec)
    assert got.x.shape == (2, 30, 40, 3)
    assert got.preprocess.startswith("stretch (bilinear) to anyxany, 3 channels (RGB)")


def test_free_size_with_different_sizes_suggests_one_batch_per_size(tmp_path: Path) -> None:
    a, b = save(tmp_path / "a.png", smooth(30, 40, 3)), save(tmp_path / "b.png", smooth(31, 40, 3))
    with pytest.raises(InputError) as err:
        load_inputs([a, b], InputSpec((None, None, 3)))
    msg = str(err.value)
    assert f"{a} gives (30, 40, 3), {b} gives (31, 40, 3)" in msg
    assert "--size" not in msg and "load_input_groups" in msg  # no option that does not exist
    assert load_inputs([a, b], InputSpec((24, 24, 3))).x.shape == (2, 24, 24, 3)


def test_image_files_for_a_1d_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an image input"):
        load_inputs([save(tmp_path / "a.png", smooth(8, 8))], InputSpec((100, 2)))


def test_inputs_checks_lengths() -> None:
    with pytest.raises(ValueError, match="x has 2 samples but names/display/sources have 1/2/2"):
        Inputs(np.zeros((2, 1)), ("a",), (None, None), ("s", "t"), "")


def test_all_paths_are_checked_before_any_image_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convscope.data.load as load_module

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was read before the missing path was reported")

    monkeypatch.setattr(load_module, "read_picture", fail)
    monkeypatch.setattr(load_module, "read_stack", fail)
    ok = save(tmp_path / "ok.png", smooth(28, 28))
    with pytest.raises(InputError, match="no such file or folder"):
        load_inputs([ok, tmp_path / "missing.png"], GRAY28)


def test_importing_convscope_data_stays_light() -> None:
    import subprocess
    import sys

    heavy = "('keras', 'tensorflow', 'jax', 'torch')"
    code = f"import sys, convscope.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
