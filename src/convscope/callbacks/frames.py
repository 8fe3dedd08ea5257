"""Frames of a training run: one picture per (layer, recording), kept as PNG bytes, written as GIFs.

A frame shows one layer for every probe image (their feature grids stacked top to bottom, each
captioned with the layer, the step label such as ``epoch 3``, the normalization and value range).
Frames are stored PNG-compressed (tens of kB each), so a long run with many recordings stays small in
memory; :meth:`FrameRecorder.write_gifs` decodes them once, pads them to one size and writes one
animated GIF per layer with Pillow. Pure numpy + Pillow: no Keras here.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convscope.render.encode import encode_png
from convscope.store.atomic import write_atomic

log = logging.getLogger(__name__)

GAP = 4  # white pixels between the grids of two probe images


def stack(images: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """uint8 RGB images top to bottom, left-aligned on white, ``gap`` pixels apart."""
    width = max(i.shape[1] for i in images)
    height = sum(i.shape[0] for i in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for image in images:
        out[y : y + image.shape[0], : image.shape[1]] = image
        y += image.shape[0] + gap
    return out


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` on a white ``(height, width, 3)`` canvas, top-left aligned."""
    if image.shape[:2] == (height, width):
        return image
    out = np.full((height, width, 3), 255, np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 ``(H, W, 3)``."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


class FrameRecorder:
    """Render and keep one frame per (layer, recording).

    Args:
        names: One label per probe image (shown in the captions).
        norm: Normalization mode of the grids.
        cmap: Colormap (``None``: the mode's default).
        max_channels: Channels drawn per grid.
        data_format: The model's data format.

    Attributes:
        steps: The step (epoch or batch number) of each recording.
        labels: The label of each recording, e.g. ``"epoch 3"``.
        pngs: ``{layer: [PNG bytes per recording]}``.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        norm: str = "channel",
        cmap: str | None = None,
        max_channels: int = 16,
        data_format: str = "channels_last",
    ) -> None:
        from convscope.render.prepare import RenderOptions

        RenderOptions.build(norm=norm, cmap=cmap, max_channels=max_channels)  # fail now on a bad option
        self.names = list(names)
        self.norm, self.cmap, self.max_channels, self.data_format = norm, cmap, max_channels, data_format
        self.steps: list[int] = []
        self.labels: list[str] = []
        self.pngs: dict[str, list[bytes]] = {}

    def render(self, key: str, act: np.ndarray, label: str) -> np.ndarray:
        """The frame of one layer: the grid of every probe image, stacked."""
        from convscope.render import render_activation

        grids = [
            render_activation(
                act[i],
                layer=f"{key} | {label} | {name}",
                data_format=self.data_format,
                norm=self.norm,
                cmap=self.cmap,
                max_channels=self.max_channels,
            ).image
            for i, name in enumerate(self.names)
        ]
        return stack(grids)

    def add(self, step: int, label: str, activations: Mapping[str, np.ndarray]) -> dict[str, bytes]:
        """Render and keep one frame per layer; returns ``{layer: PNG bytes}`` of this recording."""
        frames = {}
        for key, act in activations.items():
            if key.startswith("__"):  # the model output, if the extractor returns it
                continue
            png = encode_png(self.render(key, np.asarray(act), label), 1)
            self.pngs.setdefault(key, []).append(png)
            frames[key] = png
        self.steps.append(int(step))
        self.labels.append(label)
        return frames

    def frames(self, key: str) -> list[np.ndarray]:
        """The decoded frames of one layer, in recording order (uint8 ``(H, W, 3)``, sizes may differ)."""
        if key not in self.pngs:
            from convscope.errors import LayerNotFound, nearest

            raise LayerNotFound(f"no frames recorded for {key!r}; recorded: {nearest(key, list(self.pngs))}")
        return [decode_png(p) for p in self.pngs[key]]

    def write_gifs(self, out: str | Path, *, duration_ms: int = 500, loop: int = 0) -> dict[str, Path]:
        """Write ``out/<layer>.gif`` for every layer (one frame per recording; replaced if it exists).

        Returns:
            ``{layer: path}``.
        """
        from convscope.data.names import key_filename as slug

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for key in self.pngs:
            frames = self.frames(key)
            height = max(f.shape[0] for f in frames)
            width = max(f.shape[1] for f in frames)
            # an explicit fast palette per frame: ~5x faster than Pillow's default RGB->GIF conversion
            images = [
                Image.fromarray(pad_to(f, height, width)).quantize(
                    256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
                )
                for f in frames
            ]
            buf = io.BytesIO()
            images[0].save(
                buf,
                "GIF",
                save_all=True,
                append_images=images[1:],
                duration=duration_ms,
                loop=loop,
                optimize=False,
                disposal=1,
            )
            written[key] = write_atomic(out / f"{slug(key)}.gif", buf.getvalue(), overwrite=True)
            log.info("wrote %s (%d frames)", written[key], len(images))
        return written

    def __len__(self) -> int:
        return len(self.steps)

    def describe(self) -> dict[str, Any]:
        """Steps, labels and frame counts (for logs and tests)."""
        return {
            "steps": list(self.steps),
            "labels": list(self.labels),
            "frames": {k: len(v) for k, v in self.pngs.items()},
        }
