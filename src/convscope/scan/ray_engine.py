"""The Ray engine: the same scan, split into shards over a Ray cluster and merged exactly.

Each worker is a Ray actor that loads the model once (from its path or zoo name: the model object is
never shipped) and scans shards of rows with the local engine's code; the driver merges the partial
accumulators in shard order. Shards are whole multiples of the batch size, so every forward pass sees
the same batches as a local scan: statistics agree to float rounding of the merge order and the top-k
lists are identical. The shard plan depends on the dataset size and batch size only, so every Ray run
gives the same bytes, whatever the cluster.

A worker that dies (its node is lost, it runs out of memory, it is killed) costs only its current shard:
shard results are merged once, when they come back, so the driver starts a new actor and scans that shard
again (at most :data:`MAX_LOSSES` times). Finished shards are checkpointed like the local engine's batches
(:mod:`convscope.scan.checkpoint`), so a killed driver resumes where it stopped.

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
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from convscope.errors import ConvscopeError, OptionError
from convscope.scan.checkpoint import Checkpointer
from convscope.scan.engine import OnBatch, ScanJob, ShardScanner, merge_partials
from convscope.scan.snapshot import ScanState
from convscope.scan.stats import LayerAccumulator

log = logging.getLogger(__name__)

#: Shards of a scan (fewer for small datasets: a shard is at least one batch).
MAX_SHARDS = 64
#: Times a shard may lose its worker (the actor died: node lost, OOM, killed) before the scan gives up.
MAX_LOSSES = 3


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


def shards(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Row ranges covering ``0..n``: whole batches, at most :data:`MAX_SHARDS` shards.

    The plan depends on ``n`` and ``batch_size`` only, never on the cluster, so every run (a resumed one,
    one on another cluster, one that lost a worker) merges the same partial results in the same order
    and gives the same bytes.
    """
    batches = math.ceil(n / batch_size)
    step = max(1, math.ceil(batches / MAX_SHARDS)) * batch_size
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, ConvscopeError) else exc


def run_ray(
    job: ScanJob,
    *,
    address: str | None = None,
    workers: int | None = None,
    on_batch: OnBatch | None = None,
    state: ScanState | None = None,
    checkpoint: Checkpointer | None = None,
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Scan ``job`` on a Ray cluster; returns the merged accumulators and activation names.

    Args:
        job: What to scan (``job.model`` must be a path or a zoo name).
        address: Cluster address (see the module docstring); ignored when Ray is already initialised.
        workers: Actors to start (default: the cluster's CPUs, at most the number of shards).
        on_batch: Called with the row count of each finished shard.
        state: A checkpoint to continue from (its finished shards are not scanned again).
        checkpoint: Saves the merged state after shards on its schedule, and on Ctrl-C.

    Raises:
        OptionError: Ray is not installed, the cluster cannot be reached, or workers keep dying.
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
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        ranges = shards(job.source.size, job.batch_size)
        plan = _Plan(ranges, state, job.batch_size)
        if not plan.todo:  # a resumed scan whose shards are all in the checkpoint
            return plan.merged, plan.names
        count = max(1, min(workers or cpus, len(plan.todo)))
        # TensorFlow threads per worker, from the whole plan (not what is left), so a resumed scan's
        # forward passes run as the first run's did: the same float rounding, the same bytes
        threads = max(1, cpus // max(1, min(workers or cpus, len(ranges))))
        job_ref = ray.put(job)
        actor = ray.remote(num_cpus=1)(_Worker)

        def new_worker() -> Any:
            return actor.remote(job_ref, threads)

        log.info(
            "Ray scan: %d rows in %d shards (%d to scan) on %d workers (source %s)",
            job.source.size,
            len(ranges),
            len(plan.todo),
            count,
            job.source.name,
        )
        return _collect(ray, new_worker, count, plan, on_batch, checkpoint)
    finally:
        if started:
            ray.shutdown()


class _Plan:
    """The shards still to scan, the merged prefix and the finished shards waiting for their turn."""

    def __init__(self, ranges: list[tuple[int, int]], state: ScanState | None, batch_size: int) -> None:
        self.ranges, self.batch_size = ranges, batch_size
        self.rows = state.rows if state is not None else 0
        self.merged: dict[str, Any] = state.accs if state is not None else {}
        self.names: dict[str, str] = dict(state.activations) if state is not None else {}
        self.held: dict[tuple[int, int], dict[str, Any]] = dict(state.held) if state is not None else {}
        starts = {a for a, _ in ranges} | {ranges[-1][1] if ranges else 0}
        if self.rows not in starts or any(r not in ranges for r in self.held):
            raise OptionError(
                "--resume: the checkpoint's shards do not match this scan's; start over with --force"
            )
        self.todo = deque(i for i, r in enumerate(ranges) if r[0] >= self.rows and r not in self.held)

    def finish(self, i: int, part: dict[str, Any], names: dict[str, str]) -> None:
        """Take shard ``i``'s result; merge every finished shard that continues the prefix, in order."""
        self.names.update(names)
        self.held[self.ranges[i]] = part
        while (nxt := next((r for r in self.held if r[0] == self.rows), None)) is not None:
            self.merged = merge_partials([self.merged, self.held.pop(nxt)])
            self.rows = nxt[1]

    def state(self) -> ScanState:
        return ScanState(self.rows, self.merged, self.names, self.held)


def _collect(
    ray: Any,
    new_worker: Callable[[], Any],
    count: int,
    plan: _Plan,
    on_batch: OnBatch | None,
    checkpoint: Checkpointer | None,
) -> tuple[dict[str, LayerAccumulator], dict[str, str]]:
    """Keep every actor busy with the next shard; replace an actor that dies and scan its shard again."""
    from ray.exceptions import ObjectLostError, RayActorError

    pool = [new_worker() for _ in range(count)]
    running: dict[Any, tuple[int, Any]] = {}
    losses: Counter[int] = Counter()
    clean = True  # False while a result is being merged (a half-merged state is not checkpointed)

    def submit(worker: Any) -> None:
        if plan.todo:
            i = plan.todo.popleft()
            running[worker.scan.remote(*plan.ranges[i])] = (i, worker)

    try:
        for worker in pool:
            submit(worker)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            i, worker = running.pop(done[0])
            a, b = plan.ranges[i]
            try:
                part, names = ray.get(done[0])
            except (
                RayActorError,
                ObjectLostError,
            ) as exc:  # the worker (or its node) died: scan the shard again
                losses[i] += 1
                if losses[i] > MAX_LOSSES:
                    raise OptionError(
                        f"Ray workers died {losses[i]} times scanning rows {a}..{b}; giving up: {_first_line(exc)}"
                    ) from None
                log.warning(
                    "Ray worker lost on rows %d..%d (%s); scanning them again on a new worker",
                    a,
                    b,
                    _first_line(exc),
                )
                plan.todo.appendleft(i)
                pool.remove(worker)
                _kill(ray, worker)
                pool.append(worker := new_worker())
                submit(worker)
                continue
            except Exception as exc:  # noqa: BLE001 - a worker's ConvscopeError is re-raised as itself
                raise _unwrap(exc) from None
            clean = False
            plan.finish(i, part, names)
            clean = True
            submit(worker)
            if on_batch is not None:
                on_batch(b - a)
            if checkpoint is not None:
                checkpoint.tick(math.ceil((b - a) / plan.batch_size), plan.state)
    except KeyboardInterrupt:
        if checkpoint is not None and clean:
            checkpoint.tick(0, plan.state, force=True)  # Ctrl-C: keep the finished shards
        raise
    finally:
        for worker in pool:  # ends any shard still running (after an error or Ctrl-C)
            _kill(ray, worker)
    return plan.merged, plan.names


def _kill(ray: Any, worker: Any) -> None:
    try:
        ray.kill(worker)
    except Exception as exc:  # noqa: BLE001 - already gone
        log.debug("actor already gone: %s", exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
