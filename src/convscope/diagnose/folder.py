"""Results folders of the diagnose commands, with the scan's manifest discipline.

A folder is complete exactly when it has ``manifest.json``: everything is written into a hidden staging
folder, the manifest last, and the folder is then renamed into place
(:class:`convscope.store.output.OutputFolder`). The manifest holds an ``identity`` (model hashes, layers,
dataset fingerprints, options): re-running the same computation into OUT replaces it, a different one
is refused unless ``force`` (CLI ``--force``), and whatever convscope did not write is never replaced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from convscope.errors import InputError, OutputError
from convscope.store import output
from convscope.store.atomic import write_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def check_result_out(
    out: Path, command: str, identity: dict[str, Any], force: bool, protected: Iterable[Any] = ()
) -> None:
    """Refuse, before any work, an OUT this run may not replace.

    Raises:
        OutputError: OUT overlaps the inputs, is not a convscope folder, holds another command's result
            (without ``force``), or holds a different ``command`` result (without ``force``).
    """
    existing = output.check_out(out, command, protected=protected, force=force, mode="replace")
    if existing.state != "result" or existing.command != command:
        return
    try:
        old = json.loads((out / MANIFEST).read_text()).get("identity")
    except (OSError, ValueError, AttributeError):
        old = None
    if old == json.loads(json.dumps(identity)):
        log.info("%s holds the same %s; it will be replaced by this run", out, command)
        return
    if force:
        log.warning("replacing the different %s result in %s (--force)", command, out)
        return
    differs = [k for k in identity if not isinstance(old, dict) or old.get(k) != identity[k]]
    raise OutputError(
        f"--out {out} holds a different {command} result (differs in: {', '.join(differs) or 'manifest'}); "
        "refusing to overwrite it: choose another --out, or pass --force to replace it"
    )


def write_result(out: Path, command: str, manifest: dict[str, Any], fill: Callable[[Path], None]) -> None:
    """Stage the folder (``fill(stage)`` writes the files), write the manifest last, publish it whole."""
    with output.OutputFolder(out, command, mode="replace", check=False) as stage:
        fill(stage)
        data = json.dumps(manifest, indent=1, allow_nan=False)
        write_atomic(stage / MANIFEST, data.encode(), overwrite=True, fsync=True)
    log.info("%s written to %s", command, out)


def read_manifest(folder: str | Path, fmt: str) -> dict[str, Any]:
    """The manifest of a complete ``fmt`` results folder.

    Raises:
        InputError: The folder is missing, incomplete, or holds another kind of result.
    """
    path = Path(folder).expanduser() / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{str(folder)!r} is not a complete {fmt} results folder (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise InputError(f"{str(folder)!r} holds a {got or 'non-convscope'} result, not a {fmt} result")
    return manifest
