"""The exact running state of a scan, as JSON-able fields and named arrays (what a checkpoint stores).

:class:`ScanState` is the merged state of the rows ``0..rows`` plus, for the Ray engine, the partial
results of finished shards beyond them. :func:`pack` turns it into ``(meta, {name: array})`` and
:func:`unpack` back, bit for bit: every float64 sum, co-moment and top-k list is restored as it was, so
adding the same batches afterwards gives the same bytes as a scan that never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convscope.scan.predictions import OutputAccumulator
from convscope.scan.reduce import Bounds
from convscope.scan.stats import LayerAccumulator

Accumulators = dict[str, Any]  # {key: LayerAccumulator | OutputAccumulator}, in model order

#: The array fields of a :class:`LayerAccumulator` (``saturated`` and ``comoment`` may be ``None``).
LAYER_ARRAYS = (
    "mean",
    "m2",
    "max",
    "positive",
    "saturated",
    "spatial_max_sum",
    "comoment",
    "top_value",
    "top_index",
    "top_pos",
)


@dataclass
class ScanState:
    """What a checkpoint holds: the merged state of a prefix of rows, and finished shards beyond it.

    Attributes:
        rows: Rows ``0..rows`` are merged into ``accs``.
        accs: ``{key: accumulator}`` over those rows.
        activations: ``{key: activation name}`` of the scanned layers (empty until a batch ran).
        held: ``{(start, stop): accumulators}`` of finished Ray shards not merged yet (a shard before
            them still runs).
    """

    rows: int
    accs: Accumulators
    activations: dict[str, str] = field(default_factory=dict)
    held: dict[tuple[int, int], Accumulators] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Rows whose statistics the state holds."""
        return self.rows + sum(b - a for a, b in self.held)


def layer_state(acc: LayerAccumulator) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One layer accumulator as ``(JSON-able scalars, {field: array})``."""
    b = acc.bounds
    meta = {
        "channels": acc.channels,
        "top_k": acc.top_k,
        "images": acc.images,
        "positions": acc.positions,
        "bounds": None if b is None else [b.name, b.low, b.high, b.margin],
    }
    return meta, {name: getattr(acc, name) for name in LAYER_ARRAYS if getattr(acc, name) is not None}


def layer_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LayerAccumulator:
    """The accumulator :func:`layer_state` described, bit for bit.

    Raises:
        ValueError: An array is missing or has another dtype or rank than the accumulator's.
    """
    b = meta["bounds"]
    bounds = None if b is None else Bounds(str(b[0]), float(b[1]), float(b[2]), float(b[3]))
    acc = LayerAccumulator(int(meta["channels"]), int(meta["top_k"]), bounds)
    acc.images, acc.positions = int(meta["images"]), int(meta["positions"])
    for name in LAYER_ARRAYS:
        current = getattr(acc, name)
        if current is None:
            continue
        value = np.asarray(arrays[name])
        if value.dtype != current.dtype or value.ndim != current.ndim:
            raise ValueError(f"array {name!r} is {value.dtype}{value.shape}, expected {current.dtype}")
        setattr(acc, name, value.copy())
    return acc


def pack(state: ScanState) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a state; arrays are named ``g<group>.k<key>.<field>`` (group 0 = the prefix)."""
    groups = [(0, state.rows, state.accs), *((a, b, accs) for (a, b), accs in sorted(state.held.items()))]
    meta: dict[str, Any] = {"rows": state.rows, "done": state.done, "activations": state.activations}
    meta["groups"], arrays = [], {}
    for g, (start, stop, accs) in enumerate(groups):
        keys = []
        for k, (key, acc) in enumerate(accs.items()):
            if isinstance(acc, OutputAccumulator):
                keys.append({"key": key, "kind": "output"})
                parts = acc.state()
            else:
                scalars, parts = layer_state(acc)
                keys.append({"key": key, "kind": "layer", **scalars})
            arrays.update({f"g{g}.k{k}.{name}": value for name, value in parts.items()})
        meta["groups"].append({"start": start, "stop": stop, "keys": keys})
    return meta, arrays


def unpack(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ScanState:
    """The state :func:`pack` described.

    Raises:
        KeyError, ValueError: The arrays do not match the meta.
    """
    groups = []
    for g, group in enumerate(meta["groups"]):
        accs: Accumulators = {}
        for k, entry in enumerate(group["keys"]):
            prefix = f"g{g}.k{k}."
            parts = {name[len(prefix) :]: value for name, value in arrays.items() if name.startswith(prefix)}
            if entry["kind"] == "output":
                accs[entry["key"]] = OutputAccumulator.from_state(parts)
            else:
                accs[entry["key"]] = layer_from_state(entry, parts)
        groups.append(((int(group["start"]), int(group["stop"])), accs))
    held = dict(groups[1:])
    return ScanState(int(meta["rows"]), groups[0][1], dict(meta["activations"]), held)
