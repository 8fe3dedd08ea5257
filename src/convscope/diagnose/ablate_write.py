"""Writing an ``ablate`` results folder all-or-nothing, with the top-k crops of the channels it lists.

The crops are the scan's (:mod:`convscope.scan.crops`): from the scan given, when it covers the layer on the
same data, else from an in-memory scan of that one layer (one more prefix pass, memory bounded as a scan's).
Everything is staged in a hidden sibling folder and published at the end, the manifest written last
(:class:`convscope.store.output.OutputFolder`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from convscope.diagnose.ablate_result import CHANNELS_DIR, MANIFEST, AblationResult, channel_file
from convscope.scan.source import Source
from convscope.store.atomic import write_atomic

log = logging.getLogger(__name__)


def layer_stats(resolved: Any, data: Any, source: Source, path: str, scan: Any, top_k: int) -> Any:
    """The scan statistics (top-k images, receptive fields) of layer ``path`` on this data."""
    from convscope.scan import load_scan
    from convscope.scan import scan as run_scan

    if scan is not None:
        result = load_scan(scan) if isinstance(scan, (str, Path)) else scan
        same = result.manifest.get("dataset", {}).get("fingerprint") == source.fingerprint
        if path in result.layers and same:
            return result[path]
        log.warning("the scan given does not cover layer %s on this dataset; scanning it for the crops", path)
    return run_scan(resolved, data, layers=[path], top_k=top_k, crops=False)[path]


def class_title(result: AblationResult, k: int) -> str:
    return f"{result.layer}: channels whose removal lowers class {result.class_label(k)} most"


def write_ablation(
    result: AblationResult,
    resolved: Any,
    data: Any,
    source: Source,
    out: Path,
    scan: Any,
    top_k: int,
    listed: int,
    force: bool,
) -> AblationResult:
    """Write ``out`` (arrays, summary, crop pictures, manifest last) and return the result with its path."""
    from convscope.render.encode import encode_png
    from convscope.scan.crops import channel_picture, has_crops, top_picture
    from convscope.store.output import OutputFolder

    stats = layer_stats(resolved, data, source, result.layer, scan, top_k)
    drawn = has_crops(stats) and stats.top_index.shape[1] > 0
    protected = (data, *([resolved.source] if resolved.source else []))
    channels = result.listed_channels(listed)
    with OutputFolder(out, "ablate", protected=protected, force=force, mode="replace") as stage:
        result.save_into(stage)
        if drawn:
            (stage / CHANNELS_DIR).mkdir()
            for c in channels:
                (stage / channel_file(c)).write_bytes(encode_png(channel_picture(stats, c, source.display)))
            (stage / "classes").mkdir()
            for k in range(result.delta_own.shape[1]):
                if result.group_count[k] > 0:
                    picture = top_picture(
                        stats, source.display, result.top_channels(k, listed), title=class_title(result, k)
                    )
                    (stage / "classes" / f"class{k:04d}.png").write_bytes(encode_png(picture))
        manifest = {**result.manifest, "pictures": {"channels": channels if drawn else [], "top_k": top_k}}
        write_atomic(stage / MANIFEST, json.dumps(manifest, indent=1).encode(), overwrite=True, fsync=True)
    log.info("ablate written to %s", out)
    return dataclasses.replace(result, manifest=manifest, path=out)


__all__ = ["class_title", "layer_stats", "write_ablation"]
