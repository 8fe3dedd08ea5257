"""The layer list and label-free grids in headless Chromium, on a model with long names and nested blocks
and on the bundled EfficientNet-Lite0 (158 layers).

Set ``CONVSCOPE_SCREENSHOTS=docs/img`` to also write the README's EfficientNet-Lite0 screenshots there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_web_browser import ARGS, CHROMIUM, screenshot, sync_api, wait_for_grid

from convscope.present.web.app import create_app
from convscope.present.web.server import ServerThread, build_explorer, start_in_thread

pytestmark = pytest.mark.xdist_group("web-browser")

BACKBONE = "feature_extractor_backbone"
STEM_CONV = "stem_first_convolution_with_a_long_descriptive_name"


def long_named_model():
    """Rescaling, padding and a conv named ``stem_*``, a nested model of two blocks, a two-layer head."""
    import keras

    L = keras.layers
    inner_in = keras.Input((32, 32, 8))
    y = L.Conv2D(16, 1, name="block1a_expand_convolution_with_a_long_name")(inner_in)
    y = L.BatchNormalization(name="block1a_batch_normalization")(y)
    y = L.ReLU(name="block1a_activation_function")(y)
    y = L.DepthwiseConv2D(3, padding="same", name="block1b_depthwise_convolution_layer")(y)
    y = L.Conv2D(8, 1, name="block1b_projection_convolution_layer")(y)
    backbone = keras.Model(inner_in, y, name=BACKBONE)
    inp = keras.Input((30, 30, 3))
    x = L.Rescaling(1 / 255, name="input_rescaling_to_the_unit_range")(inp)
    x = L.ZeroPadding2D(2, name="stem_zero_padding_before_the_first_convolution")(x)
    x = L.Conv2D(8, 3, name=STEM_CONV)(x)
    x = backbone(x)
    x = L.GlobalAveragePooling2D(name="head_global_average_pooling")(x)
    out = L.Dense(3, activation="softmax", name="head_classifier_with_three_classes")(x)
    keras.utils.set_random_seed(0)
    return keras.Model(inp, out, name="long_names")


def start(model_name: str, images: Path | None = None) -> ServerThread:
    return start_in_thread(create_app(build_explorer(model_name, images=images)))


@pytest.fixture(scope="module")
def nested_server(tmp_path_factory) -> Iterator[ServerThread]:
    folder = tmp_path_factory.mktemp("nested")
    path = folder / "long_names.keras"
    long_named_model().save(path)
    (folder / "images").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(folder / "images" / "noise.png")
    handle = start(str(path), folder / "images")
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def lite0_server() -> Iterator[ServerThread]:
    handle = start("efficientnet-lite0")
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, server: ServerThread, width: int, height: int) -> tuple[object, object, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    return context, page, errors


@pytest.fixture()
def page(browser, nested_server):
    context, page, errors = open_page(browser, nested_server, 1280, 800)
    wait_for_grid(page, STEM_CONV)
    yield page
    context.close()
    assert errors == [], errors


def visible_keys(page) -> list[str]:
    return page.eval_on_selector_all("#layers tr.layer:not([hidden]):not(.container)",
                                     "rows => rows.map((r) => r.dataset.key)")


def clipped_numbers(page) -> list[str]:
    """Output-shape and RF cells of visible rows whose text does not fit their column."""
    return page.eval_on_selector_all(
        "#layers tr:not([hidden]) td.shape, #layers tr:not([hidden]) td.rf",
        "cells => cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent)")


def test_opens_on_the_first_convolution_with_page_text_captions(page):
    assert page.get_attribute("#layers tr.selected", "data-key") == STEM_CONV
    assert clipped_numbers(page) == []
    meta = page.evaluate("() => fetch(document.querySelector('#pane-a img.grid').src.replace('/api/grid.png', "
                         "'/api/grid')).then((r) => r.json())")
    assert meta["labels"] is False and meta["geometry"]["top"] == 0
    size = page.eval_on_selector("#pane-a img.grid", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [meta["width"], meta["height"]]  # the picture is the bare mosaic
    numbers = page.eval_on_selector_all("#pane-a .chan-labels span", "s => s.map((x) => x.textContent)")
    assert numbers == [str(c) for c in meta["channels"]] == [str(c) for c in range(8)]
    assert STEM_CONV in page.inner_text("#pane-a .meta") and "(32, 32, 8)" in page.inner_text("#pane-a .meta")
    assert not page.is_visible("#pane-a .legend")  # norm=channel: one range per map, no common bar
    page.select_option("#norm", "layer")
    page.wait_for_selector("#pane-a .legend:not([hidden]) .bar")
    lo, hi = page.inner_text("#pane-a .legend .lo"), page.inner_text("#pane-a .legend .hi")
    assert float(lo) <= float(hi) and float(hi) > 0


def test_blocks_fold_and_arrow_keys_unfold_them(page):
    block = f"{BACKBONE}/block1a"
    member = f"{BACKBONE}/block1a_batch_normalization"
    header = page.locator(f"#layers tr.group[data-group='{block}']")
    assert header.get_attribute("aria-expanded") == "true" and member in visible_keys(page)
    assert "block1a" in header.inner_text() and "3" in header.inner_text()
    assert page.locator(f"#layers tr[data-key='{member}'] .nm").inner_text() == "batch_normalization"
    header.click()
    assert header.get_attribute("aria-expanded") == "false" and member not in visible_keys(page)
    page.locator(f"#layers tr.group[data-group='{BACKBONE}']").click()  # the nested model's own row
    assert not any(k.startswith(BACKBONE + "/") for k in visible_keys(page))
    page.keyboard.press("ArrowDown")  # stem conv -> the first layer inside the folded model: unfolded
    first = f"{BACKBONE}/block1a_expand_convolution_with_a_long_name"
    wait_for_grid(page, first)
    assert page.get_attribute("#layers tr.selected", "data-key") == first and first in visible_keys(page)
    page.keyboard.press("ArrowUp")  # back out: the groups opened for it fold again
    wait_for_grid(page, STEM_CONV)
    assert first not in visible_keys(page)
    page.locator(f"#layers tr.group[data-group='{BACKBONE}']").click()  # opened by hand: stays open
    page.locator(f"#layers tr.group[data-group='{block}']").click()
    assert member in visible_keys(page)


def test_filter_box_keeps_matches_and_their_groups(page):
    page.fill("#layer-filter", "projection")
    assert visible_keys(page) == [f"{BACKBONE}/block1b_projection_convolution_layer"]
    groups = page.eval_on_selector_all("#layers tr.group:not([hidden])", "rows => rows.map((r) => r.dataset.group)")
    assert groups == [BACKBONE, f"{BACKBONE}/block1b"]
    assert page.inner_text("#layer-count") == "1 match"
    page.press("#layer-filter", "ArrowDown")
    wait_for_grid(page, f"{BACKBONE}/block1b_projection_convolution_layer")
    page.fill("#layer-filter", "conv2d")  # by layer type too: Conv2D and DepthwiseConv2D
    assert len(visible_keys(page)) == 4
    page.press("#layer-filter", "Escape")
    assert len(visible_keys(page)) == 10 and page.is_hidden("#layer-count")
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "layer-filter"


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1920, 1080)])
def test_efficientnet_lite0_is_readable(browser, lite0_server, tmp_path, width, height):
    context, page, errors = open_page(browser, lite0_server, width, height)
    try:
        wait_for_grid(page, "stem_conv", "s0")  # the first conv, not the padding layer before it
        names = page.eval_on_selector_all("#gallery .thumb span", "s => s.map((x) => x.textContent)")
        assert names == ["chelsea", "coffee", "astronaut"]
        headers = page.locator("#layers tr.group:not([hidden])")
        assert headers.count() == 18 and len(visible_keys(page)) == 4 + 4  # stem unfolded + avg_pool..predictions
        assert clipped_numbers(page) == []
        page.locator("#gallery .thumb").nth(2).click()
        page.fill("#layer-filter", "block3b_expand_act")
        page.press("#layer-filter", "Enter")
        page.press("#layer-filter", "Escape")
        wait_for_grid(page, "block3b_expand_activation", "s2")
        page.wait_for_selector("#top5 li")
        assert clipped_numbers(page) == []
        name = page.locator("#layers tr.selected td.name")
        assert page.locator("#layers tr.selected .nm").inner_text() == "expand_activation"
        assert name.evaluate("(td) => td.querySelector('.nm').offsetLeft + td.querySelector('.nm').offsetWidth "
                             "<= td.clientWidth")  # the name itself is whole; only the class may be cut
        assert page.locator("#pane-a .chan-labels span").count() == 64
        page.wait_for_function("() => document.querySelector('#busy').hidden")
        screenshot(page, f"lite0_{width}", tmp_path)
    finally:
        context.close()
    assert errors == [], errors
