"""Pure pieces of the explorer: grid geometry (click -> channel), channel statistics, top-k, the LRU cache."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from convscope.present.web import plugins
from convscope.present.web.cache import LRUCache
from convscope.present.web.views import channel_at, channel_stats, grid_geometry, top_predictions
from convscope.render import render_activation


def marked_activation(h: int, w: int, c: int) -> np.ndarray:
    """Channel i is zero except one pixel: (0, 0) for even i, (h-1, w-1) for odd i."""
    act = np.zeros((h, w, c), np.float32)
    act[0, 0, 0::2] = 1.0
    act[-1, -1, 1::2] = 1.0
    return act


@pytest.mark.parametrize(("h", "w", "c", "norm", "channels"), [
    (26, 26, 32, "channel", None), (24, 24, 64, "layer", None), (12, 12, 64, "symmetric", "top16:max"),
    (7, 7, 512, "channel", None), (5, 9, 10, "raw", "0,3,8-9"), (56, 56, 3, "percentile", None),
    (30, 20, 6, "channel", "5,4,3"),
])
def test_geometry_puts_every_channel_where_the_renderer_drew_it(h, w, c, norm, channels):
    act = marked_activation(h, w, c)
    grid = render_activation(act, layer="x", norm=norm, cmap="gray", channels=channels)
    geo = grid_geometry(grid, norm)
    assert geo is not None and geo["width"] == grid.image.shape[1]
    img = np.asarray(grid.image).astype(int)
    scale = (geo["cell_w"] - geo["sep"]) // w
    label_h = geo["cell_h"] - geo["sep"] - h * scale
    for i, ch in enumerate(grid.channels):
        r, col = divmod(i, geo["cols"])
        y0 = geo["top"] + geo["sep"] + r * geo["cell_h"] + label_h
        x0 = geo["left"] + geo["sep"] + col * geo["cell_w"]
        first, last = img[y0, x0], img[y0 + h * scale - 1, x0 + w * scale - 1]
        bright, dark = (first, last) if ch % 2 == 0 else (last, first)
        if norm not in ("symmetric",):
            assert bright.sum() > dark.sum(), (i, ch, first, last)
        assert channel_at(geo, grid.channels, y0 + 1, x0 + 1) == ch
        assert channel_at(geo, grid.channels, y0 - label_h + 1, x0 + w * scale - 1) == ch  # label strip too
    assert channel_at(geo, grid.channels, 0, 0) is None  # the caption


def test_geometry_counts_the_legend_of_nan_values():
    act = marked_activation(10, 10, 4)
    act[3, 3, 2] = np.nan
    grid = render_activation(act, norm="channel")
    geo = grid_geometry(grid, "channel")
    assert geo is not None and geo["top"] + geo["rows"] * geo["cell_h"] + geo["sep"] < grid.image.shape[0]


def test_geometry_is_none_for_pictures_without_a_mosaic():
    assert grid_geometry(render_activation(np.arange(12, dtype=np.float32)), "channel") is None
    assert grid_geometry(render_activation(np.ones((20, 4), np.float32)), "channel") is None


def test_channel_stats_with_nan_and_grid():
    act = np.zeros((4, 5, 2), np.float32)
    act[..., 1] = np.arange(20, dtype=np.float32).reshape(4, 5) - 5
    act[0, 0, 1] = np.nan
    s = channel_stats(act, 1, ((1.0, 1.0), (2.0, 2.0)), [3, 3])
    assert s["n_nan"] == 1 and s["max"] == 14 and s["min"] == -4 and s["argmax"] == [3, 4]
    assert s["peak_center"] == [7.0, 9.0] and s["rf_size"] == [3, 3]
    assert s["positive"] == pytest.approx(14 / 19)
    empty = channel_stats(np.full((2, 2, 1), np.nan, np.float32), 0, None)
    assert empty["max"] is None and empty["argmax"] is None and empty["n_nan"] == 4


def test_top_predictions_reads_probabilities_scores_and_refuses_maps():
    probs = np.array([0.1, 0.6, 0.3], np.float32)
    p = top_predictions(probs, ["cat", "dog", "eel"], k=2)
    assert p["kind"] == "probability" and [t["label"] for t in p["top"]] == ["1 dog", "2 eel"]
    assert p["headline"] == "predicted 1 dog (60.0%)" and p["top"][0]["text"] == "60.0%"
    logits = np.array([2.0, -1.0, 0.5, 4.0])
    q = top_predictions(logits)
    assert q["kind"] == "score" and q["top"][0]["index"] == 3 and q["top"][0]["label"] == "3"
    assert [t["score"] for t in q["top"]] == [4.0, 2.0, 0.5, -1.0]  # raw: no softmax is invented
    assert top_predictions(np.zeros((7, 7, 512)))["available"] is False
    assert top_predictions(np.array([np.nan, 1.0]))["available"] is False
    assert top_predictions(np.array([3.0]))["kind"] == "score"


def test_lru_cache_is_bounded_by_bytes_and_evicts_the_oldest():
    cache: LRUCache[str, bytes] = LRUCache("t", 10, len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"1234")
    assert "b" not in cache and "a" in cache and "c" in cache
    cache.put("huge", b"x" * 11)
    assert "huge" not in cache and cache.stats().bytes == 8


def test_lru_cache_computes_once_for_concurrent_callers_and_retries_after_errors():
    cache: LRUCache[str, list[int]] = LRUCache("t", 1 << 20, lambda v: 8 * len(v))
    calls = []

    def slow() -> list[int]:
        calls.append(1)
        time.sleep(0.05)
        return [1, 2]

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r == [1, 2] for r in results) and len(results) == 16

    def boom() -> list[int]:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        cache.get_or_compute("e", boom)
    assert cache.get_or_compute("e", lambda: [3]) == [3]


def test_plugins_report_missing_modules(monkeypatch):
    monkeypatch.setattr(plugins, "has_module", lambda name: False)
    assert plugins.features() == {"cam": False, "filters": False}
    assert plugins.cam_methods() == []
    with pytest.raises(plugins.ViewUnavailable, match=r"convscope.render.filters"):
        plugins.render_filters(object())
