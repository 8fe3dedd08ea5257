"""DICOM: rescale and windowing equal pydicom's own LUT functions; multi-frame files; series folders."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from convscope.data import InputSpec, Preprocess, load_inputs
from convscope.data.dicom import read_dicom, read_dicom_series
from convscope.data.readopts import ReadOptions, SliceSpec
from convscope.data.window import Window
from convscope.errors import InputError, OptionError


def sample(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom ships {name}"
    return Path(path)


def voi_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """pydicom's output range of apply_voi_lut's windowing (PS3.3 C.11.2.1.2), through the rescale."""
    bits = int(ds.BitsStored)
    lo, hi = (0, 2**bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return lo * slope + intercept, hi * slope + intercept


def pydicom_picture(ds: pydicom.Dataset) -> np.ndarray:
    """pydicom's modality LUT then VOI LUT, scaled from its output range to [0, 1]."""
    voi = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    lo, hi = voi_range(ds)
    return (voi - lo) / (hi - lo)


def test_ct_rescale_equals_pydicom_modality_lut() -> None:
    path = sample("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    stack = read_dicom(path, max_pixels=10**8)
    np.testing.assert_array_equal(stack.values[0, :, :, 0], apply_modality_lut(ds.pixel_array, ds))
    assert stack.values.min() < 0  # Hounsfield units, not stored values
    hu = apply_modality_lut(ds.pixel_array, ds)
    assert stack.span == (hu.min(), hu.max())  # no window in the file: its min..max, as viewers show it
    assert stack.window is None


def test_explicit_window_equals_pydicom_voi_lut(tmp_path: Path) -> None:
    path = sample("CT_small.dcm")
    ds = pydicom.dcmread(path)
    ds.WindowCenter, ds.WindowWidth = 40, 400
    prep = Preprocess(read=ReadOptions(window=Window(40, 400)))
    got = load_inputs([path], InputSpec((128, 128, 1)), prep)
    want = pydicom_picture(ds)
    assert 0 < (want == 0).mean() < 1 and 0 < (want == 1).mean() < 1  # the window clips at both ends
    np.testing.assert_allclose(got.x[0, :, :, 0], want, atol=1e-6)
    ranged = load_inputs([path], InputSpec((128, 128, 1)), Preprocess(value_range=(-1, 1), read=prep.read))
    np.testing.assert_allclose(ranged.x[0, :, :, 0], 2 * want - 1, atol=2e-6)  # --range scales the window


def test_the_files_own_window_is_used_by_default() -> None:
    path = sample("MR_small.dcm")
    ds = pydicom.dcmread(path)
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (600.0, 1600.0)
    got = load_inputs([path], InputSpec((64, 64, 1)))
    np.testing.assert_allclose(got.x[0, :, :, 0], pydicom_picture(ds), atol=1e-6)
    assert "window 600,1600 (LINEAR)" in got.preprocess


def test_sigmoid_and_monochrome1_follow_pydicom(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    ds.VOILUTFunction = "SIGMOID"
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "sigmoid.dcm"
    ds.save_as(path)
    got = load_inputs([path], InputSpec((64, 64, 1)))
    np.testing.assert_allclose(got.x[0, :, :, 0], 1.0 - pydicom_picture(ds), atol=1e-6)  # inverted after


def test_multiframe_file_is_a_batch_or_a_volume() -> None:
    path = sample("rtdose.dcm")  # 15 frames of 10x10, 32-bit
    ds = pydicom.dcmread(path)
    frames = apply_modality_lut(ds.pixel_array, ds)
    got = load_inputs([path], InputSpec((10, 10, 1)))
    assert len(got) == 15 and got.names[:2] == ("rtdose[0]", "rtdose[1]")
    lo, hi = frames.min(), frames.max()  # no window: the file's min..max over every frame
    assert hi > lo
    np.testing.assert_allclose(got.x[:, :, :, 0], (frames - lo) / (hi - lo), atol=1e-6)
    vol = load_inputs([path], InputSpec((15, 10, 10, 1)))
    np.testing.assert_allclose(vol.x[0, ..., 0], got.x[..., 0], atol=1e-7)
    picked = load_inputs([path], InputSpec((15, 10, 1)), Preprocess(read=ReadOptions(slice=SliceSpec(1, 4))))
    np.testing.assert_allclose(picked.x[0, :, :, 0], got.x[:, 4, :, 0], atol=1e-7)  # rows along frames
    assert picked.names == ("rtdose[1_4]",) and picked.sources[0].endswith("rtdose.dcm[1:4]")


def write_series(folder: Path, zs: list[float], sizes: list[int] | None = None) -> list[np.ndarray]:
    """CT_small copies at positions ``zs`` (InstanceNumber in the opposite order, names shuffled)."""
    folder.mkdir()
    base = pydicom.dcmread(sample("CT_small.dcm"))
    pixels = []
    for i, z in enumerate(zs):
        ds = copy.deepcopy(base)
        n = (sizes or [128] * len(zs))[i]
        arr = (base.pixel_array[:n, :n].astype(np.int32) + 100 * i).astype(np.int16)
        ds.Rows, ds.Columns = n, n
        ds.PixelData = arr.tobytes()
        ds.ImagePositionPatient = [-158.1, -179.0, z]
        ds.InstanceNumber = len(zs) - i
        ds.RescaleIntercept = -1024 + i  # each slice its own rescale
        ds.save_as(folder / f"im{(i * 7) % len(zs)}.dcm")
        pixels.append(arr.astype(np.float64) + (-1024 + i))
    return pixels


def test_series_folder_is_ordered_by_position(tmp_path: Path) -> None:
    zs = [30.0, -10.0, 10.0, 0.0]
    physical = write_series(tmp_path / "series", zs)
    stack = read_dicom_series(tmp_path / "series", max_pixels=10**8)
    order = np.argsort(zs)
    assert stack.shape == (4, 128, 128, 1)
    for k, i in enumerate(order):
        np.testing.assert_array_equal(stack.values[k, :, :, 0], physical[i])
    assert "4 slices ordered by ImagePositionPatient" in stack.notes
    got = load_inputs([tmp_path / "series"], InputSpec((4, 128, 128, 1)), Preprocess(read=ReadOptions(window=Window(40, 400))))
    assert got.names == ("series",) and got.x.shape == (1, 4, 128, 128, 1)


def test_series_without_positions_is_ordered_by_instance_number(tmp_path: Path) -> None:
    physical = write_series(tmp_path / "s", [0.0, 1.0, 2.0])
    for p in (tmp_path / "s").iterdir():
        ds = pydicom.dcmread(p)
        del ds.ImagePositionPatient
        ds.save_as(p)
    stack = read_dicom_series(tmp_path / "s", max_pixels=10**8)
    for k, i in enumerate([2, 1, 0]):  # InstanceNumber runs backwards
        np.testing.assert_array_equal(stack.values[k, :, :, 0], physical[i])


def test_series_with_mixed_sizes_is_refused(tmp_path: Path) -> None:
    write_series(tmp_path / "mixed", [0.0, 1.0, 2.0], sizes=[128, 64, 128])
    with pytest.raises(InputError, match=r"DICOM series .*mixed: im\d\.dcm is 64x64 .* but im\d\.dcm is 128x128.*one size"):
        load_inputs([tmp_path / "mixed"], InputSpec((128, 128, 1)))


def test_dicom_without_pixel_data_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"rtstruct\.dcm is a DICOM file without pixel data \(RTSTRUCT\)"):
        load_inputs([sample("rtstruct.dcm")], InputSpec((8, 8, 1)))
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "empty.dcm")
    with pytest.raises(InputError, match=r"empty\.dcm is a DICOM file without pixel data \(CT\)"):
        load_inputs([tmp_path / "empty.dcm"], InputSpec((8, 8, 1)))


def test_declared_size_is_checked_before_pixels_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.NumberOfFrames = 100000  # the header claims far more than the file holds
    ds.save_as(tmp_path / "liar.dcm")
    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(lambda self: pytest.fail("decoded")))
    with pytest.raises(InputError, match=r"declares shape \(100000, 128, 128, 1\) = 1,638,400,000 values"):
        load_inputs([tmp_path / "liar.dcm"], InputSpec((128, 128, 1)))


def test_not_dicom_and_bad_windows(tmp_path: Path) -> None:
    (tmp_path / "notes.dcm").write_text("not a dicom file")
    with pytest.raises(InputError, match=r"notes\.dcm is not a DICOM file"):
        load_inputs([tmp_path / "notes.dcm"], InputSpec((8, 8, 1)))
    for text in ("40,0", "40,-5"):
        with pytest.raises(OptionError, match=rf"window '{text}' has a width of .*not positive.*LEVEL,WIDTH"):
            ReadOptions.parse(window=text)
    with pytest.raises(OptionError, match=r"window 'abc' is malformed"):
        ReadOptions.parse(window="abc")


def test_without_pydicom_the_error_names_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom -> ImportError
    with pytest.raises(InputError, match=r"reading DICOM files needs the pydicom package: pip install 'convscope\[medical\]'"):
        load_inputs([sample("CT_small.dcm")], InputSpec((128, 128, 1)))
