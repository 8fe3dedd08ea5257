"""The report in a real browser (the system's headless Chromium through Playwright).

The page renders, every picture decodes, the table-of-contents anchors scroll to their sections, no
request leaves the file (every request is recorded; anything but the file itself and ``data:`` is
aborted and fails the test), and layer and model names that are markup show as text, with no script run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reporthelp import browser_page, have_chromium

pytestmark = [pytest.mark.skipif(not have_chromium(), reason="needs playwright and /usr/bin/chromium"),
              pytest.mark.xdist_group("report-browser")]

PAYLOADS = ("<img src=x onerror=alert(1)>", "<svg onload=alert(2)>", "x\"><b onmouseover=alert(3)>b")

@pytest.fixture(scope="module")
def mnist_html(tmp_path_factory) -> Path:
    from convscope.models.zoo import sample_digits
    from convscope.present.cli import main

    folder = tmp_path_factory.mktemp("report-browser")
    x, y = sample_digits()
    paths = []
    for i in (0, 7, 12):
        paths.append(folder / f"digit{i}.png")
        Image.fromarray((x[i, :, :, 0] * 255).round().astype(np.uint8)).save(paths[-1])
    out = folder / "report.html"
    assert main(["report", "mnist-cnn", *map(str, paths), "-o", str(out)]) == 0
    return out, [int(y[i]) for i in (0, 7, 12)]


@pytest.fixture(scope="module")
def xss_html(tmp_path_factory) -> Path:
    """A report of a model whose layer and model names are markup.

    Keras accepts these names and runs such a model eagerly; only TensorFlow's graph name scopes refuse
    them, so the probe runs uncompiled here (on JAX the compiled probe takes them as they are).
    """
    import keras

    import convscope.probe.cache
    from convscope.present.report import build_report
    from convscope.probe.extractor import Extractor

    L = keras.layers
    p1, p2, p3 = PAYLOADS
    model = keras.Sequential([keras.Input((16, 16, 1)), L.Conv2D(4, 3, name=p1), L.Conv2D(4, 3, name=p3),
                              L.Flatten(), L.Dense(3, activation="softmax", name="out")], name=p2)
    x = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    with pytest.MonkeyPatch.context() as mp:
        if keras.backend.backend() == "tensorflow":
            mp.setattr(convscope.probe.cache, "get_extractor",
                       lambda m, layers, **kw: Extractor(m.model, layers, compile=False, include_output=True))
        report = build_report(model, x, layers=[p1, p3], cam=False)
    return report.save(tmp_path_factory.mktemp("report-xss") / "xss.html")


def open_offline(page, path: Path) -> tuple[list[str], list[str]]:
    """Load ``path`` recording every request; requests other than the file and data: URIs are aborted."""
    requests: list[str] = []
    blocked: list[str] = []

    def route(r) -> None:
        url = r.request.url
        if url == path.as_uri() or url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.on("request", lambda req: requests.append(req.url))
    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    return requests, blocked


def check_rendered(page, path: Path, requests: list[str], blocked: list[str]) -> None:
    assert blocked == [], blocked
    assert all(u == path.as_uri() or u.startswith("data:") for u in requests), requests
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert images and all(ok and w > 0 and h > 0 for ok, w, h in images), images
    assert page.evaluate("document.querySelector('main').getBoundingClientRect().height") > 1000


def check_anchors(page) -> None:
    links = page.evaluate("[...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'))")
    assert len(links) >= 5
    for href in links:
        page.click(f'nav a[href="{href}"]')
        page.wait_for_function("h => location.hash === h", arg=href)
        top, at_bottom = page.evaluate(
            "h => [document.getElementById(h.slice(1)).getBoundingClientRect().top,"
            " window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2]", href)
        assert -2 <= top <= 40 or at_bottom, (href, top)


def test_mnist_report_renders_offline_with_working_anchors(mnist_html):
    mnist_html, labels = mnist_html
    dialogs: list[str] = []
    with browser_page() as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        requests, blocked = open_offline(page, mnist_html)
        check_rendered(page, mnist_html, requests, blocked)
        assert page.title() == "convscope report: mnist-cnn"
        assert page.locator("nav a", has_text="conv_1").count() == 1
        predictions = page.locator("#inputs .pred").all_inner_texts()
        assert [p.split(" (")[0] for p in predictions] == [f"predicted {label}" for label in labels]
        assert page.locator("#inputs img").count() >= 6  # each input, and its Grad-CAM when installed
        check_anchors(page)
        page.screenshot(path=str(mnist_html.with_suffix(".png")), full_page=False)
    assert dialogs == []


def test_markup_in_names_is_shown_as_text_and_never_runs(xss_html):
    html = xss_html.read_text(encoding="utf-8")
    for payload in PAYLOADS:
        assert payload not in html
    dialogs: list[str] = []
    with browser_page() as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        requests, blocked = open_offline(page, xss_html)
        check_rendered(page, xss_html, requests, blocked)
        page.mouse.move(400, 300)
        headings = page.locator("#maps h3").all_inner_texts()
        assert headings == [PAYLOADS[0], PAYLOADS[2]]
        assert PAYLOADS[1] in page.title()
        assert page.evaluate("document.querySelectorAll('svg, b, [onerror], [onload], [onmouseover]').length") == 0
        check_anchors(page)
    assert dialogs == []
