"""Every command that writes obeys one rule of where it may write, and file-system edges are one line."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from convscope.present.cli import main  # noqa: E402
from convscope.store.output import MARKER  # noqa: E402


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv0")(inputs), name="small")
    path = tmp_path_factory.mktemp("model") / "small.keras"
    model.save(path)
    return path


@pytest.fixture
def victim(tmp_path) -> Path:
    data = tmp_path / "victim"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / f"img{i}.png")
    (data / "notes.txt").write_text("mine")
    return data


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


COMMANDS = {
    "maps": lambda model, data, out: ["maps", model, data, "--out", out],
    "cam": lambda model, data, out: ["cam", model, data, "--out", out, "--layer", "conv0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_maps_and_cam_never_write_into_their_inputs(small, victim, tmp_path, capsys, command, where):
    before = snapshot(victim)
    out = {"same": victim, "inside": victim / "out", "contains": tmp_path}[where]
    code, _, err = run(capsys, *COMMANDS[command](small, victim, out))
    one_line(code, err, {"same": "is the input", "inside": "lies inside", "contains": "contains the input"}[where])
    assert snapshot(victim) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]


def test_a_notes_folder_is_refused_and_an_earlier_result_takes_new_files(small, victim, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("buy milk")
    for argv in (["maps", small, victim / "img0.png", "--out", notes], ["filters", small, "--out", notes],
                 ["maximize", small, "--layer", "conv0", "--channels", "2", "--steps", "1", "--out", notes],
                 ["cam", small, victim / "img0.png", "--layer", "conv0", "--out", notes]):
        code, _, err = run(capsys, *argv)
        one_line(code, err, "convscope did not write")
    assert snapshot(notes) == {"todo.txt": b"buy milk"}
    out = tmp_path / "out"
    code, _, err = run(capsys, "maps", small, victim / "img0.png", "--out", out)
    assert code == 0, err
    first = (out / "img0" / "conv0.png").read_bytes()
    code, _, err = run(capsys, "maps", small, victim / "img1.png", "--out", out)  # the same command again
    assert code == 0, err
    code, _, err = run(capsys, "filters", small, "--out", out)  # another adding command
    assert code == 0, err
    assert (out / "img0" / "conv0.png").read_bytes() == first and (out / "img1" / "conv0.png").exists()
    assert (out / "conv0.filters.png").exists()
    assert json.loads((out / MARKER).read_text())["command"] == "maps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "out", "victim"]


def test_file_system_edges_are_one_line(small, victim, tmp_path, capsys):
    image = victim / "img0.png"
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run(capsys, "maps", small, image, "--out", afile / "sub")
    one_line(code, err, "afile", "is a file, not a folder")
    code, _, err = run(capsys, "maps", small, image, "--out", afile)
    one_line(code, err, "is a file, not a folder")
    code, _, err = run(capsys, "maps", small, image, "--out", "/proc/convscope-out")
    one_line(code, err, "/proc/convscope-out")
    code, _, err = run(capsys, "report", small, image, "-o", afile / "r.html", "--no-cam")
    one_line(code, err, "afile", "is a file, not a folder")
    assert afile.read_text() == "x"


def test_an_os_error_while_writing_is_one_line(small, victim, tmp_path, capsys, monkeypatch):
    from convscope.store import atomic

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(atomic.os, "replace", full)
    code, _, err = run(capsys, "maps", small, victim / "img0.png", "--out", tmp_path / "out")
    one_line(code, err, "No space left on device", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


class FifoWatchdog:
    """Unblocks any reader stuck on the FIFOs (by opening them for writing) and remembers that it had to."""

    def __init__(self, fifos: list[Path], after: float = 10.0) -> None:
        self.fifos, self.after, self.unblocked = fifos, after, False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        if self.stop.wait(self.after):
            return
        while not self.stop.is_set():
            for fifo in self.fifos:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                    self.unblocked = True
                except OSError:  # ENXIO: nobody is reading it
                    pass
            self.stop.wait(0.05)

    def __enter__(self) -> FifoWatchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_unreadable_explicit_inputs_are_one_line_never_a_hang(small, tmp_path, capsys):
    """maps and cam on a FIFO (which would block forever if opened) or a symlink loop: one line, exit 2."""
    fifos = [tmp_path / "fifo.png", tmp_path / "fifo.npy"]
    for fifo in fifos:
        os.mkfifo(fifo)
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "text.png").write_text("not an image")
    cases = [("maps", "fifo.png", "is a FIFO"), ("maps", "fifo.npy", "is a FIFO"), ("cam", "fifo.png", "is a FIFO"),
             ("maps", "loop.png", "symlink loop"), ("cam", "loop.png", "symlink loop"),
             ("maps", "text.png", "not a readable image")]
    with FifoWatchdog(fifos) as watchdog:
        for command, name, needle in cases:
            code, _, err = run(capsys, command, small, tmp_path / name, "--out", tmp_path / "out")
            one_line(code, err, name, needle)
    assert not watchdog.unblocked, "a FIFO was opened for reading"
    assert not (tmp_path / "out").exists()


def test_the_callback_out_folder_follows_the_rule(tmp_path, victim):
    from convscope.errors import OutputError
    from convscope.keras import FeatureMapCallback

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"out '.*notes' is a folder convscope did not write"):
        FeatureMapCallback(np.zeros((1, 16, 16, 3), np.float32), out=notes)
    with pytest.raises(OutputError, match="lies inside the input folder"):
        FeatureMapCallback([victim], out=victim / "maps")
    FeatureMapCallback(np.zeros((1, 16, 16, 3), np.float32), out=tmp_path / "runs")  # new: fine, nothing made yet
    assert snapshot(notes) == {"todo.txt": b"mine"} and not (tmp_path / "runs").exists()
