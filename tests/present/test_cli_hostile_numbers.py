"""Numbers written on the command line never size work: a huge channel range, scale or column count is
one line + exit 2 with flat memory, and nothing is written."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("keras")

from convscope.present.cli import main


@pytest.fixture(scope="module")
def digit(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("digit") / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)).save(path)
    return path


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(("args", "needles"), [
    (["--channels", "0-1000000000"], ["1,000,000,000", "beyond any layer"]),
    (["--channels", "5-" + "9" * 5000], ["beyond any layer"]),
    (["--channels", ",".join(["0-999999999"] * 3000)], ["999,999,999", "beyond any layer"]),
    (["--channels", "0-40"], ["40", "0..31"]),
    (["--scale", "100000"], ["scale=100000", "over the limit"]),
    (["--cols", "1000000000"], ["cols=1000000000", "over the limit"]),
])
def test_huge_numbers_are_one_line_exit_2(capsys, tmp_path, digit, args, needles) -> None:
    main(["maps", "mnist-cnn", str(digit), "--out", str(tmp_path / "warm"), "--layer", "conv_0"])  # model loaded
    capsys.readouterr()
    before = max_rss_mb()
    code = main(["maps", "mnist-cnn", str(digit), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    assert len(lines[0]) < 600
    for needle in needles:
        assert needle in lines[0]
    assert max_rss_mb() - before < 300  # the peak did not grow by the size of what the number asked for
    assert not (tmp_path / "o").exists() or not any(p.is_file() for p in (tmp_path / "o").rglob("*"))
