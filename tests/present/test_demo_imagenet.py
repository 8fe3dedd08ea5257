"""``convscope demo --model efficientnet-lite0``: real photos, right classes, Grad-CAM on the cat, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")
skdata = pytest.importorskip("skimage.data")

from convscope.models.zoo import efficientnet_lite as lite  # noqa: E402
from convscope.present.cli import main  # noqa: E402
from convscope.present.demo_imagenet import LAYERS, PHOTOS, load_photos  # noqa: E402

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug

# Hand-marked on skimage.data.chelsea() (300 x 451 pixels): the cat's face, eyes to nose, and the
# background strip right of the cat (grey wall).
FACE = (slice(60, 290), slice(110, 360))
BACKGROUND = (slice(0, 300), slice(380, 451))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "imagenet"
    code = main(["demo", "--model", "efficientnet-lite0", "--out", str(out)])
    assert code == 0
    return out, (out / "predictions.txt").read_text(encoding="utf-8")


def test_gradcam_on_chelsea_falls_on_the_cat() -> None:
    from convscope.attribution import cam
    from convscope.models.load import load_model

    photo = skdata.chelsea()
    result = cam(load_model("efficientnet-lite0"), lite.preprocess(photo)[None], method="gradcam")
    assert result.layer == "top_activation"  # the last spatial layer, not the 1x1 logits head
    assert result.targets[0] in CATS
    # back to the photo's own pixel grid (the model saw it stretched to 224 x 224)
    heat = np.asarray(Image.fromarray(result.maps[0]).resize(photo.shape[1::-1], Image.Resampling.BILINEAR))
    peak = np.unravel_index(int(heat.argmax()), heat.shape)
    assert FACE[0].start <= peak[0] < FACE[0].stop and FACE[1].start <= peak[1] < FACE[1].stop, peak
    assert heat[FACE].mean() > 2 * heat[BACKGROUND].mean()


def test_demo_predicts_cat_and_coffee(demo_out: tuple[Path, str]) -> None:
    _, text = demo_out
    rows = {line.split(":")[0]: line.split(": ", 1)[1] for line in text.splitlines()}
    assert set(rows) == set(PHOTOS)
    top1 = {name: int(row.split()[0]) for name, row in rows.items()}
    assert top1["chelsea"] in CATS
    assert top1["coffee"] in COFFEE
    assert all(len(row.split(", ")) == 5 for row in rows.values())  # top-5 with labels
    assert "Egyptian cat" in rows["chelsea"] or "tabby" in rows["chelsea"]


def test_demo_writes_grids_and_overlays(demo_out: tuple[Path, str]) -> None:
    out, _ = demo_out
    photos = load_photos()
    for name in PHOTOS:
        for spec in LAYERS:
            grid = np.asarray(Image.open(out / name / f"{spec.path}.png"))
            assert grid.ndim in (2, 3) and grid.shape[0] > 150 and grid.shape[1] > 300
        blend = np.asarray(Image.open(out / name / "gradcam.png").convert("RGB")).astype(np.int16)
        assert blend.shape[0] >= 224 and blend.shape[1] >= 224
        # the overlay shows the photo under the heat: it is neither blank nor one flat colour
        assert blend.std() > 20
    assert set(photos) == set(PHOTOS)


def test_demo_outputs_differ_between_photos(demo_out: tuple[Path, str]) -> None:
    out, _ = demo_out
    a = np.asarray(Image.open(out / "chelsea" / "gradcam.png"))
    b = np.asarray(Image.open(out / "coffee" / "gradcam.png"))
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 10


def test_unknown_demo_model_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["demo", "--model", "resnet9000", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "resnet9000" in err and "efficientnet-lite0" in err
    assert not (tmp_path / "o").exists()
