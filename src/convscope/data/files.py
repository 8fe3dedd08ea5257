"""File checks before anything is opened: only regular files are read, never a FIFO, socket or device.

A FIFO would block forever and a device could stream without end; a symlink loop is named as such. Every
reader (images, arrays' callers, TIFF stacks, DICOM, NIfTI) calls :func:`check_file` first and opens with
:func:`open_regular`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from convscope.errors import InputError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a readable regular file (``"is a symlink loop"``, ...), or ``None`` if it is one.

    Never opens the path: ``os.stat`` only (following symlinks).
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "is a symlink loop"
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return (
                "is a broken symlink (its target does not exist)"
                if os.path.islink(path)
                else "does not exist"
            )
        return f"cannot be read: {err.strerror or err}"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder"
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        return f"is {kind}, not a regular file"
    return None


def check_file(path: str | Path, what: str = "file") -> None:
    """Raise :class:`InputError` in one line unless ``path`` is a regular file (see :func:`file_problem`)."""
    problem = file_problem(path)
    if problem == "does not exist":
        raise InputError(f"no such file or folder: {path}")
    if problem == "is a folder":
        raise InputError(f"{path} is a folder; expected one {what}")
    if problem is not None:
        raise InputError(f"{path} {problem}; convscope reads only regular files")


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without ever blocking (a FIFO swapped in meanwhile is refused)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path} is not a regular file; convscope reads only regular files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
