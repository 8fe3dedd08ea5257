"""kill -9 of a running `convscope scan` at 25%, 50% and 90% of the rows, then --resume: the results are the
same bytes as an uninterrupted scan's (statistics, top-k, predictions, crops; timestamps aside)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from scanhelp import assert_same_tree, cli_env, kill_when

from convscope.models.zoo.mnist import load_mnist_digits
from convscope.present.cli import app, main
from convscope.present.cli_scan import register
from convscope.scan.checkpoint import checkpoint_dir, read_progress

register(app)


def test_kill_9_at_25_50_90_percent_then_resume_gives_the_same_bytes(tmp_path):
    x, _ = load_mnist_digits()
    data = tmp_path / "digits.npy"
    np.save(data, x[::5])  # 1,000 real digits: 125 batches of 8, a checkpoint after each
    opts = ["--batch-size", "8", "--top", "4", "--checkpoint-every", "1"]
    assert main(["scan", "mnist-cnn", str(data), "--out", str(tmp_path / "whole"), *opts]) == 0
    out = tmp_path / "killed"
    args = ["scan", "mnist-cnn", data, "--out", out, *opts, "-v"]
    log = tmp_path / "stderr.txt"
    done = []
    for fraction in (0.25, 0.50, 0.90):  # each run is killed, the next one resumes it
        rows, size = kill_when(args + (["--resume"] if done else []), checkpoint_dir(out), fraction, cli_env(), log)
        assert size == 1000 and fraction * size <= rows < size and not out.exists()
        done.append(rows)
    assert "checkpoint: " in log.read_text() and "resuming from" in log.read_text()  # a log line per checkpoint
    assert read_progress(checkpoint_dir(out))[0] == done[-1]
    assert main(["scan", "mnist-cnn", str(data), "--out", str(out), *opts, "--resume"]) == 0
    assert_same_tree(out, tmp_path / "whole")
    assert not checkpoint_dir(out).exists()
