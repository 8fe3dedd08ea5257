"""Hostile and mislabelled model files (issue 18, items 5 and 7): zip bombs are refused from their
declared sizes before anything inflates; a file is loaded as what its bytes say, whatever its name."""

from __future__ import annotations

import shutil
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
L = keras.layers

from convscope.errors import ModelLoadError  # noqa: E402
from convscope.models import archive  # noqa: E402
from convscope.models.load import load_model  # noqa: E402

MiB = 1 << 20


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[keras.Model, Path]:
    d = tmp_path_factory.mktemp("hostile")
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 3, name="c"), L.Flatten(), L.Dense(2)], name="small")
    model.save(d / "m.keras")
    model.save(d / "m.h5")
    return model, d


def _bomb(path: Path, member: str, size: int, others: dict[str, bytes] | None = None) -> Path:
    """A zip whose ``member`` inflates to ``size`` bytes of spaces, written in streamed chunks."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in (others or {}).items():
            zf.writestr(name, data)
        with zf.open(member, "w", force_zip64=True) as fh:
            chunk = b" " * (4 * MiB)
            for _ in range(size // len(chunk)):
                fh.write(chunk)
    return path


def _refused_cheaply(path: Path, *needles: str) -> str:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelLoadError) as err:
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert peak < 16 * MiB, f"refusing took {peak / MiB:.0f} MiB of Python memory"
    assert time.perf_counter() - start < 60  # generous: the real bound is that nothing inflated (peak)
    return message


def test_config_bomb_is_refused_from_its_declared_size(tmp_path):
    path = _bomb(tmp_path / "bomb.keras", "config.json", 128 * MiB, {"metadata.json": b"{}"})
    assert path.stat().st_size < 2 * MiB
    _refused_cheaply(path, "'config.json'", "declares 128.0 MiB", "cap for config.json is 64.0 MiB")


def test_weights_bomb_is_refused_by_its_ratio(tmp_path, small):
    with zipfile.ZipFile(small[1] / "m.keras") as zf:
        others = {name: zf.read(name) for name in zf.namelist() if name != "model.weights.h5"}
    path = _bomb(tmp_path / "wbomb.keras", "model.weights.h5", 96 * MiB, others)
    _refused_cheaply(path, "'model.weights.h5'", "declares 96.0 MiB", "cap is 100x", "decompression bomb")


def test_total_declared_size_is_capped(tmp_path, small, monkeypatch):
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1024)
    with pytest.raises(ModelLoadError, match=r"declared total to .*the cap for a whole archive is 1.0 KiB"):
        load_model(small[1] / "m.keras")


def test_member_past_the_end_of_the_file_is_corrupt(tmp_path, small):
    data = (small[1] / "m.keras").read_bytes()
    path = tmp_path / "cut.keras"
    # keep the central directory (at the end) but drop the middle: members now point past the end
    path.write_bytes(data[:100] + data[-400:])
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(path)


def test_check_does_not_call_testzip(small, monkeypatch):
    def boom(self):  # pragma: no cover - must not run
        raise AssertionError("testzip inflates every member at once")

    monkeypatch.setattr(zipfile.ZipFile, "testzip", boom)
    assert load_model(small[1] / "m.keras").name == "small"


def test_real_models_pass_the_caps(small):
    with zipfile.ZipFile(small[1] / "m.keras") as zf:
        archive.check_sizes(small[1] / "m.keras", zf.infolist())
    # Keras stores members uncompressed: the ratio of a real archive is 1
    with zipfile.ZipFile(small[1] / "m.keras") as zf:
        assert all(i.file_size <= i.compress_size for i in zf.infolist())


def test_recompressed_archive_still_loads(tmp_path, small):
    model, d = small
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(d / "m.keras") as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    loaded = load_model(path)
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize(("source", "renamed"), [("m.keras", "zip.h5"), ("m.h5", "hdf5.keras"),
                                                 ("m.keras", "model.bin"), ("m.h5", "weights")])
def test_file_is_loaded_as_what_its_bytes_say(tmp_path, small, source, renamed, caplog):
    model, d = small
    path = tmp_path / renamed
    shutil.copy(d / source, path)
    before = path.read_bytes()
    loaded = load_model(path)
    x = np.random.default_rng(1).random((1, 6, 6, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)),
                               atol=1e-6, rtol=0)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [renamed]
    assert "whatever its name says" in caplog.text
