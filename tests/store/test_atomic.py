"""store.atomic: files written whole or not at all; partial folders of dead processes cleaned up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convscope.store.atomic import (
    atomic_path,
    clean_stale,
    merge_dir,
    partial_dir,
    pid_alive,
    replace_dir,
    write_atomic,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_atomic_refuses_to_clobber_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    write_atomic(target, b"one")
    with pytest.raises(FileExistsError, match="already exists"):
        write_atomic(target, b"two")
    assert target.read_bytes() == b"one"
    write_atomic(target, b"two", overwrite=True, fsync=True)
    assert target.read_bytes() == b"two" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_atomic(tmp_path / "missing" / "b.bin", b"x")


def test_an_error_while_writing_leaves_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0)


def test_stale_partial_folders_of_dead_processes_are_removed(tmp_path):
    out = tmp_path / "out"
    dead = tmp_path / f".out.partial-{dead_pid()}-abc123"
    (dead / "layers").mkdir(parents=True)
    (dead / "layers" / "x.png").write_bytes(b"half")
    live = tmp_path / f".out.partial-{os.getpid()}-zzz"
    live.mkdir()
    other = tmp_path / f".other.partial-{dead_pid()}-abc"  # another OUT's: not ours to judge now
    other.mkdir()
    mine = tmp_path / ".out.partial-notes"  # not our pattern: never touched
    mine.mkdir()
    assert clean_stale(out) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, mine.name])
    stage = partial_dir(out)  # cleans too, and names itself with this process id
    assert stage.name.startswith(f".out.partial-{os.getpid()}-") and stage.is_dir()


def test_replace_dir_and_merge_dir(tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "old.png").write_bytes(b"old")
    (out / "keep.txt").write_bytes(b"keep")
    stage = partial_dir(out)
    (stage / "a").mkdir()
    (stage / "a" / "old.png").write_bytes(b"new")
    (stage / "m.json").write_bytes(b"{}")
    merge_dir(stage, out, last="m.json")
    assert (out / "a" / "old.png").read_bytes() == b"new" and (out / "keep.txt").read_bytes() == b"keep"
    assert (out / "m.json").exists()
    stage2 = partial_dir(out)
    (stage2 / "only.txt").write_bytes(b"x")
    replace_dir(stage2, out)
    assert sorted(p.name for p in out.iterdir()) == ["only.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name != "out" and p != stage] == []
