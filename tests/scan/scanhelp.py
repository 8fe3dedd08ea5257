"""Helpers shared by the scan tests: the float64 numpy reference of every scan statistic."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from convscope.scan.reduce import Bounds

RTOL_MEAN = 1e-6  # relative to max(1, |mean|)
RTOL_STD = 2e-5
ATOL_CORR = 5e-6  # float32 Gram products (reduce.GRAM_FLOAT64 = False): a few 1e-6 of r, see reduce.py


def pixel_corr(x: np.ndarray) -> np.ndarray:
    """float64 Pearson correlation of the channels of ``x (N, *spatial, C)`` over all N * positions values,
    computed on the whole array at once (NaN for a constant channel)."""
    flat = x.astype(np.float64).reshape(-1, x.shape[-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(flat.T) if len(flat) > 1 else np.full((x.shape[-1],) * 2, np.nan)
    const = flat.std(axis=0) == 0
    corr[const, :] = np.nan
    corr[:, const] = np.nan
    return corr


def reference(x: np.ndarray, k: int, bounds: Bounds | None = None) -> dict[str, np.ndarray]:
    """float64 single-pass numpy reference of every statistic (x: (N, *spatial, C))."""
    n, c = x.shape[0], x.shape[-1]
    d = x.astype(np.float64).reshape(n, -1, c)
    smax = d.max(axis=1)
    index = np.broadcast_to(np.arange(n)[:, None], smax.shape)
    order = np.lexsort((index.T, -smax.T), axis=-1)[:, :k]  # (C, k): value desc, index asc
    flat_pos = np.argmax(d, axis=1)  # (n, C), first max
    out = {
        "mean": d.mean(axis=(0, 1)), "std": d.std(axis=(0, 1)), "max": d.max(axis=(0, 1)),
        "frac_positive": (d > 0).mean(axis=(0, 1)), "mean_spatial_max": smax.mean(axis=0),
        "corr": pixel_corr(x), "top_index": order,
        "top_value": np.take_along_axis(smax.T, order, axis=1),
        "top_pos": np.take_along_axis(flat_pos.T, order, axis=1),
    }
    if bounds is not None:
        lo, hi = bounds.thresholds
        out["frac_saturated"] = ((d <= lo) | (d >= hi)).mean(axis=(0, 1))
    return out


def assert_matches(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    scale = np.maximum(1.0, np.abs(ref["mean"]))
    np.testing.assert_array_less(np.abs(got["mean"] - ref["mean"]) / scale, RTOL_MEAN)
    np.testing.assert_allclose(got["std"], ref["std"], rtol=RTOL_STD, atol=1e-7)
    np.testing.assert_array_equal(got["max"], ref["max"])
    np.testing.assert_array_equal(got["frac_positive"], ref["frac_positive"])
    np.testing.assert_allclose(got["mean_spatial_max"], ref["mean_spatial_max"], rtol=1e-12)
    both = np.isfinite(ref["corr"])
    np.testing.assert_array_equal(np.isfinite(got["corr"]), both)
    np.testing.assert_allclose(got["corr"][both], ref["corr"][both], atol=ATOL_CORR)
    for name in ("top_index", "top_value", "top_pos"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    if "frac_saturated" in ref:
        np.testing.assert_array_equal(got["frac_saturated"], ref["frac_saturated"])


#: Files whose "created" field is a timestamp (every other byte of a results folder is compared).
TIMESTAMPED = ("manifest.json", ".convscope.json")


def result_tree(root: Path) -> dict[str, object]:
    """Every file of a results folder, for byte-for-byte comparison of two scans: raw bytes, except the
    members of each ``.npz`` (their raw ``.npy`` bytes: the zip entry's own date is the time of writing)
    and the JSON files whose ``created`` field is a timestamp (compared without that one field)."""
    out: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                out[rel] = {name: zf.read(name) for name in zf.namelist()}
        elif path.name in TIMESTAMPED:
            data = json.loads(path.read_text())
            data.pop("created", None)
            out[rel] = data
        else:
            out[rel] = path.read_bytes()
    return out


def assert_same_tree(got: Path, want: Path) -> None:
    a, b = result_tree(got), result_tree(want)
    assert sorted(a) == sorted(b), set(a) ^ set(b)
    differ = [name for name in b if a[name] != b[name]]
    assert not differ, f"files differ: {differ[:10]}"
    assert len(b) > 10  # a real results folder (stats, predictions, crops) was compared


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m convscope`` subprocess running this source tree."""
    import os

    import convscope

    src = str(Path(convscope.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", **extra)
    return env


def kill_when(args: list[str], checkpoint: Path, fraction: float, env: dict[str, str], log: Path,
              on_start=None) -> tuple[int, int]:
    """Run ``python -m convscope ARGS`` and SIGKILL it once its checkpoint shows ``fraction`` of the rows
    done (polled); returns ``(rows done at the kill, dataset rows)``. Fails if the scan ended first."""
    import signal
    import subprocess
    import sys
    import time

    from convscope.scan.checkpoint import read_progress

    with log.open("ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "convscope", *map(str, args)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 600  # a safety net, not a timing assertion
            progress = None
            while proc.poll() is None and time.monotonic() < deadline:
                progress = read_progress(checkpoint)
                if progress is not None and progress[0] >= fraction * progress[1]:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None and progress is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the scan was not killed (exit {proc.returncode}): {log.read_text()[-2000:]}"
    assert progress is not None
    return progress
