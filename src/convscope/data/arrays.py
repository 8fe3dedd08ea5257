"""Arrays as model input: ``.npy``/``.npz`` files and numpy arrays, taken as already preprocessed."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from convscope.data.spec import InputSpec, format_shape
from convscope.errors import InputError

logger = logging.getLogger(__name__)

ARRAY_EXTENSIONS: tuple[str, ...] = (".npy", ".npz")
NPZ_KEYS: tuple[str, ...] = ("x", "images", "inputs")
_LOAD_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError)


def _read_npz(path: Path, npz: np.lib.npyio.NpzFile) -> tuple[np.ndarray, str]:
    keys = list(npz.files)
    if len(keys) == 1:
        key = keys[0]
    else:
        found = [k for k in NPZ_KEYS if k in keys]
        if not found:
            raise InputError(
                f"{path} holds arrays {keys}; convscope reads an .npz with a single array or one named "
                f"{', '.join(NPZ_KEYS)} (first found wins)"
            )
        key = found[0]
    return npz[key], key


def read_array_file(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Read a ``.npy`` or ``.npz`` file without unpickling anything.

    A ``.npy`` is memory-mapped (read lazily). An ``.npz`` must hold a single array, or one named
    ``x``, ``images`` or ``inputs`` (checked in that order).

    Args:
        path: The file.

    Returns:
        ``(array, key)``: the array and its ``.npz`` key (``None`` for ``.npy``).

    Raises:
        InputError: If the file is missing, corrupt, holds Python objects, or an ``.npz`` has no usable key.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file or folder: {path}")
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return _read_npz(path, loaded)
        return loaded, None
    except InputError:
        raise
    except _LOAD_ERRORS as err:
        raise InputError(
            f"{path} is not a readable .npy/.npz array file (pickled objects are refused): {err}"
        ) from None


def _matches(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or e == s for s, e in zip(shape, expected, strict=True)
    )


def _as_batch(arr: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, bool] | None:
    """View ``arr`` as ``(N, *spec.shape)``; also say whether it was a single sample.

    Tried in order: one sample, a batch, and (1-channel inputs only) each without the channel axis.
    """
    shape, expected = arr.shape, spec.shape
    if _matches(shape, expected):
        return arr[None], True
    if arr.ndim == len(expected) + 1 and _matches(shape[1:], expected):
        return arr, False
    if spec.channels != 1:
        return None
    last = spec.data_format == "channels_last"
    bare = expected[:-1] if last else expected[1:]
    if _matches(shape, bare):
        return (arr[None, ..., None] if last else arr[None, None]), True
    if arr.ndim == len(bare) + 1 and _matches(shape[1:], bare):
        return (arr[..., None] if last else arr[:, None]), False
    return None


def _shape_error(arr: np.ndarray, spec: InputSpec, label: str) -> InputError:
    expected = spec.shape
    wanted = f"{format_shape(expected, 'N')} or {format_shape(expected)}"
    sample = arr.shape[1:] if arr.ndim == len(expected) + 1 else arr.shape
    if len(sample) == len(expected):
        c_axis = -1 if spec.data_format == "channels_last" else 0
        got_c = sample[c_axis]
        others = [d for i, d in enumerate(sample) if i != c_axis % len(sample)]
        want = [d for i, d in enumerate(expected) if i != c_axis % len(expected)]
        if _matches(tuple(others), tuple(want)):
            return InputError(
                f"array {label} has {got_c} channel(s) (shape {arr.shape}) but model input {spec.name!r} "
                f"expects {spec.channels}: {wanted}"
            )
        rolled = expected[1:] + expected[:1] if c_axis == 0 else expected[-1:] + expected[:-1]
        if _matches(sample, rolled):
            other = "channels_first" if c_axis == -1 else "channels_last"
            return InputError(
                f"array {label} has shape {arr.shape}, which looks {other}; model input {spec.name!r} is "
                f"{spec.data_format} and expects {wanted}: move the channel axis"
            )
    hint = " (a missing channel axis of size 1 is also accepted)" if spec.channels == 1 else ""
    return InputError(
        f"array {label} has shape {arr.shape}; model input {spec.name!r} expects {wanted}{hint}"
    )


def coerce_array(arr: np.ndarray, spec: InputSpec, *, label: str = "array") -> np.ndarray:
    """Take an array as already-preprocessed model input and give it a batch axis.

    Accepted: one sample ``spec.shape``, a batch ``(N, *spec.shape)``, and, for a 1-channel input,
    either of those without the channel axis (e.g. ``(28, 28)`` or ``(N, 28, 28)`` for ``(28, 28, 1)``).
    Values are cast to float32 and never scaled (uint8 stays 0..255; noted in the log). NaN and Inf are
    kept (the renderer shows them) and counted in a warning.

    Args:
        arr: Numbers (bool, int, uint or float).
        spec: The model input.
        label: How to name the array in messages and logs.

    Returns:
        A new float32 array ``(N, *spec.shape)`` (free sizes as in ``arr``), N >= 1.

    Raises:
        InputError: On another shape (the message names it and the expected shapes), a different channel
            count, an empty batch, or a non-numeric dtype.
    """
    return _coerce(arr, spec, label)[0]


def _coerce(arr: np.ndarray, spec: InputSpec, label: str) -> tuple[np.ndarray, bool]:
    """:func:`coerce_array`, also telling whether ``arr`` was a single sample (True) or a batch."""
    arr = np.asanyarray(arr)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"array {label} has dtype {arr.dtype}; expected numbers (float, int, uint or bool)")
    found = _as_batch(arr, spec)
    if found is None:
        raise _shape_error(arr, spec, label)
    batch, single = found
    if batch.shape[0] == 0:
        raise InputError(f"array {label} has shape {arr.shape}: an empty batch (0 samples)")
    if arr.dtype == np.uint8:
        logger.info("%s: uint8 array taken as-is, not scaled (values stay 0..255)", label)
    x = np.asarray(batch).astype(np.float32)
    nan, inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    if nan or inf:
        logger.warning(
            "%s: %d NaN and %d Inf value(s) kept as they are (the renderer shows them)", label, nan, inf
        )
    return x, single


def array_display(sample: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """A picture of one array sample, when it is image-like (2D spatial with 1 or 3 channels).

    Args:
        sample: One sample in ``spec``'s layout, e.g. ``(H, W, C)`` or ``(C, H, W)``.
        spec: The model input.

    Returns:
        uint8 RGB ``(H, W, 3)``, min-max scaled over the sample's finite values (NaN/Inf and constant
        samples show as 0), or ``None`` when the sample is not image-like.
    """
    if spec.rank != 2 or sample.ndim != 3:
        return None
    hwc = sample if spec.data_format == "channels_last" else sample.transpose(1, 2, 0)
    if hwc.shape[2] not in (1, 3):
        return None
    values = hwc.astype(np.float64)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, np.float64)
    if finite.any():
        lo, hi = float(values[finite].min()), float(values[finite].max())
        if hi > lo:
            out = np.where(finite, (values - lo) / (hi - lo) * 255.0, 0.0)
    rgb = np.round(out).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb)
