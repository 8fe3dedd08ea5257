"""``convscope demo``: the bundled MNIST CNN on real held-out digits, and where to look.

``--model efficientnet-lite0`` runs :mod:`convscope.present.demo_imagenet` instead (real ImageNet photos).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEMO_LAYERS = ("conv_0", "conv_1")
PREDICTIONS = "predictions"
DEMO_MODELS = ("mnist-cnn", "efficientnet-lite0")


def run_demo(out: str | Path, n_digits: int = 4, model: str = "mnist-cnn") -> str:
    """The demo of one zoo model (``mnist-cnn`` or ``efficientnet-lite0``); returns the guide text.

    Raises:
        OptionError: ``model`` is not a demo model (the message lists them).
    """
    from convscope.errors import OptionError
    from convscope.models.zoo import resolve_zoo_name

    name = resolve_zoo_name(str(model))
    if name == "efficientnet-lite0":
        from convscope.present.demo_imagenet import run_imagenet_demo

        return run_imagenet_demo(out)
    if name != "mnist-cnn":
        raise OptionError(f"no demo for model {model!r}; choose one of {', '.join(DEMO_MODELS)}")
    return run_mnist_demo(out, n_digits)


def run_mnist_demo(out: str | Path, n_digits: int = 4) -> str:
    """Write feature grids and overlays for a few real digits; return a short plain-text guide.

    Args:
        out: Output folder.
        n_digits: How many bundled held-out digits to show (distinct classes first).

    Returns:
        The summary text (what was written, predictions, which channels to look at).
    """
    from convscope.models.resolve import resolve_model
    from convscope.models.zoo import sample_digits
    from convscope.present.maps import GridOptions, write_maps
    from convscope.probe.cache import get_extractor

    resolved = resolve_model("mnist-cnn")
    x_all, y_all = sample_digits()
    _, first = np.unique(y_all, return_index=True)
    pick = np.sort(first)[:n_digits]
    x, y = x_all[pick], y_all[pick]
    names = [f"digit{i}_label{int(label)}" for i, label in zip(pick, y)]
    extractor = get_extractor(resolved, [*DEMO_LAYERS, PREDICTIONS])
    acts = extractor(x)
    predictions = resolved.predictions(acts[PREDICTIONS], k=1)
    displays = resolved.load_inputs(x).display
    written = write_maps(
        extractor,
        x,
        names,
        out,
        GridOptions(channels="all", overlay="mean"),
        displays=displays,
        command="demo",
    )
    lines = [f"convscope demo: bundled MNIST CNN on {len(x)} real held-out digits -> {Path(out)}/", ""]
    lines.append("Predictions:")
    for name, pred, label in zip(names, predictions, y):
        mark = "ok" if pred.best is not None and pred.best.index == int(label) else "WRONG"
        lines.append(f"  {name}: {pred.headline()}, true {int(label)} [{mark}]")
    lines.append("")
    lines.append("Where to look:")
    for layer in DEMO_LAYERS:
        a = acts[layer]  # (N, H, W, C)
        mean = a.mean(axis=(0, 1, 2))
        inactive = np.flatnonzero(a.max(axis=(0, 1, 2)) <= 0)  # zero on every one of these digits
        strongest = np.argsort(mean)[::-1][:3]
        lines.append(
            f"  {layer} {tuple(a.shape[1:])}: strongest channels {', '.join(map(str, strongest))} "
            f"(mean {', '.join(f'{mean[c]:.2f}' for c in strongest)}); "
            + (
                f"inactive on all {len(x)} digits: {', '.join(map(str, inactive))}"
                if len(inactive)
                else f"no channel inactive on all {len(x)} digits"
            )
        )
    lines.append("  conv_0 channels respond to strokes and edges at one orientation each: compare the bright")
    lines.append(
        "  tiles in conv_0.png across digits. conv_1 combines them into corners, curves and stroke ends;"
    )
    lines.append("  its *.overlay.png shows where on the digit the layer is most active on average;")
    lines.append("  predictions.png is the softmax output as bars.")
    lines.append("")
    lines.append(f"Wrote {len(written)} files, e.g. {written[0]}")
    return "\n".join(lines)
