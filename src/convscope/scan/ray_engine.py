"""The Ray engine: the same scan, split into shards over a Ray cluster and merged exactly.

Each worker is a Ray actor that loads the model once (from its path or zoo name: the model object is
never shipped) and scans shards of rows with the local engine's code; the driver merges the partial
accumulators in shard order. Shards are whole multiples of the batch size, so every forward pass sees
the same batches as a local scan: statistics agree to float rounding of the merge order and the top-k
lists are identical.

Pointing it at a cluster:

* ``address=None`` (CLI: no ``--address``): the Ray session already initialised in this process, or a
  new local one (``ray.init()``, all local CPUs);
* ``address="auto"``: the cluster this machine belongs to (started with ``ray start --head``);
* ``address="ray://host:10001"``: a remote cluster through Ray Client.

Workers must be able to import convscope (``pip install convscope[ray]`` on every node) and read the
model and the data at the same paths (a shared file system); zoo models and ``mnist`` work anywhere.
An in-memory array is shipped once through the object store.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from convscope.errors import ConvscopeError, OptionError
from convscope.scan.engine import OnBatch, ScanJob, ShardScanner, merge_partials
from convscope.scan.stats import LayerAccumulator

log = logging.getLogger(__name__)

SHARDS_PER_WORKER = 4


def import_ray() -> Any:
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError:
        raise OptionError(
            "--engine ray needs the 'ray' package, which is not installed; install it with "
            "pip install 'convscope[ray]' (or use --engine local)"
        ) from None
    return ray


class _Worker:
    """Body of the Ray actor: one model load per worker process, then shards on demand."""

    def __init__(self, job: ScanJob, threads: int) -> None:
        _limit_threads(threads)
        self.scanner = ShardScanner(job)

    def scan(self, start: int, stop: int) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
        accs = self.scanner.scan(start, stop)
        return accs, self.scanner.activations()


def _limit_threads(threads: int) -> None:
    """Keep TensorFlow to the worker's CPUs (no oversubscription when several actors share a node)."""
    try:
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except Exception as exc:  # noqa: BLE001 - TF already initialised: keep its defaults
        log.debug("thread limits not applied: %s", exc)


def shards(n: int, batch_size: int, workers: int) -> list[tuple[int, int]]:
    """Row ranges covering ``0..n``: whole batches, about :data:`SHARDS_PER_WORKER` per worker."""
    batches = math.ceil(n / batch_size)
    per = max(1, math.ceil(batches / max(1, workers * SHARDS_PER_WORKER)))
    step = per * batch_size
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, ConvscopeError) else exc


def run_ray(
    job: ScanJob, *, address: str | None = None, workers: int | None = None, on_batch: OnBatch | None = None
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Scan ``job`` on a Ray cluster; returns the merged accumulators and activation names.

    Args:
        job: What to scan (``job.model`` must be a path or a zoo name).
        address: Cluster address (see the module docstring); ignored when Ray is already initialised.
        workers: Actors to start (default: the cluster's CPUs, at most the number of shards).
        on_batch: Called with the row count of each finished shard.

    Raises:
        OptionError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - any failure to connect becomes one clear error
            raise OptionError(f"cannot connect to Ray at --address {address!r}: {exc}") from None
        started = True
    elif address is not None:
        log.info("Ray is already initialised in this process; --address %s is not used", address)
    try:
        cpus = int(ray.available_resources().get("CPU", 1)) or 1
        ranges = shards(job.source.size, job.batch_size, workers or cpus)
        count = max(1, min(workers or cpus, len(ranges)))
        source = job.source
        job_ref = ray.put(job)
        actor = ray.remote(num_cpus=1)(_Worker)
        pool = [actor.remote(job_ref, max(1, cpus // count)) for _ in range(count)]
        log.info(
            "Ray scan: %d rows in %d shards on %d workers (source %s)",
            source.size,
            len(ranges),
            count,
            source.name,
        )
        return _collect(ray, pool, ranges, on_batch)
    finally:
        if started:
            ray.shutdown()


def _collect(
    ray: Any, pool: list[Any], ranges: list[tuple[int, int]], on_batch: OnBatch | None
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Keep every actor busy with the next shard; merge the partial results in shard order."""
    results: dict[int, tuple[dict[str, LayerAccumulator], dict[str, str]]] = {}
    todo = list(range(len(ranges)))
    running: dict[Any, tuple[int, Any]] = {}
    try:
        for worker in pool:
            if todo:
                i = todo.pop(0)
                running[worker.scan.remote(*ranges[i])] = (i, worker)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            i, worker = running.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a worker's ConvscopeError is re-raised as itself
                raise _unwrap(exc) from None
            if todo:
                j = todo.pop(0)
                running[worker.scan.remote(*ranges[j])] = (j, worker)
            if on_batch is not None:
                on_batch(ranges[i][1] - ranges[i][0])
    finally:
        for worker in pool:  # ends any shard still running (after an error or Ctrl-C)
            ray.kill(worker)
    names: dict[str, str] = {}
    for i in sorted(results):
        names.update(results[i][1])
    return merge_partials([results[i][0] for i in sorted(results)]), names
