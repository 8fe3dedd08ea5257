"""Checkpoints of a running scan, so an interrupted scan (Ctrl-C, a crash, ``kill -9``) can be resumed.

A checkpoint is the exact running state of the accumulators (:mod:`convscope.scan.snapshot`) over the
rows ``0..rows`` (the local engine scans rows in order) plus, for the Ray engine, the partial results of
finished shards beyond that prefix (``held``, by row range). Resuming restores that state and scans the
rest with the same batches and the same merge order, so a resumed scan ends with the same bytes as an
uninterrupted one: every row is counted exactly once.

The checkpoint is one file, ``.OUT.checkpoint/state.npz`` next to the results folder OUT (never inside
it: OUT stays an earlier result or nothing until the finished scan replaces it at once). It is replaced
atomically (temporary file, fsync, rename), so a kill at any moment leaves the previous checkpoint or the
new one, never a torn one, and it is deleted only after the results are written. It records the scan's
fingerprint (model hash, layers, dataset fingerprint and size, every option that changes the numbers,
package versions); resuming a different scan is refused, naming what differs, and touches nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import OptionError
from convscope.scan.snapshot import ScanState, pack, unpack
from convscope.store.atomic import atomic_path

log = logging.getLogger(__name__)

FILE = "state.npz"
VERSION = 1
#: Without ``checkpoint_every`` (CLI ``--checkpoint-every``), a checkpoint is saved at most this often.
EVERY_SECONDS = 60.0


def checkpoint_dir(out: str | Path) -> Path:
    """The checkpoint folder of the results folder ``out``: the hidden sibling ``.OUT.checkpoint``."""
    out = Path(os.path.abspath(out))  # "." or "scan/" name the folder itself
    return out.parent / f".{out.name}.checkpoint"


def scan_fingerprint(manifest: dict[str, Any], engine: str) -> dict[str, Any]:
    """What must not change between a scan and its resumption: the scan identity of the manifest (model
    hash, layers, dataset fingerprint and size, top-k, preprocessing, input shape, tokens) plus the batch
    size and engine (they fix the batches and the merge order) and the package versions."""
    from convscope.scan.manifest import identity, versions

    options = manifest.get("options", {})
    return {
        **identity(manifest),
        "batch_size": options.get("batch_size"),
        "engine": engine,
        "versions": versions(engine),
    }


def _differs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


class Checkpointer:
    """Saves and loads the checkpoint of one scan, on a schedule.

    Args:
        folder: The checkpoint folder (:func:`checkpoint_dir`).
        fingerprint: What makes two scans the same scan (JSON-able).
        size: Rows in the dataset.
        every: Save after this many batches; ``None`` = at most every :data:`EVERY_SECONDS`.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, Any], size: int, every: int | None) -> None:
        self.folder = folder
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back
        self.size = size
        self.every = every
        self._batches = 0
        self._last = time.monotonic()

    @property
    def path(self) -> Path:
        return self.folder / FILE

    def exists(self) -> bool:
        return self.path.is_file()

    # -- saving -------------------------------------------------------------------------------------------
    def tick(self, batches: int, state: Callable[[], ScanState], *, force: bool = False) -> bool:
        """Count ``batches`` more batches done; save ``state()`` when one is due (or ``force``)."""
        self._batches += batches
        due = (
            self._batches >= self.every
            if self.every is not None
            else time.monotonic() - self._last >= EVERY_SECONDS
        )
        if not (due or force):
            return False
        self.save(state())
        return True

    def save(self, state: ScanState) -> None:
        """Write ``state`` atomically (the previous checkpoint stays until the new one is complete)."""
        meta, arrays = pack(state)
        meta = {"version": VERSION, "fingerprint": self.fingerprint, "size": self.size, **meta}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path, overwrite=True, fsync=True) as tmp, tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stub: **kwds vs allow_pickle
        self._batches, self._last = 0, time.monotonic()
        log.info(
            "checkpoint: %d of %d rows (%.0f%%) saved to %s",
            state.done,
            self.size,
            100.0 * state.done / max(self.size, 1),
            self.path,
        )

    def remove(self) -> None:
        """Delete the checkpoint folder (after the results are written)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- loading ------------------------------------------------------------------------------------------
    def load(self) -> ScanState:
        """The saved state, after checking it belongs to this scan.

        Raises:
            OptionError: No checkpoint, an unreadable one, or one of a different scan (naming what differs).
        """
        if not self.exists():
            raise OptionError(
                f"--resume: no checkpoint of an interrupted scan at {str(self.path)!r}; "
                "run without --resume to start the scan"
            )
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                meta = json.loads(npz["meta"].tobytes().decode())
                arrays = {name: npz[name] for name in npz.files if name != "meta"}
        except (OSError, ValueError, KeyError) as exc:
            raise OptionError(
                f"--resume: the checkpoint {str(self.path)!r} cannot be read ({exc}); "
                "run without --resume (with --force) to start over"
            ) from None
        old = (
            meta.get("fingerprint", {})
            if meta.get("version") == VERSION
            else {"version": meta.get("version")}
        )
        if old != self.fingerprint:
            differs = _differs(old, self.fingerprint)
            raise OptionError(
                f"--resume: the checkpoint at {str(self.folder)!r} is of a different scan (differs in: "
                f"{', '.join(differs)}); resume with the same model, data and options, or run without "
                "--resume (with --force) to start over"
            )
        try:
            return unpack(meta, arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise OptionError(
                f"--resume: the checkpoint {str(self.path)!r} is damaged ({exc}); "
                "run without --resume (with --force) to start over"
            ) from None


def read_progress(folder: Path) -> tuple[int, int] | None:
    """``(rows done, dataset rows)`` of the checkpoint in ``folder``, or ``None`` when there is none."""
    try:
        with np.load(folder / FILE, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
    except (OSError, ValueError, KeyError):
        return None
    return int(meta["done"]), int(meta["size"])


def check_options(out: Any, *, every: Any, resume: bool) -> None:
    """Refuse a bad ``every`` or ``resume`` without OUT (before any model is loaded).

    Raises:
        OptionError: Naming the option and what is accepted.
    """
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
        raise OptionError(f"--checkpoint-every must be an integer >= 0 (batches; 0 = never), got {every!r}")
    if resume and out is None:
        raise OptionError("--resume needs --out: the checkpoint is kept next to the results folder")


def open_checkpoint(
    out: Path | None,
    fingerprint: dict[str, Any],
    size: int,
    *,
    every: int | None,
    resume: bool,
    force: bool,
) -> tuple[Checkpointer | None, ScanState | None]:
    """Decide how a scan starts: the checkpointer (``None`` without OUT or with ``every == 0``) and the
    state to resume from (``None``: from the first row). Nothing is written or deleted on refusal.

    Raises:
        OptionError: ``resume`` without OUT, or without a matching checkpoint; a bad ``every``; a
            checkpoint left at OUT by an interrupted scan while neither ``resume`` nor ``force`` is given.
    """
    check_options(out, every=every, resume=resume)
    if out is None:
        return None, None
    ckpt = Checkpointer(checkpoint_dir(out), fingerprint, size, every)
    for stale in ckpt.folder.glob(f".{FILE}.*.tmp") if ckpt.folder.is_dir() else ():
        stale.unlink(missing_ok=True)  # a temporary file of a killed run (the checkpoint itself is whole)
    if resume:
        state = ckpt.load()
        log.info("resuming from %s: %d of %d rows already scanned", ckpt.path, state.done, size)
        return (ckpt if every != 0 else None), state
    if ckpt.exists():
        progress = read_progress(ckpt.folder)
        done = f" ({progress[0]} of {progress[1]} rows)" if progress else ""
        if not force:
            raise OptionError(
                f"--out {str(out)!r} has the checkpoint of an interrupted scan{done} in "
                f"{str(ckpt.folder)!r}; pass --resume to continue it, or --force to start over"
            )
        log.warning("discarding the checkpoint of an interrupted scan%s (--force)", done)
        ckpt.remove()
    return (ckpt if every != 0 else None), None
