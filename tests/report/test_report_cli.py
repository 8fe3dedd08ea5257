"""``convscope report``: registration, the file written, and one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from reporthelp import Parsed

from convscope.present import cli_report
from convscope.present.cli import app, main


def run(capsys, *args: object) -> tuple[int, str, str]:
    cli_report.register(app)  # no-op when cli.py registered it already
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory) -> list[Path]:
    from convscope.models.zoo import sample_digits

    folder = tmp_path_factory.mktemp("cli-digits")
    x, _ = sample_digits()
    paths = []
    for i in (2, 4):
        paths.append(folder / f"digit{i}.png")
        Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8)).save(paths[-1])
    return paths


def test_register_adds_one_report_command():
    fresh = typer.Typer()
    cli_report.register(fresh)
    cli_report.register(fresh)
    assert [c.name for c in fresh.registered_commands] == ["report"]
    cli_report.register(app)
    assert sum(1 for c in app.registered_commands if (c.name or c.callback.__name__) == "report") == 1


def test_help_is_light_and_lists_the_options():
    code = ("import sys, convscope.present.cli as c\n"
            "try:\n    c.main(['report', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY' if {'tensorflow', 'keras'} & set(sys.modules) else 'LIGHT')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False).stdout
    assert out.strip().endswith("LIGHT"), out
    for option in ("--scan", "--out", "--max-channels", "--max-map-size", "--no-cam", "--layer"):
        assert option in out


def test_report_writes_one_file_and_prints_its_path(capsys, tmp_path, digit_files):
    out = tmp_path / "r.html"
    out.write_text('<html><head><meta name="generator" content="convscope"></head></html>')  # an earlier report
    code, stdout, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", out, "--layer", "conv_1",
                            "--norm", "layer", "--max-channels", "8", "--no-cam", "--title", "Digits & maps")
    assert code == 0, err
    assert stdout.strip() == str(out) and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    html = out.read_text(encoding="utf-8")
    page = Parsed(html)
    assert "Digits &amp; maps" in html and "8 of 64 channels shown (capped)" in html
    assert "norm=layer" in html and "Grad-CAM" not in html
    assert [a["href"] for a in page.attrs("a") if a["href"].startswith("#layer-")] == ["#layer-0-conv_1"] * 2


def test_missing_folders_of_the_report_are_created(capsys, tmp_path, digit_files):
    out = tmp_path / "new" / "dir" / "r.html"
    code, stdout, err = run(capsys, "report", "mnist-cnn", digit_files[0], "-o", out, "--layer", "conv_0",
                            "--max-channels", "4", "--no-cam")
    assert code == 0, err
    assert stdout.strip() == str(out) and '<meta name="generator" content="convscope">' in out.read_text()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--norm", "bogus"], ["bogus", "channel"]),
        (["--layer", "conv_9"], ["conv_9"]),
        (["--max-map-size", "-1"], ["--max-map-size", "-1"]),
        (["--max-channels", "0"], ["--max-channels", "0"]),
        (["--channels", "top0x"], ["top0x"]),
    ],
)
def test_bad_options_give_one_line_and_write_nothing(capsys, tmp_path, digit_files, args, needles):
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", out, *args)
    one_line_error(code, err, *needles)
    assert not out.exists()


def test_bad_paths_give_one_line(capsys, tmp_path, digit_files, monkeypatch):
    code, _, err = run(capsys, "report", "mnist-cnn", tmp_path / "missing.png", "-o", tmp_path / "r.html")
    one_line_error(code, err, "missing.png")
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", tmp_path)
    one_line_error(code, err, "is a folder")
    afile = tmp_path / "afile"
    afile.write_text("mine")
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", afile / "r.html")
    one_line_error(code, err, "afile", "is a file, not a folder")
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", afile)  # not a convscope report
    one_line_error(code, err, "not written by convscope")
    assert afile.read_text() == "mine"
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", digit_files[0])  # an input
    one_line_error(code, err, "is the input")
    folder = digit_files[0].parent
    code, _, err = run(capsys, "report", "mnist-cnn", folder, "-o", folder / "r.html")
    one_line_error(code, err, "lies inside the input folder")
    assert not (folder / "r.html").exists()
    afile.unlink()
    (tmp_path / "scan").mkdir()
    code, _, err = run(capsys, "report", "mnist-cnn", *digit_files, "-o", tmp_path / "r.html", "--scan", tmp_path / "scan")
    one_line_error(code, err, "scan folder", "manifest.json")
    assert not (tmp_path / "r.html").exists()
