"""Atomic writes: one file, or a whole folder staged next to its final place and moved in at the end.

Everything convscope writes goes through here, so an interrupted run (Ctrl-C, a crash, a full disk) never
leaves a half-written file or a folder that looks complete:

- :func:`write_atomic` writes a file through a temporary file in the same folder and renames it into
  place (optionally refusing to replace an existing file, even one that appears meanwhile).
- :func:`partial_dir` makes a hidden sibling ``.OUT.partial-<pid>-<rand>`` of a folder OUT (same file
  system, so renames are atomic); :func:`replace_dir` swaps a finished one in for OUT, and
  :func:`merge_dir` moves its files into an existing OUT one by one (replacing files of the same name).
- :func:`clean_stale` removes partial folders left by processes that no longer run; :func:`partial_dir`
  calls it, so leftovers of a killed run disappear the next time the same OUT is written.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

PARTIAL = ".partial-"


def _exists(target: Path) -> FileExistsError:
    return FileExistsError(f"{str(target)!r} already exists; pass overwrite=True to replace it")


@contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, overwrite: bool = True, fsync: bool = False, mode: int = 0o644
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds, move it to ``path``.

    The caller writes the temporary file (by any means: ``open``, ``np.savez``, a zip writer). Without
    ``overwrite`` an existing file is never replaced, not even one that appears while writing (the final
    step is a hard link, which fails if the name is taken; where links are not supported an existence
    check is used instead). On error the temporary file is removed and ``path`` is untouched.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        FileNotFoundError: The folder of ``path`` does not exist.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise _exists(target)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder {str(target.parent)!r} does not exist (saving {str(target)!r})")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # mkstemp creates 0600; a saved file should be readable like any file
        if fsync:
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False, fsync: bool = False
) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, so no file is ever half-written.

    Args:
        path: The file to write.
        data: Its bytes.
        overwrite: Replace an existing file (otherwise an existing file is never touched).
        fsync: Flush the data to disk before the rename (for files that mark a folder complete).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        FileNotFoundError: The folder does not exist.
    """
    with atomic_path(path, overwrite=overwrite, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _link_no_clobber(tmp: Path, target: Path) -> None:
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:  # file system without hard links
        if target.exists():
            raise _exists(target) from None
        os.replace(tmp, target)


# -- folders ------------------------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine (or cannot be probed: then assume it does)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _partial_pattern(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}{re.escape(PARTIAL)}(\d+)-[A-Za-z0-9_]+$")


def clean_stale(out: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden ``.OUT.partial-<pid>-*`` folders next to OUT whose process no longer runs.

    Returns:
        The removed folders (partial folders of live processes, including this one, are kept).
    """
    out = Path(out)
    pattern = _partial_pattern(out)
    removed = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_alive(int(match.group(1))) or entry.is_symlink() or not entry.is_dir():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.info("removed %s, left by an interrupted run (process %s)", entry, match.group(1))
        removed.append(entry)
    return removed


def partial_dir(out: str | os.PathLike[str]) -> Path:
    """A new hidden folder ``.OUT.partial-<pid>-<rand>`` next to OUT (created; stale ones cleaned first).

    Raises:
        OSError: The parent folder cannot be created or written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}{os.getpid()}-", dir=out.parent))


def replace_dir(stage: Path, out: Path) -> None:
    """Move the finished folder ``stage`` to ``out``, replacing what is there (the caller checked it may).

    The previous ``out`` is first moved aside (to a partial folder, so a crash in between leaves it for
    :func:`clean_stale`), put back if the final rename fails, and deleted after it succeeds.
    """
    old = None
    if out.is_dir() and not out.is_symlink() and any(out.iterdir()):
        old = partial_dir(out)
        os.replace(out, old / "previous")
    elif out.is_dir() and not out.is_symlink():
        out.rmdir()  # empty: nothing to keep
    try:
        os.replace(stage, out)
    except BaseException:
        if old is not None:
            os.replace(old / "previous", out)  # put the previous result back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def merge_dir(stage: Path, out: Path, *, last: str | None = None) -> None:
    """Move every file of ``stage`` to the same relative place under ``out`` (replacing same-named files).

    Args:
        stage: The finished staging folder (emptied; the caller removes it).
        out: An existing folder.
        last: A file name (relative to ``stage``) moved after all others, e.g. a marker.
    """
    deferred = []
    for root, _, files in os.walk(stage):
        for filename in sorted(files):
            src = Path(root) / filename
            rel = src.relative_to(stage)
            if last is not None and str(rel) == last:
                deferred.append(src)
                continue
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for src in deferred:
        os.replace(src, out / src.relative_to(stage))
