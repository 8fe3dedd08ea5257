"""The scan's input pipeline: parallel decoding gives exactly the sequential result, JPEG draft decoding is
opt-out, folders are listed without a stat or an open per file, and the CLI's progress and --quiet."""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from convscope.data import InputSpec, Preprocess, prepare_image, read_image  # noqa: E402
from convscope.errors import InputError  # noqa: E402
from convscope.present.cli import app, main  # noqa: E402
from convscope.present.cli_scan import register, scan_progress  # noqa: E402
from convscope.scan import listing, scan  # noqa: E402
from convscope.scan.engine import ScanJob, run_local  # noqa: E402
from convscope.scan.folder import FolderSource  # noqa: E402
from convscope.scan.source import open_source  # noqa: E402

register(app)  # idempotent

SPEC = InputSpec((32, 32, 3))
PREP = Preprocess(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv0")(inputs)
    x = keras.layers.Conv2D(5, 3, strides=2, activation="tanh", name="conv1")(x)
    out = keras.layers.Dense(4, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path_factory.mktemp("model") / "small.keras"
    keras.Model(inputs, out, name="small").save(path)
    return path


@pytest.fixture(scope="module")
def model(model_path):
    return keras.models.load_model(model_path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two labelled sub-folders of JPEGs (some large enough for a 1/2 or 1/4 draft), PNGs and a 3-page TIFF."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    for i in range(23):
        sub = root / ("cats" if i % 2 else "dogs")
        sub.mkdir(exist_ok=True)
        h, w = (int(v) for v in rng.integers(24, 150, 2))
        noise = rng.integers(-40, 40, (h, w, 3))
        pixels = np.clip(np.asarray(Image.fromarray(base).resize((w, h))) + noise, 0, 255).astype(np.uint8)
        ext = "png" if i % 5 == 0 else "jpg"
        Image.fromarray(pixels).save(sub / f"img{i}.{ext}", quality=85)
    pages = [Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)) for _ in range(3)]
    pages[0].save(root / "dogs" / "stack.tif", save_all=True, append_images=pages[1:])
    return root


def finished(accs) -> dict[str, dict[str, bytes]]:
    out = {}
    for key, acc in accs.items():
        done = acc.finish() if not hasattr(acc, "_rows") else dataclasses.asdict(acc.finish(None))
        out[key] = {k: np.asarray(v).tobytes() for k, v in done.items() if v is not None}
    return out


def test_workers_give_byte_identical_rows_and_statistics(model, folder):
    source = open_source(folder, SPEC, PREP, draft=True)
    assert isinstance(source, FolderSource) and source.draft == (32, 32)
    assert source.size == 23 + 3 and source.rows is not None  # the TIFF's 3 pages are 3 rows
    sequential = dataclasses.replace(source, workers=1, _last={})
    parallel = dataclasses.replace(source, workers=4, _last={})
    np.testing.assert_array_equal(parallel.read(0, source.size), sequential.read(0, source.size))
    assert parallel.read(3, 11).tobytes() == sequential.read(3, 11).tobytes()
    results = []
    for src in (sequential, parallel):
        accs, _ = run_local(ScanJob(model, None, src, top_k=4, batch_size=7), model)
        results.append(finished(accs))
    assert list(results[0]) == list(results[1]) and len(results[0]) == 3  # conv0, conv1, the output
    assert results[0] == results[1]


def test_full_decode_rows_are_todays_arrays(folder):
    source = open_source(folder, SPEC, PREP)
    assert source.draft is None  # the default: exactly what every other command reads
    x = source.read(0, source.size)
    names = [source.files[f] for f, _ in source.rows]
    for i, name in enumerate(names):
        if name.endswith(".tif"):
            continue
        want = prepare_image(read_image(folder / name), SPEC, PREP).x
        np.testing.assert_array_equal(x[i], want, err_msg=name)
    drafted = open_source(folder, SPEC, PREP, draft=True).read(0, source.size)
    big = [i for i, n in enumerate(names) if n.endswith(".jpg") and min(Image.open(folder / n).size) >= 64]
    assert big and not np.array_equal(drafted[big], x[big])  # the draft was used where it applies
    small = [i for i, n in enumerate(names) if n.endswith(".png")]
    np.testing.assert_array_equal(drafted[small], x[small])


def test_the_first_unreadable_row_in_order_raises(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(9):
        Image.fromarray(np.full((40, 40, 3), i * 20, np.uint8)).save(data / f"p{i}.png")
    source = open_source(data, SPEC, PREP, draft=True)
    (data / "p5.png").write_bytes(b"gone bad after the folder was checked")
    (data / "p7.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"p5\.png"):
        dataclasses.replace(source, workers=4).read(0, 9)
    np.testing.assert_array_equal(
        dataclasses.replace(source, workers=4).read(0, 5), dataclasses.replace(source, workers=1).read(0, 5)
    )


def test_listing_neither_stats_nor_opens_files(folder, tmp_path, monkeypatch):
    for i in (10, 2, 1):
        (tmp_path / f"img{i}.png").write_bytes(b"not looked at")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"")
    calls = []
    for name in ("stat", "lstat", "open"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, _r=real, **k: calls.append(str(p)) or _r(p, *a, **k))
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: calls.append(str(p)) or real_open(p, *a, **k))
    skipped: list[tuple[str, str]] = []
    names = list(listing.walk(tmp_path, skipped))
    monkeypatch.undo()
    assert names == ["img1.png", "img2.png", "img10.png", os.path.join("b", "x.jpg")]
    assert skipped == []
    assert all(os.path.isdir(p) for p in calls), calls  # os.walk checks a sub-folder is no symlink; no file


def test_checking_in_rounds_keeps_order_and_reasons(folder, monkeypatch):
    names = list(listing.walk(folder, []))
    names.insert(4, "dogs/missing.png")
    whole = listing.checked(names, folder, SPEC, PREP)
    monkeypatch.setattr(listing, "CHECK_CHUNK", 3)
    assert listing.checked(iter(names), folder, SPEC, PREP) == whole
    assert whole[3] == [("dogs/missing.png", "does not exist")]
    assert whole[1][names.index("dogs/stack.tif") - 1] == 3  # rows of the stack, counted from its header


def test_progress_bar_names_the_layer_set_and_quiet_prints_nothing(model_path, folder, tmp_path, capsys):
    seen = []

    def progress(total, label):
        seen.append((total, label))
        return scan_progress(total, label)

    result = scan(model_path, folder, progress=progress, batch_size=8, draft=True)
    assert seen == [(26, "scan 2 layers conv0..conv1")]
    assert (
        "JPEG decoded at 1/2, 1/4 or 1/8 size where that stays >= 32x32"
        in result.manifest["options"]["preprocess"]
    )
    out, fast = tmp_path / "out", tmp_path / "fast"
    code = main(["scan", str(model_path), str(folder), "--out", str(out), "--quiet", "--no-crops"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == "" and (out / "manifest.json").is_file()
    assert "JPEG" not in json.loads((out / "manifest.json").read_text())["options"]["preprocess"]
    code = main(["scan", str(model_path), str(folder), "--out", str(fast), "--no-crops", "--fast-decode"])
    assert code == 0 and "results:" in capsys.readouterr().out
    assert "JPEG decoded" in json.loads((fast / "manifest.json").read_text())["options"]["preprocess"]
