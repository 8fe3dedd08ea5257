"""``DynamicsCallback``: how each layer's representation moves while a Keras model trains.

Public import: ``from convscope.keras import DynamicsCallback``.

Example:
    >>> from convscope.keras import DynamicsCallback
    >>> cb = DynamicsCallback(x_val[:256], layers=["conv_0", "conv_1", "dense_0"], out="runs/dynamics")
    >>> model.fit(x, y, epochs=10, callbacks=[cb])
    >>> cb.history[-1]["cka_to_previous"]     # {"conv_0": 0.99, ...}; also runs/dynamics/dynamics.png
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convscope.callbacks.tensorboard import make_scalar_writer
from convscope.diagnose.cka import MAX_BATCH, MIN_BATCH
from convscope.diagnose.dynamics import Snapshot, cka_between, snapshot
from convscope.errors import InputError, OptionError
from convscope.store.atomic import write_atomic
from convscope.store.output import check_out, claim_folder

log = logging.getLogger(__name__)

METRICS = ("cka_to_previous", "dead_fraction", "saturated_fraction")


class DynamicsCallback(keras.callbacks.Callback):
    """Per epoch and layer: linear CKA to the previous recording, and the fractions of dead / saturated channels.

    The probe images run through the cached compiled extractor (one forward pass for all layers, the
    current weights) in minibatches; CKA is the minibatch unbiased-HSIC estimate of
    :mod:`convscope.diagnose.cka`, so memory stays ``O(batch^2 x layers)`` per minibatch. The model is not
    compiled, renamed or otherwise changed. Each recording goes to :attr:`history`, and with ``out`` to
    TensorBoard scalars (``out/tensorboard``, tags ``dynamics/<metric>/<layer>``); at the end of
    training ``out/dynamics.json`` and ``out/dynamics.png`` (one panel per metric, one line per layer).

    Args:
        images: Probe model inputs ``(N, ...)`` with ``N >= 4`` (a few hundred held-out images), or
            anything the resolved model's ``load_inputs`` reads (paths, folders).
        layers: Layer selectors; ``None`` = every conv layer.
        out: Folder for the TensorBoard logs, the JSON and the plot; ``None`` keeps :attr:`history` only.
        batch: Minibatch of the HSIC estimate and of the forward pass (4 to 1024).
        every: Record every this many epochs.
        tensorboard: Write TensorBoard scalars (TensorFlow backend and ``out`` given).
        record_start: Record once when training starts (step 0), the reference of the first epoch's CKA.

    Attributes:
        history: One dict per recording: ``step``, and per metric ``{layer: value}`` (the first
            recording's CKA is NaN: there is nothing earlier).
        seconds: Time spent recording, for overhead checks.
    """

    def __init__(
        self,
        images: Any,
        layers: Sequence[Any] | Any | None = None,
        *,
        out: str | Path | None = None,
        batch: int = 64,
        every: int = 1,
        tensorboard: bool = True,
        record_start: bool = True,
    ) -> None:
        super().__init__()
        for name, value, low in (("batch", batch, MIN_BATCH), ("every", every, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionError(f"{name} must be an integer >= {low}, got {value!r}")
        if batch > MAX_BATCH:
            raise OptionError(f"batch must be at most {MAX_BATCH}, got {batch!r}")
        self.images, self.layer_selectors = images, layers
        self.out = None if out is None else Path(out)
        paths = [
            i
            for i in (images if isinstance(images, (list, tuple)) else [images])
            if isinstance(i, (str, os.PathLike))
        ]
        self._protected = paths
        if self.out is not None:
            check_out(self.out, "callback", protected=paths, option="out")
        self.batch, self.every = int(batch), int(every)
        self.tensorboard, self.record_start = tensorboard, record_start
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self._extractor: Any = None
        self._x: Any = None
        self._channels_first = False
        self._last: Snapshot | None = None
        self._writer: Any = None
        self.on_train_batch_end = keras.callbacks.Callback.on_train_batch_end.__get__(self)

    def _setup(self) -> None:
        from convscope.models.resolve import resolve_model
        from convscope.probe.cache import get_extractor

        if self.out is not None:
            claim_folder(self.out, "callback", protected=self._protected, option="out")
        if self._extractor is None or self._extractor.model is not self.model:
            resolved = resolve_model(self.model)
            x = self.images if isinstance(self.images, np.ndarray) else resolved.load_inputs(self.images).x
            if len(x) < MIN_BATCH:
                raise InputError(f"DynamicsCallback needs at least {MIN_BATCH} probe images, got {len(x)}")
            self._x = x
            self._channels_first = resolved.data_format == "channels_first"
            self._extractor = get_extractor(self.model, self.layer_selectors, batch_size=self.batch)
            self._last = None
        if self._writer is None:
            self._writer = make_scalar_writer(self.out, self.tensorboard)

    def record(self, step: int) -> dict[str, Any]:
        """Probe with the current weights; returns (and keeps in :attr:`history`) this recording."""
        t0 = time.perf_counter()
        if self._extractor is None:
            self._setup()
        _ = self.model  # on JAX this syncs the trained weights back into the model's variables
        snap = snapshot(self._extractor, self._x, self.batch, self._channels_first)
        cka = (
            cka_between(self._last, snap)
            if self._last is not None
            else dict.fromkeys(snap.keys, float("nan"))
        )
        self._last = snap
        entry: dict[str, Any] = {
            "step": int(step),
            "cka_to_previous": cka,
            "dead_fraction": snap.dead,
            "saturated_fraction": snap.saturated,
        }
        self.history.append(entry)
        if self._writer is not None:
            values = {f"dynamics/{m}/{k}": v for m in METRICS for k, v in entry[m].items() if np.isfinite(v)}
            self._writer.write(step, values)
        self.seconds += time.perf_counter() - t0
        return entry

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._setup()
        if self.record_start and self._last is None:
            self.record(0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every == 0:
            self.record(epoch + 1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.out is not None and self.history:
            self.write(self.out)

    def write(self, out: str | Path) -> list[Path]:
        """Write ``dynamics.json`` and ``dynamics.png`` into ``out`` (each file atomically)."""
        from convscope.diagnose.plots import lines_picture
        from convscope.render.encode import encode_png

        out = Path(out)
        data = [
            {**e, **{m: {k: (v if np.isfinite(v) else None) for k, v in e[m].items()} for m in METRICS}}
            for e in self.history
        ]
        steps = np.array([e["step"] for e in self.history], np.float64)
        panels = {
            m: {k: (steps, np.array([e[m].get(k, np.nan) for e in self.history])) for k in self.history[0][m]}
            for m in METRICS
        }
        title = f"training dynamics over {len(self._x)} probe images (CKA to the previous recording)"
        paths = [out / "dynamics.json", out / "dynamics.png"]
        write_atomic(paths[0], json.dumps(data, indent=1).encode(), overwrite=True)
        write_atomic(paths[1], encode_png(lines_picture(panels, "epoch", title)), overwrite=True)
        return paths
