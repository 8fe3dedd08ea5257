"""``convscope ablate`` on the bundled MNIST CNN and real digits; bad input answers in one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convscope.present.cli import main


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """120 real MNIST digits (12 of each class) with their labels, as an .npz file."""
    from convscope.models.zoo.mnist import load_mnist_digits

    x, y = load_mnist_digits()
    rows = np.concatenate([np.flatnonzero(y == k)[:12] for k in range(10)])
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    np.savez(path, x=x[rows], y=y[rows])
    return path


@pytest.fixture(scope="module")
def written(digits, tmp_path_factory):
    from convscope.diagnose import ablate

    out = tmp_path_factory.mktemp("runs") / "ablate"
    return ablate("mnist-cnn", digits, layer="conv_1", out=out, top_k=4, listed=2)


def test_the_folder_reads_back_with_the_same_numbers_and_pictures(written):
    from convscope.diagnose import load_ablation

    again = load_ablation(written.path)
    for name, value in written.arrays().items():
        np.testing.assert_array_equal(getattr(again, name), value)
    assert again.route == "delta" and again.layer == "conv_1" and again.channels == 64
    assert again.group_count.tolist() == [12] * 10
    manifest = json.loads((written.path / "manifest.json").read_text())
    assert manifest["pictures"]["channels"] == written.listed_channels(2)
    for c in manifest["pictures"]["channels"]:
        assert (written.path / f"channels/ch{c:04d}.png").stat().st_size > 0
    assert sorted(p.name for p in (written.path / "classes").iterdir()) == [f"class{k:04d}.png" for k in range(10)]
    text = (written.path / "summary.txt").read_text()
    best = written.top_channels(3, 2)
    assert f"  3 (12 images): ch {best[0]} " in text
    # the listed channel hurts its class: a negative effect on the class's own logit
    assert written.delta_own[best[0], 3] < 0


def test_cli_prints_the_summary(digits, tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, err = run(capsys, "ablate", "mnist-cnn", digits, "--layer", "conv_0", "--out", out, "--top", "2")
    assert code == 0, err
    assert "ablate conv_0 (32 channels, mode zero, route graph)" in stdout  # conv_1 follows: no delta route
    assert "top channels per class:" in stdout and (out / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--layer", "conv_9"], "no layer 'conv_9'"),
        (["--layer", "dense_0"], "not a 2D spatial map"),
        (["--layer", "conv_1", "--mode", "median"], "--mode 'median' is not valid; expected one of zero, mean"),
    ],
)
def test_bad_options_are_one_line_and_nothing_is_written(digits, tmp_path, capsys, args, words):
    out = tmp_path / "never"
    code, _, err = run(capsys, "ablate", "mnist-cnn", digits, "--out", out, *args)
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_bad_data_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 28, 28, 1), np.float32))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 5, 5, 2), np.float32))
    for data, words in ((empty, "holds no samples"), (wrong, "wrong.npy")):
        code, _, err = run(capsys, "ablate", "mnist-cnn", data, "--layer", "conv_1", "--out", tmp_path / "o")
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_report_has_the_ablate_section(written):
    from convscope.models.zoo.mnist import load_mnist_digits
    from convscope.present.report import build_report

    x = load_mnist_digits()[0][:1]
    report = build_report("mnist-cnn", x, cam=False, layers=["conv_0"], ablate=written.path)
    html = report.html
    assert "Channel importance: ablating conv_1" in html
    best = written.top_channels(3, 3)
    assert f"ch {best[0]}: {written.delta_own[best[0], 3]:+.3f}" in html
    assert html.count('id="ablate-') == 10  # one crop picture per class


def test_serve_channel_panel_shows_the_ablation(written):
    from convscope.present.web.server import build_explorer

    explorer = build_explorer("mnist-cnn", ablate=written.path)
    image = explorer.gallery.list()[0]["id"]
    c = written.top_channels(5, 1)[0]
    rows = dict(explorer.channel(image, "conv_1", c).meta["ablation"])
    hurt = [f"{k} {written.delta_own[c, k]:+.3f}" for k in np.argsort(written.delta_own[c])[:3]]
    assert rows["hurts most (Δ own logit)"] == ", ".join(hurt)
    assert rows["accuracy change"] == f"{written.delta_accuracy[c] * 100:+.2f} pts"
    assert explorer.channel(image, "conv_0", 0).meta["ablation"] is None
