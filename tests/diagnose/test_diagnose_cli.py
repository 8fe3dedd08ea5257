"""``convscope compare`` and ``convscope similarity``: results on real digits, and bad input answered in
one line with exit code 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convscope.models.zoo.mnist import load_mnist_digits
from convscope.present.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import keras

    root = tmp_path_factory.mktemp("cli")
    x = load_mnist_digits()[0]
    paths = {name: root / f"{name}.npy" for name in ("a", "b", "small", "empty")}
    np.save(paths["a"], x[::100])
    np.save(paths["b"], x[50::100])
    np.save(paths["small"], np.zeros((6, 20, 20, 1), np.float32))
    np.save(paths["empty"], np.zeros((0, 28, 28, 1), np.float32))
    other = keras.Sequential([keras.Input((20, 20, 1)), keras.layers.Conv2D(2, 3, name="c")])
    paths["other"] = root / "other.keras"
    other.save(paths["other"])
    return paths


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_compare_and_similarity_write_their_folders(files, tmp_path, capsys):
    code, out, err = run(capsys, "compare", "mnist-cnn", files["a"], files["b"], "--layer", "conv_1", "--bins", "8",
                         "--top", "2", "--out", tmp_path / "c")  # fmt: skip
    assert code == 0, err
    assert "conv_1: 64 channels, median shift" in out and f"results: {tmp_path / 'c'}" in out
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["a"]["size"] == 50
    code, out, err = run(capsys, "similarity", "mnist-cnn", files["a"], "--layer", "conv_0", "--layer", "dense_0",
                         "--out", tmp_path / "s")  # fmt: skip
    assert code == 0, err
    assert "linear CKA" in out and json.loads((tmp_path / "s" / "cka.json").read_text())["rows"] == ["conv_0", "dense_0"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compare", "mnist-cnn", "{a}", "{small}"], "expects (N, 28, 28, 1)"),
        (["compare", "mnist-cnn", "{a}", "{empty}"], "no samples"),
        (["compare", "mnist-cnn", "{a}", "{b}", "--bins", "100000"], "--bins must be at most 4096"),
        (["similarity", "mnist-cnn", "{other}", "{a}"], "model B"),
        (["similarity", "mnist-cnn", "{empty}"], "no samples"),
        (["similarity", "mnist-cnn", "mnist-cnn", "mnist-cnn", "{a}"], "MODEL_A [MODEL_B] DATA"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_nothing_written(files, tmp_path, capsys, args, needle):
    argv = [a.format(**files) for a in args]
    code, _, err = run(capsys, *argv, "--out", tmp_path / "out")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    assert needle in lines[0]
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
