"""The window function equals pydicom's for every VOI LUT function; --window/--slice parsing and refusals."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_windowing

from convscope.data import Preprocess, ReadOptions, SliceSpec, Window, parse_slice, parse_window
from convscope.errors import OptionError


def pydicom_window(x: np.ndarray, level: float, width: float, function: str) -> np.ndarray:
    ds = pydicom.Dataset()
    ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME2", 16, 1
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = level, width, function
    out = apply_windowing(x.astype(np.float64), ds)
    return (out + 32768) / 65535  # pydicom's output range for signed 16-bit, back to [0, 1]


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("level", "width"), [(40, 400), (-600, 1500), (10, 1), (0, 2), (100.5, 37)])
def test_window_equals_pydicom(function: str, level: float, width: float) -> None:
    x = np.linspace(level - width, level + width, 1001)
    x = np.concatenate([x, [level - 0.5, level - 0.5 + (width - 1) / 2, -32768, 32767]])
    got = Window(level, width, function).apply(x)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, pydicom_window(x, level, width, function), atol=1e-9)


def test_narrow_windows_use_the_exact_linear_form() -> None:
    got = Window(0.5, 0.25).apply(np.array([0.375, 0.5, 0.625, 0.0, 1.0]))
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 0.0, 1.0])


def test_parse_window_and_slice() -> None:
    assert parse_window(" -600 , 1500 ") == Window(-600.0, 1500.0)
    assert parse_slice("2:40") == SliceSpec(2, 40)
    assert parse_slice("0") == SliceSpec(0) == parse_slice("0:all")
    assert parse_slice("1:-1") == SliceSpec(1, -1)
    for bad, message in [
        ("40", "malformed"),
        ("a,b", "not two numbers"),
        ("40,nan", "not finite"),
        ("40,0", "width of 0, which is not positive"),
        ("40,-1", "width of -1, which is not positive"),
    ]:
        with pytest.raises(OptionError, match=message):
            parse_window(bad)
    for bad, message in [("3", "axis 3 is not 0, 1 or 2"), ("x:1", "not AXIS or AXIS:INDEX"), ("1:2:3", "malformed")]:
        with pytest.raises(OptionError, match=message):
            parse_slice(bad)
    with pytest.raises(OptionError, match="window width -2 is not positive"):
        Window(0, -2)
    with pytest.raises(OptionError, match="max_voxels 0 must be an integer >= 1"):
        ReadOptions(max_voxels=0)
    with pytest.raises(OptionError, match="read 'x' must be a ReadOptions"):
        Preprocess(read="x")  # type: ignore[arg-type]


def test_describe_states_the_read_options() -> None:
    prep = Preprocess(read=ReadOptions.parse(window="40,400", slice="2:7"))
    assert prep.describe().endswith("0..255 -> [0, 1], window 40,400 (LINEAR), slice 2:7")
    assert Preprocess().describe() == "stretch (bilinear), channels as read (alpha dropped), 0..255 -> [0, 1]"
