"""How often each CAM beats the random-map baseline on the demo models (a quality figure, not a speed one).

For each demo model, ``convscope.attribution.evaluate`` (defaults: 20 deletion/insertion steps, ROAD at
0.1..0.9, seed 0) of Grad-CAM, Grad-CAM++ and LayerCAM at the automatic layer, and per method the share of
images whose deletion AUC is below the random baseline's (target: Grad-CAM >= 0.9 on the issue 12 demo
models: digit-unet, digit-locator, EfficientNet-Lite0) and whose insertion AUC is above it:

* ``digit-unet``, target ``seg:1`` (the stroke class's logits over the pixels predicted as stroke), and
  ``digit-locator``, target ``top1`` of its class head: 64 held-out canvases (real MNIST digits the models
  never trained on, every 15th of the 1,000 held-out canvases);
* ``efficientnet-lite0`` (real ImageNet weights), ``top1``: 16 photos, the 8 object photos that ship in
  scikit-image and scikit-learn and their mirror images;
* ``mnist-cnn``, ``top1``: 64 held-out digits (not an issue 12 demo; shown for comparison).

Two baselines are printed: the default random maps drawn on the maps' own grid (``random_grid="auto"``,
e.g. 7x7 for Lite0) and per-pixel random maps (``random_grid="pixel"``). Removing scattered single pixels
is a perturbation unlike the removal of regions any CAM asks for, and some networks react to it far more
(EfficientNet-Lite0: scattered gray pixels destroy its prediction faster than removing the object).

Usage: python benchmarks/bench_faithfulness.py [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any

import _common as C
import numpy as np

METHODS = ("gradcam", "gradcampp", "layercam")
LIMIT = 0.9
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "motorcycle", "china", "flower")


def canvases(n: int) -> np.ndarray:
    from convscope.models.zoo.canvas import build_canvases

    c = build_canvases("heldout")
    return np.ascontiguousarray(c.images[:: len(c.images) // n][:n], np.float32)


def digits(n: int) -> np.ndarray:
    from convscope.models.zoo.mnist import load_mnist_digits, split_indices

    x, _ = load_mnist_digits()
    _, held = split_indices()
    return np.ascontiguousarray(x[held[:: len(held) // n][:n]], np.float32)


def photos(resolved: Any, quick: bool) -> np.ndarray:
    """The object photos of scikit-image and scikit-learn (and their mirror images), preprocessed."""
    from PIL import Image
    from skimage import data
    from sklearn.datasets import load_sample_image

    arrays = {
        "motorcycle": data.stereo_motorcycle()[0],
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }
    images = []
    for name in PHOTOS[: 4 if quick else None]:
        a = arrays[name] if name in arrays else getattr(data, name)()
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a
        images += [Image.fromarray(a), Image.fromarray(np.ascontiguousarray(a[:, ::-1]))]
    return resolved.load_inputs(images).x


def measure(name: str, model: Any, x: np.ndarray, target: str) -> dict[str, Any]:
    from convscope.attribution import cam, evaluate

    results = [cam(model, x, m, target=target) for m in METHODS]
    ev = evaluate(model, x, results)
    pixel = evaluate(model, x, results[0], random_grid="pixel")
    deletion, insertion = ev.versus_random("deletion_auc"), ev.versus_random("insertion_auc")
    rows = [[m, f"{deletion[m]:.0%}", f"{insertion[m]:.0%}"] for m in METHODS]
    rows.append(["gradcam vs per-pixel random", f"{pixel.versus_random('deletion_auc')['gradcam']:.0%}",
                 f"{pixel.versus_random('insertion_auc')['gradcam']:.0%}"])
    C.show(C.table(["method", "deletion AUC < random", "insertion AUC > random"], rows,
                   f"{name}: {len(x)} images, target {target}, layer {results[0].layer}, random grid "
                   f"{ev.random_grid[0]}x{ev.random_grid[1]}"))
    C.show("\n".join(f"  {r['method']:<10} deletion {r['deletion_auc']:.4g}  insertion {r['insertion_auc']:.4g}  "
                     f"ROAD MoRF {r['road_morf']:.4g}  LeRF {r['road_lerf']:.4g}" for r in ev.table()))
    return {
        "images": len(x),
        "grid": list(ev.random_grid),
        "deletion_beats_random": deletion,
        "insertion_beats_random": insertion,
        "gradcam_deletion_beats_pixel_random": pixel.versus_random("deletion_auc")["gradcam"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 canvases / digits, 8 photos")
    args = parser.parse_args()
    env = C.header("Faithfulness of CAMs against the random-map baseline, on the demo models")
    from convscope.models.resolve import resolve_model

    n = 16 if args.quick else 64
    figures: dict[str, Any] = {}
    targets = []
    for name, target, issue12 in (
        ("digit-unet", "seg:1", True),
        ("digit-locator", "top1", True),
        ("efficientnet-lite0", "top1", True),
        ("mnist-cnn", "top1", False),
    ):
        resolved = resolve_model(name)
        x = (photos(resolved, args.quick) if name == "efficientnet-lite0"
             else digits(n) if name == "mnist-cnn" else canvases(n))
        figures[name] = got = measure(name, resolved.model, x, target)
        if issue12:
            targets.append(C.target(f"{name}: Grad-CAM deletion AUC below random", got["deletion_beats_random"]
                                    ["gradcam"], ">=", LIMIT, ""))
    C.show(C.verdict_table(targets))
    C.emit("faithfulness", targets, figures, env)


if __name__ == "__main__":
    main()
