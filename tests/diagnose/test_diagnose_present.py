"""The diagnose results in the report (``report --compare DIR --similarity DIR``) and in the explorer
(``serve --compare DIR``: a channel's panel shows its shift)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from convscope.diagnose import compare, load_compare, similarity
from convscope.errors import OptionError
from convscope.models.zoo.mnist import load_mnist_digits
from convscope.present.cli import main


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("present")
    x = load_mnist_digits()[0]
    noisy = np.clip(x[50::100] + np.random.default_rng(0).normal(0, 0.3, x[50::100].shape), 0, 1).astype(np.float32)
    shift = compare("mnist-cnn", x[::100], noisy, layers=["conv_1"], top_k=2, bins=8, out=root / "cmp")
    cka = similarity("mnist-cnn", x[::100], layers=["conv_0", "conv_1", "dense_0"], out=root / "sim")
    np.save(root / "two.npy", x[:2])
    return root, shift, cka


def test_report_has_the_shift_and_cka_sections(folders, capsys):
    root, shift, cka = folders
    out = root / "report.html"
    code = main(["report", "mnist-cnn", str(root / "two.npy"), "--layer", "conv_0", "--no-cam", "--compare",
                 str(root / "cmp"), "--similarity", str(root / "sim"), "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    html = out.read_text()
    assert 'id="compare"' in html and "Dataset shift" in html and 'id="similarity"' in html
    top = shift["conv_1"].rank[0]
    assert re.search(rf"<td[^>]*>{top}</td><td[^>]*>{shift['conv_1'].shift[top]:.3g}</td>", html), top
    assert f"{cka.matrix[0, 2]:.3g}" in html  # conv_0 vs dense_0
    assert html.count("data:image/png;base64,") >= 4  # histograms, crops of A and B, the heatmap


def test_report_refuses_a_folder_that_is_not_a_compare_result(folders, capsys):
    root, _, _ = folders
    code = main(["report", "mnist-cnn", str(root / "two.npy"), "--compare", str(root / "sim"),
                 "--out", str(root / "bad.html")])  # fmt: skip
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "not a convscope-compare result" in lines[0], lines
    assert not (root / "bad.html").exists()


def test_explorer_channel_panel_shows_the_shift(folders):
    from starlette.testclient import TestClient

    from convscope.present.web.app import create_app
    from convscope.present.web.server import build_explorer

    root, shift, _ = folders
    explorer = build_explorer("mnist-cnn")
    explorer.attach_compare(load_compare(root / "cmp"))
    image = explorer.gallery.list()[0]["id"]
    top = int(shift["conv_1"].rank[0])
    with TestClient(create_app(explorer, allowed_hosts=["*"])) as client:
        data = client.get("/api/channel", params={"image": image, "layer": "conv_1", "channel": top}).json()
        other = client.get("/api/channel", params={"image": image, "layer": "conv_0", "channel": 0}).json()
    assert data["shift"]["rank"] == 0 and data["shift"]["shift"] == pytest.approx(shift["conv_1"].shift[top])
    assert data["shift"]["a"] == "array" and other["shift"] is None  # conv_0 was not compared
    foreign = dataclasses.replace(shift, manifest={**shift.manifest, "model": {"sha256": "0" * 64, "source": "x"}})
    with pytest.raises(OptionError, match="not on"):
        explorer.attach_compare(foreign)


def test_serve_refuses_a_bad_compare_folder_before_binding(tmp_path, capsys):
    code = main(["serve", "--compare", str(tmp_path / "missing"), "--port", "0"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "not a complete convscope-compare results folder" in lines[0], lines
