"""Target 1: every conv layer of one image to a PNG grid (first 32 channels).

convscope must be >= 50x faster than the RECIPE on the MNIST CNN and >= 15x faster on a VGG16-shaped
model (13 conv layers, 224x224x3, random weights).

RECIPE (see ``_models.py``), per conv layer: ``keras.Model(inputs=model.inputs, outputs=layer.output)``,
``.predict``, a 4x8 ``plt.subplots`` grid of ``imshow(cmap='gray')``, ``savefig``, ``close``. It is timed
as written (sub-model built per layer per image: the headline) and, for context, with the sub-models
built once ("prebuilt").

convscope: ``ext = get_extractor(model)`` once; per image ``acts = ext(x1)`` then for every layer
``render_activation(acts[k][0], layer=k, channels="32").save(path, overwrite=True)``.

Steady state = median per image after warm-up, recipe and convscope interleaved. "Cold" = convscope's
first image in a fresh model, including building and tracing the extractor, against the recipe's
steady-state per-image time (conservative for convscope).

Usage: python benchmarks/bench_grid.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
from pathlib import Path
from typing import Any

import _common as C
import _models as M
import numpy as np

TARGETS = {"mnist-cnn": 50.0, "vgg16-shaped": 15.0}


def convscope_one_image(ext: Any, x1: np.ndarray, out_dir: Path) -> list[Path]:
    from convscope.render import render_activation

    acts = ext(x1)
    paths = []
    for key, value in acts.items():
        path = out_dir / f"cs_{key.replace('/', '.')}.png"
        render_activation(value[0], layer=key, channels="32").save(path, overwrite=True)
        paths.append(path)
    return paths


def bench_model(label: str, model: Any, x1: np.ndarray, repeats: int, inner: int) -> dict[str, Any]:
    import convscope.render  # noqa: F401  (import cost excluded from both sides)
    import matplotlib.pyplot  # noqa: F401
    from convscope.api import get_extractor

    out = Path(tempfile.mkdtemp(prefix="convscope-bench-grid-"))
    try:
        model(x1, training=False)  # TensorFlow's own one-off start-up, charged to neither side

        # convscope cold: build + trace + first image, on a model never probed before
        gc.collect()
        t_build, ext = C.timed(lambda: get_extractor(model))
        t_first_call, _ = C.timed(lambda: ext(x1))
        t_steady_call, _ = C.timed(lambda: ext(x1))
        t_cold_image = t_build
        t_first_image, paths_cs = C.timed(lambda: convscope_one_image(ext, x1, out))
        t_cold_image += t_first_image + (t_first_call - t_steady_call)  # first ext() traced the graph
        n_layers = len(paths_cs)

        # the recipe's own first image (its predict functions get traced, matplotlib warms up)
        t_recipe_first, paths_r = C.timed(lambda: M.recipe_one_image(model, x1, out, tag="recipe"))
        assert len(paths_r) == n_layers, (len(paths_r), n_layers)
        subs = M.recipe_submodels(model)

        acts_holder: dict[str, Any] = {}

        def cs_forward() -> None:
            acts_holder["acts"] = ext(x1)

        def cs_render() -> None:
            from convscope.render import render_activation

            for key, value in acts_holder["acts"].items():
                render_activation(value[0], layer=key, channels="32").save(out / f"cs_{key}.png", overwrite=True)

        cs_forward()
        times = C.interleaved(
            {
                "recipe": lambda: M.recipe_one_image(model, x1, out, tag="recipe"),
                "recipe_prebuilt": lambda: M.recipe_one_image(model, x1, out, subs, tag="prebuilt"),
                "convscope": lambda: convscope_one_image(ext, x1, out),
            },
            repeats=repeats,
            warmup=1,
            inner={"convscope": inner},
        )
        parts = C.interleaved({"cs_forward": cs_forward, "cs_render": cs_render}, repeats=repeats * inner, warmup=1)
        med = {k: C.median(v) for k, v in {**times, **parts}.items()}
        sizes = {"recipe_png_kb": np.mean([p.stat().st_size for p in paths_r]) / 1024,
                 "convscope_png_kb": np.mean([p.stat().st_size for p in paths_cs]) / 1024}
    finally:
        shutil.rmtree(out, ignore_errors=True)

    rows = [
        ["recipe (as written: sub-model per layer)", C.ms(med["recipe"]), C.spread(times["recipe"]), "1.0x"],
        ["recipe (sub-models prebuilt)", C.ms(med["recipe_prebuilt"]), C.spread(times["recipe_prebuilt"]),
         f"{med['recipe'] / med['recipe_prebuilt']:.2f}x"],
        ["convscope steady (ext + render+save)", C.ms(med["convscope"]), C.spread(times["convscope"]),
         f"{med['recipe'] / med['convscope']:.1f}x"],
        ["  of which ext(x1) forward", C.ms(med["cs_forward"]), C.spread(parts["cs_forward"]), ""],
        ["  of which render+save (all layers)", C.ms(med["cs_render"]), C.spread(parts["cs_render"]), ""],
        ["convscope cold (build+trace+1st image)", C.ms(t_cold_image), "", f"{med['recipe'] / t_cold_image:.1f}x"],
        ["  of which get_extractor()", C.ms(t_build), "", ""],
        ["  of which trace (1st ext() - steady)", C.ms(t_first_call - t_steady_call), "", ""],
        ["recipe, first image (cold)", C.ms(t_recipe_first), "", ""],
    ]
    C.show()
    C.show(C.table(["per image, " + label + f" ({n_layers} conv layers, {repeats} rounds x{inner} convscope)", "median ms",
                    "min..max ms", "speed-up"], rows))
    C.show(f"  PNG sizes: recipe {sizes['recipe_png_kb']:.0f} KB/grid, convscope {sizes['convscope_png_kb']:.0f} KB/grid")
    return {
        "layers": n_layers,
        "repeats": repeats,
        "convscope_calls_per_round": inner,
        "recipe_ms": med["recipe"] * 1e3,
        "recipe_prebuilt_ms": med["recipe_prebuilt"] * 1e3,
        "convscope_ms": med["convscope"] * 1e3,
        "convscope_forward_ms": med["cs_forward"] * 1e3,
        "convscope_render_ms": med["cs_render"] * 1e3,
        "build_ms": t_build * 1e3,
        "trace_ms": (t_first_call - t_steady_call) * 1e3,
        "cold_image_ms": t_cold_image * 1e3,
        "recipe_first_ms": t_recipe_first * 1e3,
        "ratio": med["recipe"] / med["convscope"],
        "ratio_prebuilt": med["recipe_prebuilt"] / med["convscope"],
        "ratio_cold": med["recipe"] / t_cold_image,
        **sizes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = parser.parse_args(argv)
    env = C.header("bench_grid: every conv layer of one image -> PNG grid (first 32 channels); RECIPE vs convscope")

    figures: dict[str, Any] = {}
    model, x = M.mnist()
    figures["mnist-cnn"] = bench_model("MNIST CNN, real digit", model, x[:1], repeats=3 if args.quick else 11, inner=5)
    vgg = M.vgg16()
    figures["vgg16-shaped"] = bench_model("VGG16-shaped 224x224x3", vgg, M.vgg_images(1), repeats=2 if args.quick else 3,
                                          inner=3)

    targets = [
        C.target(f"grid {name}: recipe/convscope (steady)", figures[name]["ratio"], ">=", need, "x",
                 note=f"cold ratio {figures[name]['ratio_cold']:.1f}x; vs prebuilt recipe "
                      f"{figures[name]['ratio_prebuilt']:.1f}x")
        for name, need in TARGETS.items()
    ]
    C.emit("grid", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
