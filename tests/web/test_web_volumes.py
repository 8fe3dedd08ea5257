"""The explorer serves TIFF stacks, DICOM and NIfTI volumes slice by slice (``<id>~k``), with a slice slider."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
import tifffile
from pydicom.data import get_testdata_file

from convscope.data import InputSpec, Preprocess, load_inputs
from convscope.data.readopts import ReadOptions, SliceSpec
from convscope.data.window import Window
from convscope.models.resolve import resolve_model
from convscope.present.web.app import create_app
from convscope.present.web.server import ServerThread, build_explorer, start_in_thread

CHROMIUM = os.environ.get("CONVSCOPE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.xdist_group("web-browser")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("volumes")
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((28, 28, 5)).astype(np.float32), np.eye(4)), root / "brain.nii.gz")
    for i in range(3):
        page = (rng.random((28, 28)) * 65535).astype(np.uint16)
        tifffile.imwrite(root / "pages.tif", page, append=i > 0, photometric="minisblack")
    shutil.copy(get_testdata_file("CT_small.dcm", download=False), root / "ct.dcm")
    (root / "broken.nii").write_bytes(b"\0" * 100)  # listed as not served, the rest still is
    return root


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[ServerThread]:
    prep = Preprocess(read=ReadOptions(window=Window(0.5, 0.8)))
    model = resolve_model("mnist-cnn", preprocess=prep)
    handle = start_in_thread(create_app(build_explorer(model, images=folder)))
    yield handle
    handle.stop()


def test_gallery_lists_volumes_with_their_slice_counts(server: ServerThread, folder: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        images = {im["name"]: im for im in c.get("/api/images").json()["images"]}
        assert set(images) == {"brain.nii.gz", "ct.dcm", "pages.tif"}
        assert (images["brain.nii.gz"]["slices"], images["pages.tif"]["slices"], images["ct.dcm"]["slices"]) == (5, 3, 1)
        brain = images["brain.nii.gz"]["id"]
        shot = c.get(f"/api/images/{brain}~3.png")
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
        assert c.get(f"/api/predict?image={brain}~3").json()["image"] == f"{brain}~3"
        missing = c.get(f"/api/images/{brain}~9.png")
        assert missing.status_code == 404 and "has 5 slice(s)" in missing.json()["error"]


def test_a_slice_is_exactly_what_load_inputs_gives(server: ServerThread, folder: Path) -> None:
    explorer = build_explorer(resolve_model("mnist-cnn", preprocess=Preprocess(read=ReadOptions(window=Window(0.5, 0.8)))), images=folder)
    entry = next(e for e in explorer.gallery.list() if e["name"] == "brain.nii.gz")
    got = explorer.gallery.prepared(f"{entry['id']}~3").x
    prep = Preprocess(read=ReadOptions(window=Window(0.5, 0.8), slice=SliceSpec(2, 3)))
    want = load_inputs([folder / "brain.nii.gz"], InputSpec((28, 28, 1)), prep).x[0]
    np.testing.assert_array_equal(got, want)
    other = explorer.gallery.prepared(f"{entry['id']}~4").x
    assert not np.array_equal(got, other)


def test_stacks_can_be_uploaded(server: ServerThread, folder: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        body = (folder / "brain.nii.gz").read_bytes()
        r = c.post("/api/images", content=body, headers={"content-type": "application/gzip", "x-filename": "up.nii.gz"})
        assert r.status_code == 201, r.text
        up = r.json()
        assert (up["name"], up["slices"], up["source"]) == ("up.nii.gz", 5, "upload")
        shot = c.get(f"/api/images/{up['id']}~1.png")
        assert shot.status_code == 200 and shot.content.startswith(b"\x89PNG")
        ct = (folder / "ct.dcm").read_bytes()
        r = c.post("/api/images", content=ct, headers={"content-type": "application/dicom", "x-filename": "scan.dcm"})
        assert r.status_code == 201 and r.json()["slices"] == 1
        assert c.get(f"/api/predict?image={r.json()['id']}").status_code == 200
        bad = c.post("/api/images", content=b"junk", headers={"content-type": "application/dicom", "x-filename": "junk.dcm"})
        assert bad.status_code == 400 and "'junk.dcm' is not a DICOM file" in bad.json()["error"]
        assert "convscope-upload-" not in bad.json()["error"]  # the temporary file is never named


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright import sync_api  # installed by the test extra; a missing browser fails, never skips

    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_slice_slider_moves_through_a_volume(browser, server: ServerThread) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]")
    page.click("#gallery .thumb[title='brain.nii.gz (5 slices)']")
    page.wait_for_function("() => document.querySelector('#pane-a img.grid')?.dataset.image?.endsWith('~2')")
    assert page.is_visible("#slice-bar") and page.input_value("#slice") == "2"
    page.fill("#slice", "4")  # a range input: fill sets the value and fires input
    page.wait_for_function("() => document.querySelector('#pane-a img.grid')?.dataset.image?.endsWith('~4')")
    assert "slice 4" in page.inner_text("#pane-a .pane-title")
    assert page.inner_text("#slice-num") == "4 / 4"
    page.click("#gallery .thumb[title='ct.dcm']")
    page.wait_for_function("() => !document.querySelector('#pane-a img.grid')?.dataset.image?.includes('~')")
    assert not page.is_visible("#slice-bar")  # one image: no slider
    context.close()
    assert errors == [], errors
