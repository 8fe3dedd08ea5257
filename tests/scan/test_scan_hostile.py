"""A scan never loses its work to one bad file, and never writes over the data it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from convscope.errors import InputError, OutputError  # noqa: E402
from convscope.present.cli import app, main  # noqa: E402
from convscope.present.cli_scan import register  # noqa: E402
from convscope.scan import load_scan, scan  # noqa: E402

register(app)  # idempotent

BAD = {
    "zzzz.png": "is not a readable image",
    "zero.png": "is empty (0 bytes)",
    "trunc.png": "is truncated or corrupt",
    "fifo.png": "is a FIFO (named pipe), not a regular file",
    "loop.png": "is a symlink loop",
    "x.png": "is a folder named like an image file",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """One Conv2D on 16x16x3, saved as small.keras."""
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv0")(inputs), name="small")
    path = tmp_path_factory.mktemp("model") / "small.keras"
    model.save(path)
    return path


def good_pngs(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"img{i}.png")


@pytest.fixture
def hostile(tmp_path) -> Path:
    data = tmp_path / "data"
    good_pngs(data, 6)
    (data / "zzzz.png").write_text("these are notes, not a picture")
    (data / "zero.png").write_bytes(b"")
    whole = (data / "img0.png").read_bytes()
    (data / "trunc.png").write_bytes(whole[: len(whole) // 2])
    os.mkfifo(data / "fifo.png")
    (data / "loop.png").symlink_to(data / "loop.png")
    (data / "x.png").mkdir()
    return data


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_scan_skips_and_records_every_unreadable_entry(small, hostile, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "scan", small, hostile, "--out", out, "--top", "2")
    assert code == 0, err
    result = load_scan(out)
    assert result.images == 6
    skipped = {item["file"]: item["reason"] for item in result.manifest["dataset"]["skipped"]}
    assert sorted(skipped) == sorted(BAD)
    for name, reason in BAD.items():
        assert skipped[name].startswith(reason), (name, skipped[name])
    summary = (out / "summary.txt").read_text()
    assert "skipped 6 unreadable file(s)" in summary and "skipped 6 unreadable file(s)" in stdout
    for name in BAD:
        assert f"  {name}: " in summary
    assert json.loads((out / "summary.json").read_text())["skipped"] == result.manifest["dataset"]["skipped"]
    # the statistics are those of the six good images alone
    good = tmp_path / "good"
    good_pngs(good, 6)
    clean = scan(small, good, top_k=2)
    np.testing.assert_allclose(result["conv0"].mean, clean["conv0"].mean, rtol=1e-6)
    assert clean.skipped == [] and "skipped" not in clean.summary_text()


def test_strict_refuses_with_one_line(small, hostile, tmp_path, capsys):
    code, _, err = run(capsys, "scan", small, hostile, "--out", tmp_path / "out", "--strict")
    one_line(code, err, "--strict", "(and 5 more)")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="--strict"):
        scan(small, hostile, strict=True)


def test_an_unreadable_file_given_as_data_is_one_line(small, hostile, tmp_path, capsys):
    for name in ("fifo.png", "loop.png", "zzzz.png", "zero.png"):
        code, _, err = run(capsys, "scan", small, hostile / name, "--out", tmp_path / "out")
        one_line(code, err, name, BAD[name].split(" (")[0])
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / "a.png").write_text("nope")
    code, _, err = run(capsys, "scan", small, only_bad, "--out", tmp_path / "out")
    one_line(code, err, "has no images", "1 skipped", "a.png is not a readable image")


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
@pytest.mark.parametrize("force", [False, True])
def test_scan_never_writes_over_its_data(small, tmp_path, capsys, where, force):
    victim = tmp_path / "victim"
    good_pngs(victim / "cats", 4)
    (victim / "README.txt").write_text("my dataset")
    before = snapshot(victim)
    out = {"same": victim, "inside": victim / "scan", "contains": tmp_path}[where]
    code, _, err = run(capsys, "scan", small, victim, "--out", out, *(["--force"] if force else []))
    one_line(code, err, str(out), {"same": "is the input", "inside": "lies inside", "contains": "contains"}[where])
    assert snapshot(victim) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]


def test_force_replaces_only_earlier_convscope_results(small, tmp_path, capsys):
    data = tmp_path / "data"
    good_pngs(data, 4)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    code, _, err = run(capsys, "scan", small, data, "--out", notes, "--force")
    one_line(code, err, "convscope did not write", "--force replaces only earlier convscope results")
    assert snapshot(notes) == {"todo.txt": b"mine"}
    # an earlier result of another command: refused without --force, replaced with it
    maps = tmp_path / "maps"
    stale = tmp_path / f".maps.partial-{dead_pid()}-abc"  # left by a killed run: removed by the next write
    (stale / "img0").mkdir(parents=True)
    code, _, err = run(capsys, "maps", small, data / "img0.png", "--out", maps)
    assert code == 0, err
    assert not stale.exists()
    code, _, err = run(capsys, "scan", small, data, "--out", maps, "--top", "2")
    one_line(code, err, "holds a convscope maps result", "--force")
    code, _, err = run(capsys, "scan", small, data, "--out", maps, "--top", "2", "--force")
    assert code == 0, err
    assert load_scan(maps).images == 4 and not (maps / "img0").exists()
    # an earlier, different scan: replaced with --force (its files gone, the new ones there)
    code, _, err = run(capsys, "scan", small, data, "--out", maps, "--top", "3")
    one_line(code, err, "different scan")
    code, _, err = run(capsys, "scan", small, data, "--out", maps, "--top", "3", "--force")
    assert code == 0, err
    assert load_scan(maps)["conv0"].top_index.shape == (4, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(OutputError, match="is the input"):
        scan(small, data, out=data, force=True)
