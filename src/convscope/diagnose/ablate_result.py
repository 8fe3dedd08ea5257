"""The result of ``ablate``: per channel of one layer, its causal effect on every class logit and on accuracy.

A results folder holds ``manifest.json`` (what was ablated, how, on what data; written last),
``ablation.npz`` (the arrays), ``summary.txt`` and ``channels/chNNNN.png`` (the top-k receptive-field crops
of the channels the summary lists). Read it back with :func:`load_ablation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import InputError

FORMAT = "convscope-ablate"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "ablation.npz"
CHANNELS_DIR = "channels"


def channel_file(channel: int) -> str:
    """``channels/ch0012.png``: the crops picture of a channel."""
    return f"{CHANNELS_DIR}/ch{channel:04d}.png"


@dataclass(frozen=True, eq=False)
class AblationResult:
    """Effects of removing each channel of a layer, over a dataset.

    Attributes:
        manifest: Layer, mode, route, model identity, dataset, class names, options.
        values: float64 ``(C,)`` what each channel was replaced by (0, or its dataset mean).
        delta_logit: ``(C, K)`` mean change of logit ``k`` over all images when channel ``c`` is removed.
        delta_own: ``(C, K)`` mean change of logit ``k`` over the images of class ``k`` (true class with
            labels, else the model's top-1): how much removing ``c`` hurts class ``k`` (negative = hurts).
        changed: ``(C, K)`` fraction of class ``k``'s images whose top-1 class changes.
        group_count: ``(K,)`` images per class.
        base_accuracy: ``(K,)`` accuracy per true class of the unchanged model (labels only).
        accuracy: ``(C, K)`` accuracy per true class with channel ``c`` removed (labels only).
        path: The results folder, when saved or loaded.
    """

    manifest: dict[str, Any]
    values: np.ndarray
    delta_logit: np.ndarray
    delta_own: np.ndarray
    changed: np.ndarray
    group_count: np.ndarray
    base_accuracy: np.ndarray | None = None
    accuracy: np.ndarray | None = None
    correct_base: np.ndarray | None = None
    correct: np.ndarray | None = None
    path: Path | None = field(default=None)

    # -- facts -----------------------------------------------------------------------------------------
    @property
    def layer(self) -> str:
        return str(self.manifest["layer"])

    @property
    def mode(self) -> str:
        return str(self.manifest["mode"])

    @property
    def route(self) -> str:
        return str(self.manifest["route"])

    @property
    def channels(self) -> int:
        return int(self.delta_logit.shape[0])

    @property
    def images(self) -> int:
        return int(self.manifest["dataset"]["size"])

    @property
    def labelled(self) -> bool:
        return self.accuracy is not None

    def class_label(self, k: int) -> str:
        """``"7"`` or ``"967 espresso"``: a class as every view names it."""
        names = self.manifest.get("classes") or []
        name = str(names[k]) if k < len(names) else ""
        return str(k) if not name or name == str(k) else f"{k} {name}"

    @property
    def delta_accuracy(self) -> np.ndarray | None:
        """``(C,)`` change of the overall accuracy when each channel is removed (labels only)."""
        if self.correct is None or self.correct_base is None:
            return None
        total = max(int(self.group_count.sum()), 1)
        return (self.correct.sum(axis=1) - self.correct_base.sum()) / total

    @property
    def selectivity(self) -> np.ndarray:
        """``(C, K)``: ``delta_own[c, k]`` minus the mean of ``delta_own[c]`` over the other classes (a
        channel that hurts class ``k`` alone has a large negative value)."""
        own = np.nan_to_num(self.delta_own, nan=0.0)
        k = own.shape[1]
        others = (own.sum(axis=1, keepdims=True) - own) / max(k - 1, 1)
        return own - others

    # -- questions -------------------------------------------------------------------------------------
    def top_channels(self, k: int, n: int = 5) -> list[int]:
        """The ``n`` channels whose removal lowers class ``k``'s logit most on its own images."""
        column = np.nan_to_num(self.delta_own[:, k], nan=np.inf)
        return [int(c) for c in np.argsort(column, kind="stable")[:n]]

    def top_classes(self, channel: int, n: int = 3) -> list[int]:
        """The ``n`` classes whose own logit drops most when ``channel`` is removed."""
        row = np.nan_to_num(self.delta_own[channel], nan=np.inf)
        return [int(k) for k in np.argsort(row, kind="stable")[:n]]

    def specific_channels(self, n: int = 5) -> list[tuple[int, int]]:
        """``(channel, class)`` pairs of the ``n`` channels most specific to one class: removing the channel
        lowers that class's logit most below its mean change on the other classes (most negative
        :attr:`selectivity` first)."""
        sel = self.selectivity
        sel = np.where(self.group_count[None] > 0, sel, np.inf)
        best = np.argmin(sel, axis=1)
        order = np.argsort(sel[np.arange(self.channels), best], kind="stable")[:n]
        return [(int(c), int(best[c])) for c in order]

    def listed_channels(self, n: int = 3) -> list[int]:
        """Channels the summary lists: the top ``n`` of every class (each once, in class order)."""
        found: dict[int, None] = dict.fromkeys(c for c, _ in self.specific_channels(n + 2))
        for k in range(self.delta_own.shape[1]):
            if self.group_count[k] > 0:
                found.update(dict.fromkeys(self.top_channels(k, n)))
        return list(found)

    def channel_text(self, channel: int) -> str:
        """One line on a channel: the classes it matters for and the accuracy change."""
        parts = [
            f"{self.class_label(k)} {self.delta_own[channel, k]:+.3f}" for k in self.top_classes(channel)
        ]
        line = f"ch {channel}: own-logit change " + ", ".join(parts)
        acc = self.delta_accuracy
        if acc is not None:
            line += f"; accuracy {acc[channel] * 100:+.2f} pts"
        return line

    def summary_text(self, n: int = 3) -> str:
        """Top channels per class and the channels that matter most overall, as plain text."""
        grouped = "true class" if self.labelled else "top-1 class"
        lines = [
            f"ablate {self.layer} ({self.channels} channels, mode {self.mode}, route {self.route}) over "
            f"{self.images} images; classes are each image's {grouped}; effects are changes of the class "
            "logit (negative = removing the channel hurts the class)",
        ]
        if self.base_accuracy is not None and self.correct_base is not None:
            acc = self.correct_base.sum() / max(int(self.group_count.sum()), 1)
            lines.append(f"accuracy of the unchanged model: {acc:.2%}")
        lines.append("top channels per class:")
        sel = self.selectivity
        for k in range(self.delta_own.shape[1]):
            if self.group_count[k] == 0:
                continue
            cells = []
            for c in self.top_channels(k, n):
                cell = f"ch {c} {self.delta_own[c, k]:+.3f} (sel {sel[c, k]:+.3f}"
                if self.accuracy is not None and self.base_accuracy is not None:
                    cell += f", acc {(self.accuracy[c, k] - self.base_accuracy[k]) * 100:+.1f} pts"
                cells.append(cell + ")")
            lines.append(f"  {self.class_label(k)} ({int(self.group_count[k])} images): " + "; ".join(cells))
        lines.append(
            "most class-specific channels: "
            + ", ".join(
                f"ch {c} -> {self.class_label(k)} ({sel[c, k]:+.3f})"
                for c, k in self.specific_channels(n + 2)
            )
        )
        acc = self.delta_accuracy
        if acc is not None:
            worst = np.argsort(acc, kind="stable")[:n]
            lines.append(
                "largest accuracy drops: " + ", ".join(f"ch {c} {acc[c] * 100:+.2f} pts" for c in worst)
            )
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (
            f"AblationResult(layer={self.layer!r}, channels={self.channels}, images={self.images}, "
            f"mode={self.mode!r}, route={self.route!r})"
        )

    # -- storage ---------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        names = ("values", "delta_logit", "delta_own", "changed", "group_count")
        optional = ("base_accuracy", "accuracy", "correct_base", "correct")
        out = {name: getattr(self, name) for name in names}
        out.update({name: getattr(self, name) for name in optional if getattr(self, name) is not None})
        return out

    def save_into(self, folder: Path) -> None:
        """Write ``ablation.npz`` and ``summary.txt`` into ``folder`` (the caller writes the manifest last)."""
        np.savez(folder / ARRAYS, **self.arrays())  # type: ignore[arg-type]
        (folder / "summary.txt").write_text(self.summary_text())


def load_ablation(path: str | Path) -> AblationResult:
    """Read an ``ablate`` results folder.

    Raises:
        InputError: The folder is not a complete ablate result (no manifest, another format, missing arrays).
    """
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{str(folder)!r} is not an ablate result folder (no readable {MANIFEST}: {exc})"
        ) from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{str(folder)!r} holds {manifest.get('format')!r} v{manifest.get('format_version')}, not "
            f"{FORMAT} v{FORMAT_VERSION}; run `convscope ablate` again"
        )
    try:
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return AblationResult(manifest=manifest, path=folder, **arrays)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{str(folder / ARRAYS)!r} cannot be read: {exc}") from None


__all__ = [
    "ARRAYS",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "AblationResult",
    "channel_file",
    "load_ablation",
]
