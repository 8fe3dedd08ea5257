"""A finished dataset comparison as data, its results folder, and reading the folder back.

Folder layout (written all-or-nothing, ``manifest.json`` last)::

    manifest.json            format, identity, model, both datasets, options, versions
    summary.json / .txt      per layer: mean |d|, median and max shift, the most shifted channels
    layers/<slug>/a.npz      the scan statistics of the layer over A (b.npz: over B)
    layers/<slug>/shift.npz  histograms, effect sizes, W1, shift, ranking
    layers/<slug>/shift.png  spatial-max histograms of the most shifted channels, A and B overlaid
    layers/<slug>/top_a.png  receptive-field crops of those channels' top images in A (top_b.png: in B)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convscope.data.names import key_filename
from convscope.diagnose.folder import read_manifest, write_result
from convscope.diagnose.shift import ARRAYS, LayerShift
from convscope.errors import InputError, LayerNotFound, nearest
from convscope.scan.layerstats import LayerStats

FORMAT = "convscope-compare"
FORMAT_VERSION = 1
#: Channels drawn per layer (histograms and crops), most shifted first.
SHOWN = 16


@dataclass(frozen=True, eq=False)
class CompareResult:
    """The shift of every compared layer between dataset A and dataset B.

    Attributes:
        manifest: Format, identity, model, datasets (``a``, ``b``), options, versions.
        layers: ``{key: LayerShift}`` in model order.
        path: The results folder, or ``None`` for a result kept in memory.
    """

    manifest: dict[str, Any]
    layers: dict[str, LayerShift]
    path: Path | None = None

    def __getitem__(self, key: str) -> LayerShift:
        try:
            return self.layers[key]
        except KeyError:
            raise LayerNotFound(
                f"no layer {key!r} in this comparison; compared: {', '.join(self.layers)} "
                f"(nearest: {', '.join(nearest(key, list(self.layers)))})"
            ) from None

    def names(self) -> tuple[str, str]:
        """How datasets A and B are named."""
        d = self.manifest["datasets"]
        return str(d["a"]["source"]), str(d["b"]["source"])

    def summary(self, top: int = SHOWN) -> dict[str, Any]:
        """JSON-able summary: datasets, and per layer its summary with the ``top`` most shifted channels."""
        d = self.manifest["datasets"]
        return {
            "a": {"source": d["a"]["source"], "size": d["a"]["size"]},
            "b": {"source": d["b"]["source"], "size": d["b"]["size"]},
            "layers": [layer.summary(top) for layer in self.layers.values()],
        }

    def summary_text(self, top: int = 5) -> str:
        """A few lines per layer: the layer's shift and its most shifted channels."""
        a, b = self.names()
        d = self.manifest["datasets"]
        lines = [f"compare: A = {a} ({d['a']['size']} images), B = {b} ({d['b']['size']} images)",
                 "shift = W1 of the per-image spatial max / pooled sd; d = Cohen's d (B - A)"]  # fmt: skip
        for layer in self.layers.values():
            s = layer.summary(top)
            lines.append(
                f"{s['key']}: {s['channels']} channels, median shift {_f(s['median_shift'])}, "
                f"max {_f(s['max_shift'])}, mean |d| {_f(s['mean_abs_effect'])}"
            )
            for ch in s["top"]:
                lines.append(
                    f"  channel {ch['channel']}: shift {_f(ch['shift'])}, d {_f(ch['effect'])}, "
                    f"W1 {_f(ch['w1'])}, spatial max {_f(ch['spatial_max_mean_a'])} -> "
                    f"{_f(ch['spatial_max_mean_b'])}"
                )
        return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def write_compare(result: CompareResult, sources: Sequence[Any], out: Path, crops: bool) -> CompareResult:
    """Write ``result`` to ``out`` (pictures drawn from the two sources' display pictures)."""
    from convscope.diagnose.plots import histogram_picture
    from convscope.render.encode import encode_png
    from convscope.scan.crops import has_crops, top_picture

    manifest = dict(result.manifest)
    manifest["layers"] = [
        {**s.a.meta(), "slug": key_filename(k), "b": s.b.meta()} for k, s in result.layers.items()
    ]
    names = result.names()

    def fill(stage: Path) -> None:
        for key, layer in result.layers.items():
            folder = stage / "layers" / key_filename(key)
            folder.mkdir(parents=True)
            np.savez(folder / "a.npz", **layer.a.arrays())  # type: ignore[arg-type]
            np.savez(folder / "b.npz", **layer.b.arrays())  # type: ignore[arg-type]
            np.savez(folder / "shift.npz", **layer.arrays())  # type: ignore[arg-type]
            shown = [int(c) for c in layer.rank[:SHOWN]]
            (folder / "shift.png").write_bytes(encode_png(histogram_picture(layer, shown, names)))
            if crops and has_crops(layer.a) and layer.a.top_index.shape[1]:
                for side, stats, source, name in (("a", layer.a, sources[0], names[0]),
                                                  ("b", layer.b, sources[1], names[1])):  # fmt: skip
                    title = f"{key} in {side.upper()} = {name}: top images of the most shifted channels"
                    picture = top_picture(stats, source.display, shown, title=title)
                    (folder / f"top_{side}.png").write_bytes(encode_png(picture))
        (stage / "summary.json").write_text(json.dumps(result.summary(), indent=1, allow_nan=False))
        (stage / "summary.txt").write_text(result.summary_text())

    write_result(out, "compare", manifest, fill)
    return CompareResult(manifest=manifest, layers=result.layers, path=out)


def load_compare(folder: str | Path) -> CompareResult:
    """Read a folder written by :func:`~convscope.diagnose.compare` back.

    Raises:
        InputError: Not a complete compare folder, or a file in it is missing or unreadable.
    """
    manifest = read_manifest(folder, FORMAT)
    root = Path(folder).expanduser()
    layers: dict[str, LayerShift] = {}
    for meta in manifest.get("layers", []):
        where = root / "layers" / str(meta["slug"])
        try:
            a, b, shift = (_npz(where / f"{name}.npz") for name in ("a", "b", "shift"))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(
                f"cannot read the compare layer {meta.get('key')!r} in {str(where)!r}: {exc}"
            ) from None
        stats_a = LayerStats.from_parts(meta, a)
        stats_b = LayerStats.from_parts(meta["b"], b)
        layers[stats_a.key] = LayerShift(stats_a.key, stats_a, stats_b, **{k: shift[k] for k in ARRAYS})
    return CompareResult(manifest=manifest, layers=layers, path=root)


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
