"""``FeatureMapCallback``: watch feature maps change while a Keras model trains.

Public import: ``from convscope.keras import FeatureMapCallback``.

Example:
    >>> from convscope.keras import FeatureMapCallback
    >>> cb = FeatureMapCallback(x_val[:4], layers=["conv_0", "conv_1"], out="runs/maps")
    >>> model.fit(x, y, epochs=10, callbacks=[cb])
    >>> cb.gif_paths          # {"conv_0": runs/maps/conv_0.gif, ...}; TensorBoard: runs/maps/tensorboard
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convscope.callbacks.frames import FrameRecorder
from convscope.callbacks.tensorboard import make_writer
from convscope.errors import OptionError
from convscope.store.output import check_out, claim_folder

log = logging.getLogger(__name__)

UNITS = ("epoch", "batch")


def _paths(images: Any) -> list[Any]:
    """The probe images given as paths (an output folder may not overlap them)."""
    items = images if isinstance(images, (list, tuple)) else [images]
    return [item for item in items if isinstance(item, (str, os.PathLike))]


class FeatureMapCallback(keras.callbacks.Callback):
    """Record the selected layers' feature grids for fixed probe images every N epochs or batches.

    One :class:`~convscope.probe.extractor.Extractor` is taken when training starts (the cached one of
    :func:`convscope.probe.cache.get_extractor`) and reused: it runs
    a compiled forward pass that reads the model's *current* weights on every call, so a recording costs
    one small inference pass plus rendering, never a rebuild. The model is not compiled, renamed or
    otherwise changed. At the end of training one animated GIF per layer is written to ``out`` and, on
    the TensorFlow backend, every recording is also a TensorBoard image summary in ``out/tensorboard``.

    Args:
        images: The probe images: an array ``(N, ...)`` of model inputs, or anything
            :func:`convscope.activations` accepts (paths, folders). Keep N small (1-8).
        layers: Layer selectors; ``None`` = every conv layer.
        every: Record every this many epochs (or batches).
        out: Folder for the GIFs and the TensorBoard logs; ``None`` keeps the frames in memory only.
        unit: ``"epoch"`` (default; after each N-th epoch) or ``"batch"`` (after each N-th training batch,
            counted over the whole run — choose ``every`` of 20 or more to keep training fast).
        norm: Normalization of the grids (``channel``, ``layer``, ``symmetric``, ``percentile``, ``raw``).
        cmap: Colormap (``None``: the mode's default).
        max_channels: Channels drawn per layer (the first ones; fewer keep recording cheap and frames legible).
        tensorboard: Write TensorBoard image summaries (TensorFlow backend and ``out`` given).
        record_start: Also record once when training starts (frame 0, the initial weights).
        gif_duration_ms: Display time of each GIF frame. (Pillow merges consecutive identical frames
            into one longer frame, e.g. for a frozen layer.)
        preprocess: A :class:`~convscope.data.Preprocess` for image files.

    Attributes:
        recorder: The :class:`~convscope.callbacks.frames.FrameRecorder` holding the frames.
        gif_paths: ``{layer: path}`` of the GIFs written at the end of the last ``fit``.
        seconds: Time spent recording (forward pass, rendering, writing), for overhead checks.
    """

    def __init__(
        self,
        images: Any,
        layers: Sequence[Any] | Any | None = None,
        *,
        every: int = 1,
        out: str | Path | None = None,
        unit: str = "epoch",
        norm: str = "channel",
        cmap: str | None = None,
        max_channels: int = 16,
        tensorboard: bool = True,
        record_start: bool = False,
        gif_duration_ms: int = 500,
        preprocess: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise OptionError(f"every must be an integer >= 1, got {every!r}")
        if unit not in UNITS:
            raise OptionError(f"unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}")
        if isinstance(gif_duration_ms, bool) or not isinstance(gif_duration_ms, int) or gif_duration_ms < 1:
            raise OptionError(f"gif_duration_ms must be a positive integer, got {gif_duration_ms!r}")
        FrameRecorder([], norm=norm, cmap=cmap, max_channels=max_channels)  # validates the render options now
        self.images, self.layer_selectors, self.every, self.unit = images, layers, int(every), unit
        self.out = None if out is None else Path(out)
        if self.out is not None:  # the rule of where convscope may write, checked before training starts
            check_out(self.out, "callback", protected=_paths(images), option="out")
        self.norm, self.cmap, self.max_channels = norm, cmap, max_channels
        self.tensorboard, self.record_start, self.gif_duration_ms = tensorboard, record_start, gif_duration_ms
        self.preprocess = preprocess
        self.recorder: FrameRecorder | None = None
        self.gif_paths: dict[str, Path] = {}
        self.seconds = 0.0
        self._extractor: Any = None
        self._x: Any = None
        self._writer: Any = None
        self._batches = 0
        if unit == "epoch":  # keep Keras' asynchronous batch-end dispatch: this instance has no batch hook
            self.on_train_batch_end = keras.callbacks.Callback.on_train_batch_end.__get__(self)  # type: ignore[method-assign]

    # -- set-up ----------------------------------------------------------------------------------------
    def _setup(self) -> None:
        from convscope.models.resolve import resolve_model
        from convscope.probe.cache import get_extractor

        model = self.model
        if self.out is not None:
            claim_folder(self.out, "callback", protected=_paths(self.images), option="out")
        if self._extractor is None or self._extractor.model is not model:
            resolved = resolve_model(model, preprocess=self.preprocess)
            data = resolved.load_inputs(self.images)
            if len(data.names) > 16:
                log.warning(
                    "FeatureMapCallback: %d probe images; each recording renders every one of them "
                    "(1-8 keep training fast)",
                    len(data.names),
                )
            self._x = data.x
            # the cached extractor of (model, layers): built and traced once, reused by every recording
            # (and by later fits); it reads the weights as they are at each call
            self._extractor = get_extractor(model, self.layer_selectors, batch_size=max(16, len(data.names)))
            if self.recorder is None:
                self.recorder = FrameRecorder(
                    data.names,
                    norm=self.norm,
                    cmap=self.cmap,
                    max_channels=self.max_channels,
                    data_format=resolved.data_format,
                )
        if self._writer is None:
            self._writer = make_writer(self.out, self.tensorboard)

    # -- recording -------------------------------------------------------------------------------------
    def record(self, step: int, label: str) -> dict[str, bytes]:
        """Probe the images with the current weights and keep one frame per layer (also called by the hooks).

        Returns:
            ``{layer: PNG bytes}`` of this recording.
        """
        t0 = time.perf_counter()
        if self._extractor is None:
            self._setup()
        _ = self.model  # on JAX this syncs the trained weights back into the model's variables
        assert self.recorder is not None
        frames = self.recorder.add(step, label, self._extractor(self._x))
        if self._writer is not None:
            self._writer.write(step, frames)
        self.seconds += time.perf_counter() - t0
        return frames

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._setup()
        if self.record_start:
            self.record(0, "start")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.unit == "epoch" and (epoch + 1) % self.every == 0:
            self.record(epoch + 1, f"epoch {epoch + 1}")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1
        if self._batches % self.every == 0:
            self.record(self._batches, f"batch {self._batches}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        t0 = time.perf_counter()
        self.close()
        if self.out is not None and self.recorder is not None and len(self.recorder):
            self.gif_paths = self.recorder.write_gifs(self.out, duration_ms=self.gif_duration_ms)
        self.seconds += time.perf_counter() - t0

    # -- results ---------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        """The recorded layer keys (after the first recording)."""
        return list(self.recorder.pngs) if self.recorder is not None else []

    @property
    def steps(self) -> list[int]:
        """The epoch (or batch) number of each recording."""
        return list(self.recorder.steps) if self.recorder is not None else []

    def frames(self, layer: str) -> list[np.ndarray]:
        """The recorded frames of one layer, uint8 ``(H, W, 3)``, in order."""
        if self.recorder is None:
            raise OptionError("nothing recorded yet: the callback has not seen a training run")
        return self.recorder.frames(layer)

    def close(self) -> None:
        """Flush and close the TensorBoard writer (done at the end of each ``fit``; the next opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
