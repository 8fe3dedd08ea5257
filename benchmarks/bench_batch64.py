"""Target 3: 64 images x all conv layers of the MNIST CNN to PNG grids in under 1/100 of the recipe's time.

RECIPE (see ``_models.py``), kind version: the per-layer sub-models are built ONCE (not per call as in
the snippet), then for each of the 64 images and each conv layer: ``sub.predict(x_i)`` and a 4x8
matplotlib grid ``savefig``. It is timed on the first 16 images; if that projects to more than
``--recipe-budget`` seconds (default 60) for all 64, the 64-image time is extrapolated linearly
(and the output says so), otherwise the remaining 48 are run too and the measured total is used.

convscope: ``write_maps(ext, x64, names, tmpdir, GridOptions(channels="32"))`` with the extractor
prebuilt (median of repeats after a warm-up, a fresh output folder each time); also reported with all
channels (``channels="all"``, 64 channels for conv_1: more pixels than the recipe draws).

Usage: python benchmarks/bench_batch64.py [--quick] [--recipe-budget SECONDS]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as C
import _models as M
import numpy as np

NEED = 100.0
N = 64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, always extrapolate from 16")
    parser.add_argument("--recipe-budget", type=float, default=60.0, help="run all 64 recipe images if projected below this")
    args = parser.parse_args(argv)
    env = C.header("bench_batch64: 64 MNIST digits x every conv layer -> PNG grids; RECIPE vs write_maps")

    import matplotlib.pyplot  # noqa: F401
    from convscope.api import get_extractor
    from convscope.present.maps import GridOptions, write_maps

    model, digits = M.mnist()
    x64 = np.concatenate([digits] * (N // len(digits)))[:N]
    names = [f"img{i:02d}" for i in range(N)]
    tmp = Path(tempfile.mkdtemp(prefix="convscope-bench-batch64-"))
    try:
        ext = get_extractor(model)
        ext(x64[:1])
        n_layers = len(ext(x64[:1]))

        def convscope(channels: str) -> float:
            out = Path(tempfile.mkdtemp(prefix="maps-", dir=tmp))
            t0 = time.perf_counter()
            written = write_maps(ext, x64, names, out, GridOptions(channels=channels))
            dt = time.perf_counter() - t0
            assert len(written) == N * n_layers, len(written)
            shutil.rmtree(out)
            return dt

        # recipe: sub-models built once, first image warms predict's tracing and matplotlib up
        subs = M.recipe_submodels(model)
        rdir = tmp / "recipe"
        rdir.mkdir()
        t_recipe_warm, _ = C.timed(lambda: M.recipe_one_image(model, x64[:1], rdir, subs, tag="warm"))
        per_image: list[float] = []
        first = 16
        for i in range(first):
            dt, _ = C.timed(lambda: M.recipe_one_image(model, x64[i : i + 1], rdir, subs, tag=names[i]))
            per_image.append(dt)
        projected = sum(per_image) * N / first
        if projected <= args.recipe_budget and not args.quick:
            for i in range(first, N):
                dt, _ = C.timed(lambda: M.recipe_one_image(model, x64[i : i + 1], rdir, subs, tag=names[i]))
                per_image.append(dt)
            recipe_total = sum(per_image)
            how = f"measured on all {N} images"
        else:
            recipe_total = projected
            why = "--quick" if args.quick else f"projected {projected:.0f} s > {args.recipe_budget:.0f} s budget"
            how = f"measured on {first} images, extrapolated linearly to {N} ({why})"
        recipe_png_kb = np.mean([p.stat().st_size for p in rdir.glob("img*.png")]) / 1024
        shutil.rmtree(rdir)

        repeats = 3 if args.quick else 7
        for _ in range(1):  # warm-up (thread pool, render LUTs, first staging folder)
            convscope("32")
            convscope("all")
        t32, tall = [], []
        for r in range(repeats):
            t32.append(convscope("32"))
            tall.append(convscope("all"))
        # what the 64-image forward pass alone costs, for the breakdown
        fwd = C.interleaved({"fwd": lambda: ext(x64)}, repeats=repeats, warmup=1)["fwd"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    m32, mall, mfwd = C.median(t32), C.median(tall), C.median(fwd)
    grids = N * n_layers
    rows = [
        [f"recipe, sub-models prebuilt ({how.split(',')[0]})", f"{recipe_total:.2f}", f"{recipe_total / grids * 1e3:.1f}", "1.0x"],
        ["convscope write_maps, channels=32", f"{m32:.3f}", f"{m32 / grids * 1e3:.2f}", f"{recipe_total / m32:.0f}x"],
        ["convscope write_maps, channels=all", f"{mall:.3f}", f"{mall / grids * 1e3:.2f}", f"{recipe_total / mall:.0f}x"],
        ["  of which ext(x64) forward alone", f"{mfwd:.3f}", f"{mfwd / grids * 1e3:.2f}", ""],
    ]
    C.show()
    C.show(C.table([f"{N} images x {n_layers} conv layers = {grids} grids", "total s", "ms/grid", "speed-up"], rows))
    C.show(f"  recipe: {how}; recipe per image median {C.median(per_image) * 1e3:.0f} ms "
           f"(first, warming, image {t_recipe_warm * 1e3:.0f} ms, excluded); recipe PNG {recipe_png_kb:.0f} KB/grid")
    C.show(f"  convscope: median of {repeats} runs after 1 warm-up; min..max channels=32 {min(t32):.3f}..{max(t32):.3f} s")
    figures = {
        "images": N, "layers": n_layers, "recipe_s": recipe_total, "recipe_how": how,
        "recipe_per_image_ms": C.median(per_image) * 1e3, "convscope_32_s": m32, "convscope_all_s": mall,
        "forward_s": mfwd, "ratio_32": recipe_total / m32, "ratio_all": recipe_total / mall, "repeats": repeats,
    }
    targets = [
        C.target("batch64 mnist-cnn: recipe/write_maps (32 ch)", figures["ratio_32"], ">=", NEED, "x",
                 note=f"all channels {figures['ratio_all']:.0f}x; recipe {how}"),
    ]
    C.emit("batch64", targets, figures, env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
