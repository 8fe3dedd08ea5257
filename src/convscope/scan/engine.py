"""Running a scan over a range of rows: the part every engine shares.

:class:`ScanJob` says what to scan (model reference, layers, data source, options) and is picklable, so
a Ray worker can rebuild the same scanner from it. :class:`ShardScanner` loads the model once, runs the
cached compiled extractor batch by batch, and reduces each batch's activations in background threads (one
task per layer, two threads) while the next forward pass runs (numpy releases the GIL, TensorFlow too), so
the statistics cost little wall time on top of the forward pass. Memory is bounded by two batches of
activations.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convscope.models.keys import ActivationKey
from convscope.models.tokens import TokenGrid
from convscope.scan.checkpoint import Checkpointer
from convscope.scan.predictions import OutputAccumulator
from convscope.scan.reduce import Bounds, as_channels_last, one_blas_thread
from convscope.scan.snapshot import ScanState
from convscope.scan.source import ArraySource, Source, iter_chunks
from convscope.scan.stats import LayerAccumulator

log = logging.getLogger(__name__)

#: Output bounds of activations whose saturation is reported.
BOUNDED: dict[str, tuple[float, float]] = {
    "tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "softsign": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
}

OnBatch = Callable[[int], None]
#: ``on_prefix(rows, accumulators, interrupted)``: a consistent state to checkpoint (see ShardScanner.scan).
OnPrefix = Callable[[int, dict[str, Any], bool], None]
#: Threads reducing a batch's layers while the next forward pass runs (one layer per task).
STAT_THREADS = 2


@dataclass(frozen=True, eq=False)
class ScanJob:
    """Everything a worker needs to scan rows of a dataset (picklable when ``model`` is a path).

    Attributes:
        model: A ``.keras``/``.h5`` path, a zoo name, or (local engine only) a ``keras.Model``.
        layers: Layer selectors; ``None`` = every conv layer.
        source: The dataset.
        top_k: Images kept per channel.
        batch_size: Rows per forward pass.
        input_shape: One sample's shape for unbuilt/subclassed models.
        safe_mode: Keras safe mode when loading a file.
        custom_objects: Custom classes by name, or the ``.py`` file defining them (see ``load_model``).
        tokens: ``{key: TokenGrid}``: token layers ``(T, C)`` scanned as ``(h, w, C)`` maps, their extra
            tokens set aside (see :func:`convscope.models.grids.token_views`).
    """

    model: Any
    layers: tuple[str | int, ...] | None
    source: Source
    top_k: int = 16
    batch_size: int = 64
    input_shape: tuple[int, ...] | None = None
    safe_mode: bool = True
    custom_objects: Any = None
    tokens: Mapping[str, TokenGrid] = field(default_factory=dict)


def activation_name(layer: Any) -> str:
    """The name of the activation a layer applies (``"relu"``, ``"tanh"``, ...), or ``""``."""
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", "") if fn is not None else ""
    if not name and type(layer).__name__ in ("ReLU", "Softmax", "ELU", "LeakyReLU", "PReLU"):
        name = type(layer).__name__.lower()
    return "" if name == "linear" else name


def bounds_of(layers: Mapping[str, Any], key: str) -> Bounds | None:
    """The saturation bounds of the layer behind an activation key (``layers``: ``{path: layer}``), if its
    activation is bounded."""
    parsed = ActivationKey.parse(key)
    name = activation_name(layers.get(parsed.path))
    if parsed.output is not None or name not in BOUNDED:
        return None
    return Bounds(name, *BOUNDED[name])


class ShardScanner:
    """The model, its extractor and the layer plan, built once per process; scans row ranges.

    Args:
        job: What to scan.
        model: An already loaded model (skips loading ``job.model``).
    """

    def __init__(self, job: ScanJob, model: Any = None) -> None:
        from convscope.models.resolve import resolve_model
        from convscope.models.spec import data_format
        from convscope.probe.cache import get_extractor

        self.job = job
        self.model = (
            model
            if model is not None
            else resolve_model(job.model, safe_mode=job.safe_mode, custom_objects=job.custom_objects).model
        )
        self.extractor = get_extractor(
            self.model,
            list(job.layers) if job.layers else None,
            input_shape=job.input_shape,
            batch_size=job.batch_size,
            include_output=True,
        )
        self.channels_first = data_format(self.model) == "channels_first"
        self._layers = {node.path: node.layer for node in self.extractor.nodes}

    def bounds(self, key: str) -> Bounds | None:
        """The saturation bounds of the layer behind an activation key, if its activation is bounded."""
        return bounds_of(self._layers, key)

    def activations(self) -> dict[str, str]:
        """``{key: activation name}`` for the keys seen so far."""
        keys = self.extractor.keys or []
        return {
            key: activation_name(self._layers.get(ActivationKey.parse(key).path))
            for key in keys
            if not self.extractor.is_output(key)
        }

    def scan(
        self,
        start: int,
        stop: int,
        on_batch: OnBatch | None = None,
        *,
        accs: dict[str, Any] | None = None,
        on_prefix: OnPrefix | None = None,
    ) -> dict[str, LayerAccumulator]:
        """Scan rows ``start..stop``; returns one accumulator per activation key (model order).

        Args:
            start: First row.
            stop: One past the last row.
            on_batch: Called with the row count after each batch is submitted (progress; may raise to
                abort the scan).
            accs: Accumulators to continue (a resumed scan: they hold rows before ``start``), updated in
                place; ``None`` = new ones.
            on_prefix: ``on_prefix(rows, accs, interrupted)``, called in this thread whenever every row
                before ``rows`` is accumulated and no reduction runs (a consistent state to checkpoint):
                after each batch, and once more with ``interrupted=True`` on Ctrl-C before it propagates.
        """
        accs = {} if accs is None else accs
        chunks = iter_chunks(self.job.source, start, stop, self.job.batch_size)
        if not isinstance(self.job.source, ArraySource):
            chunks = _prefetch(chunks)
        pending: list[Future[None]] = []
        # model order (tasks may create the accumulators in any order)
        order: dict[str, None] = dict.fromkeys(accs)
        submitted, clean = start, True  # rows before `submitted` are handed to `pending` (or done)
        with one_blas_thread(), ThreadPoolExecutor(STAT_THREADS, thread_name_prefix="convscope-scan") as pool:
            try:
                for first, x in chunks:
                    acts = self.extractor.run_batch(x)
                    order.update(dict.fromkeys(key for key, act in acts.items() if act.ndim >= 2))
                    for future in pending:
                        future.result()  # at most one batch waits: memory stays bounded
                    pending = []
                    if on_prefix is not None and submitted > start:
                        on_prefix(submitted, accs, False)
                    clean = False  # a batch half handed over cannot be checkpointed
                    pending = [
                        pool.submit(self._accumulate, accs, key, act, first)
                        for key, act in acts.items()
                        if act.ndim >= 2
                    ]
                    submitted, clean = first + len(x), True
                    if on_batch is not None:
                        on_batch(len(x))
                for future in pending:
                    future.result()
            except KeyboardInterrupt:
                if on_prefix is not None and clean and _drain(pending):
                    on_prefix(submitted, accs, True)  # Ctrl-C: keep what is done
                raise
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return {key: accs[key] for key in order if key in accs}

    def channels_last(self, key: str, act: np.ndarray) -> np.ndarray:
        """A layer's batch as the statistics see it: ``(n, *spatial, C)`` C-contiguous float32.

        A token layer ``(n, T, C)`` becomes ``(n, h, w, C)`` maps (extra tokens set aside); its channels are
        last whatever the model's format.
        """
        grid = self.job.tokens.get(key)
        return (
            as_channels_last(grid.to_grid(act), False) if grid else as_channels_last(act, self.channels_first)
        )

    def _accumulate(self, accs: dict[str, LayerAccumulator], key: str, act: np.ndarray, first: int) -> None:
        """Add one layer's batch to its accumulator (each key is only ever touched by one task at a time)."""
        if key == self.extractor.OUTPUT_KEY:  # the model's own verdict per image, for class-vector outputs
            if act.ndim == 2:
                accs.setdefault(key, OutputAccumulator()).add_batch(act, first)  # type: ignore[arg-type]
            return
        if self.extractor.is_output(key):  # the other heads of a multi-output model: not layer statistics
            return
        value = self.channels_last(key, act)
        if key not in accs:
            accs[key] = LayerAccumulator(value.shape[-1], self.job.top_k, self.bounds(key))
        accs[key].add_batch(value, first)


def _prefetch(chunks: Iterator[tuple[int, np.ndarray]], depth: int = 2) -> Iterator[tuple[int, np.ndarray]]:
    """Read the next chunks in a background thread (image decoding overlaps the forward pass)."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in chunks:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            put(exc)

    thread = threading.Thread(target=reader, name="convscope-scan-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _drain(pending: list[Future[None]]) -> bool:
    """Wait for the reductions handed over (threads are not interrupted); False if one failed."""
    try:
        for future in pending:
            future.result()
    except Exception:  # noqa: BLE001 - the state is not consistent: no checkpoint of it
        log.warning("a reduction failed while stopping; the last checkpoint is kept")
        return False
    return True


def merge_partials(parts: list[dict[str, LayerAccumulator]]) -> dict[str, LayerAccumulator]:
    """Merge per-shard accumulators (in the given order) into one per key."""
    merged: dict[str, LayerAccumulator] = {}
    for part in parts:
        for key, acc in part.items():
            if key in merged:
                merged[key].merge(acc)
            else:
                merged[key] = acc
    return merged


def run_local(
    job: ScanJob,
    model: Any = None,
    on_batch: OnBatch | None = None,
    *,
    state: ScanState | None = None,
    checkpoint: Checkpointer | None = None,
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Scan the whole dataset in this process: ``({key: accumulator}, {key: activation name})``.

    Args:
        job: What to scan.
        model: An already loaded model.
        on_batch: Progress callback (rows per batch).
        state: A checkpoint to continue from (rows ``0..state.rows`` are in it).
        checkpoint: Saves the state after batches on its schedule, and on Ctrl-C.
    """
    scanner = ShardScanner(job, model)
    names = dict(state.activations) if state is not None else {}

    def on_prefix(rows: int, accs: dict[str, Any], interrupted: bool) -> None:
        if checkpoint is not None:
            snapshot = lambda: ScanState(rows, accs, {**names, **scanner.activations()})  # noqa: E731
            checkpoint.tick(0 if interrupted else 1, snapshot, force=interrupted)

    accs = scanner.scan(
        state.rows if state is not None else 0,
        job.source.size,
        on_batch,
        accs=None if state is None else state.accs,
        on_prefix=on_prefix,
    )
    return accs, {**names, **scanner.activations()}
