"""Checkpoints and --resume: exact accumulator state, Ctrl-C then resume gives the same bytes, refusals."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from scanhelp import assert_same_tree, result_tree  # noqa: E402

from convscope.errors import OptionError  # noqa: E402
from convscope.models.zoo.mnist import load_mnist_digits  # noqa: E402
from convscope.present.cli import app, main  # noqa: E402
from convscope.present.cli_scan import register  # noqa: E402
from convscope.scan import scan  # noqa: E402
from convscope.scan.checkpoint import checkpoint_dir, read_progress  # noqa: E402
from convscope.scan.predictions import OutputAccumulator  # noqa: E402
from convscope.scan.reduce import Bounds  # noqa: E402
from convscope.scan.snapshot import layer_from_state, layer_state  # noqa: E402
from convscope.scan.stats import LayerAccumulator  # noqa: E402

register(app)
OPTS = {"batch_size": 8, "top_k": 4}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    x, _ = load_mnist_digits()
    path = tmp_path_factory.mktemp("resume") / "digits.npy"
    np.save(path, x[::25])  # 200 real digits: 25 batches of 8
    return path


@pytest.fixture(scope="module")
def reference(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "full"
    scan("mnist-cnn", digits, out=out, **OPTS)
    return out


def _interrupt_after(batches: int):
    seen = []

    def on_batch(rows: int) -> None:
        seen.append(rows)
        if len(seen) == batches:
            raise KeyboardInterrupt  # what Ctrl-C raises

    return on_batch


def test_accumulator_state_round_trip_is_exact():
    rng = np.random.default_rng(0)
    batches = [np.tanh(rng.normal(size=(5, 4, 3, 6))).astype(np.float32) for _ in range(3)]
    straight = LayerAccumulator(6, 4, Bounds("tanh", -1.0, 1.0))
    for i, b in enumerate(batches):
        straight.add_batch(b, 5 * i)
    half = LayerAccumulator(6, 4, Bounds("tanh", -1.0, 1.0))
    half.add_batch(batches[0], 0)
    half.add_batch(batches[1], 5)
    restored = layer_from_state(*layer_state(half))
    restored.add_batch(batches[2], 10)
    got, want = restored.finish(), straight.finish()
    assert sorted(got) == sorted(want)
    for name in want:  # bit for bit, dtype included
        assert got[name].dtype == want[name].dtype and got[name].tobytes() == want[name].tobytes(), name
    out = OutputAccumulator()
    out.add_batch(np.eye(3)[[2, 0]], 3)
    out.add_batch(np.eye(3)[[1]], 0)
    back = OutputAccumulator.from_state(out.state()).finish(None)
    np.testing.assert_array_equal(back.top1, [1, 2, 0])  # ordered by row, as finish() orders
    assert OutputAccumulator.from_state(OutputAccumulator().state()).finish(None).top1.shape == (0,)


@pytest.mark.parametrize("batches", [3, 20])
def test_ctrl_c_then_resume_gives_the_same_bytes(digits, reference, tmp_path, batches):
    out = tmp_path / "scan"
    with pytest.raises(KeyboardInterrupt):
        scan("mnist-cnn", digits, out=out, checkpoint_every=5, on_batch=_interrupt_after(batches), **OPTS)
    assert not out.exists()
    assert read_progress(checkpoint_dir(out)) == (8 * batches, 200)  # Ctrl-C saved every batch handed over
    seen = []
    scan("mnist-cnn", digits, out=out, resume=True, on_batch=seen.append, **OPTS)
    assert seen[0] == 8 * batches and sum(seen) == 200  # the restored rows, then the rest, each once
    assert_same_tree(out, reference)
    assert not checkpoint_dir(out).exists()  # deleted once the results were written


def _cli(capsys, *args) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_resume_refusals_touch_nothing(digits, reference, tmp_path, capsys):
    out, bare = tmp_path / "scan", tmp_path / "bare"
    scan("mnist-cnn", digits, out=out, **OPTS)  # an earlier complete result in OUT ...
    for folder in (out, bare):  # ... and the checkpoint of an interrupted re-run; BARE has only a checkpoint
        with pytest.raises(KeyboardInterrupt):
            scan("mnist-cnn", digits, out=folder, on_batch=_interrupt_after(10), **OPTS)
    before = [result_tree(p) for p in (out, checkpoint_dir(out), checkpoint_dir(bare))]
    other = tmp_path / "other.npy"
    np.save(other, np.load(digits)[:100])
    small = tmp_path / "small.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="c")]).save(small)
    opts = ["--batch-size", "8", "--top", "4"]
    different = "checkpoint at {ckpt!r} is of a different scan (differs in: "
    cases = [
        (["mnist-cnn", digits, bare, *opts, "--top", "5"], different + "top_k)"),
        (["mnist-cnn", digits, out, *opts, "--batch-size", "16"], different + "batch_size)"),
        ([small, digits, bare, *opts], different + "layers, model_sha256)"),
        (["mnist-cnn", other, bare, *opts], different + "dataset)"),
        (["mnist-cnn", digits, tmp_path / "elsewhere", *opts], "no checkpoint of an interrupted scan"),
    ]
    for args, needle in [*(([*a, "--resume"], n) for a, n in cases), (["mnist-cnn", digits, out, *opts],
                         "has the checkpoint of an interrupted scan (80 of 200 rows)")]:
        code, lines = _cli(capsys, "scan", *args[:2], "--out", *args[2:])
        assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), lines
        assert needle.format(ckpt=str(checkpoint_dir(args[2]))) in lines[0], lines[0]
        assert [result_tree(p) for p in (out, checkpoint_dir(out), checkpoint_dir(bare))] == before
    assert not (tmp_path / "elsewhere").exists() and not bare.exists()
    with pytest.raises(OptionError, match="--resume needs --out"):
        scan("mnist-cnn", digits, resume=True, **OPTS)
    with pytest.raises(OptionError, match="--checkpoint-every must be an integer >= 0"):
        scan("mnist-cnn", digits, out=out, checkpoint_every=-1, **OPTS)
    code, _ = _cli(capsys, "scan", "mnist-cnn", digits, "--out", out, *opts, "--resume")
    assert code == 0
    assert_same_tree(out, reference)
    assert not checkpoint_dir(out).exists()


def test_force_starts_over_and_no_checkpoint_with_zero(digits, reference, tmp_path):
    out = tmp_path / "scan"
    with pytest.raises(KeyboardInterrupt):
        scan("mnist-cnn", digits, out=out, on_batch=_interrupt_after(4), **OPTS)
    assert checkpoint_dir(out).exists()
    seen = []
    scan("mnist-cnn", digits, out=out, force=True, on_batch=seen.append, **OPTS)
    assert seen[0] == 8 and sum(seen) == 200  # from the first row
    assert_same_tree(out, reference)
    assert not checkpoint_dir(out).exists()
    fresh = tmp_path / "never"
    with pytest.raises(KeyboardInterrupt):
        scan("mnist-cnn", digits, out=fresh, checkpoint_every=0, on_batch=_interrupt_after(4), **OPTS)
    assert not checkpoint_dir(fresh).exists()


def test_ray_plan_merges_shards_in_order_whatever_order_they_finish(tmp_path):
    from convscope.scan.checkpoint import Checkpointer
    from convscope.scan.ray_engine import _Plan, shards

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3, 3, 5)).astype(np.float32)
    ranges = shards(40, 8)  # five shards of one batch

    def part(i: int) -> dict:
        a, b = ranges[i]
        acc = LayerAccumulator(5, 3)
        acc.add_batch(x[a:b], a)
        return {"conv": acc}

    def finish(plan: _Plan) -> dict[str, np.ndarray]:
        return plan.merged["conv"].finish()

    in_order = _Plan(ranges, None, 8)
    for i in range(5):
        in_order.finish(i, part(i), {"conv": "relu"})
    shuffled = _Plan(ranges, None, 8)
    for i in (2, 0, 4):
        shuffled.finish(i, part(i), {"conv": "relu"})
    assert shuffled.rows == 8 and sorted(shuffled.held) == [(16, 24), (32, 40)]  # 2 and 4 wait for 1 and 3
    ckpt = Checkpointer(tmp_path / "ck", {"scan": 1}, 40, None)
    ckpt.save(shuffled.state())
    resumed = _Plan(ranges, ckpt.load(), 8)
    assert list(resumed.todo) == [1, 3]  # only the missing shards are scanned again
    for i in (3, 1):
        resumed.finish(i, part(i), {})
    assert resumed.rows == 40 and not resumed.held and resumed.names == {"conv": "relu"}
    got, want = finish(resumed), finish(in_order)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name
