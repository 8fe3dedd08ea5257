"""The command line on every model kind: inspect, maps, scan and report exit 0 and write what they say,
with activations equal to Keras' own outputs (the .keras files load with safe_mode=True)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from models import KINDS, reference
from PIL import Image

from convscope.models.tree import layer_tree
from convscope.present.cli import main
from convscope.scan import load_scan

ATOL = 1e-5
#: What the report says about one input's output, per kind (the one prediction rule of every surface).
SAYS = {
    "unet": "% of pixels",
    "deeplab": "% of pixels",
    "two_heads": "cls: predicted",
    "two_heads_list": "cls: predicted",
    "regression": "output ",
    "vit": "predicted",
    "hub_resnet": "predicted",
    "hub_mobilenet": "predicted",
    "hub_vit": "predicted",
}


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(folder: Path) -> np.ndarray:
    """The images of ``folder`` as the model sees them (8-bit RGB / 255), in name order."""
    return np.stack([np.asarray(Image.open(p), np.float32) / 255.0 for p in sorted(folder.glob("*.png"))])


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_maps_scan_report(capsys, tmp_path, kinds, kind):
    k = kinds[kind]
    code, out, err = run(capsys, "inspect", k.path, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert {r["path"] for r in rows if r["depth"] == 0} == {
        layer.name for layer in k.model.layers if layer.name != "image"
    }

    # maps: every conv layer (the default), one PNG per (input, layer), arrays equal to Keras
    code, out, err = run(capsys, "maps", k.path, k.images, "--out", tmp_path / "maps", "--save-arrays")
    assert code == 0, err
    printed = [Path(line) for line in out.splitlines()]
    arrays = np.load(tmp_path / "maps" / "activations.npz")
    convs = [n for n in layer_tree(k.model) if not n.is_container and "Conv" in n.class_name]
    assert sorted(arrays.files) == sorted(n.path for n in convs)
    assert len([p for p in printed if p.suffix == ".png"]) == 3 * len(convs)
    assert all(p.is_file() for p in printed)
    x = pixels(k.images)
    checked = 0
    for node in convs:
        try:
            ref = reference(k.model, x, node.layer)
        except (LookupError, ValueError, AttributeError):
            continue  # a conv inside a custom block (KerasHub) has no graph output to compare with
        np.testing.assert_allclose(arrays[node.path], ref, atol=ATOL, rtol=0, err_msg=node.path)
        checked += 1
    # hub_vit's only conv sits inside a KerasHub layer: compared in test_kinds_activations
    assert checked >= 1 or kind == "hub_vit"

    # scan of an .npy batch (first and last conv layer): complete folder, statistics, crops
    npy = tmp_path / "x.npy"
    np.save(npy, x)
    chosen = sorted({convs[0].path, convs[-1].path})
    code, out, err = run(
        capsys,
        "scan",
        k.path,
        npy,
        "--out",
        tmp_path / "scan",
        "--top",
        "2",
        "--batch-size",
        "2",
        *[a for path in chosen for a in ("--layer", path)],
    )
    assert code == 0, err
    result = load_scan(tmp_path / "scan")
    assert sorted(result.layers) == chosen
    first = convs[0]
    try:
        ref = reference(k.model, x, first.layer)
        np.testing.assert_allclose(
            result[first.path].max, ref.reshape(-1, ref.shape[-1]).max(axis=0), atol=ATOL
        )
    except (LookupError, ValueError, AttributeError):
        pass
    assert (result.predictions is not None) == (kind not in ("unet", "deeplab"))  # (N, K) outputs only
    if kind.startswith("two_heads"):  # the scan's top-1 is the first declared head's ("cls", 10 classes)
        assert int(np.max(result.predictions.top1)) < 10 and result.predictions.top1.shape == (3,)

    # report: one self-contained page, the prediction of each input stated the way every surface states it
    # (Grad-CAM drawn where it is quick; where it cannot be computed the report says why and stands)
    cam = [] if kind in ("unet", "two_heads", "regression", "vit") else ["--no-cam"]
    code, out, err = run(capsys, "report", k.path, k.images / "im0.png", "-o", tmp_path / "report.html", *cam)
    assert code == 0, err
    page = (tmp_path / "report.html").read_text()
    assert SAYS[kind] in page, page[page.find('class="pred"') :][:200]
    if kind.startswith("two_heads"):
        assert "box: " in page
