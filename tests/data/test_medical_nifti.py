"""NIfTI via nibabel: volumes for Conv3D models (equal to Keras on the same array), slices for 2D models."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from convscope.data import InputSpec, Preprocess, load_inputs
from convscope.data.medical import read_nifti
from convscope.data.readopts import ReadOptions, SliceSpec
from convscope.data.window import Window
from convscope.errors import InputError

keras = pytest.importorskip("keras")
NIB_DATA = Path(nib.__file__).parent / "tests" / "data"


def conv3d(shape: tuple[int, ...]) -> keras.Model:
    inp = keras.Input(shape)
    x = keras.layers.Conv3D(3, 3, padding="same", activation="relu", name="c1")(inp)
    out = keras.layers.Conv3D(2, 2, name="c2")(x)
    return keras.Model(inp, out)


def minmax(data: np.ndarray) -> np.ndarray:
    d = data.astype(np.float64)
    return (d - d.min()) / (d.max() - d.min())


def test_shipped_volume_maps_equal_keras_on_the_same_array() -> None:
    import convscope

    path = NIB_DATA / "anatomical.nii"
    data = np.asanyarray(nib.load(path).dataobj)
    assert data.shape == (33, 41, 25)
    model = conv3d((33, 41, 25, 1))
    got = convscope.activations(model, path, ["c1", "c2"])
    x = minmax(data).astype(np.float32)[None, ..., None]  # nibabel's array, (i, j, k) as stored
    for layer in ("c1", "c2"):
        sub = keras.Model(model.inputs[0], model.get_layer(layer).output)
        want = keras.ops.convert_to_numpy(sub(x))
        np.testing.assert_allclose(got[layer], want, atol=1e-5, rtol=0)


def test_written_volume_with_scaling_and_window_equals_keras(tmp_path: Path) -> None:
    import convscope

    rng = np.random.default_rng(0)
    stored = rng.integers(-500, 1500, (6, 7, 5), dtype=np.int16)
    img = nib.Nifti1Image(stored, np.eye(4))
    img.header.set_slope_inter(2.0, -1000.0)  # physical = 2 * stored - 1000
    path = tmp_path / "ct.nii.gz"
    nib.save(img, path)
    model = conv3d((6, 7, 5, 1))
    window = Window(40.0, 400.0)
    prep = Preprocess(value_range=(-1.0, 1.0), read=ReadOptions(window=window))
    got = convscope.activations(model, path, ["c2"], preprocess=prep)["c2"]
    physical = 2.0 * stored.astype(np.float64) - 1000.0
    x = (2.0 * window.apply(physical) - 1.0).astype(np.float32)[None, ..., None]
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)), atol=1e-5, rtol=0)


def test_slices_as_a_batch_or_one_slice(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    path = tmp_path / "v.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    spec = InputSpec((4, 5, 1))
    every = load_inputs([path], spec)  # default: along k (axis 2)
    assert every.names == ("v[0]", "v[1]", "v[2]")
    np.testing.assert_allclose(every.x[..., 0], np.moveaxis(minmax(data), 2, 0), atol=1e-6)
    one = load_inputs([path], InputSpec((5, 3, 1)), Preprocess(read=ReadOptions(slice=SliceSpec(0, 2))))
    np.testing.assert_allclose(one.x[0, :, :, 0], minmax(data)[2], atol=1e-6)  # span of the whole volume
    assert one.names == ("v[0_2]",)
    along1 = load_inputs([path], InputSpec((4, 3, 1)), Preprocess(read=ReadOptions(slice=SliceSpec(1))))
    assert len(along1) == 5


def test_cal_min_max_is_the_span(tmp_path: Path) -> None:
    data = np.array([[[0.0, 50.0], [100.0, 200.0]]], np.float32)  # (1, 2, 2)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header["cal_min"], img.header["cal_max"] = 0.0, 100.0
    nib.save(img, tmp_path / "cal.nii")
    stack = read_nifti(tmp_path / "cal.nii", max_pixels=10**6)
    assert stack.span == (0.0, 100.0)
    got = load_inputs([tmp_path / "cal.nii"], InputSpec((1, 2, 2, 1)))
    np.testing.assert_allclose(got.x[0, 0, :, :, 0], [[0.0, 0.5], [1.0, 1.0]], atol=1e-7)


def test_4d_nifti_a_model_cannot_take_is_refused() -> None:
    path = NIB_DATA / "example4d.nii.gz"
    assert nib.load(path).shape == (128, 96, 24, 2)
    for spec in (InputSpec((128, 96, 24, 1)), InputSpec((128, 96, 1))):
        with pytest.raises(InputError) as err:
            load_inputs([path], spec)
        msg = str(err.value)
        assert "example4d.nii.gz is a NIfTI of shape (128, 96, 24, 2) with 2 values per voxel" in msg
        assert "give a 3D volume, or a model with 2 input channels" in msg
    vol = load_inputs([path], InputSpec((128, 96, 24, 2)))  # 2 channels: the model takes it
    assert vol.x.shape == (1, 128, 96, 24, 2)


def test_volume_for_a_1d_model_and_5d_files_are_refused(tmp_path: Path) -> None:
    path = NIB_DATA / "standard.nii.gz"
    with pytest.raises(InputError, match=r"model input .* has shape \(7, 1\); a NIfTI feeds 2D image inputs"):
        load_inputs([path], InputSpec((7, 1)))
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2, 2), np.float32), np.eye(4)), tmp_path / "five.nii")
    with pytest.raises(InputError, match=r"five\.nii is a 5D NIfTI of shape \(2, 2, 2, 2, 2\)"):
        load_inputs([tmp_path / "five.nii"], InputSpec((2, 2, 2, 1)))


def test_not_a_nifti_and_the_size_cap(tmp_path: Path) -> None:
    (tmp_path / "bad.nii").write_bytes(b"\0" * 400)
    with pytest.raises(InputError, match=r"bad\.nii is not a readable NIfTI file"):
        load_inputs([tmp_path / "bad.nii"], InputSpec((2, 2, 1)))
    prep = Preprocess(read=ReadOptions(max_voxels=1000))
    with pytest.raises(InputError, match=r"declares shape \(33, 41, 25\) = 33,825 values, over the limit of 1,000"):
        load_inputs([NIB_DATA / "anatomical.nii"], InputSpec((33, 41, 1)), prep)


def test_without_nibabel_the_error_names_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nibabel", None)  # import nibabel -> ImportError
    with pytest.raises(InputError, match=r"reading NIfTI volumes needs the nibabel package: pip install 'convscope\[medical\]'"):
        load_inputs([NIB_DATA / "anatomical.nii"], InputSpec((33, 41, 1)))


def test_importing_convscope_data_does_not_import_the_medical_readers() -> None:
    import subprocess
    import sys

    code = "import sys, convscope.data, convscope.data.medical; print(sorted(m for m in ('tifffile', 'pydicom', 'nibabel') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
