"""Every command takes 16-bit images, TIFF stacks, DICOM files/series and NIfTI volumes; errors are one line."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

keras = pytest.importorskip("keras")

from convscope.present.cli import main  # noqa: E402

CT = Path(get_testdata_file("CT_small.dcm", download=False))
RTSTRUCT = Path(get_testdata_file("rtstruct.dcm", download=False))
NIB_DATA = Path(nib.__file__).parent / "tests" / "data"


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("convscope: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    inp = keras.Input((33, 41, 25, 1))
    keras.Model(inp, keras.layers.Conv3D(3, 3, activation="relu", name="c3")(inp)).save(d / "vol.keras")
    inp = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(d / "ct.keras")
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="s2")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inp, out).save(d / "small.keras")
    return {"vol": d / "vol.keras", "ct": d / "ct.keras", "small": d / "small.keras"}


def series(folder: Path, zs: list[float], sizes: list[int] | None = None) -> Path:
    folder.mkdir()
    base = pydicom.dcmread(CT)
    for i, z in enumerate(zs):
        ds = copy.deepcopy(base)
        n = (sizes or [128] * len(zs))[i]
        ds.Rows, ds.Columns = n, n
        ds.PixelData = (base.pixel_array[:n, :n] + 50 * i).astype(np.int16).tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.save_as(folder / f"slice{i}.dcm")
    return folder


def test_maps_of_a_nifti_volume_equal_keras(models, tmp_path: Path, capsys) -> None:
    nii = NIB_DATA / "anatomical.nii"
    code, _out, err = run(capsys, "maps", models["vol"], nii, "--out", tmp_path / "o", "--save-arrays")
    assert code == 0, err
    assert (tmp_path / "o" / "anatomical" / "c3.png").is_file()
    with np.load(tmp_path / "o" / "activations.npz") as npz:
        got = npz["c3"]
    data = np.asanyarray(nib.load(nii).dataobj).astype(np.float64)
    x = ((data - data.min()) / (data.max() - data.min())).astype(np.float32)[None, ..., None]
    want = keras.ops.convert_to_numpy(keras.models.load_model(models["vol"])(x))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_maps_of_a_dicom_series_with_window_and_slice(models, tmp_path: Path, capsys) -> None:
    folder = series(tmp_path / "series", [20.0, 0.0, 10.0])
    out = tmp_path / "o"
    code, _stdout, err = run(capsys, "maps", models["ct"], folder, "--window", "40,400", "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["series[0]", "series[1]", "series[2]"]
    code, _stdout, err = run(capsys, "maps", models["ct"], folder, "--slice", "0:-1", "--save-arrays", "--out", tmp_path / "one")
    assert code == 0, err
    with np.load(tmp_path / "one" / "activations.npz") as npz:
        assert npz["c2"].shape[0] == 1  # one slice: the last by position (z = 20, slice0.dcm)
    hus = [apply_modality_lut(d.pixel_array, d) for d in (pydicom.dcmread(p) for p in sorted(folder.iterdir()))]
    lo, hi = min(h.min() for h in hus), max(h.max() for h in hus)  # no window: the series' min..max
    x = ((hus[0] - lo) / (hi - lo)).astype(np.float32)[None, :, :, None]
    sub = keras.models.load_model(models["ct"])
    want = keras.ops.convert_to_numpy(keras.Model(sub.inputs[0], sub.get_layer("c2").output)(x))
    with np.load(tmp_path / "one" / "activations.npz") as npz:
        np.testing.assert_allclose(npz["c2"], want, atol=1e-5, rtol=0)


def test_cam_and_report_take_dicom_and_tiff_stacks(models, tmp_path: Path, capsys) -> None:
    stack = tmp_path / "pages.tif"
    for i in range(3):
        tifffile.imwrite(stack, np.full((16, 16), 20000 * i, np.uint16), append=i > 0, photometric="minisblack")
    code, _out, err = run(capsys, "cam", models["small"], stack, "--out", tmp_path / "cam")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "cam").iterdir() if p.is_dir()) == ["pages[0]", "pages[1]", "pages[2]"]
    shutil.copy(CT, tmp_path / "ct.dcm")
    code, _out, err = run(capsys, "report", models["ct"], tmp_path / "ct.dcm", "--window", "40,400", "-o", tmp_path / "r.html")
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "window 40,400 (LINEAR)" in page and "ct.dcm" in page


def test_scan_lists_stacks_dicom_and_nifti(models, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        tifffile.imwrite(data / "a.tif", np.full((16, 16), 9000 * i, np.uint16), append=i > 0, photometric="minisblack")
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 5)).astype(np.float32), np.eye(4)), data / "b.nii.gz")
    (data / "c.dcm").write_text("not dicom")
    code, _out, err = run(capsys, "scan", models["small"], data, "--out", tmp_path / "scan", "--no-crops")
    assert code == 0, err
    manifest = json.loads((tmp_path / "scan" / "manifest.json").read_text())
    assert manifest["dataset"]["size"] == 4 + 5  # 4 pages + 5 slices along k
    assert [s["file"] for s in manifest["dataset"]["skipped"]] == ["c.dcm"]
    code, _out, err = run(capsys, "scan", models["small"], data, "--slice", "2:1", "--out", tmp_path / "scan1", "--no-crops")
    assert code == 0, err
    assert json.loads((tmp_path / "scan1" / "manifest.json").read_text())["dataset"]["size"] == 1 + 1
    code, _out, err = run(capsys, "scan", models["small"], data, "--strict", "--out", tmp_path / "scan2")
    assert_one_line_error(code, err, "c.dcm", "is not a DICOM file", "--strict")


def test_dicom_without_pixel_data_is_one_line(models, tmp_path: Path, capsys) -> None:
    code, _out, err = run(capsys, "maps", models["ct"], RTSTRUCT, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "rtstruct.dcm is a DICOM file without pixel data (RTSTRUCT)")
    assert not (tmp_path / "o").exists()


def test_series_with_mixed_sizes_is_one_line(models, tmp_path: Path, capsys) -> None:
    folder = series(tmp_path / "mixed", [0.0, 1.0], sizes=[128, 64])
    code, _out, err = run(capsys, "cam", models["ct"], folder, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "DICOM series", "slice1.dcm is 64x64", "slice0.dcm is 128x128", "one size")


@pytest.mark.parametrize("command", ["maps", "cam", "report", "scan"])
@pytest.mark.parametrize("width", ["0", "-5"])
def test_window_with_non_positive_width_is_one_line(models, tmp_path: Path, capsys, command: str, width: str) -> None:
    out = ["-o", tmp_path / "r.html"] if command == "report" else ["--out", tmp_path / "o"]
    code, _stdout, err = run(capsys, command, "no-such-model.keras", CT, "--window", f"40,{width}", *out)
    assert_one_line_error(code, err, f"window '40,{width}' has a width of", "not positive", "LEVEL,WIDTH")


def test_bad_slice_and_volume_errors_are_one_line(models, tmp_path: Path, capsys) -> None:
    code, _out, err = run(capsys, "maps", models["ct"], CT, "--slice", "3:1", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "slice axis 3 is not 0, 1 or 2")
    nii = NIB_DATA / "anatomical.nii"
    code, _out, err = run(capsys, "maps", models["vol"], nii, "--slice", "2:3", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "--slice 2:3 picks 2D slices", "takes whole volumes")
    code, _out, err = run(capsys, "maps", models["vol"], NIB_DATA / "example4d.nii.gz", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "with 2 values per voxel", "give a 3D volume")


def test_serve_accepts_window_and_slice(capsys) -> None:
    from typer.main import get_command

    from convscope.present.cli import app

    for name in ("maps", "cam", "scan", "serve", "report"):
        options = {o for p in get_command(app).commands[name].params for o in p.opts}
        assert {"--window", "--slice"} <= options, name


def test_scan_and_report_of_volumes_for_a_conv3d_model(models, tmp_path: Path, capsys) -> None:
    data = tmp_path / "vols"
    data.mkdir()
    rng = np.random.default_rng(1)
    for name in ("p1", "p2"):
        nib.save(nib.Nifti1Image(rng.random((33, 41, 25)).astype(np.float32), np.eye(4)), data / f"{name}.nii.gz")
    tifffile.imwrite(data / "flat.tif", np.zeros((8, 8), np.uint16))  # one 8x8 page: a 2D image, not a volume
    code, _out, err = run(capsys, "scan", models["vol"], data, "--out", tmp_path / "scan")
    assert code == 0, err
    manifest = json.loads((tmp_path / "scan" / "manifest.json").read_text())
    assert manifest["dataset"]["size"] == 2
    assert (tmp_path / "scan" / "layers").is_dir()
    code, _out, err = run(capsys, "report", models["vol"], data / "p1.nii.gz", "-o", tmp_path / "r.html", "--no-cam")
    assert code == 0, err
    assert "p1" in (tmp_path / "r.html").read_text()
    skipped = manifest["dataset"]["skipped"]
    assert skipped == [{"file": "flat.tif", "reason": "is a single 2D image; the model takes volumes (D, H, W, C)"}]
    code, _out, err = run(capsys, "maps", models["vol"], data / "flat.tif", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "flat.tif is a single 2D image (TIFF 8x8)", "takes volumes")
