"""TensorBoard image summaries of the recorded frames (TensorFlow backend only).

Each frame is already a PNG, so it is written the way ``tf.summary.image`` writes images — a string
tensor ``[width, height, png]`` with the TensorBoard "images" plugin metadata — through
``tf.summary.write``. That is the same event record TensorBoard's Images tab reads, without encoding the
picture a second time and without needing the ``tensorboard`` package at training time (in TF 2.21,
``tf.summary.image`` raises ``TBNotInstalledError`` when it is missing).
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PLUGIN_NAME = "images"  # tensorboard.plugins.image.metadata.PLUGIN_NAME
TAG_PREFIX = "convscope"


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def tag_for(key: str) -> str:
    """The summary tag of a layer: ``convscope/<layer path>`` (TensorBoard groups by the first part)."""
    return f"{TAG_PREFIX}/{key}"


class ImageSummaryWriter:
    """Write PNG frames as TensorBoard image summaries into ``logdir``.

    Args:
        logdir: Folder of the event files (created).
    """

    def __init__(self, logdir: str | Path) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(self.logdir))
        self._metadata = summary_pb2.SummaryMetadata(
            summary_description="feature maps of the probe images, recorded by convscope.keras.FeatureMapCallback",
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=b""),
        )

    def write(self, step: int, frames: dict[str, bytes]) -> None:
        """One image summary per layer at ``step``."""
        tf = self._tf
        with self._writer.as_default():
            for key, png in frames.items():
                width, height = png_size(png)
                tensor = tf.constant([str(width).encode(), str(height).encode(), png], dtype=tf.string)
                tf.summary.write(tag=tag_for(key), tensor=tensor, step=int(step), metadata=self._metadata)

    def flush(self) -> None:
        """Push pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def make_writer(out: Path | None, enabled: bool) -> Any:
    """An :class:`ImageSummaryWriter` for ``out/tensorboard`` when asked for and the backend is TensorFlow."""
    import keras

    if out is None or not enabled:
        return None
    if keras.backend.backend() != "tensorflow":
        log.info(
            "TensorBoard summaries are written on the TensorFlow backend only (backend: %s)",
            keras.backend.backend(),
        )
        return None
    return ImageSummaryWriter(out / "tensorboard")


class ScalarSummaryWriter:
    """Write scalars as TensorBoard scalar summaries into ``logdir`` (the "scalars" plugin's records).

    Args:
        logdir: Folder of the event files (created).
    """

    def __init__(self, logdir: str | Path) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        Path(logdir).mkdir(parents=True, exist_ok=True)
        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(logdir))
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars", content=b"")
        )

    def write(self, step: int, values: dict[str, float]) -> None:
        """One scalar per tag at ``step``."""
        tf = self._tf
        with self._writer.as_default():
            for tag, value in values.items():
                tensor = tf.constant(float(value), dtype=tf.float32)
                tf.summary.write(tag=tag, tensor=tensor, step=int(step), metadata=self._metadata)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()


def make_scalar_writer(out: Path | None, enabled: bool) -> Any:
    """A :class:`ScalarSummaryWriter` for ``out/tensorboard`` when asked for and the backend is TensorFlow."""
    import keras

    if out is None or not enabled or keras.backend.backend() != "tensorflow":
        return None
    return ScalarSummaryWriter(out / "tensorboard")
