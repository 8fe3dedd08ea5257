"""store.output: the one rule of where convscope may write, and all-or-nothing output folders."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from convscope.errors import ConvscopeError, OutputError
from convscope.store import output
from convscope.store.output import MARKER, OutputFolder, check_file_out, check_out, claim_folder


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def victim(tmp_path) -> Path:
    data = tmp_path / "victim"
    (data / "cats").mkdir(parents=True)
    for i in range(3):
        (data / "cats" / f"{i}.png").write_bytes(bytes([i]) * 100)
    (data / "notes.txt").write_text("my notes")
    return data


@pytest.mark.parametrize("where", ["same", "inside", "deeper", "parent", "symlink"])
@pytest.mark.parametrize("force", [False, True])
def test_out_never_overlaps_the_data(tmp_path, victim, where, force):
    before = snapshot(victim)
    link = tmp_path / "link"
    link.symlink_to(victim)
    out = {"same": victim, "inside": victim / "cats", "deeper": victim / "new" / "out", "parent": tmp_path,
           "symlink": link}[where]
    needle = {"same": "is the input", "inside": "lies inside", "deeper": "lies inside", "parent": "contains the input",
              "symlink": "is the input"}[where]
    with pytest.raises(OutputError, match=needle):
        check_out(out, "scan", protected=[victim], force=force, mode="replace")
    with pytest.raises(OutputError, match=needle), OutputFolder(out, "maps", protected=[victim], force=force):
        pass
    assert snapshot(victim) == before
    assert not (victim / "new").exists()


def test_a_file_input_is_protected_too(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"pixels")
    with pytest.raises(OutputError, match="is the input"):
        check_file_out(image, protected=[image])
    with pytest.raises(OutputError, match="contains the input"):
        check_out(tmp_path, "maps", protected=[image])
    check_out(tmp_path / "out", "maps", protected=[image, "mnist-cnn", 3])  # names that are not paths: ignored


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_convscope_did_not_write_is_refused_even_with_force(tmp_path, force):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("buy milk")
    with pytest.raises(OutputError, match="convscope did not write"):
        check_out(notes, "scan", force=force, mode="replace")
    with pytest.raises(OutputError, match="convscope did not write"), OutputFolder(notes, "maps", force=force):
        pass
    assert snapshot(notes) == {"todo.txt": b"buy milk"}
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]


def test_new_and_empty_folders_get_the_files_and_a_marker(tmp_path):
    for out in (tmp_path / "a" / "b", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        with OutputFolder(out, "maps") as stage:
            (stage / "x").mkdir()
            (stage / "x" / "conv.png").write_bytes(b"png")
            assert not (out / "x").exists()  # nothing visible before the end
        marker = json.loads((out / MARKER).read_text())
        assert marker["command"] == "maps" and "convscope" in marker
        assert (out / "x" / "conv.png").read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "empty"]  # no staging left


def test_merge_keeps_other_files_and_replace_needs_force(tmp_path):
    out = tmp_path / "out"
    with OutputFolder(out, "maps") as stage:
        (stage / "a.png").write_bytes(b"1")
        (stage / "b.png").write_bytes(b"1")
    with OutputFolder(out, "maps") as stage:  # the same command adds / replaces its own files
        (stage / "a.png").write_bytes(b"2")
    assert snapshot(out) | {MARKER: b""} == {"a.png": b"2", "b.png": b"1", MARKER: b""}
    with OutputFolder(out, "cam") as stage:  # adding commands may share a folder
        (stage / "c.png").write_bytes(b"3")
    assert (out / "c.png").read_bytes() == b"3" and (out / "a.png").exists()
    with pytest.raises(OutputError, match=r"holds a convscope maps result.*--force"):
        check_out(out, "scan", mode="replace")
    with OutputFolder(out, "scan", force=True, mode="replace") as stage:  # an earlier result: --force replaces it
        (stage / "manifest.json").write_text("{}")
    assert sorted(snapshot(out)) == [MARKER, "manifest.json"]
    assert json.loads((out / MARKER).read_text())["command"] == "scan"
    with pytest.raises(OutputError, match=r"holds a convscope scan result; choose another path$"):
        check_out(out, "maps")  # maps never merges into a scan (and has no --force to name)


def test_an_interrupted_write_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), OutputFolder(out, "maps") as stage:
        (stage / "a.png").write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_scan_manifest_without_marker_counts_as_a_convscope_result(tmp_path):
    out = tmp_path / "old-scan"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format": "convscope-scan", "format_version": 1}))
    assert check_out(out, "scan", mode="replace").command == "scan"
    (out / "manifest.json").write_text(json.dumps({"format": "someone-else"}))
    with pytest.raises(OutputError, match="did not write"):
        check_out(out, "scan", mode="replace", force=True)


def test_file_system_edges_are_one_output_error(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile / "sub", afile / "sub" / "deeper"):
        with pytest.raises(OutputError, match=r"'.*afile' is a file, not a folder"):
            check_out(out, "maps")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_out(afile, "maps")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OutputError, match="broken symlink"):
        check_out(loop / "out", "maps")
    with pytest.raises(OutputError, match="broken symlink or a symlink loop"):
        check_out(loop, "maps")
    with pytest.raises(OutputError, match="cannot create '/proc/convscope-out'"):
        with OutputFolder("/proc/convscope-out", "maps"):
            pass

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "a.png"))

    with pytest.raises(OutputError, match="No space left on device") as info:
        with OutputFolder(tmp_path / "out", "maps") as stage:
            (stage / "a.png").write_bytes(b"x")
            full()
    assert isinstance(info.value, ConvscopeError) and "out" in str(info.value)
    monkeypatch.setattr(output, "replace_dir", lambda *a: (_ for _ in ()).throw(
        OSError(errno.EROFS, os.strerror(errno.EROFS))))
    with pytest.raises(OutputError, match="Read-only file system"), OutputFolder(tmp_path / "ro", "maps"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "loop"]


def test_claim_folder_for_the_callback(tmp_path):
    out = claim_folder(tmp_path / "runs" / "maps", "callback")
    assert json.loads((out / MARKER).read_text())["command"] == "callback"
    claim_folder(out, "callback")  # again: fine
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("a")
    with pytest.raises(OutputError, match="did not write"):
        claim_folder(notes, "callback")


def test_report_file_rule(tmp_path):
    new = check_file_out(tmp_path / "x" / "y" / "r.html")
    assert new.parent.is_dir()
    new.write_text('<!DOCTYPE html><html><head><meta name="generator" content="convscope"></head></html>')
    assert check_file_out(new) == new  # an earlier report may be replaced
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my page</html>")
    with pytest.raises(OutputError, match="not written by convscope"):
        check_file_out(mine)
    with pytest.raises(OutputError, match="is a folder"):
        check_file_out(tmp_path)


def test_a_folder_filled_by_someone_else_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="filled by something else"):
        with OutputFolder(out, "scan", mode="replace") as stage:
            (stage / "manifest.json").write_text("{}")
            out.mkdir()
            (out / "notes.txt").write_text("arrived meanwhile")
    assert snapshot(out) == {"notes.txt": b"arrived meanwhile"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
