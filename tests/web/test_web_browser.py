"""End to end in headless Chromium (Debian's ``chromium`` driven by Playwright; no browser download).

Load the page, pick layers by click and keyboard, open a channel, upload by file picker and by
drag-and-drop, compare two images, and (when installed) open the class-activation view. Set
``CONVSCOPE_SCREENSHOTS=docs/img`` to also write the README's screenshots there.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from webhelp import digit_seven, png_bytes

from convscope.present.web.app import create_app
from convscope.present.web.server import ServerThread, build_explorer, start_in_thread

CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.xdist_group("web-browser")
if os.environ.get("CI"):  # in CI these tests must run: a missing install step fails loudly, never skips
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: the test target must apt-get install chromium chromium-driver",
                    pytrace=False)
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium chromium-driver", allow_module_level=True)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    handle = start_in_thread(create_app(build_explorer("mnist-cnn")))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 4" not in m.text else None)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    wait_for_grid(page, "conv_0", "s0")
    yield page
    context.close()
    assert errors == [], errors


def wait_for_grid(page, layer: str, image: str | None = None, pane: str = "a") -> None:
    cond = f"img.dataset.layer === {layer!r}" + (f" && img.dataset.image === {image!r}" if image else "")
    page.wait_for_function(f"() => {{ const img = document.querySelector('#pane-{pane} img.grid'); "
                           f"return img && {cond} && img.complete && img.naturalWidth > 0; }}", timeout=20000)


def screenshot(page, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"serve_{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000  # a real picture, not a blank page
    target = os.environ.get("CONVSCOPE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


def selected_layer(page) -> str:
    return page.get_attribute("#layers tr.selected", "data-key")


def test_page_shows_layers_gallery_grid_and_prediction(page, tmp_path):
    assert page.title() == "convscope · mnist-cnn"
    rows = page.locator("#layers tbody tr")
    assert rows.count() == 8 and "(24, 24, 64)" in rows.nth(1).inner_text() and "5×5" in rows.nth(1).inner_text()
    assert page.locator("#gallery .thumb").count() == 16
    assert page.locator("#gallery .thumb.selected").get_attribute("data-id") == "s0"
    page.wait_for_selector("#top5 li")
    assert page.locator("#top5 li").count() == 5
    assert page.locator("#top5 li").first.locator(".label").inner_text() == "0"
    assert "(26, 26, 32)" in page.inner_text("#pane-a .meta")
    page.click("#layers tbody tr:nth-child(2)")
    wait_for_grid(page, "conv_1")
    assert selected_layer(page) == "conv_1" and "conv_1" in page.inner_text("#pane-a .pane-title")
    screenshot(page, "main", tmp_path)


def test_keyboard_moves_between_layers_and_images(page):
    page.keyboard.press("j")
    wait_for_grid(page, "conv_1")
    page.keyboard.press("ArrowDown")
    wait_for_grid(page, "pool")
    page.keyboard.press("k")
    wait_for_grid(page, "conv_1")
    for _ in range(10):
        page.keyboard.press("ArrowUp")
    wait_for_grid(page, "conv_0")
    page.keyboard.press("l")
    wait_for_grid(page, "conv_0", "s1")
    assert page.locator("#gallery .thumb.selected").get_attribute("data-id") == "s1"
    page.keyboard.press("End")  # other keys do nothing
    assert selected_layer(page) == "conv_0"


def test_controls_change_the_grid(page, server):
    page.select_option("#order", "top:max")
    page.fill("#count", "8")
    page.press("#count", "Enter")
    page.select_option("#norm", "layer")
    page.wait_for_function("() => { const t = document.querySelector('#pane-a .meta').textContent; "
                           "return t.includes('8 of 32') && t.includes('norm layer'); }")
    page.select_option("#order", "list")
    page.fill("#list", "0,99")
    page.press("#list", "Enter")
    page.wait_for_selector("#toast:not([hidden])")
    assert "99" in page.inner_text("#toast")


def test_clicking_a_channel_opens_it_over_the_input(page, server, tmp_path):
    page.keyboard.press("j")
    wait_for_grid(page, "conv_1")
    src = page.get_attribute("#pane-a img.grid", "src")  # the picture's own URL, with the page's options
    assert "aspect=" in src and "layer=conv_1" in src
    meta = httpx.get(server.url.rstrip("/") + src.replace("/api/grid.png", "/api/grid")).json()
    g, target = meta["geometry"], 13
    i = meta["channels"].index(target)
    r, c = divmod(i, g["cols"])
    y = g["top"] + g["sep"] + r * g["cell_h"] + g["cell_h"] / 2
    x = g["sep"] + c * g["cell_w"] + g["cell_w"] / 2
    box = page.locator("#pane-a img.grid").bounding_box()
    k = box["width"] / meta["width"]
    page.locator("#pane-a img.grid").click(position={"x": x * k, "y": y * k})
    page.wait_for_selector("#channel-dialog[open][data-channel='13']")
    assert "conv_1 · channel 13 of 64" in page.inner_text("#ch-title")
    stats = httpx.get(server.url + "api/channel", params={"image": "s0", "layer": "conv_1", "channel": 13}).json()
    table = page.inner_text("#ch-stats")
    assert "receptive field\t5×5 px" in table and f"peak at\t({stats['argmax'][0]}, {stats['argmax'][1]})" in table
    page.wait_for_function("() => document.querySelector('#ch-img').naturalWidth >= 224")
    screenshot(page, "channel", tmp_path)
    page.keyboard.press("ArrowRight")
    nxt = meta["channels"][(i + 1) % len(meta["channels"])]
    page.wait_for_selector(f"#channel-dialog[data-channel='{nxt}']")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#channel-dialog').open")


def test_upload_by_file_picker_and_by_drag_and_drop(page, tmp_path):
    path = tmp_path / "my seven.png"
    path.write_bytes(png_bytes(digit_seven(96)))
    page.set_input_files("#file-input", str(path))
    page.wait_for_selector(".thumb.selected[data-id^='u']")
    assert page.locator(".thumb.selected span").inner_text() == "my seven.png"
    wait_for_grid(page, "conv_0")
    page.wait_for_function("() => document.querySelector('#pred-note').textContent.includes('10 classes')")
    assert page.locator("#top5 li").count() == 5
    n = page.locator("#gallery .thumb").count()
    data = base64.b64encode(png_bytes(np.rot90(digit_seven(64)).copy())).decode()
    page.evaluate("""([b64, name, type]) => {
        const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type }));
        document.querySelector('#dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""", [data, "dropped.png", "image/png"])
    page.wait_for_function(f"() => document.querySelectorAll('#gallery .thumb').length === {n + 1}")
    page.wait_for_selector(".thumb.selected >> text=dropped.png")
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['not an image'], 'notes.txt', { type: 'text/plain' }));
        document.querySelector('#dropzone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""")
    page.wait_for_selector("#toast:not([hidden])")
    assert "notes.txt" in page.inner_text("#toast") and "image" in page.inner_text("#toast")
    screenshot(page, "upload", tmp_path)


def test_compare_two_images_side_by_side(page, tmp_path):
    page.keyboard.press("j")
    wait_for_grid(page, "conv_1")
    page.check("#compare")
    wait_for_grid(page, "conv_1", "s1", pane="b")
    page.select_option("#pane-b .pick-image", "s6")
    wait_for_grid(page, "conv_1", "s6", pane="b")
    page.select_option("#pane-b .pick-layer", "pool")
    wait_for_grid(page, "pool", "s6", pane="b")
    assert page.is_visible("#pane-b") and "(12, 12, 64)" in page.inner_text("#pane-b .meta")
    screenshot(page, "compare", tmp_path)
    page.uncheck("#compare")
    assert not page.is_visible("#pane-b")


def test_class_activation_view(page, tmp_path):
    features = page.evaluate("() => fetch('/api/model').then((r) => r.json()).then((m) => m.features)")
    tab = page.locator("#tabs button[data-view=cam]")
    assert features["cam"], "the CAM view must be offered: convscope.attribution ships with the package"
    tab.click()
    page.wait_for_function("() => document.querySelector('#pane-a img.grid').dataset.view === 'cam'", timeout=30000)
    assert "gradcam" in page.inner_text("#pane-a .meta") and "explaining class 0" in page.inner_text("#pane-a .meta")
    page.locator("#top5 li").nth(1).click()
    label = page.locator("#top5 li").nth(1).locator(".label").inner_text()
    page.wait_for_function(f"() => document.querySelector('#pane-a .meta').textContent.includes('class {label}')",
                           timeout=30000)
    screenshot(page, "cam", tmp_path)


def test_filters_view(page, tmp_path):
    features = page.evaluate("() => fetch('/api/model').then((r) => r.json()).then((m) => m.features)")
    tab = page.locator("#tabs button[data-view=filters]")
    assert features["filters"], "the filters view must be offered: convscope.render.filters ships with the package"
    page.keyboard.press("j")
    wait_for_grid(page, "conv_1")
    tab.click()
    page.wait_for_function("() => document.querySelector('#pane-a img.grid').dataset.view === 'filters'")
    assert "filters: conv_1 · Conv2D kernel (3, 3, 32, 64)" in page.inner_text("#pane-a .meta")
    assert page.is_visible("#pane-a .legend .bar")  # mode=norm: one shared scale, drawn by the page
    assert not page.is_visible("#norm")  # feature-map controls hide in other views
    page.click("#layers tbody tr:nth-child(3)")  # pool: no filters -> back to feature maps
    wait_for_grid(page, "pool")
    page.wait_for_function("() => document.querySelector('#pane-a img.grid').dataset.view === 'maps'")
    assert not tab.is_visible()
    page.click("#layers tbody tr:nth-child(1)")
    wait_for_grid(page, "conv_0")
    tab.click()
    page.wait_for_function("() => document.querySelector('#pane-a img.grid').dataset.view === 'filters' && "
                           "document.querySelector('#pane-a img.grid').dataset.layer === 'conv_0'")
    screenshot(page, "filters", tmp_path)
