"""Where convscope may write: the one rule every command that writes a folder (or a report file) obeys.

The rule:

- OUT is never the input data, never inside it and never contains it (symlinks resolved): convscope
  does not write into, or replace, what it reads.
- OUT may be new, an empty folder, or an earlier convscope result, recognised by the marker file
  :data:`MARKER` (``.convscope.json``: command, version, time) that convscope writes into every folder it
  creates (a scan's ``manifest.json`` counts too). Anything else (someone's notes, a dataset, a file) is
  refused with one line, even with ``force``.
- An earlier result of a command that adds files (maps, cam, filters, maximize, demo, the callback) takes
  new files beside the old ones (same-named files replaced). A result that is replaced whole (a scan) is
  replaced only when the caller decides so (same scan, or ``force``). A result of another command is
  replaced only with ``force``.

:class:`OutputFolder` applies the rule, stages the files in a hidden sibling folder and publishes them at
the end; any ``OSError`` on the way (a parent that is a file, permission denied, read-only or full file
system) becomes one :class:`~convscope.errors.OutputError` naming the path and the reason.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from convscope.errors import ConvscopeError, OutputError
from convscope.store.atomic import merge_dir, partial_dir, replace_dir, write_atomic

log = logging.getLogger(__name__)

MARKER = ".convscope.json"
SCAN_MANIFEST = "manifest.json"  # a scan folder written before the marker existed is still recognised
REPORT_MARK = '<meta name="generator" content="convscope'
Mode = Literal["merge", "replace"]


def convscope_version() -> str:
    """The installed convscope version (``"unknown"`` when run from a source tree without metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convscope")
    except PackageNotFoundError:
        return "unknown"


def os_error(path: str | os.PathLike[str], exc: OSError, doing: str = "cannot write") -> OutputError:
    """One line for an ``OSError``: the path it concerns and the system's reason."""
    where = exc.filename if exc.filename else path
    reason = exc.strerror or str(exc)
    return OutputError(f"{doing} {str(where)!r}: {reason}")


# -- the rule -----------------------------------------------------------------------------------------------
def _resolve(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def check_not_data(out: str | os.PathLike[str], protected: Iterable[Any], option: str = "--out") -> None:
    """Refuse an OUT that is, lies inside or contains one of the ``protected`` paths (the inputs).

    Args:
        out: The output folder or file.
        protected: Inputs; entries that are not existing paths (zoo names, arrays, ``"mnist"``) are ignored.
        option: How OUT is named in the message.

    Raises:
        OutputError: OUT and an input overlap.
    """
    target = _resolve(Path(out))
    for item in protected:
        if not isinstance(item, (str, os.PathLike)) or not os.path.lexists(item):
            continue
        data = _resolve(Path(item))
        if target == data:
            how = "is the input"
        elif data in target.parents:
            how = "lies inside the input folder"
        elif target in data.parents:
            how = "contains the input"
        else:
            continue
        raise OutputError(
            f"{option} {str(out)!r} {how} {str(item)!r}; convscope never writes into or replaces "
            "what it reads: choose another output path"
        )


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def check_parent(out: Path, option: str = "--out") -> None:
    """Refuse an OUT whose nearest existing ancestor is not a folder (``afile/sub`` with ``afile`` a file)."""
    ancestor = _first_existing(out.parent) if out.parent != out else out
    if ancestor.exists() and not ancestor.is_dir():
        raise OutputError(
            f"{option} {str(out)!r}: {str(ancestor)!r} is a file, not a folder; choose another path"
        )
    if not ancestor.exists():  # a dangling symlink or a loop on the way
        raise OutputError(
            f"{option} {str(out)!r}: {str(ancestor)!r} is a broken symlink; choose another path"
        )


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of an earlier convscope result in ``folder`` (``{"command": ...}``), or ``None``."""
    for name, limit in ((MARKER, 1 << 20), (SCAN_MANIFEST, 256 << 20)):  # never read a huge file whole
        path = folder / name
        try:
            if not path.is_file() or path.stat().st_size > limit:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        if name == MARKER and isinstance(data.get("command"), str):
            return data
        if name == SCAN_MANIFEST and str(data.get("format", "")).startswith("convscope"):
            return {"command": "scan", "version": data.get("versions", {}).get("convscope", "unknown")}
    return None


@dataclass(frozen=True)
class Existing:
    """What is at OUT now: ``"new"`` (nothing), ``"empty"`` (an empty folder) or ``"result"`` (a marker)."""

    state: Literal["new", "empty", "result"]
    command: str | None = None


def check_out(
    out: str | os.PathLike[str],
    command: str,
    *,
    protected: Iterable[Any] = (),
    force: bool = False,
    mode: Mode = "merge",
    option: str = "--out",
) -> Existing:
    """Apply the rule to the output folder ``out`` of ``command``; returns what is there now.

    Raises:
        OutputError: OUT overlaps the inputs, is a file, has a file as ancestor, is a folder convscope
            did not write (even with ``force``), or holds another command's result (without ``force``).
    """
    out = Path(out)
    check_not_data(out, protected, option)
    check_parent(out, option)
    if not os.path.lexists(out):
        return Existing("new")
    if not out.exists():
        raise OutputError(f"{option} {str(out)!r} is a broken symlink or a symlink loop; choose another path")
    if not out.is_dir():
        raise OutputError(f"{option} {str(out)!r} is a file, not a folder; choose another path")
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise os_error(out, exc, "cannot read") from None
    if empty:
        return Existing("empty")
    marker = read_marker(out)
    if marker is None:
        never = "; --force replaces only earlier convscope results" if mode == "replace" else ""
        raise OutputError(
            f"{option} {str(out)!r} is a folder convscope did not write (no {MARKER}); convscope "
            f"writes only into a new or empty folder or over its own earlier results{never}: "
            "choose another path"
        )
    earlier = marker["command"]
    same = earlier == command or (mode == "merge" and earlier != "scan")
    if not same and not force:
        hint = ", or pass --force to replace it" if mode == "replace" else ""
        raise OutputError(
            f"{option} {str(out)!r} holds a convscope {earlier} result; choose another path{hint}"
        )
    return Existing("result", earlier)


def marker_bytes(command: str, **extra: Any) -> bytes:
    """The content of :data:`MARKER` for a folder written by ``command``."""
    data = {
        "convscope": convscope_version(),
        "command": command,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }
    return (json.dumps(data, indent=1) + "\n").encode()


def claim_folder(
    out: str | os.PathLike[str], command: str, *, protected: Iterable[Any] = (), option: str = "--out"
) -> Path:
    """Check OUT and create it (with its marker) for a command that writes files over time (the callback).

    Raises:
        OutputError: As :func:`check_out`, or when the folder cannot be created.
    """
    out = Path(out)
    existing = check_out(out, command, protected=protected, option=option)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if existing.state != "result":
            write_atomic(out / MARKER, marker_bytes(command), overwrite=True)
    except OSError as exc:
        raise os_error(out, exc) from None
    return out


# -- publishing a folder --------------------------------------------------------------------------------------
class OutputFolder:
    """Stage the files of one command run next to OUT and publish them all at the end.

    Example:
        >>> with OutputFolder(out, "maps", protected=inputs) as stage:
        ...     (stage / "a.png").write_bytes(data)      # final path: out / "a.png"

    Args:
        out: The output folder.
        command: The command writing it (recorded in the marker).
        protected: The inputs (OUT may not overlap them).
        force: Replace an earlier result of another command (never anything else).
        mode: ``"merge"``: an earlier result keeps its other files; ``"replace"``: OUT is replaced whole.
        check: Apply :func:`check_out` on entering (a caller that already did passes False).
        marker: Extra fields for the marker.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        command: str,
        *,
        protected: Iterable[Any] = (),
        force: bool = False,
        mode: Mode = "merge",
        check: bool = True,
        marker: dict[str, Any] | None = None,
        option: str = "--out",
    ) -> None:
        self.out = Path(out)
        self.command = command
        self.protected = list(protected)
        self.force = force
        self.mode = mode
        self.check = check
        self.marker = marker or {}
        self.option = option
        self.stage = Path()
        self.existing = Existing("new")

    def __enter__(self) -> Path:
        if self.check:
            self.existing = check_out(
                self.out,
                self.command,
                protected=self.protected,
                force=self.force,
                mode=self.mode,
                option=self.option,
            )
        try:
            self.stage = partial_dir(self.out)
        except OSError as exc:
            raise OutputError(f"cannot create {str(self.out)!r}: {exc.strerror or exc}") from None
        return self.stage

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self._publish()
        except OSError as error:
            raise self._error(error) from None
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, ConvscopeError):
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> OutputError:
        """The error named after OUT (not after the hidden staging folder the system call saw)."""
        name = str(exc.filename or "")
        if not name or name.startswith((str(self.stage), str(self.out.parent / f".{self.out.name}"))):
            return OutputError(f"cannot write {str(self.out)!r}: {exc.strerror or exc}")
        return os_error(self.out, exc)

    def _publish(self) -> None:
        merge = (
            os.path.isdir(self.out)
            and self.existing.state == "result"
            and self.mode == "merge"
            and (not self.force or self.existing.command == self.command)
        )
        if merge:
            if read_marker(self.out) is None or not (self.out / MARKER).is_file():
                write_atomic(self.stage / MARKER, marker_bytes(self.command, **self.marker), overwrite=True)
            merge_dir(self.stage, self.out, last=MARKER)
        else:
            if os.path.isdir(self.out) and any(Path(self.out).iterdir()) and read_marker(self.out) is None:
                raise OutputError(
                    f"{self.option} {str(self.out)!r} was filled by something else while convscope "
                    "was working; nothing was replaced (choose another path)"
                )  # checked again: a race
            write_atomic(self.stage / MARKER, marker_bytes(self.command, **self.marker), overwrite=True)
            replace_dir(self.stage, self.out)
        log.info("%s written to %s", self.command, self.out)


# -- a single output file (the report) ------------------------------------------------------------------------
def check_file_out(
    path: str | os.PathLike[str],
    *,
    protected: Iterable[Any] = (),
    mark: str = REPORT_MARK,
    option: str = "--out",
) -> Path:
    """Apply the rule to an output file; create its missing parent folders. Returns the path.

    The file may be new or an earlier convscope file (its first 4 KiB hold ``mark``); anything else,
    a folder, or a path overlapping the inputs is refused.

    Raises:
        OutputError: As described, or the parent folders cannot be created (with the system's reason).
    """
    path = Path(path)
    check_not_data(path, protected, option)
    if os.path.lexists(path):
        if path.is_dir():
            raise OutputError(f"{option} {str(path)!r} is a folder; give the path of a file")
        if not path.is_file():
            raise OutputError(f"{option} {str(path)!r} exists and is not a regular file; choose another path")
        try:
            with path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", errors="replace")
        except OSError as exc:
            raise os_error(path, exc, "cannot read") from None
        if mark not in head:
            raise OutputError(
                f"{option} {str(path)!r} exists and was not written by convscope; refusing to replace "
                "it: choose another path, or delete it first"
            )
    check_parent(path, option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(path.parent, exc, "cannot create") from None
    return path
