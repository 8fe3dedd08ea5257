"""Training dynamics on a fixed probe set: each layer's CKA to an earlier snapshot, dead and saturated channels.

A :class:`Snapshot` is what one forward pass over the probe images leaves (in minibatches, so memory is
``O(n^2 x layers x batches)``): the Gram terms of every layer per minibatch
(:mod:`convscope.diagnose.cka`) and each layer's health over the probe set (the scan's
:func:`~convscope.scan.health.layer_health`: *dead* = zero at every position of every probe image,
*saturated* = bounded activations near a bound on at least 90% of values).
:func:`cka_between` gives each layer's linear CKA between two snapshots (same probe images, same
minibatch partition: its exact reference is the float64 formula over that partition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convscope.diagnose.cka import GramTerms, HsicAccumulator, gram, gram_terms, minibatches
from convscope.scan.engine import bounds_of
from convscope.scan.health import layer_health
from convscope.scan.layerstats import LayerStats
from convscope.scan.reduce import as_channels_last, one_blas_thread
from convscope.scan.stats import LayerAccumulator


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One pass of a model over the probe images.

    Attributes:
        keys: Activation keys, in model order.
        terms: One :class:`~convscope.diagnose.cka.GramTerms` per minibatch (rows = ``keys``).
        dead: ``{key: fraction of channels dead over the probe set}``.
        saturated: ``{key: fraction of channels saturated}`` (0 for unbounded activations).
    """

    keys: tuple[str, ...]
    terms: tuple[GramTerms, ...]
    dead: dict[str, float]
    saturated: dict[str, float]


def snapshot(extractor: Any, x: np.ndarray, batch: int, channels_first: bool = False) -> Snapshot:
    """Run the probe images ``x (N, ...)`` (``N >= 4``) through ``extractor`` in minibatches of ``batch``.

    Args:
        extractor: A :class:`~convscope.probe.extractor.Extractor` (it reads the model's current weights).
        x: Model input.
        batch: Minibatch size (``>= 4``).
        channels_first: The model's data format (for the channel statistics).
    """
    layers = {node.path: node.layer for node in extractor.nodes}
    terms, accs = [], {}
    keys: list[str] = []
    with one_blas_thread():  # beside the training's own threads (see convscope.scan.reduce)
        for start, stop in minibatches(len(x), batch):
            acts = {k: v for k, v in extractor.run_batch(x[start:stop]).items() if not extractor.is_output(k)}
            keys = [k for k, v in acts.items() if v.ndim >= 2]
            terms.append(gram_terms([gram(acts[k]) for k in keys]))
            for key in keys:
                value = as_channels_last(acts[key], channels_first)
                if key not in accs:
                    accs[key] = LayerAccumulator(value.shape[-1], 1, bounds_of(layers, key))
                    accs[
                        key
                    ].comoment = None  # health needs no channel correlations: skip their Gram products
                accs[key].add_batch(value, start)
    dead, saturated = {}, {}
    for key, acc in accs.items():
        arrays: dict[str, Any] = acc.finish()
        stats = LayerStats(key, (), (), acc.channels, acc.images, "", **arrays)
        health = layer_health(stats)
        dead[key] = len(health.dead) / acc.channels
        saturated[key] = len(health.saturated) / acc.channels
    return Snapshot(tuple(keys), tuple(terms), dead, saturated)


def cka_between(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """``{key: linear CKA of the layer between the two snapshots}`` (NaN for a constant layer)."""
    if before.keys != after.keys or len(before.terms) != len(after.terms):
        raise ValueError("snapshots of different layers or probe sets")
    acc = HsicAccumulator(len(before.keys), len(after.keys))
    for a, b in zip(before.terms, after.terms):
        acc.add(a, b)
    return {k: float(v) for k, v in zip(before.keys, np.diag(acc.cka()))}
